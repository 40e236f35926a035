"""Sans-I/O batching: messages in, sealed batches out, by count, bytes and age.

Messages that share recipients (one key: broadcast, or one private group) wait in one
open batch. A batch seals when adding a message reaches ``max_count`` or would pass
``max_bytes`` (the message then opens the next batch), or when its oldest message has
waited ``max_wait`` seconds. The caller feeds ``now`` (any monotonic clock) and sleeps
until ``deadline()``; nothing here reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["BatchLimits", "Batcher", "Sealed"]

K = TypeVar("K")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class BatchLimits:
    max_count: int = 500
    max_bytes: int = 1 << 20
    max_wait: float = 0.02
    """Seconds the first message of a batch may wait for company."""

    def __post_init__(self) -> None:
        if self.max_count < 1 or self.max_bytes < 1 or self.max_wait < 0:
            raise ValueError("batch limits must be positive")


@dataclass(slots=True)
class _Open(Generic[T]):
    opened: float
    items: list[T] = field(default_factory=list)
    size: int = 0


@dataclass(frozen=True, slots=True)
class Sealed(Generic[K, T]):
    key: K
    items: tuple[T, ...]
    size: int


class Batcher(Generic[K, T]):
    def __init__(self, limits: BatchLimits | None = None) -> None:
        self.limits = limits or BatchLimits()
        self._open: dict[K, _Open[T]] = {}

    def add(self, key: K, item: T, size: int, now: float) -> list[Sealed[K, T]]:
        out: list[Sealed[K, T]] = []
        b = self._open.get(key)
        if b is not None and b.items and b.size + size > self.limits.max_bytes:
            out.append(self._seal(key))
            b = None
        if b is None:
            b = self._open[key] = _Open(now)
        b.items.append(item)
        b.size += size
        if len(b.items) >= self.limits.max_count or b.size >= self.limits.max_bytes:
            out.append(self._seal(key))
        return out

    def tick(self, now: float) -> list[Sealed[K, T]]:
        due = [k for k, b in self._open.items() if now - b.opened >= self.limits.max_wait]
        return [self._seal(k) for k in due]

    def flush(self) -> list[Sealed[K, T]]:
        return [self._seal(k) for k in list(self._open)]

    def deadline(self) -> float | None:
        """When the oldest open batch is due (``None``: nothing open)."""
        if not self._open:
            return None
        return min(b.opened for b in self._open.values()) + self.limits.max_wait

    def pending(self) -> int:
        return sum(len(b.items) for b in self._open.values())

    def _seal(self, key: K) -> Sealed[K, T]:
        b = self._open.pop(key)
        return Sealed(key, tuple(b.items), b.size)
