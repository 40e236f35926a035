"""The event log: offsets strictly increasing, visible in offset order, atomic with the writer."""

from __future__ import annotations

import asyncio

import pytest

from charter.store import Store
from charter.store.events import NewEvent, append_event, append_events, last_offset, list_events


async def test_offsets_increase_and_pages_follow_them(store: Store) -> None:
    async with store.transaction() as s:
        first = await append_event(s, "message_confirmed", reference="m1", topic="t")
        more = await append_events(s, [NewEvent("data_arrived", "d1"), NewEvent("blob_arrived")])
    assert [first.seq, *(r.seq for r in more)] == [1, 2, 3]
    async with store.read() as s:
        assert [e.seq for e in await list_events(s, after=1, limit=1)] == [2]
        assert [e.type for e in await list_events(s, types=["blob_arrived"])] == ["blob_arrived"]
        assert [e.reference for e in await list_events(s, topic="t")] == ["m1"]
        assert await last_offset(s) == 3


async def test_a_rolled_back_writer_leaves_no_event_and_no_hole(store: Store) -> None:
    with pytest.raises(RuntimeError):
        async with store.transaction() as s:
            await append_event(s, "message_failed")
            raise RuntimeError("the state change failed")
    async with store.transaction() as s:
        row = await append_event(s, "message_confirmed")
    assert row.seq == 1
    async with store.read() as s:
        assert [e.type for e in await list_events(s)] == ["message_confirmed"]


async def test_concurrent_writers_commit_in_offset_order(store: Store) -> None:
    """A reader that pages by offset while writers race never sees a later offset first."""
    writers, per_writer = 6, 10
    seen: list[int] = []
    done = asyncio.Event()

    async def write(n: int) -> None:
        for i in range(per_writer):
            async with store.transaction() as s:
                await append_event(s, "transaction_submitted", reference=f"{n}.{i}")

    async def read() -> None:
        after = 0
        while not done.is_set() or after < writers * per_writer:
            async with store.read() as s:
                page = await list_events(s, after=after, limit=1000)
            for e in page:
                assert e.seq == after + 1, f"offset {e.seq} visible before {after + 1}"
                after = e.seq
                seen.append(e.seq)
            if not page:
                await asyncio.sleep(0)  # yield to the writers; the loop ends on `done`

    reader = asyncio.create_task(read())
    async with asyncio.timeout(60):
        await asyncio.gather(*(write(n) for n in range(writers)))
        done.set()
        await reader
    assert seen == list(range(1, writers * per_writer + 1))


async def test_commit_wakes_waiters(store: Store) -> None:
    waiter = store.pulse.current()
    async with store.transaction() as s:
        await append_event(s, "message_confirmed")
        assert not waiter.is_set()
    assert waiter.is_set()
    quiet = store.pulse.current()
    async with store.transaction():
        pass
    assert not quiet.is_set()
