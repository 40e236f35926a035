"""Snapshots: when one is due, and the evidence transaction that records its digest.

Every ``every_tx`` committed transactions (more once the state is large: see
``SnapshotPolicy.growth``) the node writes a snapshot of its state
as of some committed ``seqno`` and appends a snapshot-evidence transaction that
records the snapshot's SHA-256 digest together with the Merkle tree's frontier
at ``seqno + 1`` leaves (leaf 0 and transactions ``1..seqno``). The evidence is an
ordinary transaction, so its leaf is in the tree and the next signature covers
it: a node that joins from the snapshot checks the snapshot against the digest,
the evidence against a receipt, and resumes the tree with
``MerkleTree.from_frontier`` so that it computes the same roots as everyone else.

``SnapshotSchedule`` is sans-I/O, fed "committed up to" and "snapshot taken"
events. ``SnapshotEvidence`` is a Syrup record, hashed and signed as stored.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from charter.codec.syrup import Record, Symbol, SyrupDecodeError, decode, encode
from charter.ledger.errors import LedgerError, LedgerStateError
from charter.ledger.merkle import HASH_SIZE, MerkleTree

SNAPSHOT_EVIDENCE_LABEL = Symbol("charter-snapshot-evidence")


class SnapshotError(LedgerError):
    """Snapshot evidence that is malformed or does not match the snapshot or tree."""

    code = "ledger.snapshot.invalid"


def snapshot_digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@dataclass(frozen=True, slots=True)
class SnapshotPolicy:
    every_tx: int = 10_000
    growth: float = 1.0
    """A snapshot also waits until ``growth`` times as many transactions as the last
    snapshot held rows have committed since it. Writing a snapshot costs time in
    proportion to the state, so when the state grows with the log (a history row per
    token transfer), snapshots grow rarer and their cost per transaction stays bounded;
    the log a node replays after one stays no longer than the snapshot is large. 0 keeps
    the plain ``every_tx`` interval."""

    def __post_init__(self) -> None:
        if self.every_tx < 1:
            raise ValueError("the snapshot interval must be positive")
        if not (math.isfinite(self.growth) and self.growth >= 0):
            raise ValueError("the snapshot growth factor is a finite number, zero or more")


class SnapshotSchedule:
    """Says at which committed seqno the next snapshot is due."""

    __slots__ = ("_commit", "_interval", "_last_snapshot", "policy")

    def __init__(
        self, policy: SnapshotPolicy, *, last_snapshot_seqno: int = 0, last_rows: int = 0
    ) -> None:
        self.policy = policy
        self._last_snapshot = last_snapshot_seqno
        self._commit = last_snapshot_seqno
        self._interval = self._after(last_rows)

    def _after(self, rows: int) -> int:
        return max(self.policy.every_tx, int(self.policy.growth * rows))

    @property
    def interval(self) -> int:
        """Transactions to commit after the last snapshot before the next one is due."""
        return self._interval

    @property
    def last_snapshot(self) -> int:
        return self._last_snapshot

    def committed(self, seqno: int) -> int | None:
        """The commit index advanced to ``seqno``; returns the seqno to snapshot, if due."""
        if seqno < self._commit:
            raise LedgerStateError(f"commit index {seqno} went back from {self._commit}")
        self._commit = seqno
        if seqno - self._last_snapshot >= self._interval:
            return seqno
        return None

    def taken(self, seqno: int, rows: int = 0) -> None:
        """A snapshot as of ``seqno``, of a state of ``rows`` rows, was written and its
        evidence appended."""
        if seqno < self._last_snapshot or seqno > self._commit:
            raise LedgerStateError(
                f"snapshot at {seqno} is outside {self._last_snapshot}..{self._commit}"
            )
        self._last_snapshot = seqno
        self._interval = self._after(rows)


@dataclass(frozen=True, slots=True)
class SnapshotEvidence:
    """What the ledger records about a snapshot as of ``seqno``."""

    seqno: int
    digest: bytes
    frontier: tuple[bytes, ...]

    @classmethod
    def for_snapshot(cls, seqno: int, data: bytes, tree: MerkleTree) -> SnapshotEvidence:
        """Evidence for ``data``, the state as of ``seqno``, while ``tree`` is at seqno + 1 leaves."""
        if len(tree) != seqno + 1:
            raise SnapshotError(
                f"the tree has {len(tree)} leaves; evidence for {seqno} needs {seqno + 1}"
            )
        return cls(seqno, snapshot_digest(data), tuple(tree.frontier()))

    def check_snapshot(self, data: bytes) -> None:
        if snapshot_digest(data) != self.digest:
            raise SnapshotError(f"the snapshot's digest is not the one recorded for {self.seqno}")

    def resume_tree(self) -> MerkleTree:
        """The Merkle tree as of the snapshot, ready for the transactions after it."""
        try:
            return MerkleTree.from_frontier(self.seqno + 1, self.frontier)
        except LedgerError as exc:
            raise SnapshotError(exc.message) from None

    def to_record(self) -> Record:
        return Record(SNAPSHOT_EVIDENCE_LABEL, self.seqno, self.digest, list(self.frontier))

    def encode(self) -> bytes:
        return encode(self.to_record())

    @classmethod
    def decode(cls, data: bytes) -> SnapshotEvidence:
        try:
            record = decode(data)
        except SyrupDecodeError as exc:
            raise SnapshotError(
                f"snapshot evidence is not canonical Syrup: {exc.message}"
            ) from None
        if (
            not isinstance(record, Record)
            or record.label != SNAPSHOT_EVIDENCE_LABEL
            or len(record.fields) != 3
        ):
            raise SnapshotError("not a charter-snapshot-evidence record")
        seqno, digest, frontier = record.fields
        if type(seqno) is not int or seqno < 0:
            raise SnapshotError("seqno must be a non-negative integer")
        if not isinstance(digest, bytes) or len(digest) != HASH_SIZE:
            raise SnapshotError("digest must be 32 bytes")
        if not isinstance(frontier, list) or not all(
            isinstance(h, bytes) and len(h) == HASH_SIZE for h in frontier
        ):
            raise SnapshotError("frontier must be a list of 32-byte hashes")
        if len(frontier) != bin(seqno + 1).count("1"):
            raise SnapshotError(f"a tree of {seqno + 1} leaves has another frontier length")
        return cls(seqno, digest, tuple(frontier))
