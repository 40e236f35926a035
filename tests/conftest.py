"""Shared fixtures: the in-process ``charter`` CLI runner; the index database on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import functools
import io
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from charter.cli.main import main


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str

    def error_line(self) -> str:
        """The one-line error, checked to be exactly one line and no traceback."""
        assert self.code != 0, self.out
        assert "Traceback" not in self.err
        assert self.err.endswith("\n") and self.err.count("\n") == 1, self.err
        return self.err.strip()


CliRunner = Callable[..., CliResult]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    def run(*args: str, stdin: str | None = None) -> CliResult:
        monkeypatch.setattr(sys, "argv", ["charter", *args])
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin or ""))
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


# -- the index database: a throwaway PostgreSQL server and a `store` on either database ----

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_PORT = 5432
"""Only names the socket file in our private socket directory: no TCP listener is opened."""


def _as_postgres(*argv: str) -> list[str]:
    """Debian's initdb and postgres refuse to run as root: run them as the postgres user."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else list(argv)


def _chown_tree(path: Path, user: str) -> None:
    if os.geteuid() != 0:
        return
    uid, gid = pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, gid)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL 15 server for this test session, on a Unix socket only; stopped at the end.

    Yields the SQLAlchemy URL of an empty database ``charter`` (superuser ``postgres``).
    """
    if not (PG_BIN / "initdb").exists() or not (PG_BIN / "postgres").exists():
        pytest.skip(f"PostgreSQL 15 binaries are not installed under {PG_BIN}")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to run the server as")
    root = Path(tempfile.mkdtemp(prefix="charter-pg-"))
    data, sock, logfile = root / "data", root / "sock", root / "server.log"
    sock.mkdir()
    _chown_tree(root, "postgres")
    run = functools.partial(subprocess.run, check=True, capture_output=True, timeout=120)
    started = False
    try:
        run(
            _as_postgres(
                str(PG_BIN / "initdb"),
                "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync",
            )
        )  # fmt: skip
        options = (
            f"-c listen_addresses='' -k {sock} -p {PG_PORT} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200 "
            "-c wal_level=minimal -c max_wal_senders=0"
        )
        run(
            _as_postgres(
                str(PG_BIN / "pg_ctl"),
                "-D", str(data), "-l", str(logfile), "-o", options, "-w", "-t", "60", "start",
            )
        )  # fmt: skip
        started = True
        psql = [str(PG_BIN / "psql"), "-h", str(sock), "-p", str(PG_PORT), "-U", "postgres"]
        run(_as_postgres(*psql, "-d", "postgres", "-c", "CREATE DATABASE charter"))
        yield f"postgresql+asyncpg://postgres@/charter?host={sock}&port={PG_PORT}"
    finally:
        if started:
            subprocess.run(
                _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"),
                capture_output=True,
                timeout=60,
                check=False,
            )
        shutil.rmtree(root, ignore_errors=True)


async def fresh_postgres_database(admin_url: str, template: str | None = None) -> str:
    """Create a database on the session's server (empty, or a copy of ``template``)."""
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(admin_url)
    name = f"t_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(
        host=url.query["host"], port=int(url.query["port"]), user="postgres", database="postgres"
    )
    try:
        # FILE_COPY copies the files (no WAL, no dirty buffers for the shutdown checkpoint).
        copy = f' TEMPLATE "{template}"' if template else ""
        await conn.execute(f'CREATE DATABASE "{name}"{copy} STRATEGY FILE_COPY')
    finally:
        await conn.close()
    return url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_store_database(postgres_url: str) -> str:
    """A database migrated to head once per session; each ``store`` test empties it first."""
    from charter.store import open_store

    async def build() -> str:
        url = await fresh_postgres_database(postgres_url)
        store = await open_store(url, None)
        await store.close()
        return url

    return asyncio.run(build())


async def _emptied(url: str) -> str:
    """Empty every table of the index schema (offsets restart at 0) and answer ``url``."""
    import asyncpg
    from sqlalchemy.engine import make_url

    from charter.store.models import Base

    parsed = make_url(url)
    conn = await asyncpg.connect(
        host=parsed.query["host"],
        port=int(parsed.query["port"]),
        user="postgres",
        database=parsed.database,
    )
    try:
        tables = ", ".join(f'"{t}"' for t in Base.metadata.tables if t != "counters")
        await conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        await conn.execute("UPDATE counters SET value = 0")
    finally:
        await conn.close()
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """A URL for ``open_store`` on each database, of an empty database: SQLite under
    ``tmp_path`` (None means the default ``<data_dir>/index.db``), or a fresh database on the
    session's PostgreSQL server."""
    if request.param == "sqlite":
        return None
    admin = request.getfixturevalue("postgres_url")
    return str(asyncio.run(fresh_postgres_database(admin)))


@pytest.fixture(params=["sqlite", "postgresql"])
def store_target(request: pytest.FixtureRequest) -> str | None:
    """Which database a ``store`` test runs on: None for SQLite under ``tmp_path``, or the
    session's migrated PostgreSQL database, emptied (tests run one at a time)."""
    if request.param == "sqlite":
        return None
    return asyncio.run(_emptied(request.getfixturevalue("postgres_store_database")))


@pytest.fixture
async def store(store_target: str | None, tmp_path: Path) -> AsyncIterator[Any]:
    """The node's index database, migrated, on SQLite and on PostgreSQL."""
    from charter.store import open_store

    opened = await open_store(store_target, tmp_path)
    try:
        yield opened
    finally:
        await opened.close()
