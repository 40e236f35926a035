"""Unix domain socket netlayer: a peer is reached at a socket path.

The hint ``path`` names the listening socket. The draft Unix-socket netlayer of the
OCapN group introduces peers through an introduction server passing anonymous socket
pairs; Charter's nodes on one machine instead listen on a path, which needs no third
process. The socket carries no identity, so ``peer_designator`` is None: CapTP's
signed session setup authenticates the peer above this layer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import uuid

from charter.ocapn.netlayer.base import Connection, ConnectionHandler, NetlayerError
from charter.ocapn.netlayer.stream import StreamConnection, StreamNetlayer

UNIX_TRANSPORT = "unix"


class UnixNetlayer(StreamNetlayer):
    """Listens on (and dials) Unix domain socket paths."""

    name = UNIX_TRANSPORT

    def __init__(self, path: str, *, designator: str | None = None) -> None:
        super().__init__()
        self._path = path
        self._designator = designator or uuid.uuid4().hex
        self._serving = False

    @property
    def designator(self) -> str:
        return self._designator

    @property
    def path(self) -> str:
        return self._path

    @property
    def hints(self) -> dict[str, str]:
        return {"path": self._path}

    async def serve(self, handler: ConnectionHandler) -> None:
        self._check_open()
        self._handler = handler
        loop = asyncio.get_running_loop()
        try:
            server = await loop.create_unix_server(
                lambda: self._server_protocol(StreamConnection()), self._path
            )
        except OSError as exc:
            raise NetlayerError(f"unix: cannot listen on {self._path!r}: {exc}") from exc
        self._servers.append(server)
        self._serving = True

    async def connect(self, designator: str, hints: dict[str, str]) -> Connection:
        path = hints.get("path")
        if not path:
            raise NetlayerError("unix: the peer location has no 'path' hint")
        loop = asyncio.get_running_loop()
        return await self._dial(
            StreamConnection, lambda factory: loop.create_unix_connection(factory, path)
        )

    async def close(self) -> None:
        await super().close()
        if self._serving:
            self._serving = False
            with contextlib.suppress(OSError):
                if stat.S_ISSOCK(os.stat(self._path).st_mode):
                    os.unlink(self._path)
