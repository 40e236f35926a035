"""SQLite is opened the way the module notes say: WAL, NORMAL sync, foreign keys, busy timeout."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from charter.store import StoreUnavailable, open_store, store_url


async def test_default_is_sqlite_in_wal_mode_under_the_data_dir(tmp_path: Path) -> None:
    store = await open_store(None, tmp_path / "node")
    try:
        assert (tmp_path / "node" / "index.db").exists()
        async with store.read() as session:
            pragmas = [
                (await session.execute(text(f"PRAGMA {p}"))).scalar_one()
                for p in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            ]
        assert pragmas == ["wal", 1, 1, 10_000]
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
