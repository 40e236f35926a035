"""The payloads of the Raft entries the engine applies, and how submitters build them.

- ``<charter-batch body sig>``: ``body`` is the exact Syrup bytes of
  ``<charter-batch-body submitter-node-id batch-seq [tx ...]>`` and ``sig`` the
  submitter's Ed25519 signature over those bytes. The signature is checked over the
  bytes as stored, never over a re-encoding, and once per batch.
- ``<charter-signature SignedRoot-record>``: the leader's signed Merkle root.
- ``<charter-snapshot-evidence seqno digest frontier>``: ``SnapshotEvidence`` as is.

``parse_entry`` never raises on what it reads from the log: anything it cannot make
sense of is a ``MalformedEntry`` that the engine applies as one Invalid leaf, so that
every node derives the same seqnos from the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from charter.codec.syrup import Record, Symbol, SyrupError, decode, encode
from charter.crypto.keys import Ed25519PrivateKey
from charter.ledger.engine.commands import Command
from charter.ledger.engine.errors import BatchFormatError
from charter.ledger.engine.tx import Transaction
from charter.ledger.errors import LedgerError
from charter.ledger.signatures import SIGNED_ROOT_LABEL, SignedRoot
from charter.ledger.snapshots import SNAPSHOT_EVIDENCE_LABEL, SnapshotEvidence

BATCH_LABEL = Symbol("charter-batch")
BATCH_BODY_LABEL = Symbol("charter-batch-body")
SIGNATURE_LABEL = Symbol("charter-signature")
MAX_BATCH_TXS = 100_000
MAX_SUBMITTER_BYTES = 256


@dataclass(frozen=True, slots=True)
class BatchEntry:
    """A batch whose framing parsed; its signature and transactions are not yet checked."""

    submitter: str
    batch_seq: int
    body: bytes
    signature: bytes
    txs: tuple[object, ...]


@dataclass(frozen=True, slots=True)
class SignatureEntry:
    signed: SignedRoot


@dataclass(frozen=True, slots=True)
class EvidenceEntry:
    evidence: SnapshotEvidence
    data: bytes


@dataclass(frozen=True, slots=True)
class MalformedEntry:
    """Bytes that are no engine entry: one Invalid leaf with ``reason``."""

    reason: str


ParsedEntry = BatchEntry | SignatureEntry | EvidenceEntry | MalformedEntry


def encode_batch_body(
    submitter: str, batch_seq: int, txs: Sequence[Transaction | Command]
) -> bytes:
    if not txs:
        raise BatchFormatError("a batch holds at least one transaction")
    if len(txs) > MAX_BATCH_TXS:
        raise BatchFormatError(f"a batch holds at most {MAX_BATCH_TXS} transactions")
    if not submitter or len(submitter.encode("utf-8")) > MAX_SUBMITTER_BYTES:
        raise BatchFormatError("a submitter id is 1 to 256 bytes")
    if batch_seq < 0:
        raise BatchFormatError("a batch sequence number is non-negative")
    return encode(Record(BATCH_BODY_LABEL, submitter, batch_seq, [tx.to_record() for tx in txs]))


def seal_batch(body: bytes, signature: bytes) -> bytes:
    """The entry for ``body`` and a signature over it (kept apart for tests of forgeries)."""
    return encode(Record(BATCH_LABEL, body, signature))


def sign_batch(
    key: Ed25519PrivateKey, submitter: str, batch_seq: int, txs: Sequence[Transaction | Command]
) -> bytes:
    """What node ``submitter`` proposes to Raft: its transactions, signed once."""
    body = encode_batch_body(submitter, batch_seq, txs)
    return seal_batch(body, key.sign(body))


def signature_entry(signed: SignedRoot) -> bytes:
    return encode(Record(SIGNATURE_LABEL, signed.to_record()))


def parse_entry(data: bytes) -> ParsedEntry:
    try:
        outer = decode(data)
    except SyrupError as exc:
        return MalformedEntry(f"not canonical Syrup: {exc.message}")
    if not isinstance(outer, Record):
        return MalformedEntry("not an engine record")
    label = outer.label
    if label == BATCH_LABEL:
        return _parse_batch(outer)
    if label == SIGNATURE_LABEL:
        if len(outer.fields) != 1:
            return MalformedEntry("a signature entry holds one signed root")
        try:
            return SignatureEntry(SignedRoot.from_record(outer.fields[0]))
        except LedgerError as exc:
            return MalformedEntry(exc.message)
    if label == SNAPSHOT_EVIDENCE_LABEL:
        try:
            return EvidenceEntry(SnapshotEvidence.decode(data), data)
        except LedgerError as exc:
            return MalformedEntry(exc.message)
    if label == SIGNED_ROOT_LABEL:
        return MalformedEntry("a bare signed root; signatures travel as charter-signature")
    return MalformedEntry("not an engine record")


def _parse_batch(outer: Record) -> ParsedEntry:
    if len(outer.fields) != 2:
        return MalformedEntry("a batch is <charter-batch body sig>")
    body, signature = outer.fields
    if type(body) is not bytes or type(signature) is not bytes:
        return MalformedEntry("a batch's body and signature are bytes")
    try:
        inner = decode(body)
    except SyrupError as exc:
        return MalformedEntry(f"batch body is not canonical Syrup: {exc.message}")
    if not isinstance(inner, Record) or inner.label != BATCH_BODY_LABEL or len(inner.fields) != 3:
        return MalformedEntry("not a charter-batch-body record")
    submitter, batch_seq, txs = inner.fields
    if type(submitter) is not str or not submitter:
        return MalformedEntry("a batch's submitter is a non-empty string")
    if type(batch_seq) is not int or batch_seq < 0:
        return MalformedEntry("a batch's sequence number is a non-negative integer")
    if not isinstance(txs, list) or not txs or len(txs) > MAX_BATCH_TXS:
        return MalformedEntry(f"a batch holds 1 to {MAX_BATCH_TXS} transactions")
    return BatchEntry(submitter, batch_seq, body, signature, tuple(txs))
