"""Runtimes wired together over the in-memory netlayer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest

from charter.ocapn.netlayer.memory import MemoryConnection, Switchboard
from charter.ocapn.runtime import Runtime


class Wire:
    """Who wrote on the switchboard, in order (one entry per write)."""

    def __init__(self) -> None:
        self.writers: list[str | None] = []
        self.data: list[bytes] = []

    def __call__(self, conn: MemoryConnection, data: bytes) -> None:
        self.writers.append(conn.local_designator)
        self.data.append(data)


@pytest.fixture
def wire() -> Wire:
    return Wire()


@pytest.fixture
def switchboard(wire: Wire) -> Switchboard:
    return Switchboard(on_write=wire)


MakeRuntime = Callable[..., Coroutine[Any, Any, Runtime]]


@pytest.fixture
async def make_runtime(switchboard: Switchboard) -> AsyncIterator[MakeRuntime]:
    made: list[Runtime] = []

    async def make(name: str, **kw: Any) -> Runtime:
        rt = Runtime([switchboard.netlayer(name)], **kw)
        await rt.start()
        made.append(rt)
        return rt

    yield make
    async with asyncio.timeout(10):
        for rt in made:
            await rt.close()


async def eventually(cond: Callable[[], bool], limit: float = 5.0) -> None:
    """Wait until ``cond()`` holds, letting the loop run; fail after ``limit`` seconds.

    The conditions polled here (table sizes after GC traffic) have no event to wait on.
    """
    async with asyncio.timeout(limit):
        while not cond():  # noqa: ASYNC110 - polling state that has no event
            await asyncio.sleep(0.001)
