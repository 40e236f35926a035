"""Subscriptions, their stored offsets, and their dead letters."""

from __future__ import annotations

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from charter.store.clock import now_us
from charter.store.errors import StoreConflict
from charter.store.models import DeliveryRow, EventRow, SubscriptionRow

__all__ = [
    "advance_offset",
    "dead_letter",
    "dead_letters",
    "delete_subscription",
    "get_subscription",
    "insert_subscription",
    "list_subscriptions",
    "mark_redeliver",
    "next_redelivery",
    "settle_redelivery",
]


async def insert_subscription(session: AsyncSession, row: SubscriptionRow) -> SubscriptionRow:
    stamp = now_us()
    row.created_us = row.created_us or stamp
    row.updated_us = row.updated_us or stamp
    try:
        async with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise StoreConflict(
            f"a subscription named {row.name!r} already exists", code="store.subscription.exists"
        ) from None
    return row


async def get_subscription(session: AsyncSession, name: str) -> SubscriptionRow | None:
    return (
        await session.execute(select(SubscriptionRow).where(SubscriptionRow.name == name))
    ).scalar_one_or_none()


async def list_subscriptions(
    session: AsyncSession, *, transport: str | None = None, after: int = 0, limit: int = 1000
) -> list[SubscriptionRow]:
    stmt = select(SubscriptionRow).where(SubscriptionRow.seq > after)
    if transport is not None:
        stmt = stmt.where(SubscriptionRow.transport == transport)
    stmt = stmt.order_by(SubscriptionRow.seq).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def delete_subscription(session: AsyncSession, name: str) -> bool:
    sub = await get_subscription(session, name)
    if sub is None:
        return False
    await session.execute(delete(DeliveryRow).where(DeliveryRow.subscription_seq == sub.seq))
    await session.execute(delete(SubscriptionRow).where(SubscriptionRow.seq == sub.seq))
    return True


async def advance_offset(session: AsyncSession, subscription_seq: int, offset: int) -> bool:
    """Move the stored offset forward to ``offset`` (never back); False if it did not move."""
    result = await session.execute(
        update(SubscriptionRow)
        .where(SubscriptionRow.seq == subscription_seq, SubscriptionRow.stored_offset < offset)
        .values(stored_offset=offset, updated_us=now_us())
    )
    return bool(getattr(result, "rowcount", 0))


async def dead_letter(
    session: AsyncSession, subscription_seq: int, event_seq: int, attempts: int, error: str
) -> None:
    """Record an event this subscription gave up on (or failed again on redelivery)."""
    stamp = now_us()
    existing = (
        await session.execute(
            select(DeliveryRow).where(
                DeliveryRow.subscription_seq == subscription_seq,
                DeliveryRow.event_seq == event_seq,
            )
        )
    ).scalar_one_or_none()
    if existing is None:
        session.add(
            DeliveryRow(
                subscription_seq=subscription_seq,
                event_seq=event_seq,
                attempts=attempts,
                last_error=error,
                state="dead",
                created_us=stamp,
                updated_us=stamp,
            )
        )
    else:
        existing.attempts += attempts
        existing.last_error = error
        existing.state = "dead"
        existing.updated_us = stamp
    await session.flush()


async def dead_letters(
    session: AsyncSession,
    subscription_seq: int,
    *,
    after: int = 0,
    limit: int = 100,
    states: tuple[str, ...] = ("dead", "redeliver"),
) -> list[tuple[DeliveryRow, EventRow]]:
    stmt = (
        select(DeliveryRow, EventRow)
        .join(EventRow, EventRow.seq == DeliveryRow.event_seq)
        .where(
            DeliveryRow.subscription_seq == subscription_seq,
            DeliveryRow.state.in_(states),
            DeliveryRow.event_seq > after,
        )
        .order_by(DeliveryRow.event_seq)
        .limit(limit)
    )
    return [(row[0], row[1]) for row in (await session.execute(stmt)).all()]


async def mark_redeliver(
    session: AsyncSession, subscription_seq: int, event_ids: list[str] | None = None
) -> int:
    """Queue dead letters for another delivery (all of them, or those of ``event_ids``)."""
    stmt = (
        update(DeliveryRow)
        .where(DeliveryRow.subscription_seq == subscription_seq, DeliveryRow.state == "dead")
        .values(state="redeliver", updated_us=now_us())
    )
    if event_ids is not None:
        seqs = select(EventRow.seq).where(EventRow.id.in_(event_ids)).scalar_subquery()
        stmt = stmt.where(DeliveryRow.event_seq.in_(seqs))
    result = await session.execute(stmt)
    return int(getattr(result, "rowcount", 0))


async def next_redelivery(
    session: AsyncSession, subscription_seq: int
) -> tuple[DeliveryRow, EventRow] | None:
    found = await dead_letters(session, subscription_seq, limit=1, states=("redeliver",))
    return found[0] if found else None


async def settle_redelivery(session: AsyncSession, delivery_seq: int, attempts: int) -> None:
    """A redelivered dead letter got through."""
    await session.execute(
        update(DeliveryRow)
        .where(DeliveryRow.seq == delivery_seq)
        .values(
            state="delivered",
            attempts=DeliveryRow.attempts + attempts,
            last_error=None,
            updated_us=now_us(),
        )
    )


async def count_dead(session: AsyncSession, subscription_seq: int) -> int:
    stmt = select(func.count()).where(
        DeliveryRow.subscription_seq == subscription_seq, DeliveryRow.state == "dead"
    )
    return int((await session.execute(stmt)).scalar_one())
