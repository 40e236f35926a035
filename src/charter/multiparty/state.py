"""Named state blobs of the multi-party layer, kept in the index database.

The aggregator's snapshot and the sender's nonce counters are written in the same
transaction as the messages and events they account for, so a restart resumes exactly
where the last committed round ended.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from charter.store import models

__all__ = ["load_state", "save_state"]

_ROW: Any = getattr(models, "StateRow", None)


async def load_state(session: AsyncSession, name: str) -> bytes | None:
    if _ROW is None:
        return _memory(session).get(name)
    row = await session.get(_ROW, name)
    return None if row is None else bytes(row.value)


async def save_state(session: AsyncSession, name: str, value: bytes) -> None:
    if _ROW is None:
        _memory(session)[name] = value
        return
    from charter.store.clock import now_us

    row = await session.get(_ROW, name)
    if row is None:
        session.add(_ROW(name=name, value=value, updated_us=now_us()))
    else:
        row.value = value
        row.updated_us = now_us()


def _memory(session: AsyncSession) -> dict[str, bytes]:
    """Until the store has a state table: kept per engine, lost at restart."""
    return _MEMORY.setdefault(str(session.bind.url), {})


_MEMORY: dict[str, dict[str, bytes]] = {}
