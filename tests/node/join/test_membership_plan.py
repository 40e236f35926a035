"""The leader's membership decisions (pure): one single-server change at a time."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from charter.consensus.types import ConfState
from charter.crypto.keys import Ed25519PrivateKey
from charter.ledger.engine.nodes import NodeStatus
from charter.node.membership import Admission, ConfStep, KnownNode, StepKind, plan, tls_location

KEYS = [Ed25519PrivateKey.generate().public_key for _ in range(6)]


def node(i: int, status: NodeStatus = NodeStatus.TRUSTED, *, located: bool = True) -> KnownNode:
    key = KEYS[i]
    loc = tls_location(key, "127.0.0.1", 5000 + i) if located else None
    return KnownNode(f"n{i}", key, status, loc)


def ids(*nodes: KnownNode) -> dict[int, KnownNode]:
    return {n.raft_id: n for n in nodes}


def rid(i: int) -> int:
    return node(i).raft_id


def conf(voters: list[int], learners: list[int] = ()) -> ConfState:  # type: ignore[assignment]
    return ConfState(frozenset(rid(i) for i in voters), frozenset(rid(i) for i in learners))


def step(
    nodes: Mapping[int, KnownNode],
    c: ConfState,
    leader: int = 0,
    matches: Mapping[int, int] | None = None,
    commit: int = 100,
    margin: int = 0,
) -> ConfStep | None:
    m = matches if matches is not None else {rid(i): commit for i in range(6)}
    return plan(leader=rid(leader), conf=c, nodes=nodes, matches=m, commit=commit, margin=margin)


def test_steady_state_needs_nothing() -> None:
    assert step(ids(node(0), node(1), node(2)), conf([0, 1, 2])) is None


def test_a_trusted_node_is_added_as_a_learner_then_promoted_once_caught_up() -> None:
    nodes = ids(node(0), node(1), node(2), node(3))
    s = step(nodes, conf([0, 1, 2]))
    assert s == ConfStep(StepKind.ADD_LEARNER, rid(3), "n3 is trusted")
    behind = {rid(0): 100, rid(1): 100, rid(2): 100, rid(3): 40}
    assert step(nodes, conf([0, 1, 2], [3]), matches=behind) is None
    assert step(nodes, conf([0, 1, 2], [3]), matches=behind, margin=60) is not None
    s = step(nodes, conf([0, 1, 2], [3]))
    assert s is not None and (s.kind, s.node_id) == (StepKind.PROMOTE, rid(3))


def test_pending_and_unlocated_nodes_are_not_added() -> None:
    nodes = ids(node(0), node(1), node(3, NodeStatus.PENDING), node(4, located=False))
    assert step(nodes, conf([0, 1])) is None


def test_retired_nodes_are_removed_learners_first() -> None:
    nodes = ids(node(0), node(1), node(2, NodeStatus.RETIRED), node(3, NodeStatus.RETIRED))
    s = step(nodes, conf([0, 1, 2], [3]))
    assert s is not None and (s.kind, s.node_id) == (StepKind.REMOVE, rid(3))
    s = step(nodes, conf([0, 1, 2]))
    assert s is not None and (s.kind, s.node_id) == (StepKind.REMOVE, rid(2))


def test_a_retired_leader_hands_over_to_the_most_caught_up_voter_first() -> None:
    nodes = ids(node(0, NodeStatus.RETIRED), node(1), node(2))
    matches = {rid(0): 100, rid(1): 90, rid(2): 100}
    s = step(nodes, conf([0, 1, 2]), leader=0, matches=matches)
    assert s is not None and (s.kind, s.node_id) == (StepKind.TRANSFER, rid(2))
    # the new leader then removes the old one
    s = step(nodes, conf([0, 1, 2]), leader=2, matches=matches)
    assert s is not None and (s.kind, s.node_id) == (StepKind.REMOVE, rid(0))


def test_removal_comes_before_addition_and_the_last_voter_stays() -> None:
    nodes = ids(node(0), node(1, NodeStatus.RETIRED), node(3))
    s = step(nodes, conf([0, 1]))
    assert s is not None and s.kind is StepKind.REMOVE
    alone = ids(node(0, NodeStatus.RETIRED))
    assert step(alone, conf([0])) is None


def test_unknown_members_of_the_configuration_are_left_alone() -> None:
    nodes = ids(node(0), node(1))
    assert step(nodes, conf([0, 1, 5])) is None


@given(
    st.lists(st.sampled_from(list(NodeStatus)), min_size=6, max_size=6),
    st.sets(st.integers(0, 5), min_size=1),
    st.sets(st.integers(0, 5)),
    st.integers(0, 5),
)
def test_plan_never_proposes_an_impossible_change(
    statuses: list[NodeStatus], voters: set[int], learners: set[int], leader: int
) -> None:
    learners -= voters
    leader = sorted(voters)[leader % len(voters)]  # a leader is a voter
    nodes = ids(*(node(i, s) for i, s in enumerate(statuses)))
    c = conf(sorted(voters), sorted(learners))
    s = step(nodes, c, leader=leader)
    if s is None:
        return
    members = c.voters | c.learners
    if s.kind is StepKind.ADD_LEARNER:
        assert s.node_id not in members and nodes[s.node_id].status is NodeStatus.TRUSTED
    elif s.kind is StepKind.PROMOTE:
        assert s.node_id in c.learners and nodes[s.node_id].status is NodeStatus.TRUSTED
    elif s.kind is StepKind.REMOVE:
        assert s.node_id in members and nodes[s.node_id].status is not NodeStatus.TRUSTED
        assert s.node_id != rid(leader) and c.voters - {s.node_id}
    else:
        assert s.node_id in c.voters and s.node_id != rid(leader)
        assert nodes[s.node_id].status is NodeStatus.TRUSTED


def test_admission_follows_the_ledger() -> None:
    a = Admission({"genesis-1", "genesis-2"})
    assert a("genesis-1") and not a("joined")
    a.update({"joined"}, revoked={"genesis-2"})
    assert a("joined") and a("genesis-1") and not a("genesis-2")
    a.update(set())
    assert not a("joined") and a("genesis-2")
    a.pin({"peer"})
    assert a("peer")
    with pytest.raises(TypeError):
        a()  # type: ignore[call-arg]
