"""SQLite statements make one trip to the connection's thread and behave as before."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from charter.store import Store, open_store
from charter.store.sqlite_trips import OneTripConnection


async def test_statements_answer_rows_counts_and_errors(tmp_path: Path) -> None:
    store = await open_store(None, tmp_path, migrate=False)
    try:
        async with store.transaction() as s:
            raw = await (await s.connection()).get_raw_connection()
            assert type(raw.dbapi_connection) is OneTripConnection
            await s.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)"))
            r = await s.execute(text("INSERT INTO t (v) VALUES ('a')"))
            assert (r.rowcount, r.lastrowid) == (1, 1)
            await s.execute(text("INSERT INTO t (v) VALUES (:v)"), [{"v": "b"}, {"v": "c"}])
            r = await s.execute(text("UPDATE t SET v = v || '!' WHERE id > 1"))
            assert r.rowcount == 2
            rows = (await s.execute(text("SELECT id, v FROM t ORDER BY id"))).all()
            assert rows == [(1, "a"), (2, "b!"), (3, "c!")]
            r = await s.execute(text("SELECT v FROM t ORDER BY id"))
            assert (
                r.keys() == ["v"]
                and r.fetchone() == ("a",)
                and r.fetchmany(5) == [("b!",), ("c!",)]
            )
            empty = await s.execute(text("SELECT v FROM t WHERE id > 10"))
            assert empty.all() == [] and list(empty.keys()) == ["v"]
        with pytest.raises(IntegrityError):
            async with store.transaction() as s:
                await s.execute(text("INSERT INTO t (v) VALUES ('a')"))
        with pytest.raises(OperationalError):
            async with store.read() as s:
                await s.execute(text("SELECT nope FROM t"))
        async with store.read() as s:  # the failed transactions changed nothing
            assert (await s.execute(text("SELECT count(*) FROM t"))).scalar_one() == 3
            streamed = await s.stream(text("SELECT v FROM t ORDER BY id"))
            assert [row async for row in streamed] == [("a",), ("b!",), ("c!",)]
    finally:
        await store.close()


async def test_begin_travels_with_the_first_statement(
    tmp_path: Path, trip_store: Store, sqlite_trips: list[str]
) -> None:
    import sqlite3

    store, trips = trip_store, sqlite_trips
    async with store.read() as s:
        assert (await s.execute(text("SELECT 1"))).scalar_one() == 1
    assert trips == ["_run", "commit"]
    trips.clear()
    async with store.transaction():
        pass  # nothing ran: neither BEGIN nor COMMIT goes to the thread
    assert trips == []
    # a write transaction's BEGIN IMMEDIATE holds the write lock from its first
    # statement, a read, on: another connection cannot write meanwhile
    other = sqlite3.connect(tmp_path / "index.db", timeout=0, isolation_level=None)
    async with store.transaction() as s:
        await s.execute(text("SELECT 1"))
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
    other.execute("BEGIN IMMEDIATE")
    other.execute("ROLLBACK")
    other.close()
    # a failed transaction still rolls back what its statements did
    with pytest.raises(OperationalError):
        async with store.transaction() as s:
            await s.execute(text("INSERT INTO counters (name, value) VALUES ('x', 1)"))
            await s.execute(text("INSERT INTO no_such_table VALUES (1)"))
    async with store.read() as s:
        got = (await s.execute(text("SELECT count(*) FROM counters WHERE name='x'"))).scalar()
    assert got == 0
