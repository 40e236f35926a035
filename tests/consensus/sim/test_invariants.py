"""Every invariant of the checker fires on a deliberately broken history, and only then."""

from __future__ import annotations

import pytest

from charter.consensus.sim.errors import InvariantViolation
from charter.consensus.sim.invariants import Checker


def _persist(ch: Checker, node: int, *entries: tuple[int, int, bytes]) -> None:
    ch.on_pending(node, list(entries))
    ch.on_persist(node, list(entries))


def _fires(name: str) -> pytest.RaisesExc[InvariantViolation]:
    return pytest.raises(InvariantViolation, match=f"^{name}:")


def test_election_safety_two_leaders_in_one_term() -> None:
    ch = Checker()
    ch.on_role(1, 5, True)
    ch.on_role(1, 5, True)  # the same leader observed again is fine
    ch.on_role(2, 6, True)
    with _fires("election-safety") as info:
        ch.on_role(3, 5, True)
    assert info.value.invariant == "election-safety"
    assert info.value.code == "consensus.sim.invariant.election-safety"


def test_vote_safety_second_vote_in_a_term() -> None:
    ch = Checker()
    ch.on_hard_state(1, 3, 0, 0)
    ch.on_hard_state(1, 3, 2, 0)  # first vote of term 3
    ch.on_hard_state(1, 3, 2, 0)
    ch.on_hard_state(1, 4, 3, 0)  # a new term may vote anew
    with _fires("vote-safety"):
        ch.on_hard_state(1, 4, 2, 0)


def test_vote_safety_term_going_back() -> None:
    ch = Checker()
    ch.on_hard_state(1, 7, 1, 0)
    with _fires("vote-safety"):
        ch.on_hard_state(1, 6, 0, 0)


def test_commit_index_going_back() -> None:
    ch = Checker()
    ch.on_hard_state(2, 1, 0, 5)
    with _fires("commit-monotonic"):
        ch.on_hard_state(2, 1, 0, 4)


def test_log_matching_same_index_and_term_different_payload() -> None:
    ch = Checker()
    _persist(ch, 1, (1, 1, b"a"), (2, 1, b"b"))
    _persist(ch, 2, (1, 1, b"a"))
    with _fires("log-matching"):
        _persist(ch, 2, (2, 1, b"c"))


def test_log_matching_same_entry_different_predecessor() -> None:
    ch = Checker()
    _persist(ch, 1, (1, 1, b"a"), (2, 3, b"x"))
    _persist(ch, 2, (1, 2, b"q"))
    with _fires("log-matching"):
        _persist(ch, 2, (2, 3, b"x"))


def test_log_matching_gap_in_persisted_log() -> None:
    ch = Checker()
    _persist(ch, 1, (1, 1, b"a"))
    with _fires("log-matching"):
        ch.on_persist(1, [(3, 1, b"c")])


def test_log_matching_term_decreasing_along_the_log() -> None:
    ch = Checker()
    with _fires("log-matching"):
        _persist(ch, 1, (1, 3, b"a"), (2, 2, b"b"))


def test_commit_quorum_requires_a_durable_majority() -> None:
    ch = Checker()
    voters = [1, 2, 3]
    _persist(ch, 1, (1, 1, b"a"), (2, 1, b"b"))
    _persist(ch, 2, (1, 1, b"a"))
    ch.on_commit(1, 1, voters)  # two of three hold index 1
    assert ch.committed[1] == (1, b"a")
    with _fires("commit-quorum"):
        ch.on_commit(1, 2, voters)  # only node 1 holds index 2


def test_commit_quorum_does_not_count_unpersisted_entries() -> None:
    ch = Checker()
    _persist(ch, 1, (1, 1, b"a"))
    ch.on_pending(2, [(1, 1, b"a")])  # handed to the disk, not yet durable
    with _fires("commit-quorum"):
        ch.on_commit(1, 1, [1, 2, 3])


def test_leader_completeness_new_leader_lacks_committed_entry() -> None:
    ch = Checker()
    _persist(ch, 1, (1, 1, b"a"), (2, 1, b"b"))
    _persist(ch, 2, (1, 1, b"a"), (2, 1, b"b"))
    _persist(ch, 3, (1, 1, b"a"))
    ch.on_commit(1, 2, [1, 2, 3])
    ch.on_role(3, 2, True)
    with _fires("leader-completeness"):
        ch.on_ready_taken(3, True, 2)


def test_leader_completeness_passes_for_a_complete_leader() -> None:
    ch = Checker()
    _persist(ch, 1, (1, 1, b"a"), (2, 1, b"b"))
    _persist(ch, 2, (1, 1, b"a"), (2, 1, b"b"))
    ch.on_commit(1, 2, [1, 2, 3])
    ch.on_role(2, 2, True)
    ch.on_pending(2, [(3, 2, b"")])
    ch.on_ready_taken(2, True, 2)


def test_leader_completeness_skips_a_leader_that_already_stepped_down() -> None:
    ch = Checker()
    _persist(ch, 1, (1, 1, b"a"))
    _persist(ch, 2, (1, 1, b"a"))
    ch.on_commit(1, 1, [1, 2, 3])
    ch.on_role(3, 2, True)
    # Node 3 lost leadership before its log became visible: nothing to judge.
    ch.on_ready_taken(3, False, 3)


def test_state_machine_safety_different_entries_applied_at_one_index() -> None:
    ch = Checker()
    _persist(ch, 1, (1, 1, b"a"))
    _persist(ch, 2, (1, 2, b"b"))
    ch.on_apply(1, 1, 1, b"a")
    with _fires("state-machine-safety"):
        ch.on_apply(2, 1, 2, b"b")


def test_state_machine_safety_applying_an_unpersisted_entry() -> None:
    ch = Checker()
    ch.on_pending(1, [(1, 1, b"a")])
    with _fires("state-machine-safety"):
        ch.on_apply(1, 1, 1, b"a")


def test_state_machine_safety_snapshot_with_wrong_history() -> None:
    ch = Checker()
    _persist(ch, 1, (1, 1, b"a"), (2, 1, b"b"))
    ch.on_apply(1, 1, 1, b"a")
    ch.on_apply(1, 2, 1, b"b")
    with _fires("state-machine-safety"):
        ch.on_snapshot(2, 2, 1, [(1, 1, b"a"), (2, 1, b"X")])


def test_durability_committed_entry_overwritten() -> None:
    ch = Checker()
    _persist(ch, 1, (1, 1, b"a"), (2, 1, b"b"))
    _persist(ch, 2, (1, 1, b"a"), (2, 1, b"b"))
    ch.on_commit(1, 2, [1, 2, 3])
    with _fires("durability"):
        _persist(ch, 2, (2, 2, b"z"))


def test_durability_committed_entry_truncated_behind_a_rewrite() -> None:
    ch = Checker()
    for n in (1, 2):
        _persist(ch, n, (1, 1, b"a"), (2, 1, b"b"), (3, 1, b"c"))
    ch.on_commit(1, 3, [1, 2, 3])
    with _fires("durability"):
        _persist(ch, 2, (2, 1, b"b"))  # same entry, but the write drops index 3


def test_durability_allows_overwriting_uncommitted_suffix() -> None:
    ch = Checker()
    _persist(ch, 1, (1, 1, b"a"), (2, 1, b"b"))
    _persist(ch, 2, (1, 1, b"a"))
    ch.on_commit(2, 1, [1, 2, 3])
    _persist(ch, 1, (2, 2, b"c"))
    assert ch.durable_log(1).term_at(2) == 2


def test_applied_order_skipping_an_index() -> None:
    ch = Checker()
    _persist(ch, 1, (1, 1, b"a"), (2, 1, b"b"))
    ch.on_apply(1, 1, 1, b"a")
    with _fires("applied-order"):
        ch.on_apply(1, 1, 1, b"a")


def test_applied_order_restart_reapplies_identical_entries() -> None:
    ch = Checker()
    _persist(ch, 1, (1, 1, b"a"), (2, 1, b"b"))
    ch.on_apply(1, 1, 1, b"a")
    ch.on_apply(1, 2, 1, b"b")
    ch.on_crash(1)
    ch.on_restart(1)
    ch.on_apply(1, 1, 1, b"a")
    assert ch.applied_index(1) == 1


def test_snapshot_going_backwards_in_one_lifetime() -> None:
    ch = Checker()
    _persist(ch, 1, (1, 1, b"a"), (2, 1, b"b"))
    ch.on_apply(1, 1, 1, b"a")
    ch.on_apply(1, 2, 1, b"b")
    with _fires("applied-order"):
        ch.on_snapshot_applied(1, 1, [(1, 1, b"a")])


def test_snapshot_keeps_matching_suffix_and_counts_for_quorum() -> None:
    ch = Checker()
    _persist(ch, 1, (1, 1, b"a"), (2, 1, b"b"), (3, 1, b"c"))
    ch.on_apply(1, 1, 1, b"a")
    ch.on_apply(1, 2, 1, b"b")
    ch.on_snapshot(1, 2, 1, [(1, 1, b"a"), (2, 1, b"b")])
    log = ch.durable_log(1)
    assert (log.snap_index, log.last_index, log.term_at(3)) == (2, 3, 1)
    _persist(ch, 2, (1, 1, b"a"), (2, 1, b"b"), (3, 1, b"c"))
    ch.on_commit(2, 3, [1, 2, 3])
