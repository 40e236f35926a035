"""The contract between CapTP sessions and the transports beneath them.

A netlayer turns a peer location into an authenticated, reliable, ordered byte
stream. Framing of Syrup messages on that stream is not the netlayer's business
(see ``charter.ocapn.framing``): every netlayer carries bytes the same way, so the
session driver above is identical over TLS, Unix sockets, plain TCP and memory.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable

from charter.errors import CharterError


class NetlayerError(CharterError):
    """A connection could not be made, was refused, or failed."""

    code = "ocapn.netlayer"


class PeerAuthenticationError(NetlayerError):
    """The remote side is not the peer its location names (e.g. wrong pinned key)."""

    code = "ocapn.netlayer.peer_authentication"


class Connection(ABC):
    """One established byte stream to a peer.

    ``write`` only queues (like an asyncio transport), so a driver may write many
    messages and then ``drain`` once: the transport coalesces them into few syscalls.
    """

    @property
    @abstractmethod
    def peer_designator(self) -> str | None:
        """The remote designator the netlayer verified, or None when it cannot verify one."""

    @abstractmethod
    def write(self, data: bytes) -> None:
        """Queue bytes for sending; never blocks."""

    @abstractmethod
    async def drain(self) -> None:
        """Wait until the queued bytes are below the transport's high-water mark."""

    @abstractmethod
    async def read(self) -> bytes:
        """The next chunk of received bytes; ``b""`` once the peer closed its side."""

    @abstractmethod
    def close(self) -> None:
        """Start closing; queued bytes are still flushed first."""

    @abstractmethod
    async def wait_closed(self) -> None:
        """Wait until the connection is fully closed."""

    @property
    @abstractmethod
    def is_closing(self) -> bool:
        """True once ``close`` was called or the peer went away."""


ConnectionHandler = Callable[[Connection], Awaitable[None]]


class Netlayer(ABC):
    """A transport family: dials peers and accepts their connections."""

    #: The transport name as it appears in OCapN locators (``tls``, ``unix``, ...).
    name: str

    @abstractmethod
    async def connect(self, designator: str, hints: dict[str, str]) -> Connection:
        """Open a connection to the peer that ``designator`` and ``hints`` name."""

    @abstractmethod
    async def serve(self, handler: ConnectionHandler) -> None:
        """Start accepting; ``handler`` runs in its own task for each inbound connection."""

    @property
    @abstractmethod
    def designator(self) -> str:
        """This side's own designator."""

    @property
    @abstractmethod
    def hints(self) -> dict[str, str]:
        """Hints a remote peer needs to reach this side (host, port, path, ...)."""

    @abstractmethod
    async def close(self) -> None:
        """Stop accepting and close every connection this netlayer made or accepted."""
