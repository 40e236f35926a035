"""Named state blobs of the multi-party layer, kept in the index database.

The aggregator's snapshot and the sender's nonce counters are written in the same
transaction as the messages and events they account for, so a restart resumes exactly
where the last committed round ended.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import Table, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from charter.store.clock import now_us
from charter.store.models import StateRow

__all__ = ["delete_states_before", "load_state", "load_states", "save_state", "save_states"]


async def load_state(session: AsyncSession, name: str) -> bytes | None:
    row = await session.get(StateRow, name)
    return None if row is None else bytes(row.value)


async def save_state(session: AsyncSession, name: str, value: bytes) -> None:
    """Overwrite (or create) the named state."""
    await save_states(session, {name: value})


async def save_states(session: AsyncSession, values: Mapping[str, bytes]) -> None:
    """Overwrite (or create) named states: one ``INSERT ... ON CONFLICT DO UPDATE`` (the
    same statement on SQLite and PostgreSQL) for all of them."""
    if not values:
        return
    stamp = now_us()
    rows = [{"name": n, "value": v, "updated_us": stamp} for n, v in values.items()]
    conn = await session.connection()  # Core: the ORM's bulk-insert path cost ~1 ms a call
    await conn.execute(_upsert(conn.dialect.name), rows)


@functools.cache
def _upsert(dialect: str) -> Any:
    """The named-state upsert for ``dialect``, one row per parameter set."""
    table = cast(Table, StateRow.__table__)
    stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    return stmt.on_conflict_do_update(
        index_elements=[table.c.name],
        set_={"value": stmt.excluded.value, "updated_us": stmt.excluded.updated_us},
    )


async def load_states(session: AsyncSession, prefix: str) -> list[tuple[str, bytes]]:
    """Every state whose name starts with ``prefix``, in name order."""
    rows = await session.execute(
        select(StateRow.name, StateRow.value)
        .where(StateRow.name.like(prefix + "%"))
        .order_by(StateRow.name)
    )
    return [(name, bytes(value)) for name, value in rows]


async def delete_states_before(session: AsyncSession, prefix: str, suffix: str) -> None:
    """Delete the states named ``prefix + x`` with ``x < suffix``."""
    await session.execute(
        delete(StateRow)
        .where(StateRow.name.like(prefix + "%"), StateRow.name < prefix + suffix)
        .execution_options(synchronize_session=False)
    )
