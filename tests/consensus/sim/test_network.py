"""The simulated network: seeded order, partitions that swallow in-flight messages, holds."""

from __future__ import annotations

import random

from charter.consensus.sim.faults import NetProfile
from charter.consensus.sim.network import Network


def _net(seed: int, profile: NetProfile) -> Network[str]:
    return Network(random.Random(seed), profile)


def test_same_seed_same_delivery_order() -> None:
    def run(seed: int) -> list[tuple[int, int, str]]:
        net = _net(seed, NetProfile(0, 3, 0.1, 0.1))
        for i in range(50):
            net.send(i % 3 + 1, (i + 1) % 3 + 1, f"m{i}", now=0)
        out: list[tuple[int, int, str]] = []
        for t in range(5):
            out.extend(net.due(t))
        return out

    assert run(4) == run(4)
    assert run(4) != run(5)


def test_drops_and_duplicates_follow_the_profile() -> None:
    net = _net(1, NetProfile(0, 0, 0.5, 0.5))
    for i in range(400):
        net.send(1, 2, f"m{i}", now=0)
    got = net.due(0)
    assert 100 < net.stats.dropped < 300
    assert net.stats.duplicated > 50
    assert len(got) == 400 - net.stats.dropped + net.stats.duplicated


def test_partition_swallows_messages_in_flight_and_heal_restores() -> None:
    net = _net(1, NetProfile(1, 1))
    net.send(1, 2, "before", now=0)
    net.send(2, 3, "same side", now=0)
    net.partition([[1], [2, 3]], [1, 2, 3])
    assert net.due(1) == [(2, 3, "same side")]
    assert net.stats.blocked == 1
    net.heal()
    net.send(1, 2, "after", now=1)
    assert net.due(2) == [(1, 2, "after")]


def test_one_way_block_is_asymmetric() -> None:
    net = _net(1, NetProfile(0, 0))
    net.block(1, 2)
    net.send(1, 2, "a", now=0)
    net.send(2, 1, "b", now=0)
    assert net.due(0) == [(2, 1, "b")]


def test_hold_and_release_reversed_twice() -> None:
    net = _net(1, NetProfile(0, 0))
    net.shuffle = False
    net.hold.add((1, 2))
    for m in ("x", "y"):
        net.send(1, 2, m, now=0)
    assert net.drain() == []
    assert net.release(1, 2, reverse=True, copies=2, now=0) == 2
    assert [m for _, _, m in net.drain()] == ["y", "x", "y", "x"]
