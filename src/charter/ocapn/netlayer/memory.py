"""In-process netlayer: connection pairs and a switchboard that routes by designator.

Several runtimes in one process (tests, simulations) dial each other by designator
exactly as they would over a real transport, with no sockets. Each connection keeps
counters and an optional write hook, so tests can count frames and bytes on the wire
(e.g. to prove that pipelined calls cost a single round trip).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from charter.ocapn.netlayer.base import (
    Connection,
    ConnectionHandler,
    Netlayer,
    NetlayerError,
)
from charter.ocapn.netlayer.stats import ConnectionStats

__all__ = [
    "MEMORY_TRANSPORT",
    "ConnectionClosedError",
    "ConnectionStats",
    "MemoryConnection",
    "MemoryNetlayer",
    "Switchboard",
    "UnknownPeerError",
    "memory_pair",
]

#: Transport name used in locators for the in-memory netlayer.
MEMORY_TRANSPORT = "memory"

#: Bytes a peer may leave unread before ``drain`` waits for it to catch up.
DEFAULT_HIGH_WATER = 1 << 20

WriteHook = Callable[["MemoryConnection", bytes], None]


class ConnectionClosedError(NetlayerError):
    """A write was attempted on a connection that is closed."""

    code = "ocapn.netlayer.closed"


class UnknownPeerError(NetlayerError):
    """No netlayer on the switchboard answers to the dialled designator."""

    code = "ocapn.netlayer.memory.unknown_peer"


class MemoryConnection(Connection):
    """One end of an in-memory byte stream; its twin is ``peer``."""

    def __init__(
        self,
        local_designator: str | None,
        peer_designator: str | None,
        *,
        high_water: int = DEFAULT_HIGH_WATER,
        on_write: WriteHook | None = None,
    ) -> None:
        self.local_designator = local_designator
        self._peer_designator = peer_designator
        self._high_water = high_water
        self.on_write = on_write
        self.stats = ConnectionStats()
        self._peer: MemoryConnection | None = None
        self._inbox: list[bytes] = []
        self._inbox_size = 0
        self._eof = False
        self._closing = False
        self._readable = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._closed = asyncio.Event()

    @property
    def peer(self) -> MemoryConnection:
        if self._peer is None:
            raise NetlayerError("memory connection has no peer")
        return self._peer

    @property
    def peer_designator(self) -> str | None:
        return self._peer_designator

    def write(self, data: bytes) -> None:
        if self._closing:
            raise ConnectionClosedError("write on a closed connection")
        if not data:
            return
        self.stats.writes += 1
        self.stats.bytes_written += len(data)
        if self.on_write is not None:
            self.on_write(self, data)
        self.peer._deliver(bytes(data))

    async def drain(self) -> None:
        peer = self.peer
        if self._closing:
            raise ConnectionClosedError("drain on a closed connection")
        # Wait until the peer has consumed enough; a peer that goes away releases us.
        while peer._inbox_size > self._high_water and not peer._eof and not peer._closing:
            peer._drained.clear()
            await peer._drained.wait()

    async def read(self) -> bytes:
        while not self._inbox:
            if self._eof or self._closing:
                return b""
            self._readable.clear()
            await self._readable.wait()
        data = b"".join(self._inbox) if len(self._inbox) > 1 else self._inbox[0]
        self._inbox.clear()
        self._inbox_size = 0
        self._drained.set()
        self.stats.reads += 1
        self.stats.bytes_read += len(data)
        return data

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._readable.set()
        self._drained.set()
        if self._peer is not None:
            self._peer._receive_eof()
        self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    @property
    def is_closing(self) -> bool:
        return self._closing or self._eof

    def _deliver(self, data: bytes) -> None:
        if self._closing:
            return  # the reader is gone: like a socket, bytes to a closed end vanish
        self._inbox.append(data)
        self._inbox_size += len(data)
        self._readable.set()

    def _receive_eof(self) -> None:
        self._eof = True
        self._readable.set()
        self._drained.set()


async def _run_handler(handler: ConnectionHandler, conn: Connection) -> None:
    await handler(conn)


def memory_pair(
    a_designator: str | None = "a",
    b_designator: str | None = "b",
    *,
    high_water: int = DEFAULT_HIGH_WATER,
    on_write: WriteHook | None = None,
) -> tuple[MemoryConnection, MemoryConnection]:
    """Two connected ends; each end's ``peer_designator`` is the other's designator."""
    a = MemoryConnection(a_designator, b_designator, high_water=high_water, on_write=on_write)
    b = MemoryConnection(b_designator, a_designator, high_water=high_water, on_write=on_write)
    a._peer = b
    b._peer = a
    return a, b


class Switchboard:
    """Routes dials between the memory netlayers of one process by designator."""

    def __init__(self, *, on_write: WriteHook | None = None) -> None:
        self.on_write = on_write
        self._listeners: dict[str, MemoryNetlayer] = {}
        self.connections: list[MemoryConnection] = []

    def netlayer(self, designator: str) -> MemoryNetlayer:
        """A new netlayer for ``designator`` attached to this switchboard."""
        return MemoryNetlayer(self, designator)

    def _register(self, netlayer: MemoryNetlayer) -> None:
        current = self._listeners.get(netlayer.designator)
        if current is not None and current is not netlayer:
            raise NetlayerError(f"designator {netlayer.designator!r} is already served")
        self._listeners[netlayer.designator] = netlayer

    def _unregister(self, netlayer: MemoryNetlayer) -> None:
        if self._listeners.get(netlayer.designator) is netlayer:
            del self._listeners[netlayer.designator]

    def _lookup(self, designator: str) -> MemoryNetlayer:
        listener = self._listeners.get(designator)
        if listener is None:
            raise UnknownPeerError(f"no memory peer serves designator {designator!r}")
        return listener

    @property
    def total_writes(self) -> int:
        return sum(c.stats.writes for c in self.connections)

    @property
    def total_bytes(self) -> int:
        return sum(c.stats.bytes_written for c in self.connections)


class MemoryNetlayer(Netlayer):
    """A switchboard-attached netlayer; dials are authenticated by construction."""

    name = MEMORY_TRANSPORT

    def __init__(self, switchboard: Switchboard, designator: str) -> None:
        self._switchboard = switchboard
        self._designator = designator
        self._handler: ConnectionHandler | None = None
        self._connections: set[MemoryConnection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def designator(self) -> str:
        return self._designator

    @property
    def hints(self) -> dict[str, str]:
        return {}

    async def serve(self, handler: ConnectionHandler) -> None:
        if self._closed:
            raise NetlayerError("netlayer is closed")
        self._handler = handler
        self._switchboard._register(self)

    async def connect(self, designator: str, hints: dict[str, str]) -> Connection:
        if self._closed:
            raise NetlayerError("netlayer is closed")
        remote = self._switchboard._lookup(designator)
        ours, theirs = memory_pair(
            self._designator, designator, on_write=self._switchboard.on_write
        )
        self._track(ours)
        self._switchboard.connections.append(ours)
        self._switchboard.connections.append(theirs)
        remote._accept(theirs)
        return ours

    def _accept(self, conn: MemoryConnection) -> None:
        handler = self._handler
        if handler is None or self._closed:
            conn.close()
            return
        self._track(conn)
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(
            _run_handler(handler, conn)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _track(self, conn: MemoryConnection) -> None:
        self._connections.add(conn)

    async def close(self) -> None:
        self._closed = True
        self._switchboard._unregister(self)
        for conn in list(self._connections):
            conn.close()
        self._connections.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
