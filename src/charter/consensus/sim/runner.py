"""One seeded run: a faulty phase driven by the schedule, then healing and a liveness check.

``run_schedule(seed, schedule, config)`` is a pure function of its arguments; ``run_seed``
generates the schedule from the seed first. The shrinker calls ``run_schedule`` with
subsets of a failing schedule.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from charter.consensus.sim import core
from charter.consensus.sim.cluster import Cluster
from charter.consensus.sim.errors import InvariantViolation, LivenessViolation, SimError
from charter.consensus.sim.faults import (
    Fault,
    FaultKind,
    NetProfile,
    SimConfig,
    generate,
    net_profile,
)
from charter.consensus.types import ConfChangeKind


@dataclass(slots=True)
class Result:
    """The outcome of one run; ``violation`` is None when every invariant held."""

    seed: int
    nodes: int
    schedule: list[Fault]
    violation: str | None = None
    invariant: str | None = None
    at_tick: int = 0
    ticks: int = 0
    leaders: int = 0
    committed: int = 0
    acknowledged: int = 0
    checks: int = 0
    messages: int = 0
    seconds: float = 0.0
    trace: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.violation is None


def _apply_fault(cl: Cluster, f: Fault, next_id: list[int]) -> None:
    k = f.kind
    ids = sorted(cl.nodes)
    if k is FaultKind.PARTITION:
        cl.trace(f"partition {f.groups}")
        cl.net.heal()
        cl.net.partition(f.groups, ids)
    elif k is FaultKind.ONE_WAY:
        a, b = f.groups[0]
        cl.trace(f"drop {a}->{b}")
        cl.net.block(a, b)
    elif k is FaultKind.HEAL:
        cl.trace("heal")
        cl.net.heal()
    elif k is FaultKind.CRASH:
        cl.crash(f.node)
    elif k is FaultKind.RESTART:
        cl.restart(f.node)
    elif k is FaultKind.SLOW_DISK:
        cl.trace(f"slow disk {f.node} +{f.pick} ticks until {cl.now + f.duration}")
        cl.slow_disk(f.node, f.pick, cl.now + f.duration)
    elif k is FaultKind.PROPOSE:
        # A client asks the node it knows; told of another leader, it retries there once.
        data = f"v{f.pick}".encode()
        if not cl.propose(f.node, data):
            r = cl.nodes[f.node].raft if f.node in cl.nodes else None
            hint = r.leader_id if r is not None else None
            if hint and hint != f.node and hint in cl.nodes:
                cl.propose(hint, data)
    elif k is FaultKind.COMPACT:
        cl.compact(f.node)
    elif k is FaultKind.READ_INDEX:
        cl.read_index(f.node, f"r{f.at}".encode())
    else:
        _apply_membership(cl, f, next_id)


def _apply_membership(cl: Cluster, f: Fault, next_id: list[int]) -> None:
    lead = cl.leader()
    if lead is None or lead.raft is None:
        return
    conf = lead.raft.conf_state
    k = f.kind
    if k is FaultKind.ADD_LEARNER:
        nid = next_id[0]
        if cl.conf_change(lead.node_id, ConfChangeKind.ADD_LEARNER, nid):
            next_id[0] += 1
            cl.add_joiner(nid)
    elif k is FaultKind.PROMOTE:
        learners = sorted(conf.learners)
        if learners:
            cl.conf_change(lead.node_id, ConfChangeKind.PROMOTE, learners[f.pick % len(learners)])
    elif k is FaultKind.REMOVE:
        voters = sorted(conf.voters)
        target = voters[f.pick % len(voters)]
        if len(voters) >= 3 and cl.conf_change(lead.node_id, ConfChangeKind.REMOVE, target):
            cl.counts["remove-leader" if target == lead.node_id else "remove"] += 1
    elif k is FaultKind.TRANSFER:
        others = sorted(v for v in conf.voters if v != lead.node_id)
        if others:
            cl.transfer(lead.node_id, others[f.pick % len(others)])


def _members(cl: Cluster) -> list[int]:
    lead = cl.leader()
    if lead is None or lead.raft is None:
        return []
    conf = lead.raft.conf_state
    return sorted(conf.voters | conf.learners)


def _liveness(cl: Cluster, config: SimConfig) -> None:
    """Heal everything, then require a leader and a fresh commit everywhere within the bound."""
    cl.trace("liveness phase: heal, restart, fault-free network")
    cl.net.heal()
    cl.net.profile = NetProfile(0, 1, 0.0, 0.0)
    for sn in cl.nodes.values():
        sn.slow_until = 0
        sn.pending_done_at = min(sn.pending_done_at, cl.now)
    for nid in sorted(cl.nodes):
        cl.restart(nid)
    deadline = cl.now + config.liveness_ticks
    marker = b"liveness"
    proposed_at = -1
    while cl.now < deadline:
        cl.tick()
        lead = cl.leader()
        if lead is None or lead.raft is None:
            continue
        stale = proposed_at < 0 or cl.now - proposed_at > 4 * config.election_ticks
        if stale and all(rec[2][1:] != marker for rec in lead.applied):
            cl.propose(lead.node_id, marker)
            proposed_at = cl.now
        members = _members(cl)
        floor = cl.checker.max_acknowledged()
        done = True
        for nid in members:
            member = cl.nodes.get(nid)
            if member is None or member.raft is None:
                done = False
                break
            if member.applied_index < floor or all(
                rec[2] != b"N" + marker for rec in member.applied
            ):
                done = False
                break
        if done:
            return
    lead = cl.leader()
    state = ", ".join(
        f"{sn.node_id}:{'down' if sn.raft is None else sn.raft.role.name.lower()}"
        f"/t{0 if sn.raft is None else sn.raft.term}/applied {sn.applied_index}"
        for sn in cl.nodes.values()
    )
    raise LivenessViolation(
        f"no leader committing everywhere within {config.liveness_ticks} ticks after healing "
        f"(leader {lead.node_id if lead else None}; {state})"
    )


def node_options(seed: int) -> dict[str, int]:
    """Per-seed message size limits, so batching, probing and pipelining all get exercised."""
    rng = random.Random(f"node-options/{seed}")
    return {"max_entries_per_msg": rng.choice((1, 2, 8, 64))}


def run_schedule(
    seed: int,
    schedule: Sequence[Fault],
    config: SimConfig,
    *,
    verbose: bool = False,
    node_factory: Callable[..., core.RaftNode] | None = None,
) -> Result:
    """Run ``schedule`` on a fresh cluster whose randomness comes from ``seed``."""
    started = time.perf_counter()
    res = Result(seed=seed, nodes=config.nodes, schedule=list(schedule))
    sink: Callable[[str], None] | None = res.trace.append if verbose else None
    cl = Cluster(
        seed,
        config.nodes,
        profile=net_profile(seed),
        election_ticks=config.election_ticks,
        heartbeat_ticks=config.heartbeat_ticks,
        pre_vote=config.pre_vote,
        check_quorum=config.check_quorum,
        trace=sink,
        node_factory=node_factory,
        node_options=node_options(seed),
    )
    next_id = [config.nodes + 1]
    pos = 0
    events = sorted(schedule, key=lambda f: f.at)
    try:
        while cl.now < config.steps:
            while pos < len(events) and events[pos].at <= cl.now:
                _apply_fault(cl, events[pos], next_id)
                pos += 1
            cl.tick()
        _liveness(cl, config)
    except (InvariantViolation, LivenessViolation) as exc:
        res.violation = str(exc)
        res.invariant = exc.invariant
        res.at_tick = cl.now
    except SimError as exc:
        res.violation = str(exc)
        res.invariant = exc.code
        res.at_tick = cl.now
    res.ticks = cl.now
    res.committed = cl.checker.max_committed
    res.acknowledged = len(cl.checker.acknowledged)
    res.checks = cl.checker.checks
    res.messages = cl.net.stats.sent
    res.leaders = cl.counts["leader"]
    res.counts = dict(cl.counts)
    res.seconds = time.perf_counter() - started
    return res


def config_for(seed: int, nodes: int | None, steps: int | None) -> SimConfig:
    """The per-seed configuration: alternate 3 and 5 nodes unless the size is fixed."""
    n = nodes if nodes is not None else (3 if seed % 2 == 0 else 5)
    cfg = SimConfig(nodes=n)
    if steps is not None:
        cfg = SimConfig(nodes=n, steps=steps)
    return cfg


def run_seed(
    seed: int,
    config: SimConfig,
    *,
    verbose: bool = False,
    node_factory: Callable[..., core.RaftNode] | None = None,
) -> Result:
    """Run ``seed``: its schedule and all its randomness are functions of the number alone."""
    return run_schedule(
        seed, generate(seed, config), config, verbose=verbose, node_factory=node_factory
    )


def shrink(
    result: Result,
    config: SimConfig,
    *,
    budget: int = 200,
    node_factory: Callable[..., core.RaftNode] | None = None,
) -> Result:
    """Re-run ``result``'s seed with ever smaller subsets of its schedule; keep the violation.

    Returns the verbose re-run of the smallest failing schedule found (its ``trace`` holds
    the steps that led to the violation).
    """
    from charter.consensus.sim.shrink import ddmin

    target = result.invariant

    def fails(events: list[Fault]) -> bool:
        r = run_schedule(result.seed, events, config, node_factory=node_factory)
        return r.invariant == target

    events = ddmin(result.schedule, fails, budget=budget)
    return run_schedule(result.seed, events, config, verbose=True, node_factory=node_factory)


def _run_one(args: tuple[int, int | None, int | None]) -> Result:
    seed, nodes, steps = args
    return run_seed(seed, config_for(seed, nodes, steps))


def run_seeds(
    seeds: range, nodes: int | None = None, steps: int | None = None, *, jobs: int = 1
) -> Iterator[Result]:
    """Results of ``seeds`` in order; ``jobs`` > 1 spreads them over worker processes."""
    work = [(s, nodes, steps) for s in seeds]
    if jobs <= 1:
        for w in work:
            yield _run_one(w)
        return
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        yield from pool.map(_run_one, work, chunksize=32)
