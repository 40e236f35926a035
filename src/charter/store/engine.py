"""Open the node's index database: SQLite by default, PostgreSQL in production.

Everything dialect-specific lives here, in engine setup: SQLite gets WAL journaling,
``synchronous=NORMAL``, foreign keys and a busy timeout, and explicit ``BEGIN`` statements
(pysqlite's implicit transactions would leave DDL and reads outside them); write
transactions take SQLite's write lock up front (``BEGIN IMMEDIATE``) so two writers wait
for each other instead of one failing mid-transaction. Queries above this module are the
same for both databases.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_connection
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session
from sqlalchemy.pool import PoolResetState, StaticPool
from sqlalchemy.util import await_

from charter.store.errors import StoreUnavailable
from charter.store.sqlite_trips import OneTripConnection

__all__ = [
    "DEFAULT_BUSY_TIMEOUT_MS",
    "EVENTS_APPENDED",
    "Pulse",
    "Store",
    "open_store",
    "store_url",
]

DEFAULT_BUSY_TIMEOUT_MS = 10_000
"""How long a SQLite writer waits for another writer's lock before failing."""
DEFAULT_POOL_SIZE = 16
"""Connections per node to its index database (reads and writes together)."""
EVENTS_APPENDED = "charter.events_appended"
"""``Session.info`` flag set by ``append_event``: wake event readers after commit."""
_STORE = "charter.store"
_WRITE = "charter_write"


class Pulse:
    """Wakes everyone waiting for "something changed" without losing a wake-up.

    Take ``current()`` *before* looking at the database, then wait on it: a change
    committed in between has already set it.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def current(self) -> asyncio.Event:
        return self._event

    def fire(self) -> None:
        event_, self._event = self._event, asyncio.Event()
        event_.set()


class IndexSession(Session):
    """The sync session behind the store's async sessions (hooks commit notifications)."""


@event.listens_for(IndexSession, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop(EVENTS_APPENDED, False):
        store = session.info.get(_STORE)
        if isinstance(store, Store):
            store.pulse.fire()


@event.listens_for(IndexSession, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(EVENTS_APPENDED, None)


class Store:
    """The index database of one node: sessions for reading and writing, and a change pulse.

    ``transaction()`` is a write transaction (committed on normal exit, rolled back on an
    exception); ``read()`` a read-only snapshot. Both yield an ``AsyncSession``. Write only
    inside ``transaction()`` (on SQLite a read transaction that starts writing can fail
    when another writer got there first), and never open a second ``transaction()`` while
    holding one: on SQLite the inner one waits for the outer's lock until the busy timeout.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.url = engine.url
        self.dialect = engine.dialect.name
        self.pulse = Pulse()
        """Fired after every commit that appended events."""
        self.write_engine = engine.execution_options(**{_WRITE: True})
        info = {_STORE: self}
        self._writes = async_sessionmaker(
            self.write_engine,
            expire_on_commit=False,
            sync_session_class=IndexSession,
            info=info,
        )
        self._reads = async_sessionmaker(
            engine, expire_on_commit=False, sync_session_class=IndexSession, info=info
        )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self._writes() as session, session.begin():
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._reads() as session, session.begin():
            yield session

    async def close(self) -> None:
        await self.engine.dispose()

    def __repr__(self) -> str:
        return f"Store({self.url.render_as_string(hide_password=True)!r})"


def store_url(url: str | None, data_dir: Path | None) -> URL:
    """The SQLAlchemy URL to open, with the async driver of its database chosen."""
    if url is None:
        if data_dir is None:
            raise StoreUnavailable("no store URL and no data directory to keep index.db in")
        return make_url(f"sqlite+aiosqlite:///{Path(data_dir).resolve() / 'index.db'}")
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreUnavailable(f"invalid store URL: {exc}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+asyncpg")
    raise StoreUnavailable(f"unsupported store database {backend!r} (sqlite or postgresql)")


_SQLITE_PRAGMAS = (
    "synchronous=NORMAL",
    "foreign_keys=ON",
    # A busy node's tables and indexes outgrow SQLite's default 2 MiB page cache within
    # minutes: a larger cache per connection, and the file mapped (shared by the pool's
    # connections through the OS page cache), keep the pages a write touches in memory.
    "cache_size=-32768",
    "mmap_size=268435456",
)


def _sqlite_setup(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    sync = engine.sync_engine

    @event.listens_for(sync, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        if type(dbapi_connection) is AsyncAdapt_aiosqlite_connection:
            dbapi_connection.__class__ = OneTripConnection  # same layout, one-trip cursors
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        _ensure_wal(cursor, busy_timeout_ms)
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(sync, "reset")
    def on_reset(dbapi_connection: Any, _record: Any, state: PoolResetState) -> None:
        """Roll back a connection returned to the pool only if a transaction is open.

        The pool's own reset rolls back every returned connection, which after a
        commit is one more trip to its thread per session for nothing.
        """
        if state.terminate_only or not state.asyncio_safe:
            return
        if not isinstance(dbapi_connection, OneTripConnection) or dbapi_connection.in_transaction:
            dbapi_connection.rollback()

    @event.listens_for(sync, "begin")
    def on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE, False)
        begin = "BEGIN IMMEDIATE" if write else "BEGIN"
        dbapi = conn.connection.dbapi_connection
        if isinstance(dbapi, OneTripConnection):
            dbapi.defer_begin(begin)  # sent with the transaction's first statement
        else:
            conn.exec_driver_sql(begin)


def _ensure_wal(cursor: Any, busy_timeout_ms: int) -> None:
    """Put a new database in WAL mode, waiting out another connection that holds it.

    Switching the journal mode needs the database to itself, and SQLite answers "database
    is locked" at once (no busy handler) while another connection of this node, say a
    component migrating the schema, is in a transaction. Once in WAL the mode is
    persistent (and asking again for it takes no lock), so only the first opening of a database
    ever waits here. This runs in
    the connect event, inside SQLAlchemy's greenlet: the pause awaits on the event loop.
    """
    deadline = time.monotonic() + busy_timeout_ms / 1000
    while True:
        try:
            # answers the mode now in force: "wal", or "memory" for an in-memory database
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.fetchall()
            return
        except Exception as exc:  # the driver adapter's OperationalError
            if "database is locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        await_(asyncio.sleep(0.01))


async def open_store(
    url: str | None,
    data_dir: Path | None,
    *,
    migrate: bool = True,
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    pool_size: int = DEFAULT_POOL_SIZE,
    echo: bool = False,
) -> Store:
    """Open (and by default migrate to the current schema) the node's index database."""
    target = store_url(url, data_dir)
    # A fixed pool, no overflow: an overflow connection is closed when returned, so under
    # load every extra session would open a fresh connection (on SQLite a new thread, the
    # connect pragmas and the WAL check). Sessions beyond the pool wait for one instead.
    kwargs: dict[str, Any] = {"echo": echo, "pool_size": pool_size, "max_overflow": 0}
    if target.get_backend_name() == "sqlite":
        database = target.database
        if database in (None, "", ":memory:"):
            kwargs = {"echo": echo, "poolclass": StaticPool}
        else:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
    if target.get_backend_name() == "sqlite":
        kwargs["pool_reset_on_return"] = None  # ``_sqlite_setup`` resets what needs it
        if "poolclass" not in kwargs:
            kwargs["pool_use_lifo"] = True  # the connection used last has its cache warm
    engine = create_async_engine(target, **kwargs)
    if target.get_backend_name() == "sqlite":
        _sqlite_setup(engine, busy_timeout_ms)
    store = Store(engine)
    if migrate:
        from charter.store.migrate import upgrade

        try:
            await upgrade(store)
        except (OperationalError, DBAPIError, OSError) as exc:
            await engine.dispose()
            raise StoreUnavailable(f"cannot open the index database: {exc}") from None
        except BaseException:
            await engine.dispose()
            raise
    return store
