"""Private groups, known by the hash of their sorted members."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from charter.store.clock import now_us
from charter.store.models import GroupRow

__all__ = ["ensure_group", "get_group", "groups_of_member"]


async def ensure_group(session: AsyncSession, group_hash: str, members: Sequence[str]) -> GroupRow:
    """The group row, created on first sight; ``members`` are stored sorted and unique."""
    existing = await session.get(GroupRow, group_hash)
    if existing is not None:
        return existing
    row = GroupRow(hash=group_hash, members=sorted(set(members)), created_us=now_us())
    async with session.begin_nested():
        session.add(row)
    return row


async def get_group(session: AsyncSession, group_hash: str) -> GroupRow | None:
    return await session.get(GroupRow, group_hash)


async def groups_of_member(session: AsyncSession, member: str) -> list[GroupRow]:
    """Groups that include ``member`` (filtered here: JSON containment differs per database)."""
    rows = (await session.execute(select(GroupRow).order_by(GroupRow.created_us))).scalars()
    return [g for g in rows if member in g.members]
