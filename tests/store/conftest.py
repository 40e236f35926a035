"""Fixtures of the store tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from charter.store import Store, open_store


@pytest.fixture
def sqlite_trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the calls made on aiosqlite connection threads from now on."""
    import aiosqlite

    trips: list[str] = []
    real = aiosqlite.Connection._execute

    async def counting(
        self: aiosqlite.Connection, fn: object, *args: object, **kwargs: object
    ) -> object:
        trips.append(getattr(fn, "__name__", "?"))
        return await real(self, fn, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counting)
    return trips


@pytest.fixture
async def trip_store(tmp_path: Path, sqlite_trips: list[str]) -> AsyncIterator[Store]:
    """A migrated SQLite store under ``tmp_path``; ``sqlite_trips`` counts from here on
    (opening the store made trips of its own)."""
    store = await open_store(None, tmp_path)
    sqlite_trips.clear()
    try:
        yield store
    finally:
        await store.close()
