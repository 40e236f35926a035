"""The contract every socket netlayer keeps (unix, tcp-testing-only, tls), on loopback."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from charter.ocapn.netlayer.base import Connection, Netlayer, NetlayerError
from charter.ocapn.netlayer.stream import ConnectionClosedError, StreamConnection
from charter.ocapn.netlayer.tcp_testing import TcpTestingNetlayer
from charter.ocapn.netlayer.tls import TlsNetlayer
from charter.ocapn.netlayer.unix import UnixNetlayer


@dataclass
class Pair:
    kind: str
    server: Netlayer
    make_client: Callable[[], Netlayer]


@pytest.fixture(params=["unix", "tcp-testing-only", "tls"])
async def pair(request: pytest.FixtureRequest) -> AsyncIterator[Pair]:
    kind: str = request.param
    clients: list[Netlayer] = []
    with tempfile.TemporaryDirectory(prefix="charter-") as tmp:
        server: Netlayer
        if kind == "unix":
            server = UnixNetlayer(os.path.join(tmp, "server.sock"))

            def make() -> Netlayer:
                c = UnixNetlayer(os.path.join(tmp, f"c{len(clients)}.sock"))
                clients.append(c)
                return c
        elif kind == "tcp-testing-only":
            server = TcpTestingNetlayer()

            def make() -> Netlayer:
                c = TcpTestingNetlayer()
                clients.append(c)
                return c
        else:
            server = TlsNetlayer(Ed25519PrivateKey.generate())

            def make() -> Netlayer:
                c = TlsNetlayer(Ed25519PrivateKey.generate())
                clients.append(c)
                return c

        yield Pair(kind, server, make)
        for c in clients:
            await c.close()
        await server.close()


async def read_exactly(conn: Connection, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = await asyncio.wait_for(conn.read(), 10)
        if not chunk:
            break
        data += chunk
    return bytes(data)


async def echo(conn: Connection) -> None:
    while data := await conn.read():
        conn.write(data)
        await conn.drain()


async def test_connect_exchange_and_eof(pair: Pair) -> None:
    accepted: asyncio.Queue[Connection] = asyncio.Queue()

    async def handler(conn: Connection) -> None:
        await accepted.put(conn)
        await echo(conn)

    await pair.server.serve(handler)
    client = pair.make_client()
    conn = await client.connect(pair.server.designator, pair.server.hints)
    assert isinstance(conn, StreamConnection)
    written: list[bytes] = []
    conn.on_write = lambda _c, data: written.append(data)
    for i in range(20):
        conn.write(b"message %d;" % i)
    await conn.drain()
    expected = b"".join(b"message %d;" % i for i in range(20))
    # twenty writes in one loop turn leave as one chunk
    assert written == [expected]
    assert conn.stats.writes == 1 and conn.stats.bytes_written == len(expected)
    assert await read_exactly(conn, len(expected)) == expected
    assert conn.stats.bytes_read == len(expected)
    server_side = await asyncio.wait_for(accepted.get(), 10)
    if pair.kind == "tls":
        assert conn.peer_designator == pair.server.designator
        assert server_side.peer_designator == client.designator
    else:
        assert conn.peer_designator is None and server_side.peer_designator is None
    conn.close()
    await asyncio.wait_for(conn.wait_closed(), 10)
    assert conn.is_closing
    # the server handler saw EOF and returned, which closes its side
    await asyncio.wait_for(server_side.wait_closed(), 10)
    with pytest.raises(ConnectionClosedError):
        conn.write(b"after close")


async def test_server_close_gives_client_eof(pair: Pair) -> None:
    got_one = asyncio.Event()

    async def handler(conn: Connection) -> None:
        conn.write(b"bye")
        await conn.drain()
        conn.close()
        got_one.set()

    await pair.server.serve(handler)
    conn = await pair.make_client().connect(pair.server.designator, pair.server.hints)
    assert await read_exactly(conn, 3) == b"bye"
    assert await asyncio.wait_for(conn.read(), 10) == b""
    assert conn.is_closing


async def test_big_message_across_read_boundaries(pair: Pair) -> None:
    await pair.server.serve(echo)
    conn = await pair.make_client().connect(pair.server.designator, pair.server.hints)
    big = os.urandom(1 << 20) * 5  # 5 MiB: many TLS records and socket reads
    conn.write(big)
    reader = asyncio.create_task(read_exactly(conn, len(big)))
    await asyncio.wait_for(conn.drain(), 20)
    assert await asyncio.wait_for(reader, 20) == big


async def test_many_concurrent_connections(pair: Pair) -> None:
    await pair.server.serve(echo)
    client = pair.make_client()

    async def one(i: int) -> bytes:
        conn = await client.connect(pair.server.designator, pair.server.hints)
        payload = b"%d:" % i * 200
        conn.write(payload)
        await conn.drain()
        got = await read_exactly(conn, len(payload))
        conn.close()
        return got

    async with asyncio.timeout(30), asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(one(i)) for i in range(40)]
    assert [t.result() for t in tasks] == [b"%d:" % i * 200 for i in range(40)]


async def test_netlayer_close_drops_live_connections(pair: Pair) -> None:
    started = asyncio.Event()

    async def handler(conn: Connection) -> None:
        started.set()
        await asyncio.Event().wait()

    await pair.server.serve(handler)
    conn = await pair.make_client().connect(pair.server.designator, pair.server.hints)
    await asyncio.wait_for(started.wait(), 10)
    await asyncio.wait_for(pair.server.close(), 10)
    assert await asyncio.wait_for(conn.read(), 10) == b""


async def test_dial_to_nobody_is_a_netlayer_error(pair: Pair) -> None:
    await pair.server.serve(echo)
    hints = dict(pair.server.hints)
    await pair.server.close()
    with pytest.raises(NetlayerError):
        await pair.make_client().connect(pair.server.designator, hints)


async def test_missing_hints_are_refused(pair: Pair) -> None:
    with pytest.raises(NetlayerError):
        await pair.make_client().connect(pair.server.designator, {})
