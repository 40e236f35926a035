"""Data items and datatypes (JSON Schemas by name and version)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from charter.store.clock import now_us
from charter.store.errors import StoreConflict
from charter.store.models import DataRow, DatatypeRow

__all__ = [
    "get_data",
    "get_datatype",
    "insert_data",
    "insert_datatype",
    "list_datatypes",
]


async def insert_data(session: AsyncSession, rows: Sequence[DataRow]) -> None:
    stamp = now_us()
    for row in rows:
        if not row.created_us:
            row.created_us = stamp
        session.add(row)
    await session.flush()


async def get_data(session: AsyncSession, data_id: str) -> DataRow | None:
    return (
        await session.execute(select(DataRow).where(DataRow.id == data_id))
    ).scalar_one_or_none()


async def insert_datatype(session: AsyncSession, row: DatatypeRow) -> DatatypeRow:
    """Register a datatype; a name and version can be defined only once."""
    if not row.created_us:
        row.created_us = now_us()
    try:
        async with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise StoreConflict(
            f"datatype {row.name} version {row.version} already exists",
            code="store.datatype.conflict",
        ) from None
    return row


async def get_datatype(session: AsyncSession, name: str, version: str) -> DatatypeRow | None:
    stmt = select(DatatypeRow).where(DatatypeRow.name == name, DatatypeRow.version == version)
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_datatypes(
    session: AsyncSession, *, name: str | None = None, after: int = 0, limit: int = 100
) -> list[DatatypeRow]:
    stmt = select(DatatypeRow).where(DatatypeRow.seq > after)
    if name is not None:
        stmt = stmt.where(DatatypeRow.name == name)
    return list((await session.execute(stmt.order_by(DatatypeRow.seq).limit(limit))).scalars())
