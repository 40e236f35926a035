"""Which delivered events await an ack, and how far a subscription's offset may move.

A pure state machine (times are passed in): the WebSocket driver feeds it what it sent,
the acks it received and the clock; it answers what to resend and the offset to store.
The stored offset only ever moves to just below the lowest unacknowledged event, so a
restart from it loses nothing (acknowledged events above it may come again: at least once).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["AckWindow", "InFlight"]


@dataclass
class InFlight:
    offset: int
    event_id: str
    payload: dict[str, Any]
    deadline: float
    sends: int = 1


class AckWindow:
    """Delivery bookkeeping of one subscription on one connection."""

    def __init__(self, offset: int, read_ahead: int, ack_timeout: float) -> None:
        if read_ahead < 1 or ack_timeout <= 0:
            raise ValueError("read_ahead >= 1 and ack_timeout > 0")
        self.read_ahead = read_ahead
        self.ack_timeout = ack_timeout
        self.scanned = offset
        """Every event at or below this offset was examined (sent or filtered out)."""
        self._stored = offset
        self._inflight: dict[str, InFlight] = {}

    @property
    def capacity(self) -> int:
        return self.read_ahead - len(self._inflight)

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    @property
    def offset(self) -> int:
        """The offset it is safe to store: everything at or below is acknowledged or skipped."""
        if not self._inflight:
            return self.scanned
        return min(f.offset for f in self._inflight.values()) - 1

    def skip(self, offset: int) -> None:
        """An event the filter does not match: examined, nothing to deliver."""
        self._advance_scan(offset)

    def sent(self, offset: int, event_id: str, payload: dict[str, Any], now: float) -> None:
        if self.capacity <= 0:
            raise RuntimeError("read-ahead window is full")
        self._advance_scan(offset)
        self._inflight[event_id] = InFlight(offset, event_id, payload, now + self.ack_timeout)

    def ack(self, event_id: str) -> bool:
        """Forget an acknowledged event; False if it was not in flight (a duplicate ack)."""
        return self._inflight.pop(event_id, None) is not None

    def due(self, now: float) -> list[InFlight]:
        """Events whose ack is overdue, oldest first; their deadlines restart."""
        out = sorted(
            (f for f in self._inflight.values() if f.deadline <= now), key=lambda f: f.offset
        )
        for f in out:
            f.deadline = now + self.ack_timeout
            f.sends += 1
        return out

    def next_deadline(self) -> float | None:
        return min((f.deadline for f in self._inflight.values()), default=None)

    def take_offset(self) -> int | None:
        """The storable offset if it moved since last taken (filtered-out events move it too)."""
        offset = self.offset
        if offset > self._stored:
            self._stored = offset
            return offset
        return None

    def _advance_scan(self, offset: int) -> None:
        if offset <= self.scanned:
            raise ValueError(f"offset {offset} is not past {self.scanned}")
        self.scanned = offset
