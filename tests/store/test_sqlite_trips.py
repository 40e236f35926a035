"""SQLite statements make one trip to the connection's thread and behave as before."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from charter.store import open_store
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
