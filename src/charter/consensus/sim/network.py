"""The simulated network: in-flight messages with per-message delay, drop, duplication and reorder.

Partitions are a set of blocked directed links, checked when a message would be delivered,
so a partition also swallows what was already in flight. Every random choice comes from the
run's one ``random.Random``, so delivery order is a function of the seed.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from charter.consensus.sim.faults import NetProfile

M = TypeVar("M")


@dataclass(slots=True)
class NetStats:
    sent: int = 0
    delivered: int = 0
    dropped: int = 0
    blocked: int = 0
    duplicated: int = 0


@dataclass(slots=True)
class Network(Generic[M]):
    """A heap of (deliver_at, seq, frm, to, message); seq breaks ties deterministically."""

    rng: random.Random
    profile: NetProfile = field(default_factory=NetProfile)
    blocked: set[tuple[int, int]] = field(default_factory=set)
    stats: NetStats = field(default_factory=NetStats)
    shuffle: bool = True
    hold: set[tuple[int, int]] = field(default_factory=set)
    held: list[tuple[int, int, M]] = field(default_factory=list)
    _heap: list[tuple[int, int, int, int, M]] = field(default_factory=list)
    _seq: int = 0

    def _delay(self) -> int:
        p = self.profile
        if p.straggle and self.rng.random() < p.straggle:
            return self.rng.randint(5, 30)
        if p.max_delay <= p.min_delay:
            return p.min_delay
        return self.rng.randint(p.min_delay, p.max_delay)

    def send(self, frm: int, to: int, msg: M, now: int) -> None:
        self.stats.sent += 1
        p = self.profile
        if p.drop and self.rng.random() < p.drop:
            self.stats.dropped += 1
            return
        copies = 1
        if p.duplicate and self.rng.random() < p.duplicate:
            copies = 2
            self.stats.duplicated += 1
        for _ in range(copies):
            self._seq += 1
            # A random secondary key shuffles messages due in the same tick.
            heapq.heappush(self._heap, (now + self._delay(), self._seq, frm, to, msg))

    def due(self, now: int) -> list[tuple[int, int, M]]:
        """Pop every message due by ``now`` in a seeded random order; blocked ones vanish."""
        batch: list[tuple[int, int, M]] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, frm, to, msg = heapq.heappop(heap)
            if (frm, to) in self.blocked:
                self.stats.blocked += 1
                continue
            if (frm, to) in self.hold:
                self.held.append((frm, to, msg))
                continue
            batch.append((frm, to, msg))
        if self.shuffle and len(batch) > 1:
            self.rng.shuffle(batch)
        self.stats.delivered += len(batch)
        return batch

    def release(self, frm: int, to: int, *, reverse: bool, copies: int, now: int) -> int:
        """Re-inject held messages of one link, possibly reversed and duplicated."""
        self.hold.discard((frm, to))
        mine = [h for h in self.held if h[0] == frm and h[1] == to]
        self.held = [h for h in self.held if not (h[0] == frm and h[1] == to)]
        if reverse:
            mine.reverse()
        for _ in range(copies):
            for f, t, m in mine:
                self._seq += 1
                heapq.heappush(self._heap, (now, self._seq, f, t, m))
        return len(mine)

    def pending(self) -> int:
        return len(self._heap)

    def pop_next(self) -> tuple[int, int, M] | None:
        """The oldest deliverable message in flight (scenarios step one message at a time)."""
        heap = self._heap
        while heap:
            _, _, frm, to, msg = heapq.heappop(heap)
            if (frm, to) in self.blocked:
                self.stats.blocked += 1
                continue
            if (frm, to) in self.hold:
                self.held.append((frm, to, msg))
                continue
            self.stats.delivered += 1
            return (frm, to, msg)
        return None

    def drain(self) -> list[tuple[int, int, M]]:
        """Everything in flight, in send order (scenarios deliver deterministically)."""
        items = sorted(self._heap, key=lambda e: e[1])
        self._heap.clear()
        out: list[tuple[int, int, M]] = []
        for _, _, frm, to, msg in items:
            if (frm, to) in self.blocked:
                self.stats.blocked += 1
                continue
            if (frm, to) in self.hold:
                self.held.append((frm, to, msg))
                continue
            out.append((frm, to, msg))
        self.stats.delivered += len(out)
        return out

    def cut(self, node: int) -> None:
        """Forget messages to and from ``node``: it crashed and its connections reset."""
        self._heap = [e for e in self._heap if e[3] != node and e[2] != node]
        heapq.heapify(self._heap)
        self.held = [h for h in self.held if h[0] != node and h[1] != node]

    def partition(self, groups: Iterable[Iterable[int]], all_nodes: Iterable[int]) -> None:
        """Block every link between different groups; nodes in no group are isolated."""
        side: dict[int, int] = {}
        for i, g in enumerate(groups):
            for n in g:
                side[n] = i
        nodes = list(all_nodes)
        for a in nodes:
            for b in nodes:
                if a != b and side.get(a, -1 - a) != side.get(b, -1 - b):
                    self.blocked.add((a, b))

    def block(self, frm: int, to: int) -> None:
        self.blocked.add((frm, to))

    def heal(self) -> None:
        self.blocked.clear()
