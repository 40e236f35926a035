"""The in-memory netlayer: pairs, the switchboard, EOF, close, backpressure and counters."""

from __future__ import annotations

import asyncio

import pytest

from charter.ocapn.netlayer.base import Connection
from charter.ocapn.netlayer.memory import (
    ConnectionClosedError,
    MemoryConnection,
    Switchboard,
    UnknownPeerError,
    memory_pair,
)


async def read_exactly(conn: Connection, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = await asyncio.wait_for(conn.read(), 5)
        if not chunk:
            break
        data += chunk
    return bytes(data)


async def test_pair_exchanges_and_coalesces() -> None:
    a, b = memory_pair("alice", "bob")
    assert a.peer_designator == "bob" and b.peer_designator == "alice"
    a.write(b"hello ")
    a.write(b"world")
    await a.drain()
    assert await b.read() == b"hello world"
    b.write(b"back")
    assert await a.read() == b"back"
    assert a.stats.writes == 2 and a.stats.bytes_written == 11
    assert b.stats.reads == 1 and b.stats.bytes_read == 11


async def test_close_gives_peer_eof_after_pending_bytes() -> None:
    a, b = memory_pair()
    a.write(b"last words")
    a.close()
    await a.wait_closed()
    assert a.is_closing
    assert await b.read() == b"last words"
    assert await b.read() == b""
    assert b.is_closing
    with pytest.raises(ConnectionClosedError):
        a.write(b"more")


async def test_read_wakes_on_later_write_and_on_close() -> None:
    a, b = memory_pair()
    reader = asyncio.create_task(b.read())
    await asyncio.sleep(0)
    assert not reader.done()
    a.write(b"x")
    assert await asyncio.wait_for(reader, 5) == b"x"
    reader = asyncio.create_task(b.read())
    await asyncio.sleep(0)
    a.close()
    assert await asyncio.wait_for(reader, 5) == b""


async def test_drain_waits_for_a_slow_reader() -> None:
    a, b = memory_pair(high_water=10)
    a.write(b"0123456789ABCDEF")
    drain = asyncio.create_task(a.drain())
    await asyncio.sleep(0)
    assert not drain.done()
    assert await b.read() == b"0123456789ABCDEF"
    await asyncio.wait_for(drain, 5)


async def test_drain_released_when_peer_closes() -> None:
    a, b = memory_pair(high_water=1)
    a.write(b"abc")
    drain = asyncio.create_task(a.drain())
    await asyncio.sleep(0)
    b.close()
    await asyncio.wait_for(drain, 5)


async def test_switchboard_dials_by_designator_and_counts_writes() -> None:
    seen: list[bytes] = []
    board = Switchboard(on_write=lambda conn, data: seen.append(data))
    alice = board.netlayer("alice")
    bob = board.netlayer("bob")
    accepted: asyncio.Queue[Connection] = asyncio.Queue()

    async def handler(conn: Connection) -> None:
        await accepted.put(conn)
        data = await conn.read()
        conn.write(data.upper())
        await conn.drain()

    await bob.serve(handler)
    conn = await alice.connect("bob", {})
    assert conn.peer_designator == "bob"
    server_side = await asyncio.wait_for(accepted.get(), 5)
    assert server_side.peer_designator == "alice"
    conn.write(b"ping")
    assert await asyncio.wait_for(conn.read(), 5) == b"PING"
    assert seen == [b"ping", b"PING"]
    assert board.total_writes == 2 and board.total_bytes == 8
    await alice.close()
    await bob.close()


async def test_unknown_designator_is_refused() -> None:
    board = Switchboard()
    alice = board.netlayer("alice")
    with pytest.raises(UnknownPeerError) as info:
        await alice.connect("nobody", {})
    assert info.value.code == "ocapn.netlayer.memory.unknown_peer"


async def test_netlayer_close_closes_connections_and_stops_handlers() -> None:
    board = Switchboard()
    server = board.netlayer("server")
    client = board.netlayer("client")
    started = asyncio.Event()

    async def handler(conn: Connection) -> None:
        started.set()
        await asyncio.Event().wait()  # held open until the netlayer closes

    await server.serve(handler)
    conn = await client.connect("server", {})
    await asyncio.wait_for(started.wait(), 5)
    await server.close()
    assert await asyncio.wait_for(conn.read(), 5) == b""
    with pytest.raises(UnknownPeerError):
        await client.connect("server", {})
    await client.close()


async def test_many_concurrent_connections() -> None:
    board = Switchboard()
    server = board.netlayer("server")

    async def echo(conn: Connection) -> None:
        while data := await conn.read():
            conn.write(data)
            await conn.drain()
        conn.close()

    await server.serve(echo)
    clients = [board.netlayer(f"c{i}") for i in range(50)]

    async def one(i: int) -> bytes:
        conn = await clients[i].connect("server", {})
        payload = f"message {i}".encode() * 100
        conn.write(payload)
        got = await read_exactly(conn, len(payload))
        conn.close()
        return got

    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(one(i)) for i in range(50)]
    for i, task in enumerate(tasks):
        assert task.result() == f"message {i}".encode() * 100
    for c in clients:
        await c.close()
    await server.close()


def test_connection_without_peer_is_an_error() -> None:
    async def body() -> None:
        conn = MemoryConnection("x", None)
        with pytest.raises(Exception, match="no peer"):
            conn.write(b"data")

    asyncio.run(body())
