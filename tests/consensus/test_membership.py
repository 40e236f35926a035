"""Membership changes, leadership transfer and read index."""

from __future__ import annotations

import random

import pytest

from charter.consensus.errors import (
    ConfChangeInProgress,
    ConfChangeInvalid,
    InvalidTransfer,
    LearnerNotCaughtUp,
    NotLeader,
    TransferInProgress,
)
from charter.consensus.local import LocalCluster
from charter.consensus.raft import Config, RaftNode
from charter.consensus.storage import MemoryStorage
from charter.consensus.types import (
    ConfChange,
    ConfChangeKind,
    ConfState,
    Message,
    MessageType,
    Role,
)

ADD = ConfChangeKind.ADD_LEARNER
PROMOTE = ConfChangeKind.PROMOTE
REMOVE = ConfChangeKind.REMOVE


def cluster(n: int = 3, **kw: object) -> LocalCluster:
    def cfg(nid: int, rng: random.Random) -> Config:
        return Config(nid, rng=rng, **kw)  # type: ignore[arg-type]

    return LocalCluster(range(1, n + 1), config=cfg)


def data_of(c: LocalCluster, nid: int) -> list[bytes]:
    return [d for _, d in c.applied[nid]]


def test_learner_joins_catches_up_and_is_promoted() -> None:
    c = cluster()
    lead = c.elect(1)
    lead.propose_batch([b"d%d" % i for i in range(20)])
    c.pump()
    c.add_node(4)
    c.cut |= {(1, 4)}  # the learner cannot catch up yet
    lead.propose_conf_change(ConfChange(ADD, 4))
    c.pump()
    assert lead.conf_state.learners == frozenset({4})
    with pytest.raises(LearnerNotCaughtUp):
        lead.propose_conf_change(ConfChange(PROMOTE, 4))
    # Learners never count toward quorums: commits continue without it.
    idx = lead.propose(b"without 4")
    c.pump()
    assert lead.commit_index == idx
    c.heal()
    c.tick(3)
    assert data_of(c, 4) == data_of(c, 1)
    assert c.nodes[4].role is Role.LEARNER
    lead.propose_conf_change(ConfChange(PROMOTE, 4))
    c.pump()
    for n in c.nodes.values():
        assert n.conf_state.voters == frozenset({1, 2, 3, 4})
        assert n.conf_state.learners == frozenset()
    assert c.nodes[4].role is Role.FOLLOWER
    # With four voters, three must hold an entry: cut two followers and nothing commits.
    c.cut |= {(1, 3), (1, 4)}
    stuck = lead.propose(b"needs 3 of 4")
    c.pump()
    assert lead.commit_index < stuck
    c.heal()
    c.tick(2)
    assert lead.commit_index >= stuck


def test_only_one_conf_change_at_a_time_and_only_after_committing_in_term() -> None:
    c = cluster()
    lead = c.elect(1)
    c.add_node(4)
    c.add_node(5)
    c.cut |= {(1, 2), (1, 3)}  # keep the first change from committing
    lead.propose_conf_change(ConfChange(ADD, 4))
    c.pump()
    with pytest.raises(ConfChangeInProgress):
        lead.propose_conf_change(ConfChange(ADD, 5))
    c.heal()
    c.tick(2)
    lead.propose_conf_change(ConfChange(ADD, 5))
    c.pump()
    assert lead.conf_state.learners == frozenset({4, 5})
    # A new leader must first commit its empty entry.
    c.drop_filter = lambda m: m.frm == 2 and m.type is MessageType.APPEND
    lead.transfer_leadership(2)
    c.pump()
    new = c.nodes[2]
    assert new.role is Role.LEADER
    with pytest.raises(ConfChangeInProgress):
        new.propose_conf_change(ConfChange(REMOVE, 5))
    c.drop_filter = None
    c.tick(2)
    new.propose_conf_change(ConfChange(REMOVE, 5))
    c.pump()
    assert new.conf_state.learners == frozenset({4})
    assert new.progress(5) is None


def test_nonsense_conf_changes_are_refused() -> None:
    c = cluster()
    lead = c.elect(1)
    with pytest.raises(ConfChangeInvalid):
        lead.propose_conf_change(ConfChange(ADD, 2))
    with pytest.raises(ConfChangeInvalid):
        lead.propose_conf_change(ConfChange(PROMOTE, 2))
    with pytest.raises(ConfChangeInvalid):
        lead.propose_conf_change(ConfChange(REMOVE, 9))
    with pytest.raises(ConfChangeInvalid):
        lead.propose_conf_change(ConfChange(ADD, 0))
    with pytest.raises(NotLeader) as info:
        c.nodes[2].propose_conf_change(ConfChange(ADD, 9))
    assert info.value.leader_id == 1 and info.value.code == "consensus.not_leader"
    solo = cluster(1)
    only = solo.elect(1)
    with pytest.raises(ConfChangeInvalid):
        only.propose_conf_change(ConfChange(REMOVE, 1))
    # Applying changes that no longer make sense leaves the configuration unchanged.
    conf = lead.conf_state
    assert lead.apply_conf_change(ConfChange(PROMOTE, 2)) == conf
    assert lead.apply_conf_change(ConfChange(ADD, 2)) == conf


def test_removing_a_follower_shrinks_the_quorum() -> None:
    c = cluster()
    lead = c.elect(1)
    lead.propose_conf_change(ConfChange(REMOVE, 3))
    c.pump()
    assert lead.conf_state.voters == frozenset({1, 2})
    assert lead.progress(3) is None
    assert c.nodes[3].role is Role.LEARNER  # a removed node reports it cannot vote
    c.crash(3)
    idx = lead.propose(b"two voters")
    c.pump()
    assert lead.commit_index == idx and c.nodes[2].commit_index == idx


def test_removing_the_leader_hands_over_and_steps_down() -> None:
    c = cluster()
    lead = c.elect(1)
    lead.propose_batch([b"a", b"b"])
    c.pump()
    at = lead.propose_conf_change(ConfChange(REMOVE, 1))
    c.pump()
    assert lead.role is not Role.LEADER
    assert lead.conf_state.voters == frozenset({2, 3})
    new = c.leader()
    assert new is not None and new.node_id in (2, 3)
    assert new.commit_index >= at
    for n in (c.nodes[2], c.nodes[3]):
        assert n.conf_state.voters == frozenset({2, 3})
    idx = new.propose(b"after the old leader left")
    c.pump()
    assert c.nodes[2].commit_index >= idx and c.nodes[3].commit_index >= idx
    # The retired node never campaigns again.
    c.crash(2) if new.node_id == 3 else c.crash(3)
    for _ in range(60):
        lead.tick()
    assert lead.role is Role.LEARNER


def test_transfer_to_an_up_to_date_follower_is_immediate() -> None:
    c = cluster()
    lead = c.elect(1)
    lead.transfer_leadership(3)
    c.pump()
    assert c.nodes[3].role is Role.LEADER and lead.role is Role.FOLLOWER
    assert c.nodes[3].term == lead.term
    idx = c.nodes[3].propose(b"x")
    c.pump()
    assert lead.commit_index == idx


def test_transfer_to_a_lagging_follower_waits_for_it_and_blocks_proposals() -> None:
    c = cluster(max_inflight_msgs=1, max_entries_per_msg=1)
    lead = c.elect(1)
    c.cut |= {(1, 3)}
    lead.propose_batch([b"p%d" % i for i in range(5)])
    c.pump()
    lead.transfer_leadership(3)
    assert lead.transferee == 3
    with pytest.raises(TransferInProgress):
        lead.propose(b"no")
    with pytest.raises(TransferInProgress):
        lead.transfer_leadership(2)
    lead.transfer_leadership(3)  # repeated: no effect
    lead.transfer_leadership(1)  # to itself: no effect
    c.heal()
    c.tick(2)
    assert c.nodes[3].role is Role.LEADER
    assert data_of(c, 3)[-5:] == [b"p%d" % i for i in range(5)]


def test_a_transfer_that_cannot_finish_is_abandoned_after_an_election_timeout() -> None:
    c = cluster()
    lead = c.elect(1)
    c.cut |= {(1, 3), (3, 1)}
    lead.propose(b"z")
    c.pump()
    lead.transfer_leadership(3)
    for _ in range(10):
        lead.tick()
        c.pump()
    assert lead.transferee is None and lead.role is Role.LEADER
    lead.propose(b"proposals flow again")
    with pytest.raises(InvalidTransfer):
        lead.transfer_leadership(42)
    with pytest.raises(NotLeader):
        c.nodes[2].transfer_leadership(1)


def test_removing_the_transferee_cancels_the_transfer() -> None:
    c = cluster()
    lead = c.elect(1)
    c.add_node(4)
    lead.propose_conf_change(ConfChange(ADD, 4))
    c.pump()
    c.cut |= {(1, 3), (3, 1)}
    lead.propose(b"z")
    c.pump()
    lead.transfer_leadership(3)
    lead.apply_conf_change(ConfChange(REMOVE, 3))
    assert lead.transferee is None


def test_read_index_on_leader_and_follower_sees_every_committed_write() -> None:
    c = cluster()
    lead = c.elect(1)
    idx = lead.propose(b"w")
    c.pump()
    lead.read_index(b"r1")
    c.pump()
    assert c.reads[1] == [(idx, b"r1")]
    c.nodes[3].read_index(b"r2")
    c.pump()
    assert c.reads[3] == [(idx, b"r2")]
    assert c.applied_index[3] >= idx


def test_read_index_needs_a_quorum_of_heartbeat_acks() -> None:
    c = cluster()
    lead = c.elect(1)
    c.cut |= {(1, 2), (1, 3)}
    lead.read_index(b"a")
    lead.read_index(b"b")
    lead.read_index(b"b")  # a duplicate context is ignored
    c.pump()
    assert c.reads[1] == []
    c.heal()
    c.tick(1)
    assert [ctx for _, ctx in c.reads[1]] == [b"a", b"b"]


def test_a_new_leader_answers_reads_only_after_committing_in_its_term() -> None:
    c = cluster()
    lead = c.elect(1)
    c.drop_filter = lambda m: m.frm == 2 and m.type is MessageType.APPEND
    lead.transfer_leadership(2)
    c.pump()
    new = c.nodes[2]
    assert new.role is Role.LEADER
    new.read_index(b"early")
    c.pump()
    assert c.reads[2] == []
    c.drop_filter = None
    c.tick(2)
    assert c.reads[2] and c.reads[2][0][1] == b"early"
    assert c.reads[2][0][0] == new.commit_index


def test_reads_without_a_leader_fail_fast_and_a_single_voter_answers_alone() -> None:
    store = MemoryStorage.bootstrap(ConfState(frozenset({1, 2, 3})))
    n = RaftNode(Config(1, rng=random.Random(1)), store)
    with pytest.raises(NotLeader) as info:
        n.read_index(b"x")
    assert info.value.leader_id is None
    solo = cluster(1)
    only = solo.elect(1)
    only.read_index(b"s")
    solo.pump()
    assert solo.reads[1] == [(only.commit_index, b"s")]


def test_leader_ignores_read_index_from_unknown_and_followers_ignore_stray_responses() -> None:
    c = cluster()
    lead = c.elect(1)
    lead.step(Message(MessageType.HEARTBEAT_RESP, 2, 1, lead.term, context=b"unknown"))
    c.pump()
    assert c.reads[1] == []
    f = c.nodes[2]
    f.step(Message(MessageType.READ_INDEX, 3, 2, f.term, context=b"q"))
    f.step(Message(MessageType.SNAPSHOT_RESP, 3, 2, f.term))
    c.pump()
    assert c.reads[2] == []
