"""Batches, the pins the ledger ordered, and blobs."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from charter.store.clock import now_us
from charter.store.models import BATCH_STATES, BLOB_STATES, BatchRow, BlobRow, PinRow

__all__ = [
    "get_batch",
    "get_blob",
    "insert_batch",
    "insert_pins",
    "mark_pins_dispatched",
    "pending_pins",
    "set_batch_state",
    "upsert_blob",
]


async def insert_batch(session: AsyncSession, row: BatchRow) -> BatchRow:
    if not row.created_us:
        row.created_us = now_us()
    session.add(row)
    await session.flush()
    return row


async def get_batch(session: AsyncSession, batch_id: str) -> BatchRow | None:
    return await session.get(BatchRow, batch_id)


async def set_batch_state(
    session: AsyncSession, batch_id: str, state: str, *, tx_id: str | None = None
) -> bool:
    if state not in BATCH_STATES:
        raise ValueError(f"unknown batch state {state!r}")
    values: dict[str, object] = {"state": state}
    if tx_id is not None:
        values["tx_id"] = tx_id
    if state == "confirmed":
        values["confirmed_us"] = now_us()
    result = await session.execute(update(BatchRow).where(BatchRow.id == batch_id).values(**values))
    return bool(getattr(result, "rowcount", 0))


async def insert_pins(session: AsyncSession, rows: Sequence[PinRow]) -> None:
    stamp = now_us()
    for row in rows:
        if not row.created_us:
            row.created_us = stamp
        if row.dispatched is None:
            row.dispatched = False
        session.add(row)
    await session.flush()


async def pending_pins(
    session: AsyncSession, *, context: str | None = None, limit: int = 1000
) -> list[PinRow]:
    """Pins not yet dispatched, in ledger order (optionally of one context)."""
    stmt = select(PinRow).where(PinRow.dispatched.is_(False))
    if context is not None:
        stmt = stmt.where(PinRow.context == context)
    stmt = stmt.order_by(PinRow.ledger_seqno, PinRow.index_in_batch).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def mark_pins_dispatched(session: AsyncSession, pin_seqs: Sequence[int]) -> None:
    if pin_seqs:
        await session.execute(
            update(PinRow).where(PinRow.seq.in_(pin_seqs)).values(dispatched=True)
        )


async def upsert_blob(
    session: AsyncSession, blob_hash: str, *, size: int, path: str, received: int
) -> BlobRow:
    """Record progress of a blob; it is complete once ``received`` reaches ``size``."""
    state = "complete" if received >= size else "partial"
    assert state in BLOB_STATES
    stamp = now_us()
    row = await session.get(BlobRow, blob_hash)
    if row is None:
        row = BlobRow(
            hash=blob_hash,
            size=size,
            path=path,
            state=state,
            received=received,
            created_us=stamp,
            updated_us=stamp,
        )
        session.add(row)
    else:
        row.size, row.path, row.received, row.state, row.updated_us = (
            size,
            path,
            received,
            state,
            stamp,
        )
    await session.flush()
    return row


async def get_blob(session: AsyncSession, blob_hash: str) -> BlobRow | None:
    return await session.get(BlobRow, blob_hash)
