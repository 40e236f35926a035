"""One trip to the SQLite connection's thread per statement.

aiosqlite runs each connection's calls on a thread of its own, and SQLAlchemy's adapter
makes a round trip to it to open a cursor, another to execute, another to fetch the
rows and another to close the cursor. Each trip is two thread wake-ups; on a busy node
(the event loop serving HTTP, two cores shared by several processes) a trip costs
milliseconds of wall time. ``OneTripConnection`` executes a statement, fetches its rows and
closes its cursor in a single call on the connection's thread. Results are fully
buffered, as SQLAlchemy's adapter buffers them too (server-side cursors are unchanged).
An idle read transaction went from 1.3 to 0.85 ms. On a busy node a trip costs 1.5-10 ms
of the event loop's wall time against 0.3-3 ms of work on the thread (the thread waits
for the GIL, its answer behind every queued callback), so the fewer a round makes, the
shorter it is (bench/RESULTS.md).

A transaction's BEGIN (the store begins every transaction explicitly, ``BEGIN IMMEDIATE``
for writers) travels with its first statement, and a transaction that ran none ends
without a trip; with the pool returning connections without a needless rollback
(``store/engine.py``), a one-statement session is two trips instead of four.
It relies on two internals of aiosqlite 0.22 that SQLAlchemy's own adapter also uses:
the wrapped ``sqlite3.Connection`` (``_conn``) and the call queue (``_execute``).
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
)
from sqlalchemy.util import await_

__all__ = ["OneTripConnection", "OneTripCursor"]

_Outcome = tuple[Any, int, int | None, list[Any] | None]


_PENDING = "_charter_pending_begin"
"""Attribute of the aiosqlite connection: the BEGIN its next statement runs first."""


def _run(
    conn: sqlite3.Connection, begin: str | None, sql: str, params: Any, many: bool
) -> _Outcome:
    """On the connection's thread: begin (if pending), execute, fetch everything, close."""
    cursor = conn.cursor()
    try:
        if begin is not None:
            cursor.execute(begin)
        if many:
            cursor.executemany(sql, params)
        elif params is None:
            cursor.execute(sql)
        else:
            cursor.execute(sql, params)
        description = cursor.description
        rows = cursor.fetchall() if description else None
        return description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered cursor whose ``execute`` is one call on the connection's thread."""

    __slots__ = ("_arraysize", "_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        # no trip here: the driver's cursor lives only inside ``_run``
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = {}  # type: ignore[assignment]
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._arraysize = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    async def _trip(self, sql: str, params: Any, many: bool) -> _Outcome:
        async with self._adapt_connection._execute_mutex:
            driver = self._connection
            begin = driver.__dict__.pop(_PENDING, None)
            return await driver._execute(_run, driver._conn, begin, sql, params, many)  # type: ignore[no-any-return]

    def _take(self, outcome: _Outcome) -> None:
        self._description, self._rowcount, self._lastrowid, rows = outcome
        self._rows = collections.deque(rows) if rows else collections.deque()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        try:
            self._take(await_(self._trip(operation, parameters, False)))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        try:
            self._take(await_(self._trip(operation, seq_of_parameters, True)))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    async def _async_soft_close(self) -> None:
        return  # nothing is open on the driver's side

    def close(self) -> None:
        self._rows.clear()

    def nextset(self) -> None:
        self._rows.clear()

    def setinputsizes(self, *inputsizes: Any) -> None:
        return None


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    """SQLAlchemy's aiosqlite connection, with one-trip cursors and a deferred BEGIN.

    ``defer_begin`` keeps a transaction's BEGIN for the trip of its first statement; a
    transaction that ends before running any statement never went to the thread, so
    its commit or rollback does not either.
    """

    __slots__ = ()
    _cursor_cls = OneTripCursor  # type: ignore[assignment]

    def defer_begin(self, sql: str) -> None:
        self._connection.__dict__[_PENDING] = sql

    @property
    def in_transaction(self) -> bool:
        """Whether SQLite holds a transaction open (False once closed). Read from the
        event loop's thread, which is safe while the connection runs nothing: between
        trips, or being returned to the pool."""
        try:
            return bool(self._connection._conn.in_transaction)
        except ValueError:  # aiosqlite's answer for a closed connection
            return False

    def _drop_pending(self) -> bool:
        """Forget a pending BEGIN; True if one was pending and SQLite has no transaction."""
        if self._connection.__dict__.pop(_PENDING, None) is None:
            return False
        return not self.in_transaction

    def cursor(self, server_side: bool = False) -> Any:
        if server_side and _PENDING in self._connection.__dict__:
            self.cursor().execute("SELECT 1")  # runs the pending BEGIN first
        return super().cursor(server_side)

    def commit(self) -> None:
        if not self._drop_pending():
            super().commit()

    def rollback(self) -> None:
        if not self._drop_pending():
            super().rollback()
