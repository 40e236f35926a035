"""SQLite is opened the way the module notes say: WAL, NORMAL sync, foreign keys, busy timeout."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from charter.store import Store, StoreUnavailable, open_store, store_url


async def test_default_is_sqlite_in_wal_mode_under_the_data_dir(tmp_path: Path) -> None:
    store = await open_store(None, tmp_path / "node")
    try:
        assert (tmp_path / "node" / "index.db").exists()
        async with store.read() as session:
            pragmas = [
                (await session.execute(text(f"PRAGMA {p}"))).scalar_one()
                for p in (
                    "journal_mode",
                    "synchronous",
                    "foreign_keys",
                    "busy_timeout",
                    "cache_size",
                    "mmap_size",
                )
            ]
        assert pragmas == ["wal", 1, 1, 10_000, -32768, 268435456]
    finally:
        await store.close()


def test_urls_choose_the_async_drivers(tmp_path: Path) -> None:
    assert store_url("sqlite:///x.db", None).drivername == "sqlite+aiosqlite"
    assert store_url("postgresql://u@h/db", None).drivername == "postgresql+asyncpg"
    assert store_url(None, tmp_path).database == str(tmp_path.resolve() / "index.db")
    with pytest.raises(StoreUnavailable):
        store_url("mysql://u@h/db", None)
    with pytest.raises(StoreUnavailable):
        store_url(None, None)


async def test_unreachable_postgres_is_a_typed_error(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://postgres@/none?host={tmp_path}&port=1"
    with pytest.raises(StoreUnavailable):
        await open_store(url, None)


async def test_a_new_database_held_by_another_connection_is_waited_for(tmp_path: Path) -> None:
    # Another connection in a transaction on a database not yet in WAL mode: SQLite
    # refuses the switch at once ("database is locked"), without its busy handler. A
    # node's components open the same new database at start-up, one of them migrating.
    path = tmp_path / "node" / "index.db"
    path.parent.mkdir()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO t VALUES (1)")
    loop = asyncio.get_running_loop()
    loop.call_later(0.3, holder.execute, "COMMIT")
    try:
        store = await open_store(None, tmp_path / "node", migrate=False)
        try:
            async with store.read() as session:
                mode = (await session.execute(text("PRAGMA journal_mode"))).scalar_one()
                rows = (await session.execute(text("SELECT count(*) FROM t"))).scalar_one()
            assert (mode, rows) == ("wal", 1)
        finally:
            await store.close()
    finally:
        holder.close()


async def test_a_finished_session_returns_its_connection_without_a_rollback(
    trip_store: Store, sqlite_trips: list[str]
) -> None:
    store, trips = trip_store, sqlite_trips
    async with store.read() as s:
        await s.execute(text("SELECT 1"))
    async with store.transaction() as s:
        await s.execute(text("UPDATE counters SET value = value WHERE name = 'none'"))
    assert "rollback" not in trips and trips.count("commit") == 2
    # a session left in a transaction (cancelled while it held the write lock) is
    # rolled back before its connection serves anyone else
    entered = asyncio.Event()

    async def hold() -> None:
        async with store.transaction() as s:
            await s.execute(text("INSERT INTO counters (name, value) VALUES ('held', 1)"))
            entered.set()
            await asyncio.sleep(30)

    task = asyncio.create_task(hold())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with asyncio.timeout(5), store.transaction() as s:
        await s.execute(text("INSERT INTO counters (name, value) VALUES ('after', 1)"))
    async with store.read() as s:
        names = {r[0] for r in await s.execute(text("SELECT name FROM counters"))}
    assert "after" in names and "held" not in names
