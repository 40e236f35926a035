"""Readiness and stall detection, fed summaries and times by hand."""

from __future__ import annotations

import dataclasses

import pytest

from charter.node.ledger_service import LedgerStatus
from charter.ops import Health, HealthPolicy, Probe

POLICY = HealthPolicy(stall_after=5.0, max_follower_lag=100, max_learner_lag=10)


def status(**changes: object) -> LedgerStatus:
    base = LedgerStatus(
        node_id=1,
        name="member-1",
        role="follower",
        term=3,
        leader=2,
        commit_index=50,
        applied_index=50,
        last_seqno=40,
        signed_upto=40,
        halted=False,
        alarms=0,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def probe(**changes: object) -> Probe:
    base = Probe(
        running=True, voter=True, learner=False, last_index=50, peers_total=2, peers_connected=2
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def codes(reasons: list[str]) -> set[str]:
    return {r.split(":")[0] for r in reasons}


def test_ready_voter_with_leader() -> None:
    r = Health(POLICY).update(status(), probe(), 0.0)
    assert r.ready and r.reasons == [] and not r.stalls


@pytest.mark.parametrize(
    ("s", "p", "code"),
    [
        (status(leader=None), probe(), "no_leader"),
        (status(halted=True), probe(), "halted"),
        (status(), probe(running=False), "not_running"),
        (status(), probe(voter=False), "not_member"),
        (
            status(commit_index=80),
            probe(voter=False, learner=True, last_index=80),
            "learner_behind",
        ),
        (status(), probe(peers_connected=0), "no_peers"),
    ],
)
def test_not_ready_reasons(s: LedgerStatus, p: Probe, code: str) -> None:
    r = Health(POLICY).update(s, p, 0.0)
    assert not r.ready
    assert code in codes(r.reasons)


def test_caught_up_learner_is_ready() -> None:
    r = Health(POLICY).update(
        status(commit_index=55), probe(voter=False, learner=True, last_index=55), 0.0
    )
    assert r.ready, r.reasons


def test_single_node_needs_no_peers() -> None:
    r = Health(POLICY).update(status(leader=1, role="leader"), probe(peers_total=0), 0.0)
    assert r.ready


def test_commit_stall_needs_pending_work_for_the_whole_period() -> None:
    h = Health(POLICY)
    # idle for a long time: no stall
    assert h.update(status(), probe(), 0.0).ready
    assert h.update(status(), probe(), 100.0).ready
    # work appears: the stall clock starts now, not at the last commit
    assert h.update(status(), probe(last_index=60), 101.0).ready
    assert h.update(status(), probe(last_index=60), 105.9).ready
    r = h.update(status(), probe(last_index=60), 106.0)
    assert not r.ready
    assert r.stalls == {"commit_stalled"}
    assert "10 entries uncommitted" in r.reasons[0]
    # progress clears it
    r = h.update(status(commit_index=55, applied_index=55), probe(last_index=60), 107.0)
    assert r.ready
    # and a new stall is measured from that progress
    assert h.update(status(commit_index=55, applied_index=55), probe(last_index=60), 111.9).ready
    assert not h.update(
        status(commit_index=55, applied_index=55), probe(last_index=60), 112.0
    ).ready


def test_apply_stall() -> None:
    h = Health(POLICY)
    s = status(commit_index=60, applied_index=50)
    assert h.update(s, probe(last_index=60), 0.0).ready
    r = h.update(s, probe(last_index=60), 5.0)
    assert r.stalls == {"apply_stalled"}
    assert h.update(status(commit_index=60, applied_index=51), probe(last_index=60), 6.0).ready


def test_follower_lag_from_the_leaders_view() -> None:
    h = Health(POLICY)
    leader = status(role="leader", leader=1)
    assert h.update(leader, probe(follower_lag={2: 0, 3: 100}), 0.0).ready
    r = h.update(leader, probe(follower_lag={2: 0, 3: 101}), 1.0)
    assert r.stalls == {"follower_lagging"}
    assert "3 by 101" in r.reasons[0]


def test_no_peers_is_a_stall() -> None:
    r = Health(POLICY).update(status(), probe(peers_connected=0), 0.0)
    assert r.stalls == {"no_peers"}


def test_policy_bounds() -> None:
    with pytest.raises(ValueError):
        HealthPolicy(stall_after=0)
