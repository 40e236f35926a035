"""Deliberately broken cores are caught by the seeded runs, and their failures shrink.

Each subclass breaks one rule of Raft; running a few seeds must report the invariant that
rule protects. This is what shows the checker can fail.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import pytest

from charter.consensus.raft import RaftNode
from charter.consensus.sim import core
from charter.consensus.sim.errors import InvariantViolation
from charter.consensus.sim.faults import SimConfig
from charter.consensus.sim.runner import Result, run_seed, shrink
from charter.consensus.sim.scenario import run_file, run_text
from charter.consensus.types import NO_NODE, Message, MessageType, ReadState


class VotesTwice(RaftNode):
    """Forgets its vote whenever a vote request arrives: two votes in one term."""

    def step(self, m: Message) -> None:
        if m.type is MessageType.VOTE and m.term == self._term:
            self._vote = NO_NODE
            self._leader = NO_NODE
        super().step(m)


class CommitsWithoutQuorum(RaftNode):
    """A leader that commits everything it has as soon as it has it."""

    def _maybe_commit(self) -> bool:
        log = self._log
        last = log.last_index()
        if last > log.committed and log.term(last) == self._term:
            log.commit_to(last)
            return True
        return False


class VotesForStaleLogs(RaftNode):
    """Grants (pre-)votes without comparing logs: stale candidates can win."""

    def _handle_vote(self, m: Message) -> None:
        pre = m.type is MessageType.PRE_VOTE
        can_vote = (
            self._vote == m.frm
            or (self._vote == NO_NODE and self._leader == NO_NODE)
            or (pre and m.term > self._term)
        )
        resp = MessageType.PRE_VOTE_RESP if pre else MessageType.VOTE_RESP
        if can_vote:
            self._msgs.append(Message(resp, self._id, m.frm, m.term))
            if not pre:
                self._election_elapsed = 0
                self._vote = m.frm
        else:
            self._msgs.append(Message(resp, self._id, m.frm, self._term, reject=True))


class CommitsOldTermByCounting(RaftNode):
    """Commits entries of earlier terms by counting replicas (the figure 8 bug)."""

    def _maybe_commit(self) -> bool:
        from charter.consensus.quorum import committed_index

        idx = committed_index(self._conf.voters, {k: p.match for k, p in self._progress.items()})
        if idx > self._log.committed:
            self._log.commit_to(idx)
            return True
        return False


class ReadsTooEarly(RaftNode):
    """Answers read-index requests at once with a stale index."""

    def read_index(self, ctx: bytes) -> None:
        self._read_states.append(ReadState(0, ctx))


class NeverCampaigns(RaftNode):
    """A node whose election timer never fires."""

    def tick(self) -> None:
        if self.role is core.Role.LEADER:
            super().tick()


def _factory(cls: type[RaftNode]) -> Callable[..., RaftNode]:
    return functools.partial(core.new_node, node_class=cls)


def _first_failure(cls: type[RaftNode], seeds: range, cfg: SimConfig) -> Result:
    for seed in seeds:
        res = run_seed(seed, cfg, node_factory=_factory(cls))
        if not res.ok:
            return res
    raise AssertionError(f"{cls.__name__} survived seeds {seeds}")


@pytest.mark.parametrize(
    ("cls", "nodes", "expected"),
    [
        (VotesTwice, 5, {"vote-safety", "election-safety"}),
        (CommitsWithoutQuorum, 3, {"commit-quorum"}),
        (VotesForStaleLogs, 5, {"leader-completeness", "durability", "state-machine-safety"}),
        (ReadsTooEarly, 3, {"read-index"}),
        (NeverCampaigns, 3, {"liveness"}),
    ],
)
def test_broken_core_is_caught(cls: type[RaftNode], nodes: int, expected: set[str]) -> None:
    res = _first_failure(cls, range(60), SimConfig(nodes=nodes))
    assert res.invariant in expected, res.violation


def test_failure_shrinks_and_reproduces() -> None:
    cfg = SimConfig(nodes=3)
    res = _first_failure(CommitsWithoutQuorum, range(60), cfg)
    again = run_seed(res.seed, cfg, node_factory=_factory(CommitsWithoutQuorum))
    assert (again.violation, again.at_tick) == (res.violation, res.at_tick)
    small = shrink(res, cfg, budget=120, node_factory=_factory(CommitsWithoutQuorum))
    assert small.invariant == res.invariant
    assert len(small.schedule) < len(res.schedule)
    assert small.trace, "a shrunk failure carries the trace that led to it"


FIGURE8 = Path(__file__).parent / "scenarios" / "figure8_old_term_not_committed_by_count.scn"


def test_figure8_scenario_catches_counting_old_terms() -> None:
    run_file(FIGURE8)  # the real core passes, assertions included
    # Without its assertions the scenario still fails on the buggy core: the checker sees
    # the entry it committed by counting replicas being overwritten.
    text = "\n".join(
        line for line in FIGURE8.read_text().splitlines() if not line.startswith("assert")
    )
    with pytest.raises(InvariantViolation) as info:
        run_text(text, node_factory=_factory(CommitsOldTermByCounting))
    assert info.value.invariant in {"durability", "state-machine-safety", "leader-completeness"}
