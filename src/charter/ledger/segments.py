"""Durable, append-only segment files holding the ledger's entries.

Entries live in files named after their first index, ``00000000000000000001.seg``.
Each entry is one frame (see ``framing``). ``append_batch`` writes a whole batch
with one write call and one ``fsync`` (group commit); creating, renaming or
deleting a segment also syncs the directory, so a crash never loses a file that
an earlier sync promised.

Committed entries are immutable. Once the commit index passes the end of a
segment that is no longer the active one, the file is made read-only
(mode 0444) and renamed ``.seg`` -> ``.committed``. ``truncate_after`` (Raft
overwriting an uncommitted suffix) refuses to cut below the commit index, and
``compact`` deletes only whole committed segments below a snapshot index.

On open every frame of every segment is checked. A torn tail (an incomplete
last frame or a zero-filled end of the last, still open, segment: what a crash
in the middle of an append leaves) is truncated and reported in
``SegmentLog.recovery``. Any other damage, in a committed segment or before
the end of the last one, raises ``LedgerCorruptionError`` naming the file and
byte offset: the node stops rather than skip an entry. A ``LOCK`` file held with
``flock`` keeps a second process from opening the same directory.

All file I/O here is blocking and the API is synchronous: the node calls it
from a worker thread (``asyncio.to_thread``), never from the event loop. One
``SegmentLog`` owns its directory; it is not safe for concurrent use.
"""

from __future__ import annotations

import bisect
import contextlib
import fcntl
import os
import re
import stat
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from charter.ledger.errors import LedgerCorruptionError, LedgerIndexError, LedgerStateError
from charter.ledger.framing import HEADER_SIZE, Tail, check_frame, encode_frames, scan

OPEN_SUFFIX = ".seg"
COMMITTED_SUFFIX = ".committed"
NAME_DIGITS = 20
DEFAULT_MAX_SEGMENT_BYTES = 64 * 1024 * 1024
LOCK_NAME = "LOCK"
_NAME = re.compile(r"^(\d{20})\.(seg|committed)$")
_READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH


def segment_name(first_index: int, *, committed: bool = False) -> str:
    suffix = COMMITTED_SUFFIX if committed else OPEN_SUFFIX
    return f"{first_index:0{NAME_DIGITS}d}{suffix}"


@dataclass(frozen=True, slots=True)
class TornTail:
    """What recovery cut from the end of the last segment."""

    path: Path
    offset: int
    dropped_bytes: int
    reason: str


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What opening the log found; the node logs it."""

    segments: int
    committed_segments: int
    entries: int
    first_index: int
    last_index: int
    torn_tail: TornTail | None


class _Segment:
    __slots__ = ("committed", "first", "offsets", "path", "rfd", "size", "wfd")

    def __init__(
        self, path: Path, first: int, offsets: array[int], size: int, committed: bool
    ) -> None:
        self.path = path
        self.first = first
        self.offsets = offsets
        self.size = size
        self.committed = committed
        self.rfd = os.open(path, os.O_RDONLY)
        self.wfd = -1

    @property
    def count(self) -> int:
        return len(self.offsets)

    @property
    def last(self) -> int:
        return self.first + len(self.offsets) - 1

    def entry_span(self, i: int) -> tuple[int, int]:
        start = self.offsets[i]
        end = self.offsets[i + 1] if i + 1 < len(self.offsets) else self.size
        return start, end

    def close(self) -> None:
        if self.wfd >= 0:
            os.close(self.wfd)
            self.wfd = -1
        if self.rfd >= 0:
            os.close(self.rfd)
            self.rfd = -1


class SegmentLog:
    """The on-disk log: indices are dense, starting at ``first_index``."""

    def __init__(
        self,
        directory: Path | str,
        *,
        max_segment_bytes: int = DEFAULT_MAX_SEGMENT_BYTES,
        first_index: int = 1,
    ) -> None:
        if max_segment_bytes <= 0:
            raise ValueError("max_segment_bytes must be positive")
        if first_index < 1:
            raise ValueError("first_index must be at least 1")
        self.directory = Path(directory)
        self.max_segment_bytes = max_segment_bytes
        self._segments: list[_Segment] = []
        self._firsts: list[int] = []
        self._next_index = first_index
        self._commit_index = first_index - 1
        self._closed = False
        self._lock_fd = -1
        self._failed: OSError | None = None
        self.recovery = self._open()

    # -- opening and recovery ---------------------------------------------------------

    def _open(self) -> RecoveryReport:
        if not self.directory.is_dir():
            self.directory.mkdir(parents=True)
            _sync_dir(self.directory.parent)
        self._lock_fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            self._lock_fd = -1
            raise LedgerStateError(f"{self.directory} is in use by another ledger") from None
        found: list[tuple[int, bool, Path]] = []
        for entry in os.scandir(self.directory):
            m = _NAME.match(entry.name)
            if m and entry.is_file():
                found.append((int(m.group(1)), m.group(2) == "committed", Path(entry.path)))
        found.sort()
        torn: TornTail | None = None
        try:
            for n, (first, committed, path) in enumerate(found):
                is_last = n == len(found) - 1
                if self._segments and self._segments[-1].committed is False and committed:
                    raise LedgerCorruptionError(
                        path, 0, "committed segment follows an uncommitted one"
                    )
                if self._segments and first != self._segments[-1].last + 1:
                    prev = self._segments[-1]
                    raise LedgerCorruptionError(
                        path, 0, f"segment starts at {first}, expected {prev.last + 1}"
                    )
                data = path.read_bytes()
                result = scan(data)
                size = result.end
                if result.tail is not Tail.CLEAN:
                    if result.tail is Tail.TORN and is_last and not committed:
                        torn = TornTail(path, result.end, len(data) - result.end, result.reason)
                        with open(path, "r+b") as f:
                            f.truncate(result.end)
                            f.flush()
                            os.fsync(f.fileno())
                    else:
                        raise LedgerCorruptionError(path, result.end, result.reason)
                self._add_segment(_Segment(path, first, result.offsets, size, committed))
        except BaseException:
            self._close_all()
            raise
        if self._segments:
            last = self._segments[-1]
            self._next_index = last.last + 1
            committed_segments = [s for s in self._segments if s.committed]
            if committed_segments:
                self._commit_index = committed_segments[-1].last
            else:
                self._commit_index = self._segments[0].first - 1
            if not last.committed:
                self._open_for_write(last)
        return RecoveryReport(
            segments=len(self._segments),
            committed_segments=sum(1 for s in self._segments if s.committed),
            entries=sum(s.count for s in self._segments),
            first_index=self.first_index,
            last_index=self.last_index,
            torn_tail=torn,
        )

    def _add_segment(self, seg: _Segment) -> None:
        self._segments.append(seg)
        self._firsts.append(seg.first)

    def _open_for_write(self, seg: _Segment) -> None:
        if seg.wfd < 0:
            if not seg.path.stat().st_mode & stat.S_IWUSR:
                # A crash between sealing's chmod and its rename leaves an open
                # segment read-only; it is not committed yet, so it may be written.
                os.chmod(seg.path, 0o644)
            seg.wfd = os.open(seg.path, os.O_WRONLY)

    # -- properties -------------------------------------------------------------------

    @property
    def first_index(self) -> int:
        """Index of the oldest entry held (after compaction, above 1)."""
        return self._segments[0].first if self._segments else self._next_index

    @property
    def last_index(self) -> int:
        """Index of the newest entry; ``first_index - 1`` when empty."""
        return self._next_index - 1

    @property
    def commit_index(self) -> int:
        return self._commit_index

    @property
    def segment_paths(self) -> list[Path]:
        return [s.path for s in self._segments]

    def __len__(self) -> int:
        return self.last_index - self.first_index + 1

    # -- appending --------------------------------------------------------------------

    def append(self, record: bytes) -> int:
        return self.append_batch([record])[0]

    def append_batch(self, records: Sequence[bytes]) -> range:
        """Write all records with one write and one fsync; returns their indices."""
        self._check_open()
        if not records:
            return range(self._next_index, self._next_index)
        try:
            buf = encode_frames(list(records))
        except ValueError as exc:
            raise LedgerStateError(str(exc)) from None
        seg = self._active_for_append()
        try:
            _write_all(seg.wfd, buf, seg.size)
        except OSError:
            # Leave no partial batch behind for the next write to land before.
            with contextlib.suppress(OSError):
                os.ftruncate(seg.wfd, seg.size)
            raise
        try:
            os.fsync(seg.wfd)
        except OSError as exc:
            # After a failed fsync the kernel may have dropped the dirty pages; what
            # is on disk is unknown, so this log refuses further use (reopen to recover).
            self._failed = exc
            raise LedgerStateError(f"fsync of {seg.path} failed: {exc}") from exc
        pos = seg.size
        offsets = seg.offsets
        for record in records:
            offsets.append(pos)
            pos += HEADER_SIZE + len(record)
        seg.size = pos
        first = self._next_index
        self._next_index += len(records)
        return range(first, self._next_index)

    def _active_for_append(self) -> _Segment:
        if self._segments:
            last = self._segments[-1]
            if not last.committed and (last.size < self.max_segment_bytes or last.count == 0):
                return last
        seg = self._create_segment(self._next_index)
        if len(self._segments) >= 2:
            previous = self._segments[-2]
            if not previous.committed and previous.last <= self._commit_index:
                self._seal(previous)
        return seg

    def _create_segment(self, first: int) -> _Segment:
        path = self.directory / segment_name(first)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.close(fd)
        self._sync_directory()
        seg = _Segment(path, first, array("Q"), 0, committed=False)
        self._open_for_write(seg)
        if self._segments and self._segments[-1].wfd >= 0:
            os.close(self._segments[-1].wfd)
            self._segments[-1].wfd = -1
        self._add_segment(seg)
        return seg

    # -- reading ----------------------------------------------------------------------

    def read(self, index: int) -> bytes:
        """The record at ``index``, its CRC checked again on the way out."""
        self._check_open()
        seg, i = self._locate(index)
        start, end = seg.entry_span(i)
        frame = os.pread(seg.rfd, end - start, start)
        try:
            return check_frame(frame)
        except ValueError as exc:
            raise LedgerCorruptionError(seg.path, start, str(exc)) from None

    def read_range(self, start: int, stop: int) -> list[bytes]:
        """Records ``start`` to ``stop`` inclusive, one read per segment touched."""
        self._check_open()
        if stop < start:
            return []
        self._locate(start)
        self._locate(stop)
        out: list[bytes] = []
        index = start
        while index <= stop:
            seg, i = self._locate(index)
            j = min(stop, seg.last) - seg.first
            lo = seg.offsets[i]
            hi = seg.entry_span(j)[1]
            chunk = memoryview(os.pread(seg.rfd, hi - lo, lo))
            for k in range(i, j + 1):
                a, b = seg.entry_span(k)
                try:
                    out.append(check_frame(chunk[a - lo : b - lo]))
                except ValueError as exc:
                    raise LedgerCorruptionError(seg.path, a, str(exc)) from None
            index = seg.first + j + 1
        return out

    def __iter__(self) -> Iterator[bytes]:
        for seg in list(self._segments):
            if seg.count:
                yield from self.read_range(seg.first, seg.last)

    def _locate(self, index: int) -> tuple[_Segment, int]:
        if index < self.first_index or index > self.last_index:
            raise LedgerIndexError(
                f"index {index} outside the log ({self.first_index}..{self.last_index})"
            )
        n = bisect.bisect_right(self._firsts, index) - 1
        seg = self._segments[n]
        return seg, index - seg.first

    # -- truncation, commit, compaction ----------------------------------------------

    def truncate_after(self, index: int) -> None:
        """Drop every entry above ``index`` (an uncommitted suffix Raft overwrites)."""
        self._check_open()
        if index >= self.last_index:
            return
        if index < self._commit_index:
            raise LedgerStateError(
                f"cannot truncate after {index}: entries up to {self._commit_index} are committed"
            )
        removed = False
        # The oldest segment stays, emptied if need be: its name is what tells a restart
        # where the log starts once compaction has removed everything before it.
        while len(self._segments) > 1 and self._segments[-1].first > index:
            seg = self._segments.pop()
            self._firsts.pop()
            seg.close()
            os.unlink(seg.path)
            removed = True
        # The unlinks must be durable before the kept segment shrinks: otherwise a power
        # cut could keep the shorter segment yet bring a removed later one back, a gap.
        if removed:
            self._sync_directory()
        if self._segments:
            seg = self._segments[-1]
            keep = index - seg.first + 1
            if keep < seg.count:
                new_size = seg.offsets[keep]
                del seg.offsets[keep:]
                self._open_for_write(seg)
                os.ftruncate(seg.wfd, new_size)
                os.fsync(seg.wfd)
                seg.size = new_size
            elif not seg.committed:
                self._open_for_write(seg)
        self._next_index = index + 1

    def mark_committed(self, index: int) -> None:
        """Record the commit index; seal every non-active segment wholly at or below it."""
        self._check_open()
        if index > self.last_index:
            raise LedgerIndexError(f"commit index {index} beyond last index {self.last_index}")
        if index <= self._commit_index:
            return
        self._commit_index = index
        for seg in self._segments[:-1]:
            if not seg.committed and seg.last <= index:
                self._seal(seg)

    def seal_due(self, index: int) -> bool:
        """Whether ``mark_committed(index)`` would seal a segment (rename it: file I/O)."""
        if index <= self._commit_index:
            return False
        return any(not seg.committed and seg.last <= index for seg in self._segments[:-1])

    def _seal(self, seg: _Segment) -> None:
        if seg.wfd >= 0:
            os.close(seg.wfd)
            seg.wfd = -1
        target = seg.path.with_name(segment_name(seg.first, committed=True))
        os.chmod(seg.path, _READ_ONLY)
        os.rename(seg.path, target)
        self._sync_directory()
        seg.path = target
        seg.committed = True

    def compact(self, snapshot_index: int) -> int:
        """Delete whole committed segments whose entries are all at or below ``snapshot_index``.

        Returns the number of segments deleted. The newest segment is always kept so
        that the next index survives a restart.
        """
        self._check_open()
        if snapshot_index > self._commit_index:
            raise LedgerStateError(
                f"snapshot index {snapshot_index} is above the commit index {self._commit_index}"
            )
        doomed = 0
        while (
            doomed < len(self._segments) - 1
            and self._segments[doomed].committed
            and self._segments[doomed].last <= snapshot_index
        ):
            doomed += 1
        for seg in self._segments[:doomed]:
            seg.close()
            os.unlink(seg.path)
        if doomed:
            del self._segments[:doomed]
            del self._firsts[:doomed]
            self._sync_directory()
        return doomed

    # -- lifecycle --------------------------------------------------------------------

    def close(self) -> None:
        if not self._closed:
            self._close_all()
            self._closed = True

    def _close_all(self) -> None:
        for seg in self._segments:
            seg.close()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = -1

    def __enter__(self) -> SegmentLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise LedgerStateError("the segment log is closed")
        if self._failed is not None:
            raise LedgerStateError(
                f"the segment log failed to sync and must be reopened: {self._failed}"
            )

    def _sync_directory(self) -> None:
        _sync_dir(self.directory)


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, buf: bytes, offset: int) -> None:
    view = memoryview(buf)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written
