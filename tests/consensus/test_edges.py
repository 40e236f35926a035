"""Corner cases of the core and of the LocalCluster pump."""

from __future__ import annotations

import random

import pytest

from charter.consensus.errors import ConsensusError
from charter.consensus.local import LocalCluster
from charter.consensus.raft import Config, RaftNode
from charter.consensus.storage import MemoryStorage
from charter.consensus.types import (
    ConfChange,
    ConfChangeKind,
    ConfState,
    Entry,
    EntryKind,
    Message,
    MessageType,
    Role,
)


def boot(nid: int, voters: set[int], **kw: object) -> tuple[RaftNode, MemoryStorage]:
    store = MemoryStorage.bootstrap(ConfState(frozenset(voters)))
    return RaftNode(Config(nid, rng=random.Random(nid), **kw), store), store  # type: ignore[arg-type]


def test_a_node_with_an_unapplied_committed_conf_change_does_not_campaign() -> None:
    n, store = boot(2, {1, 2, 3})
    cc = Entry(2, 2, EntryKind.CONF_CHANGE, ConfChange(ConfChangeKind.ADD_LEARNER, 4).encode())
    n.step(Message(MessageType.APPEND, 1, 2, 2, log_term=1, index=1, entries=[cc], commit=2))
    rd = n.ready()
    store.persist(rd)
    n.advance(rd)
    rd = n.ready()  # the conf change is committed and handed out, but not yet applied
    assert [e.index for e in rd.committed_entries] == [2]
    store.persist(rd)
    for _ in range(60):
        n.tick()
    assert n.role is Role.FOLLOWER
    n.apply_conf_change(ConfChange.decode(cc.data))
    n.advance(rd)
    for _ in range(30):
        n.tick()
    assert n.role is Role.PRE_CANDIDATE


def test_a_learner_ignores_timeout_now_and_a_stale_append_is_answered_with_commit() -> None:
    n, _ = boot(5, {1, 2, 3})
    n.step(Message(MessageType.TIMEOUT_NOW, 1, 5, 1))
    assert n.role is Role.LEARNER and n.term == 1
    f, fstore = boot(2, {1, 2, 3})
    f.step(
        Message(MessageType.APPEND, 1, 2, 2, log_term=1, index=1, entries=[Entry(2, 2)], commit=2)
    )
    rd = f.ready()
    fstore.persist(rd)
    f.advance(rd)
    f.step(Message(MessageType.APPEND, 1, 2, 2, log_term=1, index=1, commit=1))
    assert [(m.index, m.reject) for m in f.ready().messages] == [(2, False)]


def test_a_removed_candidate_gives_up_its_campaign() -> None:
    n, _ = boot(1, {1, 2, 3}, pre_vote=False)
    while n.role is not Role.CANDIDATE:
        n.tick()
    n.apply_conf_change(ConfChange(ConfChangeKind.REMOVE, 1))
    assert n.role is Role.LEARNER
    m, _ = boot(2, {1, 2, 3}, pre_vote=False)
    while m.role is not Role.CANDIDATE:
        m.tick()
    m.apply_conf_change(ConfChange(ConfChangeKind.REMOVE, 3))
    assert m.role is Role.CANDIDATE


def test_shrinking_the_voters_can_commit_pending_entries() -> None:
    c = LocalCluster([1, 2, 3])
    lead = c.elect(1)
    c.isolate(1)
    idx = lead.propose(b"x")
    c.pump()
    assert lead.commit_index < idx
    lead.apply_conf_change(ConfChange(ConfChangeKind.REMOVE, 2))
    assert lead.commit_index < idx
    lead.apply_conf_change(ConfChange(ConfChangeKind.REMOVE, 3))
    assert lead.commit_index == idx


def test_a_retiring_leader_without_an_up_to_date_successor_just_steps_down() -> None:
    c = LocalCluster([1, 2, 3])
    lead = c.elect(1)
    c.isolate(1)
    lead.propose(b"unreplicated")
    c.pump()
    c.wire.clear()
    lead.apply_conf_change(ConfChange(ConfChangeKind.REMOVE, 1))
    assert lead.role is Role.LEARNER
    rd = lead.ready()
    assert MessageType.TIMEOUT_NOW not in {m.type for m in rd.messages}
    lead.advance(rd)


def test_snapshot_acks_for_another_snapshot_or_duplicates_are_handled() -> None:
    c = LocalCluster([1, 2, 3], config=lambda nid, rng: Config(nid, rng=rng, snapshot_chunk_size=8))
    lead = c.elect(1)
    lead.propose_batch([b"p%d" % i for i in range(20)])
    c.pump()
    c.crash(3)
    lead.propose_batch([b"q%d" % i for i in range(20)])
    c.pump()
    c.compact(1)
    c.restart(3)
    c.drop_filter = lambda m: m.type is MessageType.SNAPSHOT
    c.tick(1)
    pr = lead.progress(3)
    assert pr is not None and pr.snap is not None
    meta = pr.snap.metadata
    t = lead.term
    lead.step(Message(MessageType.SNAPSHOT_RESP, 3, 1, t, index=meta.index - 1, offset=8))
    assert pr.snap_acked == 0
    lead.step(Message(MessageType.SNAPSHOT_RESP, 3, 1, t, index=meta.index, offset=16))
    assert pr.snap_acked == 16
    lead.step(Message(MessageType.SNAPSHOT_RESP, 3, 1, t, index=meta.index, offset=8))
    assert pr.snap_acked == 16
    # Repeated acknowledgements of 16 mean the chunk there was lost: resent once.
    for _ in range(5):
        lead.step(Message(MessageType.SNAPSHOT_RESP, 3, 1, t, index=meta.index, offset=16))
    rd = lead.ready()
    c.storages[1].persist(rd)
    lead.advance(rd)
    assert [m.offset for m in rd.messages if m.type is MessageType.SNAPSHOT].count(16) == 1
    c.drop_filter = None
    c.tick(3)
    assert c.applied[3] == c.applied[1]


def test_local_cluster_reports_stalls_and_ticks_chosen_nodes() -> None:
    c = LocalCluster([1, 2, 3])
    lead = c.elect(1)
    lead.propose(b"x")
    with pytest.raises(ConsensusError):
        c.pump(limit=1)
    c.pump()
    c.add_node(4)
    with pytest.raises(ConsensusError):
        c.elect(4, max_ticks=5)
    term = lead.term
    c.tick(30, only=[4])
    assert lead.term == term and c.nodes[4].term == 0
    c.restart(1)  # already running: no effect
    assert c.nodes[1] is lead
