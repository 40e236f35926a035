"""The ``tls`` netlayer: TCP + TLS 1.3 with mutually pinned Ed25519 keys, no CA.

Identity is an Ed25519 key. The designator is the raw 32-byte public key in
lowercase RFC 4648 base32 without padding (52 characters), so a location names the
key the peer must prove. Each side presents a self-signed X.509 certificate for its
key. Certificate chains are not validated (there is no CA): the verify callback
accepts any certificate, and once the handshake has completed, and before any
application byte is read or written, each side checks the key in the peer's
certificate. This is sound because TLS 1.3's CertificateVerify proves possession of
the certified private key over the handshake transcript. The dialer refuses a server
whose key differs from the designator it dialled (``PeerAuthenticationError``); the
listener learns the client's key and exposes it as ``peer_designator``, which the
CapTP layer checks against the location the client claims.

The standard ``ssl`` module cannot accept an arbitrary self-signed client
certificate, so TLS runs in pyOpenSSL over memory BIOs beneath an asyncio protocol.
Plaintext written in one loop turn is encrypted in one call and sent in one write.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime
from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID
from OpenSSL import SSL

from charter.ocapn.netlayer.base import (
    Connection,
    ConnectionHandler,
    NetlayerError,
    PeerAuthenticationError,
)
from charter.ocapn.netlayer.stream import StreamConnection, StreamNetlayer
from charter.ocapn.netlayer.tcp_testing import _host_port

TLS_TRANSPORT = "tls"

_BIO_CHUNK = 256 * 1024
_DESIGNATOR_LENGTH = 52


class TlsHandshakeError(NetlayerError):
    """The TLS handshake failed (protocol error, unsupported peer, or refused certificate)."""

    code = "ocapn.netlayer.tls.handshake"


def designator_for_key(public_key: Ed25519PublicKey) -> str:
    """The designator of an Ed25519 public key: lowercase unpadded base32 of its 32 bytes."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def key_for_designator(designator: str) -> Ed25519PublicKey:
    """The Ed25519 public key a designator names; ``NetlayerError`` if it names none."""
    if len(designator) != _DESIGNATOR_LENGTH or designator != designator.lower():
        raise NetlayerError(f"tls: {designator!r} is not an Ed25519 key designator")
    try:
        raw = base64.b32decode(designator.upper() + "====")
    except (binascii.Error, ValueError) as exc:
        raise NetlayerError(f"tls: {designator!r} is not base32") from exc
    return Ed25519PublicKey.from_public_bytes(raw)


def self_signed_certificate(key: Ed25519PrivateKey) -> x509.Certificate:
    """A long-lived self-signed certificate for ``key``; only its public key matters."""
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, designator_for_key(key.public_key()))]
    )
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .sign(key, None)
    )


def _accept_any_certificate(
    conn: SSL.Connection, cert: object, errnum: int, depth: int, ok: int
) -> bool:
    # No CA: the key is pinned after the handshake (see the module docstring).
    return True


def _make_context(key: Ed25519PrivateKey) -> SSL.Context:
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
    ctx.set_max_proto_version(SSL.TLS1_3_VERSION)
    ctx.use_certificate(self_signed_certificate(key))
    ctx.use_privatekey(key)
    ctx.check_privatekey()
    ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, _accept_any_certificate)
    return ctx


class TlsConnection(StreamConnection):
    """A TLS 1.3 connection driven through memory BIOs; ready only after the key check."""

    def __init__(
        self,
        ctx: SSL.Context,
        *,
        server_side: bool,
        expected: str | None,
        allow: Callable[[str], bool] | None = None,
    ) -> None:
        super().__init__(None)
        self._allow = allow
        self._ssl = SSL.Connection(ctx, None)
        if server_side:
            self._ssl.set_accept_state()
        else:
            self._ssl.set_connect_state()
        self._expected = expected
        self._handshaking = True

    def _connected(self) -> None:
        self._handshake()  # the client's first flight; a server just waits

    def data_received(self, data: bytes) -> None:
        if self.ready.done() and self._handshaking:
            return  # failed already: ignore whatever else arrives
        self._ssl.bio_write(data)
        if self._handshaking:
            self._handshake()
            if self._handshaking:
                return
        self._decrypt()

    def _handshake(self) -> None:
        try:
            self._ssl.do_handshake()
        except SSL.WantReadError:
            self._pump()
            return
        except SSL.Error as exc:
            self._pump()
            self._fail(TlsHandshakeError(f"tls: handshake failed: {exc}"))
            return
        self._pump()
        try:
            designator = self._verify_peer()
        except NetlayerError as exc:
            self._fail(exc)
            return
        self._peer_designator = designator
        self._handshaking = False
        self._ready()

    def _verify_peer(self) -> str:
        cert = self._ssl.get_peer_certificate(as_cryptography=True)
        if cert is None:
            raise PeerAuthenticationError("tls: the peer presented no certificate")
        key = cert.public_key()
        if not isinstance(key, Ed25519PublicKey):
            raise PeerAuthenticationError("tls: the peer's certificate key is not Ed25519")
        designator = designator_for_key(key)
        if self._expected is not None and designator != self._expected:
            raise PeerAuthenticationError(
                f"tls: dialled {self._expected} but the peer proved key {designator}"
            )
        if self._allow is not None and not self._allow(designator):
            raise PeerAuthenticationError(f"tls: key {designator} is not allowed to connect")
        return designator

    def _pump(self) -> None:
        """Send whatever TLS has queued in its outgoing BIO as one transport write."""
        chunks: list[bytes] = []
        while True:
            try:
                chunks.append(self._ssl.bio_read(_BIO_CHUNK))
            except SSL.WantReadError:
                break
        if chunks and self._transport is not None and not self._transport.is_closing():
            self._transport.write(b"".join(chunks) if len(chunks) > 1 else chunks[0])

    def _decrypt(self) -> None:
        while True:
            try:
                data = self._ssl.recv(_BIO_CHUNK)
            except SSL.WantReadError:
                break
            except SSL.ZeroReturnError:
                self.eof_received()
                break
            except SSL.Error as exc:
                self._pump()
                self._fail(NetlayerError(f"tls: connection failed: {exc}"))
                return
            self._received(data)
        self._pump()

    def _send(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                sent = self._ssl.send(view)
                view = view[sent:]
        except SSL.Error as exc:
            self._fail(NetlayerError(f"tls: send failed: {exc}"))
            return
        self._pump()

    def _shutdown(self) -> None:
        if not self._handshaking:
            with contextlib.suppress(SSL.Error):
                self._ssl.shutdown()
            self._pump()
        super()._shutdown()


class TlsNetlayer(StreamNetlayer):
    """TLS 1.3 over TCP; this side's identity is ``key``, its designator that key's."""

    name = TLS_TRANSPORT

    def __init__(
        self,
        key: Ed25519PrivateKey,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        allow: Callable[[str], bool] | None = None,
    ) -> None:
        """``allow``, if given, decides which client designators may connect (e.g. the
        keys a constitution lists); others are refused during the TLS handshake."""
        super().__init__()
        self._allow = allow
        self._key = key
        self._ctx = _make_context(key)
        self._host = host
        self._port = port
        self._designator = designator_for_key(key.public_key())

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
                lambda: self._server_protocol(
                    TlsConnection(self._ctx, server_side=True, expected=None, allow=self._allow)
                ),
                self._host,
                self._port,
            )
        except OSError as exc:
            raise NetlayerError(f"tls: cannot listen on {self._host}:{self._port}: {exc}") from exc
        self._servers.append(server)
        self._port = server.sockets[0].getsockname()[1]

    async def connect(self, designator: str, hints: dict[str, str]) -> Connection:
        key_for_designator(designator)
        host, port = _host_port(hints, self.name)
        loop = asyncio.get_running_loop()
        return await self._dial(
            lambda: TlsConnection(self._ctx, server_side=False, expected=designator),
            lambda factory: loop.create_connection(factory, host, port),
        )
