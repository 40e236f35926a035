"""Progress tracking, inflight windows, quorum arithmetic, read-only queue, records."""

from __future__ import annotations

import random

import pytest

from charter.consensus.errors import ConfChangeInvalid, ConsensusError, InvalidConfig
from charter.consensus.progress import Inflights, Progress, ProgressState
from charter.consensus.quorum import (
    VoteResult,
    committed_index,
    has_quorum,
    majority,
    vote_result,
)
from charter.consensus.raft import Config
from charter.consensus.readonly import ReadOnly
from charter.consensus.types import ConfChange, ConfChangeKind, Snapshot, SnapshotMeta


def test_inflights_window_by_count_and_bytes() -> None:
    w = Inflights(3, max_bytes=100)
    w.add(5, 40)
    w.add(7, 40)
    assert not w.full() and len(w) == 2
    w.add(9, 30)
    assert w.full() and w.bytes == 110
    w.free_le(6)
    assert len(w) == 2 and w.bytes == 70 and not w.full()
    w.free_first()
    assert len(w) == 1 and w.bytes == 30
    w.free_le(100)
    w.free_first()  # empty: nothing to free
    assert len(w) == 0 and w.bytes == 0
    unbounded = Inflights(2)
    unbounded.add(1, 10**9)
    assert not unbounded.full()
    unbounded.add(2, 1)
    assert unbounded.full()
    unbounded.reset()
    assert len(unbounded) == 0


def test_progress_probe_replicate_and_snapshot_states() -> None:
    pr = Progress(10, Inflights(4))
    assert pr.state is ProgressState.PROBE and not pr.is_paused()
    pr.probe_sent = True
    assert pr.is_paused()
    assert pr.maybe_update(6) and pr.match == 6 and pr.next == 10 and not pr.probe_sent
    assert not pr.maybe_update(5)
    pr.become_replicate()
    assert pr.next == 7
    pr.optimistic_update(12)
    assert pr.next == 13
    pr.inflights.add(12, 1)
    # Replicate: a rejection at or below match is stale; above it, rewind to match + 1.
    assert not pr.maybe_decr_to(6, 0)
    assert pr.maybe_decr_to(12, 3) and pr.next == 7
    pr.become_probe()
    assert pr.state is ProgressState.PROBE and pr.next == 7 and len(pr.inflights) == 0
    # Probe: only the rejection of the append just sent counts; the hint bounds the step.
    assert not pr.maybe_decr_to(3, 0)
    pr.next = 12
    assert pr.maybe_decr_to(11, 8) and pr.next == 9
    pr.next = 12
    assert pr.maybe_decr_to(11, 2) and pr.next == 7  # never below match + 1
    snap = Snapshot(SnapshotMeta(20, 3))
    pr.become_snapshot(snap)
    assert pr.is_paused() and pr.snap is snap
    pr.become_probe()
    assert pr.next == 21  # after a snapshot, resume past it
    assert "PROBE" in repr(pr)


def test_quorum_arithmetic() -> None:
    assert [majority(n) for n in range(1, 6)] == [1, 2, 2, 3, 3]
    assert committed_index({1, 2, 3}, {1: 9, 2: 5, 3: 2}) == 5
    assert committed_index({1, 2, 3, 4}, {1: 9, 2: 5, 3: 2, 4: 7}) == 5
    assert committed_index({1, 2, 3}, {1: 9}) == 0
    assert committed_index(set(), {}) == 0
    assert vote_result({1, 2, 3}, {1: True}) is VoteResult.PENDING
    assert vote_result({1, 2, 3}, {1: True, 2: True}) is VoteResult.WON
    assert vote_result({1, 2, 3}, {1: True, 2: False, 3: False}) is VoteResult.LOST
    assert vote_result({1, 2, 3, 4}, {1: True, 2: False}) is VoteResult.PENDING
    assert vote_result({1, 2, 3, 4}, {2: False, 3: False}) is VoteResult.LOST
    assert vote_result({1}, {9: True}) is VoteResult.PENDING
    assert has_quorum({1, 2, 3}, {1, 3, 9})
    assert not has_quorum({1, 2, 3}, {1, 9})


def test_read_only_queue_releases_in_order() -> None:
    ro = ReadOnly()
    assert ro.add(5, 1, b"a") and ro.add(6, 2, b"b") and not ro.add(7, 2, b"a")
    assert len(ro) == 2 and ro.last_ctx() == b"b"
    assert ro.ack(3, b"zz") is None
    assert ro.ack(3, b"b") == {3}
    assert ro.release(b"zz") == []
    got = ro.release(b"b")
    assert [(r.index, r.requester, r.ctx) for r in got] == [(5, 1, b"a"), (6, 2, b"b")]
    assert len(ro) == 0 and ro.last_ctx() == b""
    ro.add(1, 1, b"c")
    ro.clear()
    assert len(ro) == 0


def test_conf_change_records_round_trip_and_reject_garbage() -> None:
    for kind in ConfChangeKind:
        cc = ConfChange(kind, 77)
        assert ConfChange.decode(cc.encode()) == cc
    with pytest.raises(ConfChangeInvalid):
        ConfChange.decode(b"\x01")
    with pytest.raises(ConfChangeInvalid):
        ConfChange.decode(b"\x09" + bytes(8))
    with pytest.raises(ConfChangeInvalid) as info:
        ConfChange.decode(b"\x01" + bytes(8))
    assert info.value.code == "consensus.conf_change_invalid"
    assert isinstance(info.value, ConsensusError)


@pytest.mark.parametrize(
    "kw",
    [
        {"node_id": 0},
        {"heartbeat_ticks": 0},
        {"election_ticks": 1},
        {"max_entries_per_msg": 0},
        {"max_inflight_msgs": 0},
        {"snapshot_chunk_size": 0},
        {"max_uncommitted_entries": 0},
    ],
)
def test_config_validation(kw: dict[str, int]) -> None:
    args: dict[str, object] = {"node_id": 1, "rng": random.Random(0)}
    args.update(kw)
    with pytest.raises(InvalidConfig):
        Config(**args).validate()  # type: ignore[arg-type]
