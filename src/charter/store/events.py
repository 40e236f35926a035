"""The node's event log: appended in the writer's transaction, read in offset order.

Offsets come from the ``events`` row of ``counters``, advanced with an ``UPDATE`` in the
same transaction that appends the events. That row lock serializes appenders until they
commit, so events become visible in offset order on PostgreSQL too (a sequence would hand
out numbers that commit out of order, and a reader paging ``after=OFFSET`` would skip the
late one forever). On SQLite the write lock already does this.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from charter.store.bulk import insert_many
from charter.store.clock import now_us
from charter.store.engine import EVENTS_APPENDED
from charter.store.ids import new_ids
from charter.store.models import CounterRow, EventRow

__all__ = [
    "Appended",
    "NewEvent",
    "append_event",
    "append_events",
    "event_by_id",
    "last_offset",
    "list_events",
]

EVENTS_COUNTER = "events"


class NewEvent(NamedTuple):
    """An event to append; ``reference`` names what it is about (e.g. a message id).

    Named tuples, this and ``Appended``: thousands a second are made under load.
    """

    type: str
    reference: str | None = None
    correlator: str | None = None
    topic: str | None = None
    author: str | None = None
    group_hash: str | None = None
    tx_id: str | None = None


class Appended(NamedTuple):
    """Where an appended event landed: its offset and id."""

    seq: int
    id: str
    event: NewEvent


_EVENTS = cast(Table, EventRow.__table__)
_TAKE_SEQS = (
    update(CounterRow)
    .where(CounterRow.name == EVENTS_COUNTER)
    .values(value=CounterRow.value + bindparam("n"))
    .returning(CounterRow.value)
)


async def append_events(session: AsyncSession, events: Sequence[NewEvent]) -> list[Appended]:
    """Append events in order, in the caller's (write) transaction; answers where they went.

    One multi-row insert without ORM objects: the event log grows by thousands of rows a
    second under load.
    """
    if not events:
        return []
    n = len(events)
    conn = await session.connection()  # Core: no ORM bookkeeping for one counter row
    last = (await conn.execute(_TAKE_SEQS, {"n": n})).scalar_one()
    stamp = now_us()
    first = last - n + 1
    ids = new_ids(n)
    await insert_many(
        session,
        _EVENTS,
        [
            {
                "seq": first + i,
                "id": ids[i],
                "type": e.type,
                "reference": e.reference,
                "correlator": e.correlator,
                "topic": e.topic,
                "author": e.author,
                "group_hash": e.group_hash,
                "tx_id": e.tx_id,
                "created_us": stamp,
            }
            for i, e in enumerate(events)
        ],
    )
    session.info[EVENTS_APPENDED] = True
    return [Appended(first + i, ids[i], e) for i, e in enumerate(events)]


async def append_event(
    session: AsyncSession,
    type: str,
    *,
    reference: str | None = None,
    correlator: str | None = None,
    topic: str | None = None,
    author: str | None = None,
    group_hash: str | None = None,
    tx_id: str | None = None,
) -> Appended:
    """Append one event in the caller's transaction (commit makes it visible and wakes readers)."""
    (row,) = await append_events(
        session,
        [NewEvent(type, reference, correlator, topic, author, group_hash, tx_id)],
    )
    return row


async def list_events(
    session: AsyncSession,
    *,
    after: int = 0,
    limit: int = 100,
    types: Sequence[str] | None = None,
    topic: str | None = None,
) -> list[EventRow]:
    """Events with offsets above ``after``, in offset order."""
    stmt = select(EventRow).where(EventRow.seq > after)
    if types:
        stmt = stmt.where(EventRow.type.in_(list(types)))
    if topic is not None:
        stmt = stmt.where(EventRow.topic == topic)
    stmt = stmt.order_by(EventRow.seq).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def event_by_id(session: AsyncSession, event_id: str) -> EventRow | None:
    return (
        await session.execute(select(EventRow).where(EventRow.id == event_id))
    ).scalar_one_or_none()


async def last_offset(session: AsyncSession) -> int:
    """The offset of the newest event (0 when the log is empty)."""
    value = (await session.execute(select(func.max(EventRow.seq)))).scalar_one_or_none()
    return int(value or 0)
