"""``tcp-testing-only``: plain TCP for conformance runs, never for real traffic.

It has no encryption and no authentication (``peer_designator`` is None), so it
refuses to listen on or dial anything but loopback unless built with ``force=True``.
Hints are ``host`` and ``port``, as the OCapN test suite expects.
"""

from __future__ import annotations

import asyncio
import ipaddress
import uuid

from charter.ocapn.netlayer.base import Connection, ConnectionHandler, NetlayerError
from charter.ocapn.netlayer.stream import StreamConnection, StreamNetlayer

TCP_TESTING_TRANSPORT = "tcp-testing-only"


class NonLoopbackAddressError(NetlayerError):
    """tcp-testing-only was asked to use a non-loopback address without ``force``."""

    code = "ocapn.netlayer.tcp_testing.non_loopback"


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class TcpTestingNetlayer(StreamNetlayer):
    """Plain TCP with host/port hints; loopback only unless forced."""

    name = TCP_TESTING_TRANSPORT

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        designator: str | None = None,
        force: bool = False,
    ) -> None:
        super().__init__()
        self._force = force
        self._check_host(host)
        self._host = host
        self._port = port
        self._designator = designator or uuid.uuid4().hex

    def _check_host(self, host: str) -> None:
        if not self._force and not is_loopback(host):
            raise NonLoopbackAddressError(
                f"tcp-testing-only refuses non-loopback address {host!r} (unencrypted, "
                "unauthenticated); force it explicitly (force=True, or --force on the command line)"
            )

    @property
    def designator(self) -> str:
        return self._designator

    @property
    def port(self) -> int:
        return self._port

    @property
    def hints(self) -> dict[str, str]:
        return {"host": self._host, "port": str(self._port)}

    async def serve(self, handler: ConnectionHandler) -> None:
        self._check_open()
        self._handler = handler
        loop = asyncio.get_running_loop()
        try:
            server = await loop.create_server(
                lambda: self._server_protocol(StreamConnection()), self._host, self._port
            )
        except OSError as exc:
            raise NetlayerError(
                f"tcp-testing-only: cannot listen on {self._host}:{self._port}: {exc}"
            ) from exc
        self._servers.append(server)
        self._port = server.sockets[0].getsockname()[1]

    async def connect(self, designator: str, hints: dict[str, str]) -> Connection:
        host, port = _host_port(hints, self.name)
        self._check_host(host)
        loop = asyncio.get_running_loop()
        return await self._dial(
            StreamConnection, lambda factory: loop.create_connection(factory, host, port)
        )


def _host_port(hints: dict[str, str], transport: str) -> tuple[str, int]:
    host = hints.get("host")
    port_text = hints.get("port")
    if not host or not port_text:
        raise NetlayerError(f"{transport}: the peer location needs 'host' and 'port' hints")
    try:
        port = int(port_text)
    except ValueError:
        raise NetlayerError(f"{transport}: bad port hint {port_text!r}") from None
    if not 0 < port < 65536:
        raise NetlayerError(f"{transport}: port {port} out of range")
    return host, port
