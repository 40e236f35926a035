"""Readiness and stall detection, sans-I/O.

``Health.update`` is fed the service's summary, a ``Probe`` of what the summary does not
hold, and a monotonic time; it keeps only the last values and the times they changed,
so the caller decides when to look (at each ``/readyz`` and each scrape). A stall is
progress that should happen and does not: it is measured from the later of "the value
last moved" and "the work was first seen", so an idle node never looks stalled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from charter.node.ledger_service import LedgerStatus

__all__ = [
    "STALL_REASONS",
    "Health",
    "HealthPolicy",
    "Probe",
    "Readiness",
]

STALL_REASONS = ("commit_stalled", "apply_stalled", "follower_lagging", "no_peers")
"""The stall kinds; each is a ``charter_stall{reason}`` gauge and a readiness reason."""


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    stall_after: float = 10.0
    """Seconds without commit (or apply) progress while there is work: a stall."""
    max_follower_lag: int = 1000
    """Entries a follower may trail the leader's log by (leader's view) before it stalls."""
    max_learner_lag: int = 100
    """Entries a learner may trail the commit index by and still count as caught up."""

    def __post_init__(self) -> None:
        if self.stall_after <= 0 or self.max_follower_lag < 0 or self.max_learner_lag < 0:
            raise ValueError("health bounds must be positive")


@dataclass(frozen=True, slots=True)
class Probe:
    """What readiness needs beyond ``LedgerStatus``; ``charter.ops.probe`` reads it."""

    running: bool
    voter: bool
    learner: bool
    last_index: int
    """The last index in this node's Raft log (above ``commit_index``: not yet committed)."""
    peers_total: int
    peers_connected: int
    follower_lag: Mapping[int, int] = field(default_factory=dict)
    """Entries each follower trails the leader's log by; empty unless this node leads."""


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    reasons: list[str]
    """Stable reason strings, first word a code (``no_leader``, ``commit_stalled``, ...)."""
    stalls: frozenset[str] = frozenset()
    """The subset of ``STALL_REASONS`` in effect."""


class _Progress:
    """One index that should advance while there is work for it."""

    __slots__ = ("moved_at", "value", "work_since")

    def __init__(self) -> None:
        self.value: int | None = None
        self.moved_at = 0.0
        self.work_since: float | None = None

    def stalled_for(self, value: int, work: bool, now: float) -> float:
        if value != self.value:
            self.value = value
            self.moved_at = now
        if not work:
            self.work_since = None
            return 0.0
        if self.work_since is None:
            self.work_since = now
        return now - max(self.moved_at, self.work_since)


class Health:
    """Readiness of one node, recomputed from each observation."""

    def __init__(self, policy: HealthPolicy | None = None) -> None:
        self.policy = policy or HealthPolicy()
        self._commit = _Progress()
        self._apply = _Progress()
        self.last: Readiness | None = None

    def update(self, summary: LedgerStatus, probe: Probe, now: float) -> Readiness:
        p = self.policy
        reasons: list[str] = []
        stalls: set[str] = set()
        if not probe.running:
            reasons.append("not_running: the ledger service is not running")
        if summary.halted:
            reasons.append("halted: the ledger halted on a divergence alarm")
        if summary.leader is None:
            reasons.append(f"no_leader: no known leader in term {summary.term}")
        if not probe.voter:
            if not probe.learner:
                reasons.append("not_member: this node is neither a voter nor a learner")
            elif summary.commit_index - summary.applied_index > p.max_learner_lag:
                behind = summary.commit_index - summary.applied_index
                reasons.append(f"learner_behind: {behind} entries behind the commit index")
        waited = self._commit.stalled_for(
            summary.commit_index, probe.last_index > summary.commit_index, now
        )
        if waited >= p.stall_after:
            stalls.add("commit_stalled")
            pending = probe.last_index - summary.commit_index
            reasons.append(f"commit_stalled: {pending} entries uncommitted for {waited:.1f} s")
        waited = self._apply.stalled_for(
            summary.applied_index, summary.commit_index > summary.applied_index, now
        )
        if waited >= p.stall_after:
            stalls.add("apply_stalled")
            reasons.append(
                f"apply_stalled: applied index {summary.applied_index} for {waited:.1f} s"
            )
        lagging = {n: lag for n, lag in probe.follower_lag.items() if lag > p.max_follower_lag}
        if lagging:
            stalls.add("follower_lagging")
            shown = ", ".join(f"{n} by {lag}" for n, lag in sorted(lagging.items()))
            reasons.append(f"follower_lagging: followers behind: {shown}")
        if probe.peers_total > 0 and probe.peers_connected == 0:
            stalls.add("no_peers")
            reasons.append(f"no_peers: none of {probe.peers_total} peers connected")
        self.last = Readiness(not reasons, reasons, frozenset(stalls))
        return self.last
