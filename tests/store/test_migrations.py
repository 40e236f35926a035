"""The schema: migrations from empty equal the models, run once even when two openers race."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from charter.store import Store, open_store
from charter.store.migrate import current_revision, head_revision
from charter.store.models import Base


def _diff(connection: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


async def test_upgrade_from_empty_matches_the_models(store: Store) -> None:
    assert await current_revision(store) == head_revision()
    async with store.engine.connect() as conn:
        assert await conn.run_sync(_diff) == []
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert set(Base.metadata.tables) <= tables


async def test_two_openers_race_and_both_succeed(store_url: str | None, tmp_path: Path) -> None:
    stores = await asyncio.gather(*(open_store(store_url, tmp_path) for _ in range(3)))
    try:
        for s in stores:
            assert await current_revision(s) == head_revision()
        async with stores[0].read() as session:
            counters = (await session.execute(text("SELECT name, value FROM counters"))).all()
        assert [tuple(r) for r in counters] == [("events", 0)]
    finally:
        for s in stores:
            await s.close()


async def test_reopen_is_a_no_op(store_url: str | None, tmp_path: Path) -> None:
    first = await open_store(store_url, tmp_path)
    await first.close()
    again = await open_store(store_url, tmp_path)
    try:
        assert await current_revision(again) == head_revision()
    finally:
        await again.close()


def test_the_alembic_command_path_builds_the_same_schema(
    store_url: str | None, tmp_path: Path
) -> None:
    """``alembic upgrade head`` driven by a URL (what an operator would run) matches the models."""
    from alembic import command

    from charter.store.migrate import alembic_config

    url = store_url or f"sqlite:///{tmp_path / 'cli.db'}"
    command.upgrade(alembic_config(url=url), "head")

    async def check() -> None:
        store = await open_store(url, None, migrate=False)
        try:
            assert await current_revision(store) == head_revision()
            async with store.engine.connect() as conn:
                assert await conn.run_sync(_diff) == []
        finally:
            await store.close()

    asyncio.run(check())


def test_upgrading_an_older_schema_keeps_its_rows(store_url: str | None, tmp_path: Path) -> None:
    from alembic import command

    from charter.store.migrate import alembic_config

    url = store_url or f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(alembic_config(url=url), "0001")

    async def fill_then_open() -> None:
        old = await open_store(url, None, migrate=False)
        try:
            async with old.transaction() as s:
                await s.execute(
                    text(
                        "INSERT INTO messages (id, member, node, type, topic, context, state,"
                        " created_us) VALUES ('m1', 'a', 'a', 'broadcast', 't', 'c',"
                        " 'pending', 1)"
                    )
                )
        finally:
            await old.close()
        new = await open_store(url, None)
        try:
            assert await current_revision(new) == head_revision()
            async with new.read() as s:
                rows = (await s.execute(text("SELECT id, tag FROM messages"))).all()
            assert [tuple(r) for r in rows] == [("m1", None)]
        finally:
            await new.close()

    asyncio.run(fill_then_open())


_OPEN_IN_A_PROCESS = """
import asyncio, sys
from pathlib import Path
from charter.store import open_store
from charter.store.migrate import current_revision

async def main() -> None:
    url = sys.argv[1] or None
    store = await open_store(url, Path(sys.argv[2]))
    print(await current_revision(store))
    await store.close()

asyncio.run(main())
"""


async def test_two_processes_opening_a_new_database_do_not_race(
    store_url: str | None, tmp_path: Path
) -> None:
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _OPEN_IN_A_PROCESS,
            store_url or "",
            str(tmp_path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    async with asyncio.timeout(120):
        results = [await p.communicate() for p in procs]
    for p, (out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err.decode()
        assert out.decode().strip() == head_revision()
