"""Over TLS, a peer cannot claim a location other than the key it proved.

A client with a valid TLS key of its own connects to a test peer in another process
and sends a correctly signed ``op:start-session`` naming someone else's designator:
the session is aborted. The same client naming its own designator is accepted.
"""

from __future__ import annotations

import asyncio
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rawcaptp import S, public_key_form, raw_public, signature_form

from charter.codec.syrup import Record, encode
from charter.ocapn.framing import UNFRAMED, make_framer
from charter.ocapn.locator import PeerLocation
from charter.ocapn.netlayer.base import Connection
from charter.ocapn.netlayer.tls import TlsNetlayer, designator_for_key


async def start_session_as(conn: Connection, location: PeerLocation, *, until_abort: bool) -> Any:
    """Send a validly signed op:start-session claiming ``location``; return what came back.

    Reads until the peer's op:start-session arrives, or (``until_abort``) until an
    op:abort arrives or the connection ends.
    """
    session_key = Ed25519PrivateKey.generate()
    record = location.to_record()
    sig = session_key.sign(encode(Record(S("my-location"), record)))
    conn.write(
        encode(
            Record(
                S("op:start-session"),
                "1.0",
                public_key_form(raw_public(session_key)),
                record,
                signature_form(sig),
            )
        )
    )
    await conn.drain()
    framer = make_framer(UNFRAMED)
    received: list[Any] = []
    async with asyncio.timeout(10):
        while True:
            data = await conn.read()
            if not data:
                return received
            received.extend(framer.feed(data))
            if any(m.label == S("op:abort") for m in received):
                return received
            if not until_abort and any(m.label == S("op:start-session") for m in received):
                return received


async def test_claiming_another_designator_over_tls_is_aborted(peers) -> None:  # type: ignore[no-untyped-def]
    b = (await peers("--netlayer", "tls")).location
    client_key = Ed25519PrivateKey.generate()
    client = TlsNetlayer(client_key)
    someone_else = designator_for_key(Ed25519PrivateKey.generate().public_key())

    conn = await client.connect(b.designator, b.hints_dict())
    claimed = PeerLocation(someone_else, "tls", {"host": "127.0.0.1", "port": "1"})
    received = await start_session_as(conn, claimed, until_abort=True)
    assert any(m.label == S("op:abort") for m in received), received

    honest = await client.connect(b.designator, b.hints_dict())
    mine = PeerLocation(client.designator, "tls", {"host": "127.0.0.1", "port": "1"})
    received = await start_session_as(honest, mine, until_abort=False)
    assert [m.label for m in received] == [S("op:start-session")]
    honest.close()
    await client.close()
