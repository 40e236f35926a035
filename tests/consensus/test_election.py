"""Leader election: terms, votes, PreVote and CheckQuorum, driven through LocalCluster."""

from __future__ import annotations

import random

import pytest

from charter.consensus.errors import NotLeader
from charter.consensus.local import LocalCluster
from charter.consensus.raft import Config, RaftNode
from charter.consensus.storage import MemoryStorage
from charter.consensus.types import (
    CAMPAIGN_TRANSFER,
    ConfState,
    Message,
    MessageType,
    Role,
)


def cluster(n: int = 3, **kw: object) -> LocalCluster:
    def cfg(nid: int, rng: random.Random) -> Config:
        return Config(nid, rng=rng, **kw)  # type: ignore[arg-type]

    return LocalCluster(range(1, n + 1), config=cfg)


def leaders(c: LocalCluster) -> list[RaftNode]:
    return [n for n in c.nodes.values() if n.role is Role.LEADER]


def test_three_nodes_elect_exactly_one_leader() -> None:
    c = cluster()
    c.tick(40)
    ls = leaders(c)
    assert len(ls) == 1
    lead = ls[0]
    for n in c.nodes.values():
        assert n.term == lead.term
        assert n.leader_id == lead.node_id
    # The new leader's empty entry commits its term everywhere.
    assert all(n.commit_index == lead.last_index for n in c.nodes.values())


def test_single_voter_elects_itself_and_commits() -> None:
    c = cluster(1)
    c.tick(25)
    node = c.nodes[1]
    assert node.role is Role.LEADER
    idx = node.propose(b"solo")
    c.pump()
    assert node.commit_index == idx
    assert c.applied[1][-1] == (idx, b"solo")


def test_election_timeouts_are_randomised_from_the_callers_rng() -> None:
    timeouts = set()
    for seed in range(20):
        store = MemoryStorage.bootstrap(ConfState(frozenset({1, 2, 3})))
        node = RaftNode(Config(1, rng=random.Random(seed)), store)
        ticks = 0
        while node.role is not Role.PRE_CANDIDATE:
            node.tick()
            ticks += 1
        assert 10 <= ticks < 20
        timeouts.add(ticks)
    assert len(timeouts) > 3


def test_prevote_keeps_a_partitioned_node_from_raising_its_term() -> None:
    c = cluster()
    lead = c.elect(1)
    term = lead.term
    c.isolate(3)
    c.tick(100)
    assert c.nodes[3].term == term
    assert c.nodes[3].role is Role.PRE_CANDIDATE
    c.heal()
    c.tick(5)
    assert lead.role is Role.LEADER and lead.term == term
    assert c.nodes[3].leader_id == 1


def test_without_prevote_a_partitioned_node_disrupts_on_return() -> None:
    c = cluster(pre_vote=False, check_quorum=False)
    lead = c.elect(1)
    term = lead.term
    c.isolate(3)
    c.tick(60)
    assert c.nodes[3].term > term + 1
    c.heal()
    c.tick(25)
    # The returning node's next campaign deposes the leader (what PreVote prevents).
    assert lead.term > term


def test_check_quorum_makes_an_isolated_leader_step_down() -> None:
    c = cluster()
    lead = c.elect(1)
    c.isolate(1)
    for _ in range(20):
        c.tick()
        if lead.role is not Role.LEADER:
            break
    assert lead.role is Role.FOLLOWER
    c.tick(40)
    others = [c.nodes[2], c.nodes[3]]
    assert sum(1 for n in others if n.role is Role.LEADER) == 1
    with pytest.raises(NotLeader):
        lead.propose(b"x")


def test_without_check_quorum_an_isolated_leader_stays_and_is_deposed_by_reply() -> None:
    c = cluster(check_quorum=False)
    lead = c.elect(1)
    c.isolate(1)
    c.tick(60)
    assert lead.role is Role.LEADER
    new = [n for n in (c.nodes[2], c.nodes[3]) if n.role is Role.LEADER]
    assert len(new) == 1 and new[0].term > lead.term
    c.heal()
    c.tick(2)
    # Its stale heartbeat was answered with the current term: it steps down.
    assert lead.role is Role.FOLLOWER
    assert lead.term == new[0].term


def test_leader_lease_ignores_vote_requests_but_not_transfer_campaigns() -> None:
    c = cluster()
    c.elect(1)
    f = c.nodes[2]
    term = f.term
    f.step(Message(MessageType.VOTE, 3, 2, term + 1, log_term=99, index=99))
    assert f.term == term
    rd = f.ready()
    assert not rd.messages
    f.advance(rd)
    f.step(
        Message(MessageType.VOTE, 3, 2, term + 1, log_term=99, index=99, context=CAMPAIGN_TRANSFER)
    )
    assert f.term == term + 1
    rd = f.ready()
    assert [(m.type, m.reject) for m in rd.messages] == [(MessageType.VOTE_RESP, False)]
    assert rd.hard_state is not None and rd.hard_state.vote == 3
    f.advance(rd)


def boot(nid: int, voters: set[int], **kw: object) -> RaftNode:
    store = MemoryStorage.bootstrap(ConfState(frozenset(voters)))
    return RaftNode(Config(nid, rng=random.Random(nid), **kw), store)  # type: ignore[arg-type]


def drain(node: RaftNode) -> list[Message]:
    out: list[Message] = []
    while node.has_ready():
        rd = node.ready()
        out.extend(rd.messages)
        node.advance(rd)
    return out


def test_a_voter_grants_one_vote_per_term_and_only_to_up_to_date_logs() -> None:
    n = boot(1, {1, 2, 3})
    n.step(Message(MessageType.VOTE, 2, 1, 5, log_term=1, index=1))
    assert [(m.type, m.to, m.reject, m.term) for m in drain(n)] == [
        (MessageType.VOTE_RESP, 2, False, 5)
    ]
    # Same term, another candidate: rejected; the same candidate again: granted.
    n.step(Message(MessageType.VOTE, 3, 1, 5, log_term=1, index=1))
    n.step(Message(MessageType.VOTE, 2, 1, 5, log_term=1, index=1))
    assert [(m.to, m.reject) for m in drain(n)] == [(3, True), (2, False)]
    # A candidate whose log is behind ours is rejected even in a new term.
    n2 = boot(1, {1, 2, 3})
    n2.step(Message(MessageType.VOTE, 2, 1, 5, log_term=0, index=0))
    assert [m.reject for m in drain(n2)] == [True]
    assert n2.term == 5


def test_prevote_grants_do_not_change_term_or_vote() -> None:
    n = boot(1, {1, 2, 3})
    n.step(Message(MessageType.PRE_VOTE, 2, 1, 2, log_term=1, index=1))
    msgs = drain(n)
    assert [(m.type, m.reject, m.term) for m in msgs] == [(MessageType.PRE_VOTE_RESP, False, 2)]
    assert n.term == 1
    # Once it voted in a term, a pre-vote for that same term from another node is refused.
    n.step(Message(MessageType.VOTE, 3, 1, 2, log_term=1, index=1))
    drain(n)
    n.step(Message(MessageType.PRE_VOTE, 2, 1, 2, log_term=1, index=1))
    assert [(m.reject, m.term) for m in drain(n)] == [(True, 2)]
    # A stale pre-vote (lower term) is answered with a rejection too.
    n.step(Message(MessageType.VOTE, 3, 1, 4, log_term=1, index=1))
    drain(n)
    n.step(Message(MessageType.PRE_VOTE, 2, 1, 3, log_term=1, index=1))
    assert [(m.type, m.reject, m.term) for m in drain(n)] == [(MessageType.PRE_VOTE_RESP, True, 4)]


def test_a_candidate_that_loses_the_vote_becomes_follower() -> None:
    n = boot(1, {1, 2, 3}, pre_vote=False)
    while n.role is not Role.CANDIDATE:
        n.tick()
    term = n.term
    n.step(Message(MessageType.VOTE_RESP, 2, 1, term, reject=True))
    assert n.role is Role.CANDIDATE
    n.step(Message(MessageType.VOTE_RESP, 3, 1, term, reject=True))
    assert n.role is Role.FOLLOWER and n.term == term


def test_a_pre_candidate_that_loses_stays_at_its_term() -> None:
    n = boot(1, {1, 2, 3})
    while n.role is not Role.PRE_CANDIDATE:
        n.tick()
    n.step(Message(MessageType.PRE_VOTE_RESP, 2, 1, 1, reject=True))
    n.step(Message(MessageType.PRE_VOTE_RESP, 3, 1, 1, reject=True))
    assert n.role is Role.FOLLOWER and n.term == 1
    # A rejection carrying a higher term moves it to that term.
    while n.role is not Role.PRE_CANDIDATE:
        n.tick()
    n.step(Message(MessageType.PRE_VOTE_RESP, 2, 1, 7, reject=True))
    assert n.role is Role.FOLLOWER and n.term == 7


def test_a_pre_candidate_that_wins_runs_a_real_election() -> None:
    n = boot(1, {1, 2, 3})
    while n.role is not Role.PRE_CANDIDATE:
        n.tick()
    msgs = drain(n)
    assert {m.type for m in msgs} == {MessageType.PRE_VOTE}
    assert {m.term for m in msgs} == {2}
    n.step(Message(MessageType.PRE_VOTE_RESP, 2, 1, 2))
    assert n.role is Role.CANDIDATE and n.term == 2
    votes = drain(n)
    assert {(m.type, m.to) for m in votes} == {(MessageType.VOTE, 2), (MessageType.VOTE, 3)}
    n.step(Message(MessageType.VOTE_RESP, 3, 1, 2))
    assert n.role is Role.LEADER


def test_a_candidate_steps_down_when_a_leader_of_its_term_appears() -> None:
    n = boot(1, {1, 2, 3}, pre_vote=False)
    while n.role is not Role.CANDIDATE:
        n.tick()
    drain(n)
    n.step(Message(MessageType.HEARTBEAT, 2, 1, n.term, commit=1))
    assert n.role is Role.FOLLOWER and n.leader_id == 2


def test_learners_and_strangers_never_campaign() -> None:
    store = MemoryStorage()
    n = RaftNode(Config(9, rng=random.Random(1)), store)
    assert n.role is Role.LEARNER
    for _ in range(100):
        n.tick()
    assert not n.has_ready() or not drain(n)
    assert n.term == 0


def test_messages_for_another_node_are_ignored() -> None:
    n = boot(1, {1, 2, 3})
    n.step(Message(MessageType.VOTE, 2, 3, 9, log_term=9, index=9))
    assert n.term == 1
