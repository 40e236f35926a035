"""Alembic environment: migrate an open connection (the normal path) or a URL (``alembic`` CLI)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from charter.store.models import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        transactional_ddl=True,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_url(url: str) -> None:
    from charter.store.engine import open_store

    store = await open_store(url, None, migrate=False)
    try:
        async with store.write_engine.connect() as conn:
            await conn.run_sync(_run)
            await conn.commit()
    finally:
        await store.close()


def run() -> None:
    if context.is_offline_mode():
        context.configure(
            url=context.config.get_main_option("sqlalchemy.url"),
            target_metadata=target_metadata,
            literal_binds=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url or pass an open connection")
    asyncio.run(_run_url(url))


run()
