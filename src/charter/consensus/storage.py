"""Durable Raft state held in memory: what a restarted node is rebuilt from.

The core reads its stable log through this interface and the caller writes each
Ready's durable parts into it (``persist``) before advancing the core. ``RaftStorage``
names what the core, the driver and the application use; ``MemoryStorage`` holds it in
memory and the ledger layer's ``DurableRaftStorage`` on disk.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

from charter.consensus.errors import Compacted, SnapshotOutOfDate, Unavailable
from charter.consensus.types import (
    ConfState,
    Entry,
    HardState,
    Ready,
    Snapshot,
    SnapshotMeta,
)

BOOTSTRAP_INDEX = 1
"""Index (and term) of the snapshot a new cluster starts from; it holds the founding voters,
so a node joining later learns them from the leader's snapshot like any other state."""


def entries_size(entries: Sequence[Entry]) -> int:
    return sum(len(e.data) for e in entries)


def limit_size(entries: list[Entry], max_bytes: int) -> list[Entry]:
    """The longest prefix within ``max_bytes`` payload bytes, but never less than one entry."""
    if max_bytes <= 0 or len(entries) <= 1:
        return entries
    total = 0
    for n, e in enumerate(entries):
        total += len(e.data)
        if total > max_bytes and n > 0:
            return entries[:n]
    return entries


class RaftStorage(Protocol):
    """Durable Raft state as the core reads it and the driver and application write it.

    ``blocking_io`` tells the driver that ``persist`` (and the other writes) block on the
    disk: it then calls ``persist`` from a worker thread and touches neither the core nor
    the storage until it returns. The storage itself is never used concurrently.
    """

    @property
    def blocking_io(self) -> bool: ...

    # read by the core (``RaftNode``, ``RaftLog``)
    def initial_state(self) -> tuple[HardState, ConfState]: ...
    def snapshot(self) -> Snapshot: ...
    def snapshot_index(self) -> int: ...
    def first_index(self) -> int: ...
    def last_index(self) -> int: ...
    def term(self, index: int) -> int: ...
    def entries(self, lo: int, hi: int, max_bytes: int = 0) -> list[Entry]: ...

    # written by the driver (each Ready) and by the application (its snapshots)
    def persist(self, rd: Ready) -> None: ...
    def create_snapshot(self, index: int, conf: ConfState, data: bytes) -> Snapshot: ...
    def compact(self, index: int) -> None: ...


class MemoryStorage:
    """Hard state, the latest snapshot, and the log after the compaction point.

    The log is kept from ``_base + 1`` (the compaction point, never past the snapshot), so
    a snapshot may be taken without discarding entries a slow follower still needs.
    """

    __slots__ = ("_base", "_base_term", "_ents", "_hard_state", "_snapshot")

    blocking_io: ClassVar[bool] = False
    """Memory only: the driver persists on the event loop, which keeps tests deterministic."""

    def __init_subclass__(cls, *, blocking_io: bool = True, **kwargs: Any) -> None:
        # A subclass keeps this interface over real I/O (``DurableRaftStorage``), so it is
        # taken to block unless it says otherwise (``class S(MemoryStorage, blocking_io=False)``).
        super().__init_subclass__(**kwargs)
        cls.blocking_io = blocking_io

    def __init__(self) -> None:
        self._hard_state = HardState()
        self._snapshot = Snapshot()
        self._base = 0
        self._base_term = 0
        self._ents: list[Entry] = []

    @classmethod
    def bootstrap(cls, conf: ConfState, data: bytes = b"") -> MemoryStorage:
        """Storage of a founding member of a new cluster whose voters are ``conf``."""
        s = cls()
        meta = SnapshotMeta(index=BOOTSTRAP_INDEX, term=BOOTSTRAP_INDEX, conf=conf)
        s._snapshot = Snapshot(meta, data)
        s._base = s._base_term = BOOTSTRAP_INDEX
        s._hard_state = HardState(term=BOOTSTRAP_INDEX, commit=BOOTSTRAP_INDEX)
        return s

    # --- reads ------------------------------------------------------------------------------

    @property
    def hard_state(self) -> HardState:
        return self._hard_state

    def initial_state(self) -> tuple[HardState, ConfState]:
        return self._hard_state, self._snapshot.metadata.conf

    def snapshot(self) -> Snapshot:
        return self._snapshot

    def snapshot_index(self) -> int:
        return self._snapshot.metadata.index

    def first_index(self) -> int:
        return self._base + 1

    def last_index(self) -> int:
        return self._base + len(self._ents)

    def term(self, index: int) -> int:
        off = index - self._base
        if off == 0:
            return self._base_term
        if off < 0:
            raise Compacted(f"index {index} is compacted (first index {self._base + 1})")
        if off > len(self._ents):
            raise Unavailable(f"index {index} is past the last index {self.last_index()}")
        return self._ents[off - 1].term

    def entries(self, lo: int, hi: int, max_bytes: int = 0) -> list[Entry]:
        """Entries ``[lo, hi)``, cut to ``max_bytes`` of payload (at least one entry)."""
        base = self._base + 1
        if lo < base:
            raise Compacted(f"index {lo} is compacted (first index {base})")
        if hi > base + len(self._ents):
            raise Unavailable(f"index {hi - 1} is past the last index {self.last_index()}")
        return limit_size(self._ents[lo - base : hi - base], max_bytes)

    # --- writes -----------------------------------------------------------------------------

    def set_hard_state(self, hs: HardState) -> None:
        self._hard_state = hs

    def append(self, entries: Sequence[Entry]) -> None:
        """Write consecutive ``entries``, replacing any suffix they overlap."""
        if not entries:
            return
        base = self._base + 1
        first = entries[0].index
        if first > base + len(self._ents):
            raise Unavailable(f"append at {first} leaves a gap after {self.last_index()}")
        if first < base:
            entries = entries[base - first :]
            if not entries:
                return
            first = base
        del self._ents[first - base :]
        self._ents.extend(entries)

    def apply_snapshot(self, snap: Snapshot) -> None:
        """Install a snapshot received from the leader: the log restarts after it."""
        meta = snap.metadata
        if meta.index < self._snapshot.metadata.index:
            raise SnapshotOutOfDate(
                f"snapshot at {meta.index} is older than {self._snapshot.metadata.index}"
            )
        self._snapshot = snap
        self._base = meta.index
        self._base_term = meta.term
        self._ents = []

    def create_snapshot(self, index: int, conf: ConfState, data: bytes) -> Snapshot:
        """Record the application's state as of applied ``index``; ``compact`` may follow."""
        if index <= self._snapshot.metadata.index:
            raise SnapshotOutOfDate(
                f"snapshot at {index} is not newer than {self._snapshot.metadata.index}"
            )
        if index > self._hard_state.commit:
            raise Unavailable(f"snapshot at {index} is past the commit index")
        snap = Snapshot(SnapshotMeta(index=index, term=self.term(index), conf=conf), data)
        self._snapshot = snap
        return snap

    def compact(self, index: int) -> None:
        """Discard entries up to ``index``, which the snapshot must cover."""
        if index <= self._base:
            return
        if index > self._snapshot.metadata.index:
            raise Unavailable(
                f"cannot compact to {index} past the snapshot at {self._snapshot.metadata.index}"
            )
        self._base_term = self.term(index)
        del self._ents[: index - self._base]
        self._base = index

    def persist(self, rd: Ready) -> None:
        """Make a Ready's durable parts durable, in the order the core requires."""
        if rd.snapshot is not None:
            self.apply_snapshot(rd.snapshot)
        if rd.entries:
            self.append(rd.entries)
        if rd.hard_state is not None:
            self._hard_state = rd.hard_state
