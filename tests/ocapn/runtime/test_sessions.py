"""One session per peer: reuse, crossed hellos, abort, hostile peers, framings, dialects."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from charter.codec.syrup import Decoder, Record, Symbol, encode
from charter.ocapn.captp import crypto
from charter.ocapn.captp.messages import Dialect
from charter.ocapn.locator import PeerLocation
from charter.ocapn.netlayer.base import Connection
from charter.ocapn.netlayer.memory import Switchboard
from charter.ocapn.runtime import Promise, PromiseBrokenError, Runtime

from .conftest import MakeRuntime, Wire, eventually

S = Symbol


async def read_all(conn: Connection) -> list[Any]:
    dec = Decoder()
    out: list[Any] = []
    async with asyncio.timeout(5):
        while data := await conn.read():
            out.extend(dec.feed(data))
    return out


async def test_crossed_hellos_converge_on_one_session(make_runtime: MakeRuntime) -> None:
    for _ in range(6):
        a, b = await make_runtime("alice"), await make_runtime("bob")
        ra = a.register(lambda: "from alice")
        rb = b.register(lambda: "from bob")
        ref_b, ref_a = await asyncio.gather(a.enliven(rb), b.enliven(ra))
        # whichever connection each dial used, nothing in flight broke
        assert await ref_b() == "from bob"
        assert await ref_a() == "from alice"
        (sa,) = a.sessions
        (sb,) = b.sessions
        assert sa.session.session_id == sb.session.session_id
        assert sa.outbound != sb.outbound
        # new work goes to the winner; the loser closes once GC shows it idle
        assert await (await a.enliven(rb))() == "from bob"
        del ref_a, ref_b
        gc.collect()
        await eventually(lambda a=a, b=b: len(a._peers) == 1 and len(b._peers) == 1)
        assert a.sessions == [sa] and b.sessions == [sb]
        await a.close()
        await b.close()


async def test_connect_reuses_session_and_concurrent_dials(make_runtime: MakeRuntime) -> None:
    a, b = await make_runtime("alice"), await make_runtime("bob")
    s1, s2 = await asyncio.gather(a.connect(b.location()), a.connect(b.location()))
    assert s1 is s2
    assert await a.connect(b.location()) is s1


async def test_abort_breaks_pending_and_allows_reconnect(make_runtime: MakeRuntime) -> None:
    a, b = await make_runtime("alice"), await make_runtime("bob")
    never = Promise()
    ref = await b.enliven(a.register(lambda: never))
    pending = ref()
    (a_peer,) = a.sessions
    await eventually(lambda: a_peer.session.answer_count == 1)
    a_peer.abort("alice is done")
    with pytest.raises(PromiseBrokenError, match="alice is done"):
        await pending
    await eventually(lambda: not b.sessions)
    # the old reference is dead; a new enliven opens a new session
    with pytest.raises(PromiseBrokenError):
        await ref()
    ref2 = await b.enliven(a.register(lambda: "again"))
    assert await ref2() == "again"


async def test_garbage_from_a_peer_gets_abort(
    switchboard: Switchboard, make_runtime: MakeRuntime
) -> None:
    b = await make_runtime("bob")
    mallory = switchboard.netlayer("mallory")
    conn = await mallory.connect("bob", {})
    conn.write(b"this is not syrup at all }}}")
    received = await read_all(conn)
    assert received[0].label == S("op:start-session")
    assert received[-1].label == S("op:abort")
    # bob still serves others
    a = await make_runtime("alice")
    assert await (await a.enliven(b.register(lambda: 1)))() == 1


async def test_forged_handshake_is_refused(
    switchboard: Switchboard, make_runtime: MakeRuntime
) -> None:
    await make_runtime("bob")
    conn = await switchboard.netlayer("mallory").connect("bob", {})
    key = crypto.SessionKey()
    loc = PeerLocation("mallory", "memory").to_record()
    bad_sig = crypto.SessionKey().sign(encode(Record(S("my-location"), loc)))
    conn.write(
        encode(
            Record(
                S("op:start-session"),
                "1.0",
                crypto.public_key_value(key.public),
                loc,
                crypto.signature_value(bad_sig),
            )
        )
    )
    received = await read_all(conn)
    assert received[-1].label == S("op:abort")
    assert "signature" in received[-1].fields[0]


async def test_location_must_match_authenticated_designator(
    switchboard: Switchboard, make_runtime: MakeRuntime
) -> None:
    await make_runtime("bob")
    conn = await switchboard.netlayer("mallory").connect("bob", {})
    key = crypto.SessionKey()
    loc = PeerLocation("alice", "memory").to_record()  # claims to be alice
    sig = key.sign(encode(Record(S("my-location"), loc)))
    conn.write(
        encode(
            Record(
                S("op:start-session"),
                "1.0",
                crypto.public_key_value(key.public),
                loc,
                crypto.signature_value(sig),
            )
        )
    )
    received = await read_all(conn)
    assert received[-1].label == S("op:abort")


async def test_handshake_timeout(switchboard: Switchboard, make_runtime: MakeRuntime) -> None:
    await make_runtime("bob", handshake_timeout=0.2)
    conn = await switchboard.netlayer("mallory").connect("bob", {})
    received = await read_all(conn)  # mallory never says hello
    assert received[-1] == Record(S("op:abort"), "handshake timed out")


@pytest.mark.parametrize("framing", ["length-prefixed", "unframed"])
async def test_framings(make_runtime: MakeRuntime, wire: Wire, framing: str) -> None:
    a = await make_runtime("alice", framing=framing)
    b = await make_runtime("bob", framing=framing)
    ref = await a.enliven(b.register(lambda x: [x, x]))
    assert await ref(b"payload") == [b"payload", b"payload"]
    first = wire.data[0]
    assert first.startswith(b"<") == (framing == "unframed")


async def test_current_dialect_on_the_wire(make_runtime: MakeRuntime, wire: Wire) -> None:
    a = await make_runtime("alice", dialect=Dialect.CURRENT)
    b = await make_runtime("bob")  # mirrors alice once alice reveals her dialect
    seen: list[int] = []
    ref = await a.enliven(b.register(lambda x: seen.append(x)))
    ref.send_only(1)
    await eventually(lambda: seen == [1])
    mark = len(wire.data)
    assert await ref(2) is None
    await eventually(lambda: seen == [1, 2])
    alice = b"".join(d for w, d in zip(wire.writers, wire.data, strict=True) if w == "alice")
    assert b"op:deliver-only" not in alice and b"op:gc-answers" in alice
    later = b"".join(wire.data[mark:])
    assert b"op:deliver-only" not in later and b"op:gc-answer'" not in later


async def test_legacy_dialect_on_the_wire(make_runtime: MakeRuntime, wire: Wire) -> None:
    a = await make_runtime("alice", dialect=Dialect.LEGACY)
    b = await make_runtime("bob")
    seen: list[int] = []
    ref = await a.enliven(b.register(lambda x: seen.append(x)))
    ref.send_only(1)
    await eventually(lambda: seen == [1])
    assert await ref(2) is None
    blob = b"".join(wire.data)
    assert b"op:deliver-only" in blob and b"op:gc-answers" not in blob


async def test_runtime_close_is_clean(switchboard: Switchboard) -> None:
    a = Runtime([switchboard.netlayer("alice")])
    b = Runtime([switchboard.netlayer("bob")])
    async with a, b:
        ref = await a.enliven(b.register(lambda: Promise()))
        pending = ref()
    with pytest.raises(PromiseBrokenError):
        await pending
    assert not a.sessions and not b.sessions
