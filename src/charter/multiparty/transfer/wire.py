"""What travels between transfer gates: swiss numbers, batch claims and their limits.

A batch travels as ``deliver(batch-hash, batch-bytes, signature, blobs)`` where ``blobs``
is a list of ``[blob-hash size]`` the batch references. The sending node signs the
canonical Syrup record ``<charter-mp-batch-v1 network-id batch-hash blobs>`` with its
node key; the receiver recomputes ``batch-hash`` as SHA-256 of the exact bytes it got, so
the signature covers those bytes (and the list of blobs the recipient may then pull from
the sender). Nothing a sender claims about *who* it is travels: that comes from the
session (see ``gate``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from charter.codec.syrup import Record, Symbol, encode
from charter.crypto.keys import Ed25519PrivateKey, Ed25519PublicKey
from charter.multiparty.transfer.errors import TransferRefused

__all__ = [
    "DELIVER",
    "HASH_BYTES",
    "INTRODUCE",
    "MAX_BLOBS_PER_BATCH",
    "MAX_CHUNK_BYTES",
    "OK",
    "READ_BLOB",
    "REFUSED",
    "BlobRef",
    "batch_claim",
    "inbox_swiss",
    "parse_blob_refs",
    "sign_batch",
    "verify_batch",
]

INTRODUCE = Symbol("introduce")
DELIVER = Symbol("deliver")
READ_BLOB = Symbol("read-blob")
OK = "ok"
REFUSED = "refused"

HASH_BYTES = 32
SIGNATURE_BYTES = 64
MAX_BLOBS_PER_BATCH = 1024
MAX_CHUNK_BYTES = 1 << 20
"""The most one ``read-blob`` answers (well inside the runtime's message limit)."""

_INBOX_LABEL = Symbol("charter-mp-inbox-v1")
_BATCH_LABEL = Symbol("charter-mp-batch-v1")


def inbox_swiss(network_id: bytes, node: str) -> bytes:
    """SHA-256 of ``<charter-mp-inbox-v1 network-id node-name>`` as 64 hex digits (ASCII).

    Every member can compute it from the network configuration; it grants nothing by
    itself (a caller must still introduce itself over an authenticated session).
    """
    return hashlib.sha256(encode(Record(_INBOX_LABEL, network_id, node))).hexdigest().encode()


@dataclass(frozen=True, slots=True)
class BlobRef:
    """A blob a batch references: its SHA-256 and its size in bytes."""

    hash: bytes
    size: int

    def __post_init__(self) -> None:
        if type(self.hash) is not bytes or len(self.hash) != HASH_BYTES:
            raise TransferRefused("a blob hash is 32 bytes")
        if type(self.size) is not int or self.size < 0:
            raise TransferRefused("a blob size is a non-negative integer")

    @property
    def hex(self) -> str:
        return self.hash.hex()

    def to_wire(self) -> list[Any]:
        return [self.hash, self.size]


def parse_blob_refs(value: Any) -> tuple[BlobRef, ...]:
    """The blob list of a ``deliver``; ``TransferRefused`` if it is not one."""
    if type(value) is not list or len(value) > MAX_BLOBS_PER_BATCH:
        raise TransferRefused(f"blobs is a list of at most {MAX_BLOBS_PER_BATCH} [hash size]")
    refs: list[BlobRef] = []
    for item in value:
        if type(item) is not list or len(item) != 2:
            raise TransferRefused("a blob reference is [hash size]")
        refs.append(BlobRef(item[0], item[1]))
    return tuple(refs)


def batch_claim(network_id: bytes, batch_hash: bytes, blobs: Sequence[BlobRef]) -> bytes:
    """The canonical bytes a sending node signs for one batch."""
    return encode(Record(_BATCH_LABEL, network_id, batch_hash, [b.to_wire() for b in blobs]))


def sign_batch(
    key: Ed25519PrivateKey, network_id: bytes, batch_hash: bytes, blobs: Sequence[BlobRef] = ()
) -> bytes:
    return key.sign(batch_claim(network_id, batch_hash, blobs))


def verify_batch(
    key: Ed25519PublicKey,
    network_id: bytes,
    batch: bytes,
    batch_hash: bytes,
    signature: bytes,
    blobs: Sequence[BlobRef] = (),
) -> None:
    """Check ``batch`` hashes to ``batch_hash`` and ``signature`` is ``key``'s over it.

    Raises ``TransferRefused`` with ``code`` ``mp.transfer.refused.hash`` (bytes do not
    match the hash: tampered) or ``mp.transfer.refused.signature`` (not the sender's).
    """
    if type(signature) is not bytes or len(signature) != SIGNATURE_BYTES:
        raise TransferRefused("a batch signature is 64 bytes", code="mp.transfer.refused.signature")
    if hashlib.sha256(batch).digest() != batch_hash:
        raise TransferRefused(
            "the batch bytes do not hash to the batch hash", code="mp.transfer.refused.hash"
        )
    if not key.is_valid(signature, batch_claim(network_id, batch_hash, blobs)):
        raise TransferRefused(
            "the batch is not signed by the sending node", code="mp.transfer.refused.signature"
        )
