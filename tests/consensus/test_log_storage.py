"""MemoryStorage and RaftLog: bounds, truncation, conflicts, durability and snapshots."""

from __future__ import annotations

import pytest

from charter.consensus.errors import Compacted, SnapshotOutOfDate, Unavailable
from charter.consensus.log import LogInvariantError, RaftLog
from charter.consensus.storage import MemoryStorage, entries_size, limit_size
from charter.consensus.types import (
    ConfState,
    Entry,
    HardState,
    Ready,
    Snapshot,
    SnapshotMeta,
)

CONF = ConfState(frozenset({1, 2, 3}))


def ents(first: int, terms: list[int], data: bytes = b"") -> list[Entry]:
    return [Entry(t, i, data=data) for i, t in enumerate(terms, first)]


def store_with(terms: list[int]) -> MemoryStorage:
    s = MemoryStorage.bootstrap(CONF)
    s.append(ents(2, terms))
    return s


# --- MemoryStorage ---------------------------------------------------------------------------


def test_bootstrap_storage_starts_from_a_snapshot_of_the_founders() -> None:
    s = MemoryStorage.bootstrap(CONF)
    hs, conf = s.initial_state()
    assert conf == CONF and hs == HardState(term=1, vote=0, commit=1) == s.hard_state
    assert (s.first_index(), s.last_index(), s.term(1)) == (2, 1, 1)
    assert s.snapshot().metadata.conf == CONF
    empty = MemoryStorage()
    assert (empty.first_index(), empty.last_index(), empty.snapshot_index()) == (1, 0, 0)


def test_storage_append_truncates_overlaps_and_refuses_gaps() -> None:
    s = store_with([1, 1, 2])
    s.append(ents(3, [3, 3]))
    assert [s.term(i) for i in range(1, 5)] == [1, 1, 3, 3]
    with pytest.raises(Unavailable):
        s.append(ents(9, [3]))
    s.append([])
    s.append(ents(0, [1]))  # entirely before the log: nothing to do
    s.append(ents(0, [1, 1, 3, 3, 4]))
    assert s.last_index() == 4 and s.term(4) == 4
    with pytest.raises(Compacted):
        s.term(0)
    with pytest.raises(Unavailable):
        s.term(9)


def test_storage_entries_bounds_and_size_limit() -> None:
    s = MemoryStorage.bootstrap(CONF)
    s.append([Entry(1, i, data=b"x" * 10) for i in range(2, 7)])
    assert [e.index for e in s.entries(2, 7)] == [2, 3, 4, 5, 6]
    assert [e.index for e in s.entries(2, 7, max_bytes=25)] == [2, 3]
    assert [e.index for e in s.entries(2, 7, max_bytes=5)] == [2]  # never empty
    with pytest.raises(Compacted):
        s.entries(1, 3)
    with pytest.raises(Unavailable):
        s.entries(3, 9)
    assert entries_size(s.entries(2, 4)) == 20
    assert limit_size([], 10) == []


def test_storage_snapshots_and_compaction() -> None:
    s = store_with([1, 1, 2, 2])  # indices 2..5
    s.set_hard_state(HardState(2, 1, 4))
    with pytest.raises(Unavailable):
        s.create_snapshot(5, CONF, b"too far")  # past the commit index
    snap = s.create_snapshot(4, CONF, b"state@4")
    assert snap.metadata == SnapshotMeta(4, 2, CONF)
    assert s.first_index() == 2  # creating a snapshot keeps the entries...
    with pytest.raises(SnapshotOutOfDate):
        s.create_snapshot(3, CONF, b"old")
    with pytest.raises(Unavailable):
        s.compact(5)  # ...compaction may not pass the snapshot
    s.compact(3)
    assert (s.first_index(), s.term(3)) == (4, 1)
    s.compact(2)  # already compacted: nothing to do
    s.compact(4)
    assert (s.first_index(), s.last_index(), s.term(4), s.term(5)) == (5, 5, 2, 2)
    with pytest.raises(SnapshotOutOfDate):
        s.apply_snapshot(Snapshot(SnapshotMeta(2, 1, CONF)))
    s.apply_snapshot(Snapshot(SnapshotMeta(9, 3, CONF), b"leader's"))
    assert (s.first_index(), s.last_index(), s.snapshot().data) == (10, 9, b"leader's")


def test_storage_persists_a_ready_in_order() -> None:
    s = MemoryStorage()
    snap = Snapshot(SnapshotMeta(5, 2, CONF), b"s")
    s.persist(Ready(hard_state=HardState(3, 2, 6), entries=ents(6, [3]), snapshot=snap))
    assert (s.snapshot_index(), s.last_index(), s.hard_state.commit) == (5, 6, 6)
    s.persist(Ready())
    assert s.last_index() == 6


# --- RaftLog ---------------------------------------------------------------------------------


def test_log_reads_through_stable_and_unstable_parts() -> None:
    log = RaftLog(store_with([1, 2]))  # stable 2..3
    assert (log.first_index(), log.last_index(), log.last_term()) == (2, 3, 2)
    log.append(ents(4, [2, 3]))
    assert log.last_index() == 5 and log.term(5) == 3 and log.term(6) is None
    assert log.term(0) is None and log.term(1) == 1
    assert [e.index for e in log.slice(2, 6)] == [2, 3, 4, 5]
    assert [e.index for e in log.slice(4, 6)] == [4, 5]
    assert [e.index for e in log.slice(2, 4)] == [2, 3]
    assert log.slice(4, 4) == []
    with pytest.raises(Compacted):
        log.slice(1, 3)
    big = RaftLog(MemoryStorage.bootstrap(CONF))
    big.storage.append([Entry(1, 2, data=b"a" * 10), Entry(1, 3, data=b"b" * 10)])
    big.unstable_offset = 4
    big.append([Entry(1, 4, data=b"c" * 10)])
    assert [e.index for e in big.slice(2, 5, max_bytes=15)] == [2]
    assert [e.index for e in big.slice(2, 5, max_bytes=25)] == [2, 3]
    assert [e.index for e in big.slice(2, 5, max_bytes=100)] == [2, 3, 4]


def test_log_append_truncates_unstable_and_stable_suffixes() -> None:
    log = RaftLog(store_with([1, 1, 1]))  # stable 2..4
    log.append(ents(5, [2, 2, 2]))  # unstable 5..7
    log.append(ents(6, [3]))  # cuts the unstable tail
    assert (log.last_index(), log.term(6), log.term(7)) == (6, 3, None)
    log.append(ents(3, [4]))  # cuts into the stable part
    assert (log.last_index(), log.term(3), log.term(4)) == (3, 4, None)
    assert log.stable_last_index() == 2
    assert log.append([]) == 3
    log.committed = 3
    with pytest.raises(LogInvariantError):
        log.append(ents(3, [5]))


def test_find_conflict_and_maybe_append() -> None:
    log = RaftLog(store_with([1, 2, 2]))  # 2..4
    assert log.find_conflict(ents(2, [1, 2])) == 0
    assert log.find_conflict(ents(3, [2, 2, 3])) == 5
    assert log.find_conflict(ents(3, [3, 3])) == 3
    assert log.maybe_append(4, 9, 0, []) is None  # no match at 4
    assert log.maybe_append(2, 1, 3, ents(3, [2, 2])) == 4  # all present: nothing changes
    assert log.committed == 3 and log.last_index() == 4
    assert log.maybe_append(3, 2, 10, ents(4, [3, 3])) == 5
    assert (log.term(4), log.committed) == (3, 5)
    with pytest.raises(LogInvariantError):
        log.maybe_append(2, 1, 5, ents(3, [7]))  # would rewrite committed entry 3
    with pytest.raises(LogInvariantError):
        log.commit_to(9)
    assert not log.commit_to(1)


def test_find_conflict_by_term_skips_runs_of_newer_terms() -> None:
    log = RaftLog(store_with([1, 1, 4, 4, 4, 5]))  # 2..7
    assert log.find_conflict_by_term(7, 3) == (3, 1)
    assert log.find_conflict_by_term(7, 4) == (6, 4)
    assert log.find_conflict_by_term(99, 9) == (7, 5)
    assert log.find_conflict_by_term(7, 0) == (1, 1)  # stops at the snapshot boundary
    log.storage.set_hard_state(HardState(5, 0, 7))
    log.storage.create_snapshot(5, CONF, b"")
    log.storage.compact(5)
    fresh = RaftLog(log.storage)
    assert fresh.find_conflict_by_term(7, 0) == (5, 4)


def test_durability_is_tracked_by_index_and_term() -> None:
    log = RaftLog(MemoryStorage.bootstrap(CONF))
    log.append(ents(2, [2, 2, 2]))
    rd_entries = list(log.unstable)
    log.append(ents(4, [3]))  # replaced while being persisted
    log.storage.append(rd_entries)
    log.stable_to(4, 2)  # stale: the entry at 4 now has term 3
    assert log.unstable_offset == 2
    log.stable_to(9, 2)  # out of range
    log.stable_to(1, 1)
    log.storage.append(list(log.unstable))
    log.stable_to(4, 3)
    assert log.unstable == [] and log.stable_last_index() == 4
    log.commit_to(4)
    assert [e.index for e in log.next_committed()] == [2, 3, 4]
    log.applied_to(4)
    log.applied_to(3)
    assert log.applied == 4 and log.next_committed() == [] and not log.has_next_committed()


def test_restore_from_snapshot_replaces_the_log_until_durable() -> None:
    log = RaftLog(store_with([1, 1]))
    log.append(ents(4, [2]))
    snap = Snapshot(SnapshotMeta(10, 3, CONF), b"s")
    log.restore(snap)
    assert (log.first_index(), log.last_index(), log.committed) == (11, 10, 10)
    assert log.term(10) == 3 and log.term(9) is None and log.term(11) is None
    assert log.snapshot() is snap and log.stable_last_index() == 0
    assert not log.has_next_committed()
    log.stable_snapshot_to(9)  # not this snapshot
    assert log.unstable_snapshot is snap
    log.storage.apply_snapshot(snap)
    log.stable_snapshot_to(10)
    assert log.unstable_snapshot is None and log.snapshot() is snap
    assert log.stable_last_index() == 10
    log.append(ents(11, [3]))
    assert log.last_index() == 11
    assert log.is_up_to_date(11, 3) and not log.is_up_to_date(10, 3)
    assert log.is_up_to_date(1, 4)
