"""TLS netlayer: pinned Ed25519 keys on both sides, refusal of anything else."""

from __future__ import annotations

import asyncio
import base64

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from OpenSSL import SSL

from charter.ocapn.netlayer.base import Connection, NetlayerError, PeerAuthenticationError
from charter.ocapn.netlayer.tls import (
    TlsConnection,
    TlsNetlayer,
    designator_for_key,
    key_for_designator,
)


def test_designator_is_lowercase_unpadded_base32_of_raw_key() -> None:
    key = Ed25519PrivateKey.generate().public_key()
    designator = designator_for_key(key)
    raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert designator == base64.b32encode(raw).decode().rstrip("=").lower()
    assert len(designator) == 52
    assert key_for_designator(designator).public_bytes(Encoding.Raw, PublicFormat.Raw) == raw
    for bad in ["", "abc", designator.upper(), designator[:-1] + "1"]:
        with pytest.raises(NetlayerError):
            key_for_designator(bad)


async def test_wrong_server_key_is_refused_before_any_application_byte() -> None:
    received: list[bytes] = []
    got = asyncio.Event()

    async def handler(conn: Connection) -> None:
        while data := await conn.read():
            received.append(data)
            got.set()

    server = TlsNetlayer(Ed25519PrivateKey.generate())
    await server.serve(handler)
    client = TlsNetlayer(Ed25519PrivateKey.generate())
    impostor = designator_for_key(Ed25519PrivateKey.generate().public_key())
    with pytest.raises(PeerAuthenticationError) as info:
        await client.connect(impostor, server.hints)
    assert info.value.code == "ocapn.netlayer.peer_authentication"
    # the right designator on the same address works
    conn = await client.connect(server.designator, server.hints)
    conn.write(b"hello")
    await conn.drain()
    await asyncio.wait_for(got.wait(), 10)
    assert received == [b"hello"]
    await client.close()
    await server.close()


async def test_dialling_a_malformed_designator_is_refused() -> None:
    client = TlsNetlayer(Ed25519PrivateKey.generate())
    with pytest.raises(NetlayerError):
        await client.connect("not-a-key", {"host": "127.0.0.1", "port": "1"})


def _raw_client_context(cert_key: object | None) -> SSL.Context:
    """A TLS client that does not follow our rules (no certificate, or a non-Ed25519 one)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
    ctx.set_verify(SSL.VERIFY_NONE)
    if isinstance(cert_key, ec.EllipticCurvePrivateKey):
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "p256")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(cert_key.public_key())
            .serial_number(1)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(cert_key, hashes.SHA256())
        )
        ctx.use_certificate(cert)
        ctx.use_privatekey(cert_key)
    return ctx


@pytest.mark.parametrize("client_key", ["none", "p256"])
async def test_listener_refuses_clients_without_an_ed25519_certificate(client_key: str) -> None:
    handled = asyncio.Event()

    async def handler(conn: Connection) -> None:
        handled.set()

    server = TlsNetlayer(Ed25519PrivateKey.generate())
    await server.serve(handler)
    key = ec.generate_private_key(ec.SECP256R1()) if client_key == "p256" else None
    ctx = _raw_client_context(key)
    loop = asyncio.get_running_loop()
    conn = TlsConnection(ctx, server_side=False, expected=None)
    await loop.create_connection(lambda: conn, "127.0.0.1", server.port)
    # The client may finish its side of the handshake, but the server drops it and
    # never runs the handler; the client sees the connection end.
    async with asyncio.timeout(10):
        with pytest.raises(NetlayerError):
            await conn.ready
            while await conn.read():
                pass
            raise NetlayerError("closed by the server")
    await asyncio.wait_for(conn.wait_closed(), 10)
    assert not handled.is_set()
    await server.close()


async def test_plain_tcp_client_gets_nothing() -> None:
    async def handler(conn: Connection) -> None:
        raise AssertionError("never reached")

    server = TlsNetlayer(Ed25519PrivateKey.generate())
    await server.serve(handler)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"<10'op:garbage>" * 10)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 10)
    assert b"op:" not in data
    writer.close()
    await server.close()


async def test_both_sides_learn_each_others_designator() -> None:
    seen: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()

    async def handler(conn: Connection) -> None:
        seen.set_result(conn.peer_designator)

    server = TlsNetlayer(Ed25519PrivateKey.generate())
    await server.serve(handler)
    client = TlsNetlayer(Ed25519PrivateKey.generate())
    conn = await client.connect(server.designator, server.hints)
    assert conn.peer_designator == server.designator
    assert await asyncio.wait_for(seen, 10) == client.designator
    await client.close()
    await server.close()


async def test_silent_client_is_dropped_after_the_handshake_timeout() -> None:
    async def handler(conn: Connection) -> None:
        raise AssertionError("never reached")

    server = TlsNetlayer(Ed25519PrivateKey.generate())
    server.connect_timeout = 0.2
    await server.serve(handler)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    # sends nothing: the server gives up and closes
    assert await asyncio.wait_for(reader.read(), 10) == b""
    writer.close()
    await server.close()


async def test_listener_allow_list_refuses_other_keys() -> None:
    friend = TlsNetlayer(Ed25519PrivateKey.generate())
    stranger = TlsNetlayer(Ed25519PrivateKey.generate())
    handled: list[str | None] = []

    async def handler(conn: Connection) -> None:
        handled.append(conn.peer_designator)
        conn.write(b"welcome")
        await conn.drain()

    server = TlsNetlayer(Ed25519PrivateKey.generate(), allow={friend.designator}.__contains__)
    await server.serve(handler)
    ok = await friend.connect(server.designator, server.hints)
    assert await asyncio.wait_for(ok.read(), 10) == b"welcome"
    # the stranger's handshake completes on its side, then the server drops it unheard
    refused = await stranger.connect(server.designator, server.hints)
    assert await asyncio.wait_for(refused.read(), 10) == b""
    assert handled == [friend.designator]
    for netlayer in (friend, stranger, server):
        await netlayer.close()
