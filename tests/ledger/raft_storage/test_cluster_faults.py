"""Seeded random faults on a three-node cluster on durable storage: nodes die in the middle
of a persist (at a random file-changing call), links are cut, snapshots are taken, and the
dead come back from disk. No entry ever known committed is lost or changed."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from charter.consensus.local import LocalCluster
from charter.consensus.types import ConfState, Ready
from charter.ledger.raft_storage import DurableRaftStorage

IDS = (1, 2, 3)
VOTERS = ConfState(voters=frozenset(IDS))
NAMES = ("write", "pwrite", "fsync", "rename", "ftruncate", "unlink", "rmdir", "chmod", "mkdir")


class Crash(BaseException):
    """The node's process dies here; nothing after it runs."""


class Injector:
    """Raises Crash at the ``countdown``-th file-changing call made inside the victim's persist."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.victim = 0
        self.countdown = 0
        self.active = 0
        for name in NAMES:
            monkeypatch.setattr(os, name, self._wrap(name, getattr(os, name)))

    def _wrap(self, name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if self.active and self.active == self.victim:
                self.countdown -= 1
                if self.countdown == 0:
                    raise Crash(self.victim)
            if name == "fsync":
                return None  # a process crash keeps the page cache
            return real(*args, **kwargs)

        return call


class CrashingStorage(DurableRaftStorage):
    __slots__ = ("injector", "node_id")

    def persist(self, rd: Ready) -> None:
        self.injector.active = self.node_id
        try:
            super().persist(rd)
        finally:
            self.injector.active = 0


@pytest.mark.parametrize("seed", range(10))
def test_random_crashes_mid_persist_lose_nothing_committed(
    seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    inj = Injector(monkeypatch)
    c = LocalCluster(IDS, seed=seed)

    def open_node(nid: int, *, bootstrap: bool = False) -> CrashingStorage:
        s = CrashingStorage(
            tmp_path / f"node{nid}",
            bootstrap=VOTERS if bootstrap else None,
            max_segment_bytes=700,
            cache_entries=4,
        )
        s.injector = inj
        s.node_id = nid
        return s

    down: set[int] = set()
    crashes = 0

    def kill(nid: int) -> None:
        c.crash(nid)
        c.storages[nid].close()  # type: ignore[attr-defined]
        down.add(nid)

    def revive(nid: int) -> None:
        c.storages[nid] = open_node(nid)
        c.restart(nid)
        down.discard(nid)

    def guarded(action: Callable[[], object]) -> None:
        try:
            action()
        except Crash as crash:
            nonlocal crashes
            inj.victim = 0
            crashes += 1
            kill(crash.args[0])

    for nid in IDS:
        c.crash(nid)
        c.storages[nid] = open_node(nid, bootstrap=True)
        c.restart(nid)

    committed: dict[int, bytes] = {}
    n = 0
    for _ in range(250):
        roll = rng.random()
        leader = c.leader()
        if roll < 0.45 and leader is not None:
            batch = [b"s%d-%d" % (seed, n + k) for k in range(rng.randint(1, 6))]
            n += len(batch)
            guarded(lambda leader=leader, batch=batch: (leader.propose_batch(batch), c.pump()))
        elif roll < 0.55 and not down and inj.victim == 0:
            inj.victim = rng.choice(IDS)
            inj.countdown = rng.randint(1, 8)
        elif roll < 0.65 and down:
            revive(rng.choice(sorted(down)))
        elif roll < 0.70:
            nid = rng.choice([i for i in IDS if i not in down] or [0])
            if nid and c.applied_index[nid] > c.storages[nid].snapshot_index():
                c.compact(nid)
        elif roll < 0.75:
            c.isolate(rng.choice(IDS))
        elif roll < 0.85:
            c.heal()
        else:
            guarded(lambda: c.tick(rng.randint(1, 12)))
        if leader is not None and leader.node_id not in down:
            for index, data in c.applied[leader.node_id]:
                if index <= leader.commit_index:
                    assert committed.setdefault(index, data) == data, index

    inj.victim = 0
    c.heal()
    for nid in sorted(down):
        revive(nid)
    for _ in range(60):
        c.tick(5)
        leader = c.leader()
        if leader is not None and all(c.nodes[i].applied_index == leader.commit_index for i in IDS):
            break
    leader = c.leader()
    assert leader is not None
    for nid in IDS:
        applied = dict(c.applied[nid])
        for index, data in committed.items():
            assert applied.get(index) == data, (nid, index)
    assert crashes >= 3 and len(committed) > 20
    for nid in IDS:
        kill(nid)
