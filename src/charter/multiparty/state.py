"""Named state blobs of the multi-party layer, kept in the index database.

The aggregator's snapshot and the sender's nonce counters are written in the same
transaction as the messages and events they account for, so a restart resumes exactly
where the last committed round ended.
"""

from __future__ import annotations

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from charter.store.bulk import update_many
from charter.store.clock import now_us
from charter.store.models import StateRow

__all__ = ["delete_states_before", "load_state", "load_states", "save_state", "save_states"]


async def load_state(session: AsyncSession, name: str) -> bytes | None:
    row = await session.get(StateRow, name)
    return None if row is None else bytes(row.value)


async def save_state(session: AsyncSession, name: str, value: bytes) -> None:
    """Overwrite (or create) the named state: one statement when it exists already."""
    done = await session.execute(
        update(StateRow)
        .where(StateRow.name == name)
        .values(value=value, updated_us=now_us())
        .execution_options(synchronize_session=False)
    )
    if not getattr(done, "rowcount", 0):
        await session.execute(insert(StateRow).values(name=name, value=value, updated_us=now_us()))


async def save_states(
    session: AsyncSession, values: dict[str, bytes], stored: set[str] | frozenset[str]
) -> None:
    """Overwrite several named states. Those named in ``stored`` (states a committed
    transaction wrote before, which are never deleted) take one statement together; the
    others go through ``save_state``."""
    known = [name for name in values if name in stored]
    if len(known) < 2:
        known = []
    if known:
        stamp = now_us()
        rows = [{"b_name": n, "value": values[n], "updated_us": stamp} for n in known]
        await update_many(session, StateRow.__table__, "name", rows)  # type: ignore[arg-type]
    for name, value in values.items():
        if name not in known:
            await save_state(session, name, value)


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
