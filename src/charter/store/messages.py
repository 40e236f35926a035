"""Messages: insert, look up, list with the API's filters, move through their states."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from charter.store.clock import now_us
from charter.store.errors import StoreConflict
from charter.store.models import MESSAGE_STATES, DataRow, MessageRow

__all__ = [
    "MessageFilter",
    "by_idempotency_key",
    "data_of",
    "get_message",
    "get_messages",
    "insert_message",
    "list_messages",
    "set_message_state",
]


async def insert_message(session: AsyncSession, row: MessageRow) -> MessageRow:
    """Add a message; a second one with the same member and idempotency key is a conflict."""
    if not row.created_us:
        row.created_us = now_us()
    try:
        async with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise StoreConflict(
            f"message {row.id} collides with a stored one (id or idempotency key)",
            code="store.message.conflict",
        ) from None
    return row


async def get_message(session: AsyncSession, message_id: str) -> MessageRow | None:
    return (
        await session.execute(select(MessageRow).where(MessageRow.id == message_id))
    ).scalar_one_or_none()


async def get_messages(session: AsyncSession, ids: Sequence[str]) -> dict[str, MessageRow]:
    if not ids:
        return {}
    rows = (await session.execute(select(MessageRow).where(MessageRow.id.in_(ids)))).scalars()
    return {r.id: r for r in rows}


async def by_idempotency_key(session: AsyncSession, member: str, key: str) -> MessageRow | None:
    stmt = select(MessageRow).where(MessageRow.member == member, MessageRow.idempotency_key == key)
    return (await session.execute(stmt)).scalar_one_or_none()


@dataclass(frozen=True)
class MessageFilter:
    """What ``GET /api/v1/messages`` may filter on; None means any."""

    topic: str | None = None
    type: str | None = None
    state: str | None = None
    member: str | None = None
    group_hash: str | None = None
    context: str | None = None
    cid: str | None = None


async def list_messages(
    session: AsyncSession, flt: MessageFilter, *, after: int = 0, limit: int = 100
) -> list[MessageRow]:
    """Messages in local order (``seq``), the first ``limit`` past ``after``."""
    stmt = select(MessageRow).where(MessageRow.seq > after)
    for column, value in (
        (MessageRow.topic, flt.topic),
        (MessageRow.type, flt.type),
        (MessageRow.state, flt.state),
        (MessageRow.member, flt.member),
        (MessageRow.group_hash, flt.group_hash),
        (MessageRow.context, flt.context),
        (MessageRow.cid, flt.cid),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    stmt = stmt.order_by(MessageRow.seq).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def set_message_state(
    session: AsyncSession,
    message_id: str,
    state: str,
    *,
    reason: str | None = None,
    pin_seqno: int | None = None,
    pin_tx_id: str | None = None,
    batch_id: str | None = None,
) -> bool:
    """Move a message to ``state`` (confirmed stamps ``confirmed_us``); False if unknown."""
    if state not in MESSAGE_STATES:
        raise ValueError(f"unknown message state {state!r}")
    values: dict[str, object] = {"state": state}
    for name, value in (
        ("reason", reason),
        ("pin_seqno", pin_seqno),
        ("pin_tx_id", pin_tx_id),
        ("batch_id", batch_id),
    ):
        if value is not None:
            values[name] = value
    if state == "confirmed":
        values["confirmed_us"] = now_us()
    result = await session.execute(
        update(MessageRow).where(MessageRow.id == message_id).values(**values)
    )
    return bool(getattr(result, "rowcount", 0))


async def data_of(session: AsyncSession, message_ids: Sequence[str]) -> dict[str, list[DataRow]]:
    """The data items of each message, in their order within the message."""
    out: dict[str, list[DataRow]] = {m: [] for m in message_ids}
    if not message_ids:
        return out
    stmt = (
        select(DataRow)
        .where(DataRow.message_id.in_(message_ids))
        .order_by(DataRow.message_id, DataRow.position)
    )
    for row in (await session.execute(stmt)).scalars():
        assert row.message_id is not None
        out[row.message_id].append(row)
    return out
