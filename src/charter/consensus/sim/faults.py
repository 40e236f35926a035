"""The injected events of one simulated run, generated up front from the seed.

A run is a function of (seed, schedule): the seed fixes the network's randomness and every
node's election timer, the schedule fixes what the outside world does (partitions, crashes,
slow disks, client proposals, membership changes). Generating the schedule first is what
lets the shrinker re-run a failing seed with a subset of its events.

Events that depend on the cluster's state when they fire (promote "the" learner, remove a
voter, transfer to a follower) carry a ``pick`` number that is resolved against the live
cluster, so any subset of a schedule is still a valid schedule.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum


class FaultKind(Enum):
    PARTITION = "partition"  # groups: symmetric split
    ONE_WAY = "one-way"  # nodes (a, b): drop a->b only
    HEAL = "heal"
    CRASH = "crash"
    RESTART = "restart"
    SLOW_DISK = "slow-disk"  # node, pick = extra ticks per persisted ready, duration
    PROPOSE = "propose"  # node, pick = proposal number
    ADD_LEARNER = "add-learner"
    PROMOTE = "promote"
    REMOVE = "remove"  # pick selects the voter (may be the leader)
    TRANSFER = "transfer"  # pick selects the target
    COMPACT = "compact"  # node
    READ_INDEX = "read-index"  # node


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected event at virtual time ``at`` (ticks)."""

    at: int
    kind: FaultKind
    node: int = 0
    groups: tuple[tuple[int, ...], ...] = ()
    pick: int = 0
    duration: int = 0

    def describe(self) -> str:
        k = self.kind
        if k is FaultKind.PARTITION:
            return f"t={self.at} partition " + " | ".join(
                " ".join(str(n) for n in g) for g in self.groups
            )
        if k is FaultKind.ONE_WAY:
            a, b = self.groups[0]
            return f"t={self.at} drop {a}->{b}"
        if k is FaultKind.HEAL:
            return f"t={self.at} heal"
        if k is FaultKind.SLOW_DISK:
            return f"t={self.at} slow-disk {self.node} +{self.pick} for {self.duration}"
        if k is FaultKind.PROPOSE:
            return f"t={self.at} propose {self.node} #{self.pick}"
        if k in (FaultKind.REMOVE, FaultKind.TRANSFER, FaultKind.PROMOTE):
            return f"t={self.at} {k.value} pick={self.pick}"
        if k is FaultKind.ADD_LEARNER:
            return f"t={self.at} add-learner"
        return f"t={self.at} {k.value} {self.node}"


@dataclass(frozen=True, slots=True)
class NetProfile:
    """Per-run network behaviour: delays in ticks, drop and duplicate probabilities."""

    min_delay: int = 0
    max_delay: int = 2
    drop: float = 0.0
    duplicate: float = 0.0
    straggle: float = 0.0  # chance that a message is held back 5-30 ticks (deep reorder)


@dataclass(frozen=True, slots=True)
class SimConfig:
    """What a seed runs: cluster size, length of the faulty phase, and the liveness bound."""

    nodes: int = 3
    steps: int = 300
    liveness_ticks: int = 400
    election_ticks: int = 10
    heartbeat_ticks: int = 1
    faults_per_100: int = 6
    proposals_per_100: int = 12
    membership: bool = True
    pre_vote: bool = True
    check_quorum: bool = True


def _pick_groups(rng: random.Random, ids: list[int]) -> tuple[tuple[int, ...], ...]:
    shuffled = ids[:]
    rng.shuffle(shuffled)
    cut = rng.randint(1, len(shuffled) - 1)
    a, b = sorted(shuffled[:cut]), sorted(shuffled[cut:])
    return (tuple(a), tuple(b))


def net_profile(seed: int) -> NetProfile:
    """The seed's network: mostly benign, sometimes lossy, sometimes duplicating."""
    rng = random.Random(f"net-profile/{seed}")
    style = rng.random()
    if style < 0.4:
        return NetProfile(0, rng.randint(0, 2), 0.0, 0.0)
    if style < 0.7:
        return NetProfile(0, rng.randint(1, 3), rng.choice((0.01, 0.05, 0.1)), 0.0)
    if style < 0.85:
        return NetProfile(
            0, rng.randint(1, 4), rng.choice((0.0, 0.02, 0.05)), rng.choice((0.02, 0.05, 0.1))
        )
    return NetProfile(
        0,
        rng.randint(1, 3),
        rng.choice((0.0, 0.02)),
        rng.choice((0.0, 0.05)),
        rng.choice((0.01, 0.03, 0.1)),
    )


def generate(seed: int, config: SimConfig) -> list[Fault]:
    """The schedule of injected events for ``seed``: a pure function of its inputs."""
    rng = random.Random(f"schedule/{seed}/{config.nodes}")
    ids = list(range(1, config.nodes + 1))
    out: list[Fault] = []
    proposal = 0
    # Let the cluster elect a first leader undisturbed for a moment in most runs.
    t = rng.choice((0, 5, 20, 30))
    while t < config.steps:
        t += rng.randint(1, max(2, 200 // (config.faults_per_100 + config.proposals_per_100)))
        if t >= config.steps:
            break
        roll = rng.random() * (config.faults_per_100 + config.proposals_per_100)
        if roll < config.proposals_per_100:
            proposal += 1
            burst = rng.choice((1, 1, 1, 2, 3))
            for _ in range(burst):
                out.append(Fault(t, FaultKind.PROPOSE, node=rng.choice(ids), pick=proposal))
                proposal += 1
            continue
        kind = rng.random()
        if kind < 0.20:
            out.append(Fault(t, FaultKind.PARTITION, groups=_pick_groups(rng, ids)))
            out.append(Fault(t + rng.randint(5, 60), FaultKind.HEAL))
        elif kind < 0.28:
            a, b = rng.sample(ids, 2)
            out.append(Fault(t, FaultKind.ONE_WAY, groups=((a, b),)))
            out.append(Fault(t + rng.randint(5, 60), FaultKind.HEAL))
        elif kind < 0.34:
            # Flapping: a split that comes and goes every few ticks.
            groups = _pick_groups(rng, ids)
            at = t
            for _ in range(rng.randint(2, 5)):
                out.append(Fault(at, FaultKind.PARTITION, groups=groups))
                at += rng.randint(1, 8)
                out.append(Fault(at, FaultKind.HEAL))
                at += rng.randint(1, 8)
        elif kind < 0.50:
            # Crash then restart; the restart may land after the faulty phase (then the
            # liveness phase restarts the node), or be shrunk away.
            n = rng.choice(ids)
            out.append(Fault(t, FaultKind.CRASH, node=n))
            out.append(Fault(t + rng.randint(1, 50), FaultKind.RESTART, node=n))
        elif kind < 0.60:
            out.append(
                Fault(
                    t,
                    FaultKind.SLOW_DISK,
                    node=rng.choice(ids),
                    pick=rng.randint(1, 5),
                    duration=rng.randint(5, 60),
                )
            )
        elif kind < 0.68:
            out.append(Fault(t, FaultKind.COMPACT, node=rng.choice(ids)))
        elif kind < 0.74:
            out.append(Fault(t, FaultKind.TRANSFER, pick=rng.randrange(1 << 16)))
        elif kind < 0.78:
            out.append(Fault(t, FaultKind.READ_INDEX, node=rng.choice(ids)))
        elif config.membership:
            which = rng.random()
            if which < 0.4:
                out.append(Fault(t, FaultKind.ADD_LEARNER))
            elif which < 0.7:
                out.append(Fault(t, FaultKind.PROMOTE, pick=rng.randrange(1 << 16)))
            else:
                out.append(Fault(t, FaultKind.REMOVE, pick=rng.randrange(1 << 16)))
    out.sort(key=lambda f: f.at)
    return [f for f in out if f.at < config.steps]
