"""Many rows in few statements: the index database's hot inserts.

A round of the messaging service stores hundreds of rows per table. ``executemany``
steps SQLite once per row, and Python's ``sqlite3`` gives up and takes back the GIL
around every step: with the event loop busy on the other side, each row waits for the
loop to yield. One ``INSERT ... VALUES (...), (...), ...`` per chunk steps once. The
statement text is cached per table, column list, row count and parameter style, and
values go through each column type's bind processor, so a row stores exactly what
``insert(table)`` would have stored. Drivers whose parameter style this does not spell
fall back to ``executemany``.

Updates by key do the same on SQLite with ``UPDATE ... FROM (VALUES ...)``. PostgreSQL
keeps ``executemany``: asyncpg pipelines it on the event loop, with no thread and no GIL
in between, and its untyped ``VALUES`` parameters would need a cast per column.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Table, bindparam, insert, update
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["insert_many", "update_many"]

_MAX_PARAMS = 30_000
"""Per statement; SQLite allows 32,766 host parameters, PostgreSQL 32,767."""
_MAX_ROWS = 500

_PLACEHOLDERS: dict[str, Callable[[int], str]] = {
    "qmark": lambda _i: "?",
    "numeric_dollar": lambda i: f"${i}",
    "format": lambda _i: "%s",
}


@functools.lru_cache(maxsize=256)
def _statement(
    table: Table, columns: tuple[str, ...], rows: int, dialect: Dialect, returning: tuple[str, ...]
) -> str:
    prep = dialect.identifier_preparer
    mark = _PLACEHOLDERS[dialect.paramstyle]
    names = ", ".join(prep.format_column(table.c[c]) for c in columns)
    width = len(columns)
    values = ", ".join(
        "(" + ", ".join(mark(r * width + k + 1) for k in range(width)) + ")" for r in range(rows)
    )
    back = ", ".join(prep.format_column(table.c[c]) for c in returning)
    tail = f" RETURNING {back}" if returning else ""
    return f"INSERT INTO {prep.format_table(table)} ({names}) VALUES {values}{tail}"


@functools.lru_cache(maxsize=256)
def _processors(
    table: Table, columns: tuple[str, ...], dialect: Dialect
) -> tuple[Callable[[Any], Any] | None, ...]:
    return tuple(table.c[c].type._cached_bind_processor(dialect) for c in columns)


def _defaults_missing(table: Table, columns: tuple[str, ...]) -> bool:
    return any(c.default is not None and c.key not in columns for c in table.c)


async def insert_many(
    session: AsyncSession,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    returning: tuple[str, ...] = (),
) -> list[tuple[Any, ...]]:
    """Insert ``rows`` (dicts with the same keys) into ``table`` in the session's transaction.

    With ``returning`` (column names), answers those columns of every inserted row, in no
    particular order (SQLite does not promise one), from the same statements.
    """
    if not rows:
        return []
    conn = await session.connection()
    dialect = conn.dialect
    columns = tuple(rows[0])
    out: list[tuple[Any, ...]] = []
    if dialect.paramstyle not in _PLACEHOLDERS or _defaults_missing(table, columns):
        if not returning:
            await session.execute(insert(table), list(rows))
            return out
        stmt = insert(table).returning(*(table.c[c] for c in returning))
        got = await session.execute(stmt, list(rows))
        return [tuple(r) for r in got]
    procs = _processors(table, columns, dialect)
    converted = [(i, proc) for i, proc in enumerate(procs) if proc is not None]
    values = itemgetter(*columns)
    width = len(columns)
    per = max(1, min(_MAX_ROWS, _MAX_PARAMS // width))
    for start in range(0, len(rows), per):
        part = rows[start : start + per]
        params: list[Any] = []
        for row in part:
            if len(row) != width:
                raise ValueError("every row of a bulk insert has the same columns")
            taken: Any = values(row)
            if width == 1:
                taken = (taken,)
            if converted:
                taken = list(taken)
                for i, proc in converted:
                    taken[i] = proc(taken[i])
            params.extend(taken)
        text = _statement(table, columns, len(part), dialect, returning)
        got = await conn.exec_driver_sql(text, tuple(params))
        if returning:
            out.extend(tuple(r) for r in got)
    return out


_SQLITE_UPDATE_FROM = sqlite3.sqlite_version_info >= (3, 33, 0)


@functools.lru_cache(maxsize=256)
def _update_statement(
    table: Table, key: str, columns: tuple[str, ...], rows: int, dialect: Dialect
) -> str:
    prep = dialect.identifier_preparer
    name = prep.format_table(table)
    width = len(columns) + 1
    sets = ", ".join(
        f"{prep.format_column(table.c[c])} = v.column{k + 2}" for k, c in enumerate(columns)
    )
    values = ", ".join("(" + ", ".join("?" * width) + ")" for _ in range(rows))
    return (
        f"UPDATE {name} SET {sets} FROM (VALUES {values}) AS v "
        f"WHERE {name}.{prep.format_column(table.c[key])} = v.column1"
    )


async def update_many(
    session: AsyncSession, table: Table, key: str, rows: Sequence[dict[str, Any]]
) -> None:
    """Update rows of ``table`` by ``key``; each dict holds ``b_<key>`` and the new values
    (every dict the same columns; a key given twice takes its last values)."""
    if not rows:
        return
    bkey = f"b_{key}"
    columns = tuple(c for c in rows[0] if c != bkey)
    conn = await session.connection()
    dialect = conn.dialect
    if dialect.name != "sqlite" or dialect.paramstyle != "qmark" or not _SQLITE_UPDATE_FROM:
        stmt = (
            update(table)
            .where(table.c[key] == bindparam(bkey))
            .values({c: bindparam(c) for c in columns})
        )
        await session.execute(stmt, list(rows))
        return
    last = {row[bkey]: row for row in rows}
    todo = list(last.values())
    procs = _processors(table, (key, *columns), dialect)
    per = max(1, min(_MAX_ROWS, _MAX_PARAMS // (len(columns) + 1)))
    for start in range(0, len(todo), per):
        part = todo[start : start + per]
        params: list[Any] = []
        for row in part:
            if len(row) != len(columns) + 1:
                raise ValueError("every row of a bulk update has the same columns")
            for c, proc in zip((bkey, *columns), procs, strict=True):
                v = row[c]
                params.append(v if proc is None else proc(v))
        stmt_text = _update_statement(table, key, columns, len(part), dialect)
        await conn.exec_driver_sql(stmt_text, tuple(params))
