"""Segment storage: group commit, recovery of torn tails, corruption, truncation, sealing."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from charter.ledger.errors import LedgerCorruptionError, LedgerIndexError, LedgerStateError
from charter.ledger.framing import HEADER_SIZE
from charter.ledger.segments import SegmentLog, segment_name


def records(n: int, start: int = 0) -> list[bytes]:
    return [f"record {i} ".encode() * (1 + i % 5) for i in range(start, start + n)]


def test_append_read_and_reopen(tmp_path: Path) -> None:
    recs = records(50)
    with SegmentLog(tmp_path) as log:
        assert log.last_index == 0 and len(log) == 0
        assert log.append_batch(recs[:20]) == range(1, 21)
        assert log.append(recs[20]) == 21
        assert log.append_batch(recs[21:]) == range(22, 51)
        assert log.append_batch([]) == range(51, 51)
        assert [log.read(i) for i in range(1, 51)] == recs
        assert log.read_range(10, 30) == recs[9:30]
    with SegmentLog(tmp_path) as log:
        assert log.recovery.entries == 50 and log.recovery.torn_tail is None
        assert (log.first_index, log.last_index) == (1, 50)
        assert list(log) == recs
        with pytest.raises(LedgerIndexError):
            log.read(51)
        with pytest.raises(LedgerIndexError):
            log.read(0)


def test_rollover_by_size_and_reads_across_segments(tmp_path: Path) -> None:
    recs = records(60)
    with SegmentLog(tmp_path, max_segment_bytes=300) as log:
        for i in range(0, 60, 6):
            log.append_batch(recs[i : i + 6])
        names = sorted(p.name for p in tmp_path.glob("*.seg"))
        assert len(names) > 3
        assert names[0] == segment_name(1)
        assert log.read_range(1, 60) == recs
        assert [log.read(i) for i in (1, 17, 33, 60)] == [recs[0], recs[16], recs[32], recs[59]]
    with SegmentLog(tmp_path, max_segment_bytes=300) as log:
        assert log.recovery.segments == len(names)
        assert list(log) == recs


def test_one_fsync_per_batch_plus_directory_syncs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        calls.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    log = SegmentLog(tmp_path, max_segment_bytes=5_000)
    monkeypatch.setattr(os, "fsync", counting_fsync)
    log.append_batch(records(100))  # creates the first segment
    assert calls == ["dir", "file"]
    for size in (1, 10, 100):
        calls.clear()
        log.append_batch(records(size))
        assert calls == ["file"], size
    calls.clear()
    log.append_batch(records(1000))  # the segment is past its size: a new one first
    assert calls == ["dir", "file"]
    log.close()


def test_torn_tail_truncated_at_every_byte_of_the_last_record(tmp_path: Path) -> None:
    src = tmp_path / "src"
    recs = records(8)
    with SegmentLog(src) as log:
        log.append_batch(recs[:7])
        before = (src / segment_name(1)).stat().st_size
        log.append(recs[7])
    full = (src / segment_name(1)).read_bytes()
    assert len(full) == before + HEADER_SIZE + len(recs[7])
    for cut in range(before + 1, len(full)):
        work = tmp_path / f"cut{cut}"
        shutil.copytree(src, work)
        with open(work / segment_name(1), "r+b") as f:
            f.truncate(cut)
        with SegmentLog(work) as log:
            torn = log.recovery.torn_tail
            assert torn is not None, cut
            assert torn.offset == before and torn.dropped_bytes == cut - before
            assert log.last_index == 7
            assert list(log) == recs[:7]
            assert log.append(b"after recovery") == 8
        with SegmentLog(work) as log:
            assert log.recovery.torn_tail is None
            assert log.read(8) == b"after recovery"
        shutil.rmtree(work)


def test_zero_filled_tail_is_recovered(tmp_path: Path) -> None:
    with SegmentLog(tmp_path) as log:
        log.append_batch(records(5))
    with open(tmp_path / segment_name(1), "ab") as f:
        f.write(bytes(4096))
    with SegmentLog(tmp_path) as log:
        assert log.recovery.torn_tail is not None
        assert log.recovery.torn_tail.dropped_bytes == 4096
        assert log.last_index == 5


def _flip(path: Path, offset: int) -> None:
    mode = path.stat().st_mode
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))
    path.chmod(stat.S_IMODE(mode))


def _sealed_log(path: Path) -> None:
    with SegmentLog(path, max_segment_bytes=200) as log:
        for i in range(0, 40, 4):
            log.append_batch(records(4, i))
        log.mark_committed(30)


def test_flipped_byte_in_committed_segment_stops_open(tmp_path: Path) -> None:
    _sealed_log(tmp_path)
    sealed = sorted(tmp_path.glob("*.committed"))
    assert sealed
    victim = sealed[0]
    _flip(victim, HEADER_SIZE + 3)
    with pytest.raises(LedgerCorruptionError) as info:
        SegmentLog(tmp_path, max_segment_bytes=200)
    assert info.value.code == "ledger.corrupt"
    assert info.value.path == victim and info.value.offset == 0
    assert str(victim) in info.value.message


def test_truncated_committed_segment_is_corruption_not_a_tail(tmp_path: Path) -> None:
    _sealed_log(tmp_path)
    victim = sorted(tmp_path.glob("*.committed"))[-1]
    victim.chmod(0o644)
    with open(victim, "r+b") as f:
        f.truncate(victim.stat().st_size - 3)
    with pytest.raises(LedgerCorruptionError):
        SegmentLog(tmp_path, max_segment_bytes=200)


def test_damage_before_the_end_of_the_last_segment_stops_open(tmp_path: Path) -> None:
    with SegmentLog(tmp_path) as log:
        log.append_batch(records(10))
    seg = tmp_path / segment_name(1)
    _flip(seg, HEADER_SIZE + 2)
    with pytest.raises(LedgerCorruptionError) as info:
        SegmentLog(tmp_path)
    assert info.value.offset == 0 and "CRC" in info.value.reason


def test_damaged_complete_last_record_is_not_silently_dropped(tmp_path: Path) -> None:
    with SegmentLog(tmp_path) as log:
        log.append_batch(records(10))
    seg = tmp_path / segment_name(1)
    _flip(seg, seg.stat().st_size - 1)
    with pytest.raises(LedgerCorruptionError):
        SegmentLog(tmp_path)


def test_read_rechecks_the_crc(tmp_path: Path) -> None:
    with SegmentLog(tmp_path) as log:
        log.append_batch(records(3))
        _flip(tmp_path / segment_name(1), HEADER_SIZE)
        with pytest.raises(LedgerCorruptionError):
            log.read(1)
        with pytest.raises(LedgerCorruptionError):
            log.read_range(1, 3)
        assert log.read(2) == records(3)[1]


def test_gap_between_segments_is_corruption(tmp_path: Path) -> None:
    _sealed_log(tmp_path)
    middle = sorted(tmp_path.glob("*.committed"))[1]
    middle.unlink()
    with pytest.raises(LedgerCorruptionError) as info:
        SegmentLog(tmp_path, max_segment_bytes=200)
    assert "expected" in info.value.reason


def test_truncate_after_drops_an_uncommitted_suffix(tmp_path: Path) -> None:
    recs = records(40)
    with SegmentLog(tmp_path, max_segment_bytes=200) as log:
        for i in range(0, 40, 4):
            log.append_batch(recs[i : i + 4])
        log.mark_committed(10)
        log.truncate_after(25)
        assert log.last_index == 25
        assert log.read_range(1, 25) == recs[:25]
        assert log.append_batch([b"x", b"y"]) == range(26, 28)
        with pytest.raises(LedgerStateError):
            log.truncate_after(9)
        log.truncate_after(10)
        assert log.last_index == 10
    with SegmentLog(tmp_path, max_segment_bytes=200) as log:
        assert log.last_index == 10
        assert list(log) == recs[:10]


def test_truncate_to_segment_boundary_and_inside_first_batch(tmp_path: Path) -> None:
    with SegmentLog(tmp_path) as log:
        log.append_batch(records(5))
        log.truncate_after(0)
        assert log.last_index == 0 and len(log) == 0
        assert log.append(b"fresh") == 1
    with SegmentLog(tmp_path) as log:
        assert list(log) == [b"fresh"]


def test_mark_committed_seals_segments_read_only(tmp_path: Path) -> None:
    with SegmentLog(tmp_path, max_segment_bytes=200) as log:
        for i in range(0, 40, 4):
            log.append_batch(records(4, i))
        segments = log.segment_paths
        log.mark_committed(40)
        sealed = sorted(tmp_path.glob("*.committed"))
        assert len(sealed) == len(segments) - 1  # the active segment stays open
        for path in sealed:
            assert stat.S_IMODE(path.stat().st_mode) & 0o222 == 0
        assert log.segment_paths[-1].suffix == ".seg"
        expected_commit = int(log.segment_paths[-1].stem) - 1
        with pytest.raises(LedgerIndexError):
            log.mark_committed(41)
        with pytest.raises(LedgerStateError):
            log.truncate_after(39)
    with SegmentLog(tmp_path, max_segment_bytes=200) as log:
        assert log.commit_index == expected_commit
        assert log.recovery.committed_segments == len(sealed)
        assert list(log) == [r for i in range(0, 40, 4) for r in records(4, i)]


def test_rollover_seals_a_fully_committed_previous_segment(tmp_path: Path) -> None:
    with SegmentLog(tmp_path, max_segment_bytes=100) as log:
        log.append_batch(records(10))
        log.mark_committed(10)
        assert not list(tmp_path.glob("*.committed"))
        log.append(b"next")
        assert [p.name for p in tmp_path.glob("*.committed")] == [segment_name(1, committed=True)]


def test_compaction_deletes_whole_committed_segments(tmp_path: Path) -> None:
    recs = [r for i in range(0, 40, 4) for r in records(4, i)]
    with SegmentLog(tmp_path, max_segment_bytes=200) as log:
        for i in range(0, 40, 4):
            log.append_batch(recs[i : i + 4])
        with pytest.raises(LedgerStateError):
            log.compact(5)
        log.mark_committed(30)
        deleted = log.compact(20)
        assert deleted >= 1
        first = log.first_index
        assert 1 < first <= 21
        assert log.read_range(first, 40) == recs[first - 1 :]
        with pytest.raises(LedgerIndexError):
            log.read(first - 1)
    with SegmentLog(tmp_path, max_segment_bytes=200) as log:
        assert log.first_index == first and log.last_index == 40
        assert list(log) == recs[first - 1 :]


def test_truncating_everything_after_compaction_keeps_where_the_log_starts(
    tmp_path: Path,
) -> None:
    # Found by the model test: compact to 5, then drop the one entry above it; the log is
    # empty, and a restart must still know that the next entry is 6, not 1.
    with SegmentLog(tmp_path, max_segment_bytes=60) as log:
        log.append_batch(records(5))
        log.mark_committed(5)
        log.append_batch(records(1, 5))
        assert log.compact(5) >= 1
        first = log.first_index
        assert first == 6
        log.truncate_after(5)
        assert (log.first_index, log.last_index) == (6, 5)
    with SegmentLog(tmp_path, max_segment_bytes=60) as log:
        assert (log.first_index, log.last_index) == (6, 5)
        log.mark_committed(5)
        assert log.append_batch(records(1, 9)) == range(6, 7)
    with SegmentLog(tmp_path, max_segment_bytes=60) as log:
        assert list(log) == records(1, 9)


def test_closed_log_refuses_use(tmp_path: Path) -> None:
    log = SegmentLog(tmp_path)
    log.close()
    with pytest.raises(LedgerStateError):
        log.append(b"x")


def test_a_second_open_of_the_same_directory_is_refused(tmp_path: Path) -> None:
    with SegmentLog(tmp_path) as log:
        log.append(b"x")
        with pytest.raises(LedgerStateError) as info:
            SegmentLog(tmp_path)
        assert "in use" in info.value.message
    with SegmentLog(tmp_path) as log:
        assert log.read(1) == b"x"


def test_crash_between_seal_chmod_and_rename(tmp_path: Path) -> None:
    with SegmentLog(tmp_path, max_segment_bytes=100) as log:
        log.append_batch(records(10))
        log.append_batch(records(10, 10))
    first = tmp_path / segment_name(1)
    first.chmod(0o444)  # sealing had begun, the rename had not happened
    with SegmentLog(tmp_path, max_segment_bytes=100) as log:
        assert log.commit_index == 0
        log.truncate_after(5)  # still uncommitted, so still writable
        assert log.append(b"new") == 6
        log.mark_committed(6)
        assert log.read_range(1, 6) == [*records(5), b"new"]


def test_failed_fsync_poisons_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = SegmentLog(tmp_path)
    log.append(b"durable")

    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(LedgerStateError):
        log.append(b"maybe lost")
    monkeypatch.undo()
    with pytest.raises(LedgerStateError):
        log.read(1)
    log.close()
    with SegmentLog(tmp_path) as log:
        assert log.read(1) == b"durable"


def test_failed_write_leaves_no_partial_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = SegmentLog(tmp_path)
    log.append(b"first")
    real_pwrite = os.pwrite

    def short_then_fail(fd: int, data: bytes | memoryview, offset: int) -> int:
        real_pwrite(fd, bytes(data[:5]), offset)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "pwrite", short_then_fail)
    with pytest.raises(OSError):
        log.append_batch([b"x" * 100, b"y" * 100])
    monkeypatch.undo()
    assert log.append(b"second") == 2
    log.close()
    with SegmentLog(tmp_path) as log:
        assert log.recovery.torn_tail is None
        assert list(log) == [b"first", b"second"]
