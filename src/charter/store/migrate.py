"""Bring the index database to the current schema, once, even with two processes starting.

Migrations run programmatically at open, inside one transaction that first takes a lock:
SQLite's write lock (``BEGIN IMMEDIATE``) or a PostgreSQL transaction-scoped advisory lock.
A second process waits for the first, then finds the schema current and does nothing.
"""

from __future__ import annotations

import asyncio
import weakref
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from charter.store.engine import Store

__all__ = ["MIGRATIONS", "alembic_config", "current_revision", "head_revision", "upgrade"]

MIGRATIONS = Path(__file__).with_name("migrations")
_PG_LOCK_KEY = 0x43484152_5445  # "CHARTE": any constant shared by every Charter node


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """An alembic config for our migrations, bound to an open connection or a URL."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    else:
        connection.execute(text("SELECT 1"))  # begins: BEGIN IMMEDIATE takes the write lock
    command.upgrade(alembic_config(connection), "head")


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


async def upgrade(store: Store) -> None:
    # alembic keeps module-global state while it runs: one upgrade at a time per process
    loop = asyncio.get_running_loop()
    lock = _LOCKS.get(loop)
    if lock is None:
        lock = _LOCKS[loop] = asyncio.Lock()
    async with lock, store.write_engine.connect() as conn:
        await conn.run_sync(_upgrade)
        await conn.commit()


async def current_revision(store: Store) -> str | None:
    async with store.engine.connect() as conn:
        return await conn.run_sync(_current)
