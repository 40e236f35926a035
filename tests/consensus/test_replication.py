"""Log replication: batching, flow control, backtracking, the commit rule, durability."""

from __future__ import annotations

import random

import pytest

from charter.consensus.errors import ProposalDropped, ReadyOutstanding
from charter.consensus.local import LocalCluster
from charter.consensus.progress import ProgressState
from charter.consensus.raft import Config, RaftNode
from charter.consensus.storage import MemoryStorage
from charter.consensus.types import (
    ConfState,
    Entry,
    EntryKind,
    Message,
    MessageType,
    Ready,
    Role,
)


def cluster(n: int = 3, **kw: object) -> LocalCluster:
    def cfg(nid: int, rng: random.Random) -> Config:
        return Config(nid, rng=rng, **kw)  # type: ignore[arg-type]

    return LocalCluster(range(1, n + 1), config=cfg)


def data_of(c: LocalCluster, nid: int) -> list[bytes]:
    return [d for _, d in c.applied[nid]]


def test_entries_commit_and_apply_identically_everywhere() -> None:
    c = cluster()
    lead = c.elect(1)
    for i in range(50):
        lead.propose(b"e%d" % i)
    c.pump()
    want = [b"e%d" % i for i in range(50)]
    for nid in (1, 2, 3):
        assert data_of(c, nid) == want
        assert c.nodes[nid].commit_index == lead.last_index
        assert c.storages[nid].last_index() == lead.last_index


def test_proposals_between_readies_travel_in_one_batched_append() -> None:
    c = cluster(max_entries_per_msg=64)
    lead = c.elect(1)
    appends: list[Message] = []

    def watch(m: Message) -> bool:
        if m.type is MessageType.APPEND and m.entries:
            appends.append(m)
        return False

    c.drop_filter = watch
    last = lead.propose_batch([b"x" * 10 for _ in range(200)])
    lead.propose(b"tail")
    c.pump()
    assert lead.commit_index == last + 1
    # 201 entries to each of 2 followers in messages of at most 64 entries.
    assert all(len(m.entries) <= 64 for m in appends)
    assert len(appends) == 2 * 4
    assert lead.propose_batch([]) == lead.last_index


def test_message_size_limit_cuts_batches_by_bytes() -> None:
    c = cluster(max_bytes_per_msg=1000)
    lead = c.elect(1)
    sizes: list[int] = []

    def watch(m: Message) -> bool:
        if m.type is MessageType.APPEND and m.entries:
            sizes.append(sum(len(e.data) for e in m.entries))
        return False

    c.drop_filter = watch
    lead.propose_batch([b"y" * 300 for _ in range(20)])
    c.pump()
    assert sizes and max(sizes) <= 1000
    assert data_of(c, 3) == [b"y" * 300] * 20


def test_inflight_window_bounds_messages_and_bytes_per_follower() -> None:
    c = cluster(max_entries_per_msg=1, max_inflight_msgs=3)
    lead = c.elect(1)
    pr = lead.progress(2)
    assert pr is not None and pr.state is ProgressState.REPLICATE
    # Withhold the followers' answers: the leader may have only 3 appends in flight each.
    c.drop_filter = lambda m: m.type is MessageType.APPEND_RESP
    lead.propose_batch([b"z"] * 10)
    c.pump()
    assert len(pr.inflights) == 3 and pr.is_paused()
    c.drop_filter = None
    c.tick(3)
    assert lead.commit_index == lead.last_index

    c2 = cluster(max_entries_per_msg=1, max_inflight_msgs=100, max_inflight_bytes=250)
    lead2 = c2.elect(1)
    c2.drop_filter = lambda m: m.type is MessageType.APPEND_RESP
    lead2.propose_batch([b"b" * 100] * 10)
    c2.pump()
    pr2 = lead2.progress(3)
    assert pr2 is not None
    assert len(pr2.inflights) == 3 and pr2.inflights.bytes == 300
    c2.drop_filter = None
    c2.tick(3)
    assert data_of(c2, 3) == [b"b" * 100] * 10


def test_a_lost_append_is_recovered_through_heartbeats() -> None:
    c = cluster()
    lead = c.elect(1)
    dropped = []

    def drop_first(m: Message) -> bool:
        if m.type is MessageType.APPEND and m.entries and not dropped:
            dropped.append(m)
            return True
        return False

    c.drop_filter = drop_first
    idx = lead.propose(b"once")
    c.pump()
    assert dropped
    c.tick(3)
    assert all(n.commit_index >= idx for n in c.nodes.values())
    assert data_of(c, dropped[0].to) == [b"once"]


def diverge(c: LocalCluster, n_stale: int, n_new: int) -> tuple[RaftNode, RaftNode]:
    """Leader 1 writes ``n_stale`` entries nobody sees; 2 then leads and commits ``n_new``."""
    old = c.elect(1)
    c.isolate(1)
    for i in range(n_stale):
        old.propose(b"stale%d" % i)
    c.pump()
    # Split 1 and 3 from each other, elect 2 with 3's vote.
    c.heal()
    c.cut |= {(1, 2), (2, 1), (1, 3), (3, 1)}
    new = c.elect(2)
    for i in range(n_new):
        new.propose(b"new%d" % i)
    c.pump()
    return old, new


def test_fast_backtracking_skips_a_whole_conflicting_term_in_one_round_trip() -> None:
    c = cluster(check_quorum=False, max_entries_per_msg=1000)
    old, new = diverge(c, 100, 20)
    assert old.role is Role.LEADER and old.last_index > new.last_index
    rejects: list[Message] = []

    def watch(m: Message) -> bool:
        if m.type is MessageType.APPEND_RESP and m.reject:
            rejects.append(m)
        return False

    c.drop_filter = watch
    c.heal()
    c.tick(3)
    assert old.role is Role.FOLLOWER and old.leader_id == 2
    assert data_of(c, 1) == data_of(c, 2) == data_of(c, 3)
    assert not any(d.startswith(b"stale") for d in data_of(c, 1))
    assert len(rejects) <= 2


def test_the_leader_commits_old_entries_only_with_one_of_its_term() -> None:
    # Figure 8 of the Raft paper: counting replicas of an entry from an earlier term
    # is not enough to commit it.
    c = cluster(max_entries_per_msg=1, check_quorum=False)
    lead = c.elect(1)
    base = lead.commit_index
    c.isolate(1)
    x = lead.propose(b"X")
    c.pump()
    # 1 restarts with X durable: the longest log, so it leads again in a higher term.
    c.crash(1)
    c.restart(1)
    c.heal()
    noop_index = x + 1
    # Withhold the acknowledgements of the new leader's own entry.
    c.drop_filter = lambda m: (
        m.type is MessageType.APPEND_RESP and not m.reject and m.index >= noop_index
    )
    new = c.elect(1)
    assert new.term > 2 and new.last_index == noop_index
    pr2, pr3 = new.progress(2), new.progress(3)
    assert pr2 is not None and pr3 is not None
    assert pr2.match == pr3.match == x  # X (term 2) is known on a majority...
    assert new.commit_index == base  # ...but counting replicas does not commit it
    c.drop_filter = None
    c.tick(2)
    assert new.commit_index == noop_index
    assert data_of(c, 2)[-1] == b"X"


def test_a_follower_applies_only_entries_it_has_persisted() -> None:
    store = MemoryStorage.bootstrap(ConfState(frozenset({1, 2})))
    f = RaftNode(Config(2, rng=random.Random(2)), store)
    ents = [Entry(2, 2), Entry(2, 3, EntryKind.NORMAL, b"d")]
    f.step(Message(MessageType.APPEND, 1, 2, 2, log_term=1, index=1, entries=ents, commit=3))
    rd = f.ready()
    assert rd.entries == ents and rd.committed_entries == []
    assert rd.hard_state is not None and rd.hard_state.commit == 3
    with pytest.raises(ReadyOutstanding):
        f.ready()
    assert not f.has_ready()
    store.persist(rd)
    f.advance(rd)
    rd2 = f.ready()
    assert [e.index for e in rd2.committed_entries] == [2, 3]
    store.persist(rd2)
    f.advance(rd2)
    assert f.applied_index == 3 and not f.has_ready()


def test_a_leader_counts_itself_only_after_its_entries_are_durable() -> None:
    store = MemoryStorage.bootstrap(ConfState(frozenset({1})))
    n = RaftNode(Config(1, rng=random.Random(1)), store)
    while n.role is not Role.LEADER:
        n.tick()
    rd = n.ready()
    assert n.commit_index == 1  # its empty entry is not durable yet
    store.persist(rd)
    n.advance(rd)
    assert n.commit_index == 2
    idx = n.propose(b"p")
    rd = n.ready()
    assert n.commit_index == 2 and rd.entries[-1].index == idx
    store.persist(rd)
    with pytest.raises(ReadyOutstanding):
        n.advance(Ready())
    n.advance(rd)
    assert n.commit_index == idx
    rd = n.ready()
    assert [e.data for e in rd.committed_entries] == [b"p"]


def test_restarted_nodes_rebuild_from_storage_and_catch_up() -> None:
    c = cluster()
    lead = c.elect(1)
    lead.propose_batch([b"r%d" % i for i in range(10)])
    c.pump()
    c.crash(3)
    lead.propose_batch([b"s%d" % i for i in range(10)])
    c.pump()
    c.restart(3)
    node3 = c.nodes[3]
    assert node3.term == lead.term
    c.pump()
    c.tick(2)
    assert data_of(c, 3) == data_of(c, 1)
    assert len(data_of(c, 3)) == 20
    # A whole-cluster restart keeps every committed entry.
    for nid in (1, 2, 3):
        c.crash(nid)
    for nid in (1, 2, 3):
        c.restart(nid)
    c.pump()
    assert all(len(data_of(c, nid)) == 20 for nid in (1, 2, 3))
    c.tick(40)
    assert c.leader() is not None


def test_unreachable_follower_drops_to_probe() -> None:
    c = cluster()
    lead = c.elect(1)
    pr = lead.progress(2)
    assert pr is not None and pr.state is ProgressState.REPLICATE
    lead.report_unreachable(2)
    assert pr.state is ProgressState.PROBE
    lead.report_unreachable(99)
    c.tick(2)
    assert pr.state is ProgressState.REPLICATE


def test_stale_and_foreign_messages_change_nothing_on_the_leader() -> None:
    c = cluster()
    lead = c.elect(1)
    term = lead.term
    lead.step(Message(MessageType.APPEND_RESP, 7, 1, term, index=99))
    lead.step(Message(MessageType.APPEND_RESP, 2, 1, term, index=0))
    lead.step(Message(MessageType.APPEND_RESP, 2, 1, term, index=0, reject=True))
    lead.step(Message(MessageType.TIMEOUT_NOW, 2, 1, term))
    lead.step(Message(MessageType.APPEND, 2, 1, term - 1))
    c.pump()
    assert lead.role is Role.LEADER and lead.term == term


def test_proposals_are_pushed_back_when_too_many_await_commit() -> None:
    c = cluster(max_uncommitted_entries=10)
    lead = c.elect(1)
    c.isolate(1)
    lead.propose_batch([b"u"] * 9)
    with pytest.raises(ProposalDropped):
        lead.propose_batch([b"u"] * 2)
    lead.propose(b"tenth")
    with pytest.raises(ProposalDropped):
        lead.propose(b"eleventh")
    c.heal()
    c.tick(2)
    assert lead.commit_index == lead.last_index
    lead.propose(b"flows again")
