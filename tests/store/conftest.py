"""Fixtures of the store tests."""

from __future__ import annotations

import pytest


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
