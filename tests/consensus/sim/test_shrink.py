"""Delta debugging finds the events that matter, within its budget."""

from __future__ import annotations

from charter.consensus.sim.faults import SimConfig, generate
from charter.consensus.sim.shrink import ddmin


def test_ddmin_finds_the_two_culprits() -> None:
    items = list(range(40))
    calls: list[int] = []

    def fails(xs: list[int]) -> bool:
        calls.append(len(xs))
        return 7 in xs and 31 in xs

    assert ddmin(items, fails) == [7, 31]
    assert len(calls) < 120


def test_ddmin_keeps_order_and_reaches_empty_when_nothing_is_needed() -> None:
    assert ddmin([3, 1, 2], lambda xs: True) == []
    assert ddmin([5, 4, 3, 2, 1], lambda xs: 4 in xs and 2 in xs) == [4, 2]


def test_ddmin_respects_its_budget() -> None:
    calls = 0

    def fails(xs: list[int]) -> bool:
        nonlocal calls
        calls += 1
        return sum(xs) % 7 == 0 and len(xs) > 3

    ddmin(list(range(200)), fails, budget=25)
    assert calls <= 26


def test_schedule_is_a_function_of_seed_and_config() -> None:
    cfg = SimConfig(nodes=5)
    assert generate(11, cfg) == generate(11, cfg)
    assert generate(11, cfg) != generate(12, cfg)
    sched = generate(11, cfg)
    assert all(0 <= f.at < cfg.steps for f in sched)
    assert [f.at for f in sched] == sorted(f.at for f in sched)
    assert all(f.describe().startswith(f"t={f.at} ") for f in sched)
