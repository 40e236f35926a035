"""Three runtimes in three processes over unix sockets and TLS: calls, pipelining, handoffs.

This process runs a runtime (A); two test peers (B and C) run in their own processes.
Passing B's object to C makes A the gifter, C the receiver and B the exporter; C's
echo passing it back makes C the gifter and A the receiver.
"""

from __future__ import annotations

import asyncio
import os
import tempfile

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from charter.codec.syrup import Symbol
from charter.ocapn.framing import UNFRAMED, make_framer
from charter.ocapn.locator import PeerLocation, SturdyRef
from charter.ocapn.netlayer.base import Netlayer, PeerAuthenticationError
from charter.ocapn.netlayer.stream import StreamConnection
from charter.ocapn.netlayer.tls import TlsNetlayer, designator_for_key
from charter.ocapn.netlayer.unix import UnixNetlayer
from charter.ocapn.runtime import Promise, PromiseBrokenError, RemoteRef, Runtime
from charter.ocapn.testpeer import (
    CAR_FACTORY_BUILDER_SWISS,
    ECHO_SWISS,
    ENLIVENER_SWISS,
    GREETER_SWISS,
)


@pytest.fixture(params=["unix", "tls"])
async def setup(request: pytest.FixtureRequest, peers):  # type: ignore[no-untyped-def]
    kind: str = request.param
    with tempfile.TemporaryDirectory(prefix="charter-3p-") as tmp:
        netlayer: Netlayer
        if kind == "unix":
            netlayer = UnixNetlayer(os.path.join(tmp, "a.sock"))
            b = await peers("--netlayer", "unix", "--socket", os.path.join(tmp, "b.sock"))
            c = await peers("--netlayer", "unix", "--socket", os.path.join(tmp, "c.sock"))
        else:
            netlayer = TlsNetlayer(Ed25519PrivateKey.generate())
            b = await peers("--netlayer", "tls")
            c = await peers("--netlayer", "tls")
        async with Runtime([netlayer]) as runtime:
            yield kind, runtime, b.location, c.location


class Greeted:
    """A local object in A that B's greeter will greet."""

    def __init__(self) -> None:
        self.heard: asyncio.Queue[str] = asyncio.Queue()

    def __call__(self, text: str) -> str:
        self.heard.put_nowait(text)
        return "nice to meet you"


async def _enliven(runtime: Runtime, peer: PeerLocation, swiss: bytes) -> RemoteRef:
    ref = await asyncio.wait_for(runtime.enliven(SturdyRef(peer, swiss)), 15)
    assert isinstance(ref, RemoteRef)
    return ref


async def test_calls_pipelining_and_errors(
    setup: tuple[str, Runtime, PeerLocation, PeerLocation],
) -> None:
    _, runtime, b, _ = setup
    builder = await _enliven(runtime, b, CAR_FACTORY_BUILDER_SWISS)
    drive = builder.send().send([Symbol("red"), Symbol("zoomracer")]).send()
    assert await asyncio.wait_for(drive, 15) == "Vroom! I am a red zoomracer car!"
    broken = builder.send().send([1, 2, 3, 4, 5]).send()
    with pytest.raises(PromiseBrokenError):
        await asyncio.wait_for(broken, 15)
    # the session survives a broken promise
    echo = await _enliven(runtime, b, ECHO_SWISS)
    assert await asyncio.wait_for(echo.send("a", 1, b"x"), 15) == ["a", 1, b"x"]


async def test_three_pipelined_calls_leave_in_one_write(
    setup: tuple[str, Runtime, PeerLocation, PeerLocation],
) -> None:
    _, runtime, b, _ = setup
    builder = await _enliven(runtime, b, CAR_FACTORY_BUILDER_SWISS)
    conn = builder.peer.conn
    assert isinstance(conn, StreamConnection)
    chunks: list[bytes] = []
    conn.on_write = lambda _conn, data: chunks.append(data)
    drive = builder.send().send([Symbol("red"), Symbol("zoomracer")]).send()
    assert await asyncio.wait_for(drive, 15) == "Vroom! I am a red zoomracer car!"
    conn.on_write = None
    # every request left in a single write; nothing else was asked of B before the
    # final answer came back: one network round trip for three dependent calls
    framer = make_framer(UNFRAMED)
    delivers = [
        sum(1 for m in framer.feed(chunk) if m.label == Symbol("op:deliver")) for chunk in chunks
    ]
    assert [n for n in delivers if n] == [3]


async def test_handoffs_among_three_processes(
    setup: tuple[str, Runtime, PeerLocation, PeerLocation],
) -> None:
    _, runtime, b, c = setup
    greeter_b = await _enliven(runtime, b, GREETER_SWISS)
    echo_c = await _enliven(runtime, c, ECHO_SWISS)
    # A gives B's greeter to C (A gifter, C receiver, B exporter); C's echo gives it
    # back to A (C gifter, A receiver, B exporter).
    returned = await asyncio.wait_for(echo_c.send(greeter_b), 20)
    assert isinstance(returned, list) and len(returned) == 1
    greeter_again = returned[0]
    if isinstance(greeter_again, Promise):  # a received handoff settles once withdrawn
        greeter_again = await asyncio.wait_for(greeter_again, 20)
    assert isinstance(greeter_again, RemoteRef)
    assert greeter_again.peer.peer_location is not None
    assert greeter_again.peer.peer_location.same_peer(b)
    greeted = Greeted()
    greeter_again.send_only(greeted)
    assert await asyncio.wait_for(greeted.heard.get(), 15) == "Hello"

    # C's enlivener fetches B's car factory builder by sturdyref (C dials or reuses its
    # session with B) and hands the result to A.
    enliven_c = await _enliven(runtime, c, ENLIVENER_SWISS)
    builder = await asyncio.wait_for(
        enliven_c.send(SturdyRef(b, CAR_FACTORY_BUILDER_SWISS).to_record()), 20
    )
    drive = builder.send().send([Symbol("blue"), Symbol("roadster")]).send()
    assert await asyncio.wait_for(drive, 15) == "Vroom! I am a blue roadster car!"


async def test_wrong_tls_key_is_refused(peers) -> None:  # type: ignore[no-untyped-def]
    b = (await peers("--netlayer", "tls")).location
    async with Runtime([TlsNetlayer(Ed25519PrivateKey.generate())]) as runtime:
        wrong = designator_for_key(Ed25519PrivateKey.generate().public_key())
        impostor = PeerLocation(wrong, "tls", b.hints)
        with pytest.raises(PeerAuthenticationError):
            await asyncio.wait_for(runtime.enliven(SturdyRef(impostor, ECHO_SWISS)), 15)
        # the genuine key at the same address works
        echo = await _enliven(runtime, b, ECHO_SWISS)
        assert await asyncio.wait_for(echo.send(1), 15) == [1]


async def test_gc_releases_our_export_when_the_peer_drops_it(
    setup: tuple[str, Runtime, PeerLocation, PeerLocation],
) -> None:
    _, runtime, b, _ = setup
    echo = await _enliven(runtime, b, ECHO_SWISS)
    session = echo.peer.session
    exports_before = session.export_count
    mine = Greeted()
    # B's echo imports our object, hands it straight back and keeps nothing
    assert await asyncio.wait_for(echo.send(mine, mine, mine), 15) == [mine, mine, mine]
    # B's op:gc-export(s) travel no later than its answer to the next call (one ordered
    # stream), so by then our export table must be back where it was
    assert await asyncio.wait_for(echo.send("sync"), 15) == ["sync"]
    assert session.export_refcount(mine) == 0
    assert session.export_count == exports_before
