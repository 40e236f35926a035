"""Raft's durable state on disk: the log in segment files, hard state and snapshot beside it.

``DurableRaftStorage`` offers the interface of ``MemoryStorage`` (it is a subclass, because
the core names that class), so a ``RaftNode`` runs on it unchanged and a restarted node is
rebuilt from what it finds on disk. A storage directory holds::

    LOCK             flock'ed while open: one process per directory
    state            hard state, compaction point, current snapshot and log (hardstate.py)
    snapshot.<n>     the current snapshot (absent while the snapshot is empty)
    log.<n>/         a SegmentLog; Raft index i is segment record i

Each log record is ``(term, index, kind)`` packed big-endian (17 bytes) then the entry's
data. The index is stored so a record read from the wrong place is caught as corruption.

``persist(ready)`` makes a Ready durable in this order, each step durable before the next:

1. the snapshot: its file is written and fsynced, an empty log directory is created for the
   entries after it, and one atomic replacement of the state file switches to both (the old
   log and snapshot are then deleted). A crash before that rename leaves the old state
   whole; orphans are removed on open.
2. the entries: all entries of the Ready are appended with one write and one fsync (group
   commit). Overwriting a conflicting suffix first truncates it (one more fsync, only on
   a conflict); truncation never reaches the commit index, so a crash after it leaves the
   old hard state over a log that lost only uncommitted entries following a conflict,
   which the node was discarding anyway.
3. the hard state, only if its term or vote changed: one atomic replacement of the state
   file (temp file, fsync, rename, fsync of the directory). It comes last because its
   commit index must never name an entry that is not durable. Entries durable under an
   older term are harmless: a majority already holds the newer term, so the node cannot
   lead a term at or below it.

The commit index is volatile state in Raft (it is not among what figure 2 of the paper
makes durable): a node that restarts with an older one learns the current one from the
leader, and a new leader commits its predecessors' entries with the first entry of its
own term. So a change of the commit index alone costs no I/O: it is kept in memory and
written with the next state file written for another reason (a term or vote, a snapshot,
a compaction), always at most the last durable entry. What opening the directory finds is
therefore a lower bound of the commit index the node had reached, never above it. The
driver catches the file up (``sync``) when it has no Ready to handle (at most every
``sync_interval``) and when it stops, so a node at rest, or stopped cleanly, has its commit
index on disk and refuses to start on a log that lost a record below it.
``needs_io(ready)`` tells the driver whether a Ready touches the disk at all.

``create_snapshot`` and ``compact`` are made durable the same way: a new snapshot file,
or the new compaction point, takes effect with one atomic replacement of the state file;
segments below the compaction point are deleted only after it.

So a crash at any point leaves the state after some prefix of these steps, and everything a
completed ``persist`` made durable survives. Opening the directory truncates a torn log
tail (``SegmentLog``), raises ``LedgerCorruptionError`` for any other damage or for a state
file whose commit index or compaction point the log does not reach, and removes files no
state file references.

Every term after the compaction point is held in memory (8 bytes per entry) and so are the
most recent entries (``cache_entries`` / ``cache_bytes``), so ``term`` never reads the disk
and ``entries`` reads it only for a follower far behind.

File I/O is blocking: the node calls ``persist`` (and ``create_snapshot``, ``compact``)
from a worker thread (``asyncio.to_thread``), never from the event loop, and touches
neither the core nor this storage until it returns; the storage is not safe for concurrent
use. After an I/O error the storage refuses further writes: close it and reopen.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import struct
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from charter.consensus.errors import Compacted, SnapshotOutOfDate, Unavailable
from charter.consensus.storage import BOOTSTRAP_INDEX, MemoryStorage, limit_size
from charter.consensus.types import (
    ConfState,
    Entry,
    EntryKind,
    HardState,
    Ready,
    Snapshot,
    SnapshotMeta,
)
from charter.ledger.errors import LedgerCorruptionError, LedgerStateError
from charter.ledger.hardstate import (
    STATE_NAME,
    STATE_TMP_NAME,
    StateRecord,
    decode_snapshot,
    decode_state,
    encode_snapshot,
    encode_state,
    replace_atomically,
    write_synced,
)
from charter.ledger.segments import (
    DEFAULT_MAX_SEGMENT_BYTES,
    NAME_DIGITS,
    RecoveryReport,
    SegmentLog,
)

LOCK_NAME = "LOCK"
DEFAULT_CACHE_ENTRIES = 4096
DEFAULT_CACHE_BYTES = 16 * 1024 * 1024
_READ_CHUNK = 1024
_RECORD = struct.Struct(">QQB")
_KINDS = {int(k): k for k in EntryKind}
_SNAPSHOT_FILE = re.compile(r"^snapshot\.(\d+)$")
_LOG_DIR = re.compile(r"^log\.(\d+)$")


def snapshot_name(seq: int) -> str:
    return f"snapshot.{seq}"


def log_dir_name(seq: int) -> str:
    return f"log.{seq}"


def encode_entry(e: Entry) -> bytes:
    return _RECORD.pack(e.term, e.index, e.kind) + e.data


def decode_entry(payload: bytes, index: int, where: Path) -> Entry:
    if len(payload) < _RECORD.size:
        raise LedgerCorruptionError(where, 0, f"entry {index}: record of {len(payload)} bytes")
    term, stored, kind = _RECORD.unpack_from(payload)
    if stored != index:
        raise LedgerCorruptionError(where, 0, f"record {index} holds entry {stored}")
    k = _KINDS.get(kind)
    if k is None:
        raise LedgerCorruptionError(where, 0, f"entry {index}: unknown kind {kind}")
    return Entry(term, index, k, payload[_RECORD.size :])


@dataclass(frozen=True, slots=True)
class StorageRecovery:
    """What opening the directory found and did; the node logs it."""

    created: bool
    log: RecoveryReport
    removed: tuple[str, ...]


class DurableRaftStorage(MemoryStorage):
    """``MemoryStorage``'s interface on disk; see the module docstring for the layout.

    ``bootstrap`` (the founding voters of a new cluster) is used only when the directory
    holds no state yet; an existing directory is always resumed as found.
    """

    __slots__ = (
        "_base_index",
        "_base_log_term",
        "_cache",
        "_cache_bytes",
        "_cache_first",
        "_cache_limit_bytes",
        "_cache_limit_entries",
        "_closed",
        "_dir_fd",
        "_directory",
        "_durable_hs",
        "_failed",
        "_hs",
        "_lock_fd",
        "_log",
        "_log_seq",
        "_max_segment_bytes",
        "_recovery",
        "_snap",
        "_snap_seq",
        "_terms",
    )

    def __init__(
        self,
        directory: Path | str,
        *,
        bootstrap: ConfState | None = None,
        bootstrap_data: bytes = b"",
        max_segment_bytes: int = DEFAULT_MAX_SEGMENT_BYTES,
        cache_entries: int = DEFAULT_CACHE_ENTRIES,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        super().__init__()
        if cache_entries < 0 or cache_bytes < 0:
            raise ValueError("cache limits must not be negative")
        self._directory = Path(directory)
        self._max_segment_bytes = max_segment_bytes
        self._cache_limit_entries = cache_entries
        self._cache_limit_bytes = cache_bytes
        self._closed = False
        self._failed: BaseException | None = None
        self._hs = HardState()
        self._durable_hs = self._hs
        """What the state file on disk holds (``_hs`` may have a newer commit index)."""
        self._snap = Snapshot()
        self._snap_seq = 0
        self._log_seq = 0
        self._base_index = 0
        self._base_log_term = 0
        self._terms: array[int] = array("Q")
        self._cache: list[Entry] = []
        self._cache_first = 1
        self._cache_bytes = 0
        self._lock_fd = -1
        self._dir_fd = -1
        try:
            self._recovery = self._open(bootstrap, bootstrap_data)
        except BaseException:
            self._release()
            raise

    @classmethod
    def bootstrap(cls, conf: ConfState, data: bytes = b"") -> DurableRaftStorage:
        raise LedgerStateError(
            "durable storage needs a directory: DurableRaftStorage(directory, bootstrap=conf)"
        )

    # --- opening and recovery ----------------------------------------------------------------

    def _open(self, bootstrap: ConfState | None, bootstrap_data: bytes) -> StorageRecovery:
        d = self._directory
        if not d.is_dir():
            d.mkdir(parents=True)
            _fsync_dir(d.parent)
        self._lock_fd = os.open(d / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LedgerStateError(f"{d} is in use by another Raft storage") from None
        self._dir_fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(STATE_TMP_NAME, dir_fd=self._dir_fd)
        created = not (d / STATE_NAME).exists()
        removed: list[str] = []
        if created:
            removed = self._remove_init_leftovers()
            rec = self._initialize(bootstrap, bootstrap_data)
        else:
            rec = decode_state((d / STATE_NAME).read_bytes(), d / STATE_NAME)
        self._hs = self._durable_hs = rec.hard_state
        self._base_index = rec.base
        self._base_log_term = rec.base_term
        self._snap_seq = rec.snapshot_seq
        self._log_seq = rec.log_seq
        if rec.snapshot_seq:
            path = d / snapshot_name(rec.snapshot_seq)
            try:
                self._snap = decode_snapshot(path.read_bytes(), path)
            except FileNotFoundError:
                raise LedgerCorruptionError(path, 0, "the state names a missing snapshot") from None
        log_path = d / log_dir_name(rec.log_seq)
        if not log_path.is_dir():
            raise LedgerCorruptionError(log_path, 0, "the state names a missing log")
        self._log = SegmentLog(
            log_path, max_segment_bytes=self._max_segment_bytes, first_index=rec.base + 1
        )
        removed += self._remove_orphans()
        self._load_log()
        return StorageRecovery(created, self._log.recovery, tuple(removed))

    def _initialize(self, bootstrap: ConfState | None, data: bytes) -> StateRecord:
        if bootstrap is None:
            rec = StateRecord(HardState(), 0, 0, 0, 1)
        else:
            meta = SnapshotMeta(index=BOOTSTRAP_INDEX, term=BOOTSTRAP_INDEX, conf=bootstrap)
            write_synced(self._dir_fd, snapshot_name(1), encode_snapshot(Snapshot(meta, data)))
            hs = HardState(term=BOOTSTRAP_INDEX, commit=BOOTSTRAP_INDEX)
            rec = StateRecord(hs, BOOTSTRAP_INDEX, BOOTSTRAP_INDEX, 1, 2)
        SegmentLog(self._directory / log_dir_name(rec.log_seq), first_index=rec.base + 1).close()
        replace_atomically(self._dir_fd, STATE_NAME, STATE_TMP_NAME, encode_state(rec))
        return rec

    def _remove_init_leftovers(self) -> list[str]:
        """Files of an initialisation that crashed before its state file; never real entries."""
        names = self._our_names()
        for name in names:
            if _LOG_DIR.match(name):
                for seg in (self._directory / name).iterdir():
                    if seg.name != LOCK_NAME and seg.stat().st_size > 0:
                        raise LedgerCorruptionError(seg, 0, "log entries without a state file")
        self._remove(names)
        return names

    def _remove_orphans(self) -> list[str]:
        keep = {log_dir_name(self._log_seq), snapshot_name(self._snap_seq)}
        names = [n for n in self._our_names() if n not in keep]
        self._remove(names)
        return names

    def _our_names(self) -> list[str]:
        return sorted(
            e.name
            for e in os.scandir(self._directory)
            if _SNAPSHOT_FILE.match(e.name) or _LOG_DIR.match(e.name)
        )

    def _remove(self, names: Sequence[str]) -> None:
        if not names:
            return
        for name in names:
            path = self._directory / name
            if path.is_dir():
                for child in path.iterdir():
                    child.unlink()
                path.rmdir()
            else:
                path.unlink()
        os.fsync(self._dir_fd)

    def _load_log(self) -> None:
        log = self._log
        base = self._base_index
        if log.first_index > base + 1:
            raise LedgerCorruptionError(
                log.directory, 0, f"log starts at {log.first_index}, after compaction point {base}"
            )
        last = log.last_index
        if last < base or last < self._hs.commit:
            raise LedgerCorruptionError(
                log.directory,
                0,
                f"log ends at {last}, before commit {self._hs.commit} or compaction point {base}",
            )
        if self._snap.metadata.index < base:
            raise LedgerCorruptionError(
                log.directory, 0, f"compaction point {base} is past the snapshot"
            )
        terms = self._terms
        keep_from = last + 1 - self._cache_limit_entries
        cache: list[Entry] = []
        index = base + 1
        while index <= last:
            stop = min(last, index + _READ_CHUNK - 1)
            for payload in log.read_range(index, stop):
                e = decode_entry(payload, index, log.directory)
                terms.append(e.term)
                if index >= keep_from:
                    cache.append(e)
                index += 1
        self._cache = cache
        self._cache_first = last + 1 - len(cache)
        self._cache_bytes = sum(len(e.data) for e in cache)
        self._trim_cache()
        log.mark_committed(self._hs.commit)

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def directory(self) -> Path:
        return self._directory

    @property
    def recovery(self) -> StorageRecovery:
        return self._recovery

    def close(self) -> None:
        """Release the files. Nothing is written: closing is as safe as crashing."""
        if not self._closed:
            self._closed = True
            self._release()

    def __del__(self) -> None:
        # A storage dropped without close (a crashed node's) gives back its files and locks.
        with contextlib.suppress(Exception):
            self.close()

    def _release(self) -> None:
        log = getattr(self, "_log", None)
        if log is not None:
            log.close()
        for attr in ("_dir_fd", "_lock_fd"):
            fd = getattr(self, attr)
            if fd >= 0:
                os.close(fd)
                setattr(self, attr, -1)

    def __enter__(self) -> DurableRaftStorage:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _check_writable(self) -> None:
        if self._closed:
            raise LedgerStateError("the Raft storage is closed")
        if self._failed is not None:
            raise LedgerStateError(
                f"the Raft storage failed a write and must be reopened: {self._failed!r}"
            )

    # --- reads -------------------------------------------------------------------------------

    @property
    def hard_state(self) -> HardState:
        return self._hs

    def initial_state(self) -> tuple[HardState, ConfState]:
        return self._hs, self._snap.metadata.conf

    def snapshot(self) -> Snapshot:
        return self._snap

    def snapshot_index(self) -> int:
        return self._snap.metadata.index

    def first_index(self) -> int:
        return self._base_index + 1

    def last_index(self) -> int:
        return self._base_index + len(self._terms)

    def term(self, index: int) -> int:
        off = index - self._base_index
        if off == 0:
            return self._base_log_term
        if off < 0:
            raise Compacted(f"index {index} is compacted (first index {self._base_index + 1})")
        if off > len(self._terms):
            raise Unavailable(f"index {index} is past the last index {self.last_index()}")
        return self._terms[off - 1]

    def entries(self, lo: int, hi: int, max_bytes: int = 0) -> list[Entry]:
        """Entries ``[lo, hi)``, cut to ``max_bytes`` of payload (at least one entry)."""
        first = self._base_index + 1
        if lo < first:
            raise Compacted(f"index {lo} is compacted (first index {first})")
        if hi > self.last_index() + 1:
            raise Unavailable(f"index {hi - 1} is past the last index {self.last_index()}")
        if lo >= hi:
            return []
        cf = self._cache_first
        if lo >= cf:
            return limit_size(self._cache[lo - cf : hi - cf], max_bytes)
        out: list[Entry] = []
        total = 0
        index = lo
        log = self._log
        while index < hi:
            if index >= cf:
                batch = self._cache[index - cf : hi - cf]
            else:
                stop = min(hi, cf, index + _READ_CHUNK)
                payloads = log.read_range(index, stop - 1)
                batch = [decode_entry(p, i, log.directory) for i, p in enumerate(payloads, index)]
            for e in batch:
                total += len(e.data)
                if max_bytes > 0 and total > max_bytes and out:
                    return out
                out.append(e)
            index += len(batch)
        return out

    # --- writes ------------------------------------------------------------------------------

    def sync_due(self) -> bool:
        """Whether the commit index in memory is ahead of the state file's."""
        return self._hs.commit > self._durable_hs.commit and not self._closed

    def sync(self) -> None:
        """Write the commit index to the state file (the driver does when it is idle, so
        that a node at rest has its commit durable: damage below it is then refused)."""
        if not self.sync_due():
            return
        self._check_writable()
        with self._guard():
            self._write_state()

    def needs_io(self, rd: Ready) -> bool:
        """Whether persisting ``rd`` writes to the disk (False: ``persist`` is quick and may
        run on the event loop)."""
        if rd.snapshot is not None or rd.entries:
            return True
        hs = rd.hard_state
        if hs is None:
            return False
        durable = self._durable_hs
        if hs.term != durable.term or hs.vote != durable.vote:
            return True
        return self._log.seal_due(hs.commit)

    def persist(self, rd: Ready) -> None:
        """Make a Ready's durable parts durable: snapshot, then entries, then hard state."""
        if rd.snapshot is not None:
            self.apply_snapshot(rd.snapshot)
        if rd.entries:
            self.append(rd.entries)
        if rd.hard_state is not None:
            self.set_hard_state(rd.hard_state)

    def set_hard_state(self, hs: HardState) -> None:
        """Take ``hs``; the state file is replaced (one fsync + the directory's) only if its
        term or vote differs from the durable one: a new commit index alone stays in
        memory until the next state file (see the module notes)."""
        if hs == self._hs:
            return
        self._check_writable()
        if hs.commit > self.last_index():
            raise LedgerStateError(f"commit {hs.commit} is past the last index {self.last_index()}")
        durable = self._durable_hs
        with self._guard():
            if hs.term != durable.term or hs.vote != durable.vote:
                self._write_state(hard_state=hs)
            self._hs = hs
            self._log.mark_committed(hs.commit)

    def append(self, entries: Sequence[Entry]) -> None:
        """Write consecutive ``entries``, replacing any suffix they overlap (one fsync)."""
        if not entries:
            return
        self._check_writable()
        base = self._base_index
        last = self.last_index()
        first = entries[0].index
        if first > last + 1:
            raise Unavailable(f"append at {first} leaves a gap after {last}")
        if first <= base:
            entries = entries[base + 1 - first :]
            if not entries:
                return
            first = base + 1
        records = []
        for i, e in enumerate(entries, first):
            if e.index != i:
                raise LedgerStateError(f"entries are not consecutive: {e.index} where {i} belongs")
            records.append(encode_entry(e))
        if first - 1 < self._log.commit_index:
            raise LedgerStateError(
                f"append at {first} would overwrite entries committed up to "
                f"{self._log.commit_index}"
            )
        with self._guard():
            if first <= last:
                self._truncate_after(first - 1)
                self._drop_after(first - 1)
            self._log.append_batch(records)
        self._terms.extend([e.term for e in entries])
        self._cache.extend(entries)
        self._cache_bytes += sum(len(e.data) for e in entries)
        self._trim_cache()

    def apply_snapshot(self, snap: Snapshot) -> None:
        """Install a snapshot received from the leader: the log restarts after it."""
        meta = snap.metadata
        if meta.index < self._snap.metadata.index:
            raise SnapshotOutOfDate(
                f"snapshot at {meta.index} is older than {self._snap.metadata.index}"
            )
        self._check_writable()
        if meta.index < self._hs.commit:
            raise LedgerStateError(
                f"snapshot at {meta.index} is below the commit index {self._hs.commit}"
            )
        with self._guard():
            snap_seq = self._next_seq()
            write_synced(self._dir_fd, snapshot_name(snap_seq), encode_snapshot(snap))
            os.fsync(self._dir_fd)
            log_seq = snap_seq + 1
            new_log = SegmentLog(
                self._directory / log_dir_name(log_seq),
                max_segment_bytes=self._max_segment_bytes,
                first_index=meta.index + 1,
            )
            try:
                self._write_state(
                    base=meta.index, base_term=meta.term, snapshot_seq=snap_seq, log_seq=log_seq
                )
            except BaseException:
                new_log.close()
                raise
            old_log, old_snap_seq, old_log_seq = self._log, self._snap_seq, self._log_seq
            self._log, self._snap_seq, self._log_seq = new_log, snap_seq, log_seq
            self._snap = snap
            self._base_index = meta.index
            self._base_log_term = meta.term
            self._terms = array("Q")
            self._cache = []
            self._cache_first = meta.index + 1
            self._cache_bytes = 0
            old_log.close()
            self._remove([log_dir_name(old_log_seq)])
            if old_snap_seq:
                self._remove([snapshot_name(old_snap_seq)])

    def create_snapshot(self, index: int, conf: ConfState, data: bytes) -> Snapshot:
        """Record the application's state as of applied ``index``; ``compact`` may follow."""
        if index <= self._snap.metadata.index:
            raise SnapshotOutOfDate(
                f"snapshot at {index} is not newer than {self._snap.metadata.index}"
            )
        if index > self._hs.commit:
            raise Unavailable(f"snapshot at {index} is past the commit index")
        snap = Snapshot(SnapshotMeta(index=index, term=self.term(index), conf=conf), data)
        self._check_writable()
        with self._guard():
            seq = self._next_seq()
            write_synced(self._dir_fd, snapshot_name(seq), encode_snapshot(snap))
            os.fsync(self._dir_fd)
            self._write_state(snapshot_seq=seq)
            old = self._snap_seq
            self._snap_seq = seq
            self._snap = snap
            if old:
                self._remove([snapshot_name(old)])
        return snap

    def compact(self, index: int) -> None:
        """Discard entries up to ``index``, which the snapshot must cover."""
        if index <= self._base_index:
            return
        if index > self._snap.metadata.index:
            raise Unavailable(
                f"cannot compact to {index} past the snapshot at {self._snap.metadata.index}"
            )
        term = self.term(index)
        self._check_writable()
        with self._guard():
            self._write_state(base=index, base_term=term)
            del self._terms[: index - self._base_index]
            self._base_index = index
            self._base_log_term = term
            if self._cache_first <= index:
                drop = min(len(self._cache), index + 1 - self._cache_first)
                self._cache_bytes -= sum(len(e.data) for e in self._cache[:drop])
                del self._cache[:drop]
                self._cache_first = index + 1
            self._log.compact(min(index, self._log.commit_index))

    # --- helpers -----------------------------------------------------------------------------

    def _next_seq(self) -> int:
        return max(self._snap_seq, self._log_seq) + 1

    def _write_state(
        self,
        *,
        hard_state: HardState | None = None,
        base: int | None = None,
        base_term: int | None = None,
        snapshot_seq: int | None = None,
        log_seq: int | None = None,
    ) -> None:
        hs = hard_state if hard_state is not None else self._hs
        rec = StateRecord(
            hs,
            base if base is not None else self._base_index,
            base_term if base_term is not None else self._base_log_term,
            snapshot_seq if snapshot_seq is not None else self._snap_seq,
            log_seq if log_seq is not None else self._log_seq,
        )
        replace_atomically(self._dir_fd, STATE_NAME, STATE_TMP_NAME, encode_state(rec))
        self._durable_hs = hs

    def _truncate_after(self, index: int) -> None:
        """Cut the log after ``index``: whole later segments first, then the last one's tail.

        ``SegmentLog.truncate_after`` shortens the last kept segment (and fsyncs it) before
        it syncs the directory that unlinked the later segments, so a power cut between
        the two could keep the shortened segment and resurrect a later one: a gap that
        opening reports as corruption. Cutting at a segment boundary first (unlinks, then
        the directory sync) and only then inside the segment keeps every crash a prefix.
        """
        log = self._log
        later = [
            first
            for first in (int(p.name[:NAME_DIGITS]) for p in log.segment_paths)
            if first > index
        ]
        if later:
            log.truncate_after(min(later) - 1)
        log.truncate_after(index)

    def _drop_after(self, index: int) -> None:
        """Forget entries above ``index`` in memory, after the log dropped them on disk."""
        del self._terms[index - self._base_index :]
        cf = self._cache_first
        if index + 1 <= cf:
            self._cache = []
            self._cache_first = index + 1
            self._cache_bytes = 0
        else:
            dropped = self._cache[index + 1 - cf :]
            del self._cache[index + 1 - cf :]
            self._cache_bytes -= sum(len(e.data) for e in dropped)

    def _trim_cache(self) -> None:
        cache = self._cache
        over = len(cache) - self._cache_limit_entries
        if over <= 0 and self._cache_bytes <= self._cache_limit_bytes:
            return
        drop = max(over, 0)
        size = self._cache_bytes - sum(len(e.data) for e in cache[:drop])
        while drop < len(cache) and size > self._cache_limit_bytes:
            size -= len(cache[drop].data)
            drop += 1
        del cache[:drop]
        self._cache_bytes = size
        self._cache_first += drop

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """Refuse later writes if this one fails: memory may no longer match the disk."""
        try:
            yield
        except BaseException as exc:
            self._failed = exc
            raise


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = [
    "DurableRaftStorage",
    "StorageRecovery",
    "decode_entry",
    "encode_entry",
]
