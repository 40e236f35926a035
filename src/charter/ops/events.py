"""Log lines for the node's state changes: leader, role, signatures, halt.

``StateEvents`` is sans-I/O: fed successive summaries, it returns the events they imply.
``watch_ledger`` is its driver: it wakes whenever the node's Raft state moves (the
transport's change signal, no polling) and logs each event through stdlib logging.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from charter.node.ledger_service import LedgerService, LedgerStatus

__all__ = ["Event", "StateEvents", "watch_ledger"]

log = logging.getLogger("charter.ops.events")


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    level: int
    message: str
    fields: dict[str, Any]


def _key(s: LedgerStatus) -> tuple[int, int | None, str, int, bool]:
    return (s.term, s.leader, s.role, s.signed_upto, s.halted)


class StateEvents:
    """What changed between the last summary seen and this one."""

    def __init__(self) -> None:
        self._last: LedgerStatus | None = None

    def changed(self, s: LedgerStatus) -> bool:
        return self._last is None or _key(self._last) != _key(s)

    def observe(self, s: LedgerStatus) -> list[Event]:
        last, self._last = self._last, s
        events: list[Event] = []
        if s.leader is not None and (
            last is None or (last.leader, last.term) != (s.leader, s.term)
        ):
            events.append(
                Event(
                    "raft.leader_changed",
                    logging.INFO,
                    f"leader is node {s.leader} in term {s.term}",
                    {
                        "term": s.term,
                        "leader": s.leader,
                        "previous": None if last is None else last.leader,
                    },
                )
            )
        if last is None or last.role != s.role:
            events.append(
                Event(
                    "raft.role_changed",
                    logging.INFO,
                    f"this node is {s.role} in term {s.term}",
                    {
                        "term": s.term,
                        "role": s.role,
                        "previous": None if last is None else last.role,
                    },
                )
            )
        if last is not None and s.signed_upto > last.signed_upto:
            events.append(
                Event(
                    "ledger.signature",
                    logging.DEBUG,
                    f"signed up to seqno {s.signed_upto}",
                    {"signed_upto": s.signed_upto, "last_seqno": s.last_seqno},
                )
            )
        if s.halted and (last is None or not last.halted):
            events.append(
                Event(
                    "ledger.halted",
                    logging.ERROR,
                    "the ledger halted on a divergence alarm; writes refused",
                    {"alarms": s.alarms},
                )
            )
        return events


async def watch_ledger(service: LedgerService, events: StateEvents | None = None) -> None:
    """Log the node's state changes until cancelled; run it beside ``service.run()``."""
    tracker = events or StateEvents()
    transport = service.member.transport
    while True:
        for event in tracker.observe(service.summary()):
            log.log(
                event.level,
                event.message,
                extra={"event": event.name, "raft_id": service.node_id, **event.fields},
            )
        await transport.wait_for(lambda: tracker.changed(service.summary()))
