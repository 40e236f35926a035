"""fsync counts per persist, recovery of damaged or half-written directories, and refusal
after a failed write."""

from __future__ import annotations

import os
import random
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from charter.consensus.errors import Compacted, SnapshotOutOfDate, Unavailable
from charter.consensus.raft import Config, RaftNode
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
from charter.ledger.hardstate import STATE_NAME
from charter.ledger.raft_storage import DurableRaftStorage

VOTERS = ConfState(voters=frozenset({1, 2, 3}))


class FsyncCounter:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.files = 0
        self.dirs = 0
        real: Callable[[int], None] = os.fsync

        def fsync(fd: int) -> None:
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                self.dirs += 1
            else:
                self.files += 1
            real(fd)

        monkeypatch.setattr(os, "fsync", fsync)

    def take(self) -> tuple[int, int]:
        out = (self.files, self.dirs)
        self.files = self.dirs = 0
        return out


def entries(first: int, n: int, term: int = 2, size: int = 100) -> list[Entry]:
    return [
        Entry(term, i, EntryKind.NORMAL, bytes([i % 256]) * size) for i in range(first, first + n)
    ]


def test_fsyncs_per_persist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with DurableRaftStorage(tmp_path / "r", bootstrap=VOTERS) as s:
        # The first append creates the first segment file: its directory is synced once.
        s.persist(Ready(entries=entries(2, 1), hard_state=HardState(2, 1, 1)))
        counter = FsyncCounter(monkeypatch)
        # Entries and a new commit index: one group commit; the commit index stays in
        # memory (it is volatile in Raft), so the state file is not replaced.
        rd = Ready(entries=entries(3, 256), hard_state=HardState(2, 1, 200))
        assert s.needs_io(rd)
        s.persist(rd)
        assert counter.take() == (1, 0)
        s.persist(Ready(entries=entries(259, 1), hard_state=HardState(2, 1, 259)))
        assert counter.take() == (1, 0)
        # Entries alone: one fsync.
        s.persist(Ready(entries=entries(260, 16)))
        assert counter.take() == (1, 0)
        # An unchanged hard state is not written again, nor is a new commit index alone.
        s.persist(Ready(hard_state=HardState(2, 1, 259)))
        assert counter.take() == (0, 0)
        rd = Ready(hard_state=HardState(2, 1, 275))
        assert not s.needs_io(rd)
        s.persist(rd)
        assert counter.take() == (0, 0)
        assert s.hard_state == HardState(2, 1, 275)
        # ... until the driver, idle, catches the state file up: one replacement
        assert s.sync_due()
        s.sync()
        assert counter.take() == (1, 1) and not s.sync_due()
        s.sync()
        assert counter.take() == (0, 0)
        # A new term (or vote): one atomic state replacement, after the entries.
        rd = Ready(entries=entries(276, 1, term=3), hard_state=HardState(3, 1, 275))
        assert s.needs_io(rd) and s.needs_io(Ready(hard_state=HardState(3, 2, 275)))
        s.persist(rd)
        assert counter.take() == (2, 1)
        # Overwriting an uncommitted suffix: truncate (one fsync) then one group commit.
        s.persist(Ready(entries=entries(276, 4, term=4)))
        assert counter.take() == (2, 0)
        assert s.term(276) == 4 and s.last_index() == 279


def test_reads_do_not_touch_the_disk_for_recent_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with DurableRaftStorage(tmp_path / "r", bootstrap=VOTERS, cache_entries=64) as s:
        s.persist(Ready(entries=entries(2, 200)))
        reads = 0
        real = os.pread

        def pread(*args: Any) -> bytes:
            nonlocal reads
            reads += 1
            return real(*args)

        monkeypatch.setattr(os, "pread", pread)
        assert [e.index for e in s.entries(150, 202)] == list(range(150, 202))
        assert s.term(1) == 1 and all(s.term(i) == 2 for i in range(2, 202))
        assert reads == 0
        old = s.entries(2, 20, max_bytes=250)
        assert [e.index for e in old] == [2, 3]
        assert reads == 1
        assert [e.index for e in s.entries(100, 202)] == list(range(100, 202))


def test_a_restarted_node_resumes_from_disk(tmp_path: Path) -> None:
    d = tmp_path / "r"
    with DurableRaftStorage(d, bootstrap=VOTERS) as s:
        s.persist(Ready(entries=entries(2, 5, term=3), hard_state=HardState(3, 2, 4)))
    with DurableRaftStorage(d, bootstrap=ConfState(voters=frozenset({9}))) as s:
        assert not s.recovery.created
        node = RaftNode(Config(1, rng=random.Random(1)), s)
        assert node.term == 3 and node.commit_index == 4 and node.last_index == 6
        assert node.conf_state == VOTERS
        rd = node.ready()
        assert [e.index for e in rd.committed_entries] == [2, 3, 4]


def test_errors_match_memory_storage(tmp_path: Path) -> None:
    with DurableRaftStorage(tmp_path / "r", bootstrap=VOTERS) as s:
        s.persist(Ready(entries=entries(2, 3), hard_state=HardState(2, 0, 3)))
        with pytest.raises(Compacted):
            s.term(0)
        with pytest.raises(Unavailable):
            s.entries(2, 6)
        with pytest.raises(Unavailable):
            s.append(entries(9, 1))
        with pytest.raises(Unavailable):
            s.create_snapshot(4, VOTERS, b"")
        with pytest.raises(Unavailable):
            s.compact(3)
        s.create_snapshot(3, VOTERS, b"s")
        with pytest.raises(SnapshotOutOfDate):
            s.create_snapshot(3, VOTERS, b"s")
        with pytest.raises(SnapshotOutOfDate):
            s.apply_snapshot(Snapshot(SnapshotMeta(2, 2, VOTERS)))
        with pytest.raises(LedgerStateError):
            s.append(entries(3, 1, term=5))  # below the commit index
        with pytest.raises(LedgerStateError):
            s.set_hard_state(HardState(2, 0, 9))  # commit past the log
        with pytest.raises(LedgerStateError):
            DurableRaftStorage.bootstrap(VOTERS)


def test_one_process_per_directory(tmp_path: Path) -> None:
    with DurableRaftStorage(tmp_path / "r"), pytest.raises(LedgerStateError):
        DurableRaftStorage(tmp_path / "r")
    DurableRaftStorage(tmp_path / "r").close()


def _populated(d: Path) -> None:
    with DurableRaftStorage(d, bootstrap=VOTERS, max_segment_bytes=300) as s:
        for i in range(2, 12):
            s.persist(Ready(entries=entries(i, 1, size=40), hard_state=HardState(2, 1, i - 1)))
        s.create_snapshot(5, VOTERS, b"snap")


def test_damage_in_a_segment_is_corruption(tmp_path: Path) -> None:
    d = tmp_path / "r"
    _populated(d)
    seg = sorted((d / "log.2").iterdir())[0]
    assert seg.suffix == ".committed"
    os.chmod(seg, 0o644)
    data = bytearray(seg.read_bytes())
    data[30] ^= 0x01
    seg.write_bytes(bytes(data))
    with pytest.raises(LedgerCorruptionError):
        DurableRaftStorage(d)


@pytest.mark.parametrize("name", [STATE_NAME, "snapshot.3"])
def test_damage_in_state_or_snapshot_is_corruption(tmp_path: Path, name: str) -> None:
    d = tmp_path / "r"
    _populated(d)
    path = d / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises(LedgerCorruptionError):
        DurableRaftStorage(d)


def test_missing_snapshot_or_entries_is_corruption(tmp_path: Path) -> None:
    d = tmp_path / "r"
    _populated(d)
    (d / "snapshot.3").rename(d / "elsewhere")
    with pytest.raises(LedgerCorruptionError, match="missing snapshot"):
        DurableRaftStorage(d)
    (d / "elsewhere").rename(d / "snapshot.3")
    # Cutting committed entries (not a torn tail: whole frames) loses what commit names.
    last = sorted((d / "log.2").glob("*.seg"))[-1]
    last.write_bytes(b"")
    with pytest.raises(LedgerCorruptionError, match="before commit"):
        DurableRaftStorage(d)


def test_orphans_of_an_interrupted_install_are_removed(tmp_path: Path) -> None:
    d = tmp_path / "r"
    _populated(d)
    (d / "snapshot.7").write_bytes(b"half written")
    (d / "log.8").mkdir()
    (d / "log.8" / "LOCK").write_bytes(b"")
    (d / "state.tmp").write_bytes(b"x")
    with DurableRaftStorage(d) as s:
        assert s.recovery.removed == ("log.8", "snapshot.7")
        assert s.snapshot().data == b"snap" and s.last_index() == 11
    assert sorted(p.name for p in d.iterdir()) == ["LOCK", "log.2", "snapshot.3", "state"]


def test_interrupted_initialisation_starts_over(tmp_path: Path) -> None:
    d = tmp_path / "r"
    d.mkdir()
    (d / "snapshot.1").write_bytes(b"half")
    (d / "log.2").mkdir()
    with DurableRaftStorage(d, bootstrap=VOTERS) as s:
        assert s.recovery.created and s.recovery.removed == ("log.2", "snapshot.1")
        assert s.snapshot_index() == 1 and s.initial_state()[1] == VOTERS


def test_entries_without_a_state_file_are_not_discarded(tmp_path: Path) -> None:
    d = tmp_path / "r"
    _populated(d)
    (d / STATE_NAME).unlink()
    with pytest.raises(LedgerCorruptionError, match="without a state file"):
        DurableRaftStorage(d)


def test_a_failed_write_refuses_further_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = tmp_path / "r"
    s = DurableRaftStorage(d, bootstrap=VOTERS)
    s.persist(Ready(entries=entries(2, 2), hard_state=HardState(2, 1, 2)))

    def rename(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError):
        s.persist(Ready(entries=entries(4, 1), hard_state=HardState(3, 1, 4)))
    monkeypatch.undo()
    with pytest.raises(LedgerStateError, match="reopened"):
        s.persist(Ready(entries=entries(5, 1)))
    s.close()
    with DurableRaftStorage(d) as r:
        assert r.hard_state == HardState(2, 1, 2)
        assert r.last_index() == 4  # the entries were durable before the state write


def test_subclass_overrides_every_public_method() -> None:
    """If the core's MemoryStorage grows a method, the durable storage must implement it."""
    from charter.consensus.storage import MemoryStorage

    public = {n for n in vars(MemoryStorage) if not n.startswith("_")}
    assert public <= set(vars(DurableRaftStorage)), public - set(vars(DurableRaftStorage))


def test_large_snapshot_round_trips(tmp_path: Path) -> None:
    d = tmp_path / "r"
    data = os.urandom(1 << 20)
    conf = ConfState(voters=frozenset({1, 2, 3}), learners=frozenset({4}))
    snap = Snapshot(SnapshotMeta(50, 4, conf), data)
    with DurableRaftStorage(d) as s:
        s.persist(Ready(snapshot=snap, hard_state=HardState(4, 0, 50)))
        assert (s.first_index(), s.last_index(), s.term(50)) == (51, 50, 4)
    with DurableRaftStorage(d) as s:
        assert s.snapshot() == snap and s.initial_state() == (HardState(4, 0, 50), conf)


def test_a_dropped_storage_releases_its_directory(tmp_path: Path) -> None:
    s = DurableRaftStorage(tmp_path / "r", bootstrap=VOTERS)
    s.persist(Ready(entries=entries(2, 3), hard_state=HardState(2, 1, 3)))
    del s  # a crashed node: nothing is flushed or closed explicitly
    with DurableRaftStorage(tmp_path / "r") as r:
        assert r.last_index() == 4 and r.hard_state == HardState(2, 1, 3)
