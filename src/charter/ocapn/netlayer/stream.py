"""Socket-backed connections and the accept loop shared by the unix, tcp and tls netlayers.

A connection is an ``asyncio.Protocol`` (no StreamReader/StreamWriter layer): received
chunks are joined on ``read``, and writes made during one event-loop turn are
coalesced into a single transport write, so a driver that sends many small CapTP
messages pays one syscall per turn rather than one per message. Reading pauses when
the reader falls behind; ``drain`` waits when the kernel buffer is full.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import cast

from charter.ocapn.netlayer.base import (
    Connection,
    ConnectionHandler,
    Netlayer,
    NetlayerError,
)
from charter.ocapn.netlayer.stats import ConnectionStats

#: Unread bytes above which the connection stops reading from its socket.
READ_HIGH_WATER = 4 * 1024 * 1024


class ConnectionClosedError(NetlayerError):
    """A write was attempted on a connection that is closed."""

    code = "ocapn.netlayer.closed"


def _observe(ready: asyncio.Future[None]) -> None:
    # A failure nobody awaited (e.g. a refused inbound handshake) is not worth a warning.
    if not ready.cancelled():
        ready.exception()


class StreamConnection(asyncio.Protocol, Connection):
    """A connection over an asyncio transport; subclasses may transform the byte stream."""

    def __init__(self, peer_designator: str | None = None) -> None:
        self._peer_designator = peer_designator
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._inbox: list[bytes] = []
        self._inbox_size = 0
        self._reading_paused = False
        self._eof = False
        self._closing = False
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self._lost = asyncio.Event()
        self._pending: list[bytes] = []
        self._flush_scheduled = False
        self.error: BaseException | None = None
        self.stats = ConnectionStats()
        #: Called with each chunk of application bytes as it is sent (tests count frames).
        self.on_write: Callable[[StreamConnection, bytes], None] | None = None
        #: Resolves once the connection may carry application bytes (after any handshake).
        self.ready: asyncio.Future[None] = self._loop.create_future()
        self.ready.add_done_callback(_observe)
        #: Called once the transport is gone (the netlayer forgets the connection).
        self.on_lost: Callable[[StreamConnection], None] | None = None

    # -- asyncio.Protocol ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream protocol is only ever given a stream transport; uvloop's do not
        # subclass asyncio.Transport, so this is a cast rather than a check.
        self._transport = cast(asyncio.Transport, transport)
        self._connected()

    def _connected(self) -> None:
        """Plain streams are ready at once; TLS overrides this to handshake first."""
        self._ready()

    def _ready(self) -> None:
        if not self.ready.done():
            self.ready.set_result(None)

    def _fail(self, exc: Exception) -> None:
        """The connection cannot be used (e.g. handshake or authentication failure)."""
        if self.error is None:
            self.error = exc
        if not self.ready.done():
            self.ready.set_exception(exc)
        self.abort()

    def data_received(self, data: bytes) -> None:
        self._received(data)

    def _received(self, data: bytes) -> None:
        if not data or self._closing:
            return
        self._inbox.append(data)
        self._inbox_size += len(data)
        self._readable.set()
        if self._inbox_size > READ_HIGH_WATER and not self._reading_paused and self._transport:
            self._reading_paused = True
            self._transport.pause_reading()

    def eof_received(self) -> bool | None:
        self._eof = True
        self._readable.set()
        return None  # let the transport close: CapTP never half-closes

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None and self.error is None:
            self.error = exc
        self._eof = True
        self._readable.set()
        self._writable.set()
        self._lost.set()
        if not self.ready.done():
            self.ready.set_exception(
                NetlayerError(f"connection lost before it was established: {exc or 'EOF'}")
            )
        if self.on_lost is not None:
            self.on_lost(self)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # -- Connection ------------------------------------------------------------------

    @property
    def peer_designator(self) -> str | None:
        return self._peer_designator

    def write(self, data: bytes) -> None:
        if self._closing or self._lost.is_set():
            raise ConnectionClosedError("write on a closed connection")
        if not data:
            return
        self._pending.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._pending or self._transport is None or self._lost.is_set():
            self._pending.clear()
            return
        data = b"".join(self._pending) if len(self._pending) > 1 else self._pending[0]
        self._pending.clear()
        self.stats.writes += 1
        self.stats.bytes_written += len(data)
        if self.on_write is not None:
            self.on_write(self, data)
        self._send(data)

    def _send(self, data: bytes) -> None:
        """Put application bytes on the wire (TLS encrypts here)."""
        assert self._transport is not None
        self._transport.write(data)

    async def drain(self) -> None:
        if self._lost.is_set():
            raise ConnectionClosedError("drain on a closed connection")
        self._flush()
        await self._writable.wait()

    async def read(self) -> bytes:
        while not self._inbox:
            if self._eof or self._closing:
                return b""
            self._readable.clear()
            await self._readable.wait()
        data = b"".join(self._inbox) if len(self._inbox) > 1 else self._inbox[0]
        self._inbox.clear()
        self._inbox_size = 0
        self.stats.reads += 1
        self.stats.bytes_read += len(data)
        if self._reading_paused and self._transport is not None:
            self._reading_paused = False
            self._transport.resume_reading()
        return data

    def close(self) -> None:
        if self._closing:
            return
        self._flush()
        self._closing = True
        self._readable.set()
        self._shutdown()

    def _shutdown(self) -> None:
        """Close the transport after queued bytes are flushed (TLS sends close_notify first)."""
        if self._transport is not None:
            self._transport.close()
        else:
            self._lost.set()

    def abort(self) -> None:
        """Drop the connection at once, discarding queued bytes."""
        self._closing = True
        self._readable.set()
        if self._transport is not None:
            self._transport.abort()
        else:
            self._lost.set()

    async def wait_closed(self) -> None:
        await self._lost.wait()

    @property
    def is_closing(self) -> bool:
        return self._closing or self._eof or self._lost.is_set()


def _expire(conn: StreamConnection) -> None:
    if not conn.ready.done():
        conn._fail(NetlayerError("handshake timed out"))


async def _run_handler(handler: ConnectionHandler, conn: Connection) -> None:
    try:
        await handler(conn)
    finally:
        conn.close()


class StreamNetlayer(Netlayer):
    """Bookkeeping shared by socket netlayers: servers, connections, handler tasks."""

    #: Seconds allowed for a connection (and any handshake) to be established.
    connect_timeout: float = 10.0

    def __init__(self) -> None:
        self._servers: list[asyncio.Server] = []
        self._connections: set[StreamConnection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._handler: ConnectionHandler | None = None
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise NetlayerError("netlayer is closed")

    def _track(self, conn: StreamConnection) -> None:
        self._connections.add(conn)
        conn.on_lost = self._connections.discard

    def _server_protocol(self, conn: StreamConnection) -> StreamConnection:
        """Wire an accepted connection so its handler starts once it is ready."""
        self._track(conn)
        conn.ready.add_done_callback(lambda fut: self._accepted(conn, fut))
        if not conn.ready.done():
            # A peer that never finishes its handshake must not hold a connection.
            timer = conn._loop.call_later(self.connect_timeout, _expire, conn)
            conn.ready.add_done_callback(lambda _: timer.cancel())
        return conn

    def _accepted(self, conn: StreamConnection, ready: asyncio.Future[None]) -> None:
        handler = self._handler
        if ready.cancelled() or ready.exception() is not None:
            return  # refused during the handshake; the connection is already dropped
        if handler is None or self._closed:
            conn.abort()
            return
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(
            _run_handler(handler, conn)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _dial(
        self,
        factory: Callable[[], StreamConnection],
        opener: Callable[
            [Callable[[], StreamConnection]],
            Awaitable[tuple[asyncio.BaseTransport, asyncio.BaseProtocol]],
        ],
    ) -> StreamConnection:
        """Open a connection with ``opener`` and wait until it is ready (handshake done)."""
        self._check_open()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, protocol = await opener(factory)
                assert isinstance(protocol, StreamConnection)
                conn = protocol
                self._track(conn)
                try:
                    await asyncio.shield(conn.ready)
                except BaseException:
                    conn.abort()
                    raise
        except TimeoutError as exc:
            raise NetlayerError(f"{self.name}: connection timed out") from exc
        except OSError as exc:
            raise NetlayerError(f"{self.name}: cannot connect: {exc}") from exc
        return conn

    async def close(self) -> None:
        self._closed = True
        for server in self._servers:
            server.close()
        for conn in list(self._connections):
            conn.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for server in self._servers:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await server.wait_closed()
        for conn in list(self._connections):
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await conn.wait_closed()
        self._connections.clear()
        self._servers.clear()
