"""Read-index bookkeeping on the leader: reads waiting for a quorum to confirm leadership.

A read is given the commit index at the time it arrives; it may be answered once a
majority of voters has acknowledged a heartbeat carrying its context (so no newer leader
can have committed anything the read would miss). Acknowledging a later read confirms
every earlier one too, so they are released in arrival order.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass(slots=True)
class PendingRead:
    index: int
    requester: int
    ctx: bytes
    acks: set[int] = field(default_factory=set)


class ReadOnly:
    __slots__ = ("_by_ctx", "_queue")

    def __init__(self) -> None:
        self._by_ctx: dict[bytes, PendingRead] = {}
        self._queue: deque[PendingRead] = deque()

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, index: int, requester: int, ctx: bytes) -> bool:
        """Queue a read; False if a read with this context is already pending."""
        if ctx in self._by_ctx:
            return False
        r = PendingRead(index, requester, ctx)
        self._by_ctx[ctx] = r
        self._queue.append(r)
        return True

    def ack(self, frm: int, ctx: bytes) -> set[int] | None:
        """Record ``frm``'s confirmation of ``ctx``; the acknowledging set, or None if unknown."""
        r = self._by_ctx.get(ctx)
        if r is None:
            return None
        r.acks.add(frm)
        return r.acks

    def release(self, ctx: bytes) -> list[PendingRead]:
        """Remove and return every read up to and including the one named ``ctx``."""
        if ctx not in self._by_ctx:
            return []
        out: list[PendingRead] = []
        while self._queue:
            r = self._queue.popleft()
            del self._by_ctx[r.ctx]
            out.append(r)
            if r.ctx == ctx:
                break
        return out

    def last_ctx(self) -> bytes:
        return self._queue[-1].ctx if self._queue else b""

    def clear(self) -> None:
        self._by_ctx.clear()
        self._queue.clear()
