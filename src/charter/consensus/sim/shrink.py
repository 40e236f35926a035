"""Delta debugging over a failing run's injected events.

Re-runs the same seed with subsets of the schedule and keeps any subset that still violates
the same invariant (Zeller's ddmin, complement-first). The network's randomness stays that
of the seed, so a shrunk schedule is reproducible by (seed, events) exactly like the original.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def ddmin(items: Sequence[T], fails: Callable[[list[T]], bool], *, budget: int = 300) -> list[T]:
    """A 1-minimal (within ``budget`` trials) sub-list of ``items`` for which ``fails`` holds.

    ``fails(list(items))`` is assumed true. Order is preserved.
    """
    current = list(items)
    n = 2
    trials = 0
    while len(current) >= 2 and trials < budget:
        chunk = max(1, len(current) // n)
        subsets = [current[i : i + chunk] for i in range(0, len(current), chunk)]
        reduced = False
        # Try removing each chunk (complement) first: it shrinks fastest in practice.
        for i in range(len(subsets)):
            if trials >= budget:
                break
            complement = [x for j, s in enumerate(subsets) if j != i for x in s]
            trials += 1
            if complement and fails(complement):
                current = complement
                n = max(n - 1, 2)
                reduced = True
                break
        if reduced:
            continue
        for s in subsets:
            if trials >= budget:
                break
            trials += 1
            if len(s) < len(current) and fails(s):
                current = s
                n = 2
                reduced = True
                break
        if reduced:
            continue
        if n >= len(current):
            break
        n = min(len(current), n * 2)
    if len(current) == 1 and trials < budget and fails([]):
        return []
    return current
