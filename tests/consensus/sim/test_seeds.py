"""Seeded runs: zero violations over thousands of seeds, determinism, and shrinking."""

from __future__ import annotations

import os

from charter.consensus.sim.faults import SimConfig, generate
from charter.consensus.sim.runner import config_for, run_schedule, run_seed

SEEDS = int(os.environ.get("CHARTER_SIM_SEEDS", "2000"))


def test_many_seeds_without_violation() -> None:
    bad: list[str] = []
    sizes = {3: 0, 5: 0}
    for seed in range(SEEDS):
        cfg = config_for(seed, None, None)
        sizes[cfg.nodes] += 1
        res = run_seed(seed, cfg)
        if not res.ok:
            bad.append(f"seed {seed}: {res.violation}")
    assert sizes[3] > 0 and sizes[5] > 0
    assert not bad, "\n".join(bad[:20])


def test_same_seed_same_trace() -> None:
    cfg = SimConfig(nodes=5)
    a = run_seed(17, cfg, verbose=True)
    b = run_seed(17, cfg, verbose=True)
    assert a.trace == b.trace
    assert (a.committed, a.messages, a.ticks) == (b.committed, b.messages, b.ticks)
    assert len(a.trace) > 20
    c = run_seed(18, cfg, verbose=True)
    assert c.trace != a.trace


def test_a_run_is_a_function_of_its_schedule() -> None:
    cfg = SimConfig(nodes=3)
    sched = generate(5, cfg)
    full = run_schedule(5, sched, cfg, verbose=True)
    assert full.trace == run_seed(5, cfg, verbose=True).trace
    quiet = run_schedule(5, [], cfg, verbose=True)
    assert quiet.ok
    assert quiet.trace != full.trace
