"""Our runtime as the peer under test: hand-built records on a raw connection.

This plays the role the independent conformance suite plays: it speaks the previous
dialect (``op:deliver-only``), numbers its own exports from 0, and checks GC and the
three handoff roles on the wire.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from charter.codec.syrup import Decoder, Record, Symbol, encode
from charter.ocapn.captp import crypto
from charter.ocapn.locator import PeerLocation, SturdyRef
from charter.ocapn.netlayer.base import Connection
from charter.ocapn.netlayer.memory import Switchboard
from charter.ocapn.runtime import Runtime

from .conftest import MakeRuntime, eventually

S = Symbol
ECHO = b"IO58l1laTyhcrgDKbEzFOO32MDd6zE5w"
GREETER = b"VMDDd1voKWarCe2GvgLbxbVFysNzRPzx"
ENLIVENER = b"gi02I1qghIwPiKGKleCQAOhpy3ZtYRpB"


def R(label: str, *fields: Any) -> Record:
    return Record(S(label), *fields)


def export(n: int) -> Record:
    return R("desc:export", n)


def imp(n: int) -> Record:
    return R("desc:import-object", n)


class RawPeer:
    """A minimal CapTP speaker driven by hand."""

    def __init__(self, conn: Connection, location: PeerLocation) -> None:
        self.conn = conn
        self.location = location
        self.key = crypto.SessionKey()
        self.peer_key = b""
        self.peer_location: PeerLocation | None = None
        self._decoder = Decoder()
        self._inbox: list[Any] = []
        self._next_import = 0

    def next_import(self) -> Record:
        n = self._next_import
        self._next_import += 1
        return imp(n)

    def send(self, record: Record) -> None:
        self.conn.write(encode(record))

    async def recv(self) -> Any:
        while not self._inbox:
            data = await self.conn.read()
            if not data:
                raise EOFError("peer closed")
            self._inbox.extend(self._decoder.feed(data))
        return self._inbox.pop(0)

    async def expect(self, label: str, to: Record | None = None) -> Record:
        async with asyncio.timeout(5):
            while True:
                msg = await self.recv()
                if msg.label == S(label) and (to is None or msg.fields[0] == to):
                    return msg  # type: ignore[no-any-return]

    def hello(self) -> None:
        loc = self.location.to_record()
        sig = self.key.sign(encode(R("my-location", loc)))
        self.send(
            R(
                "op:start-session",
                "1.0",
                crypto.public_key_value(self.key.public),
                loc,
                crypto.signature_value(sig),
            )
        )

    async def handshake(self) -> None:
        loc = self.location.to_record()
        sig = self.key.sign(encode(R("my-location", loc)))
        self.send(
            R(
                "op:start-session",
                "1.0",
                crypto.public_key_value(self.key.public),
                loc,
                crypto.signature_value(sig),
            )
        )
        theirs = await self.expect("op:start-session")
        assert theirs.fields[0] == "1.0"
        self.peer_key = crypto.parse_public_key(theirs.fields[1])
        signed = encode(R("my-location", theirs.fields[2]))
        assert crypto.verify(self.peer_key, crypto.parse_signature(theirs.fields[3]), signed)
        self.peer_location = PeerLocation.from_record(theirs.fields[2])

    @property
    def session_id(self) -> bytes:
        return crypto.session_id(self.key.public, self.peer_key)

    async def fetch(self, swiss: bytes) -> int:
        resolver = self.next_import()
        self.send(R("op:deliver", export(0), [S("fetch"), swiss], False, resolver))
        reply = await self.expect("op:deliver-only", export(resolver.fields[0]))
        assert reply.fields[1][0] == S("fulfill")
        ref = reply.fields[1][1]
        assert ref.label == S("desc:import-object")
        return int(ref.fields[0])


async def connect_raw(rt: Runtime, switchboard: Switchboard, name: str = "suite") -> RawPeer:
    nl = switchboard.netlayer(name)
    await nl.serve(lambda conn: asyncio.sleep(0))
    conn = await nl.connect(rt.location().designator, {})
    peer = RawPeer(conn, PeerLocation(name, "memory"))
    await peer.handshake()
    return peer


def conformance_objects(rt: Runtime) -> None:
    rt.register(lambda *args: list(args), ECHO)
    rt.register(lambda target: target.send("Hello"), GREETER)

    async def enliven(record: Any) -> Any:
        return await rt.enliven(SturdyRef.from_record(record))

    rt.register(enliven, ENLIVENER)


@pytest.fixture
async def rt(make_runtime: MakeRuntime) -> Runtime:
    runtime = await make_runtime("charter")
    conformance_objects(runtime)
    return runtime


async def test_fetch_and_gc_export_counts(rt: Runtime, switchboard: Switchboard) -> None:
    peer = await connect_raw(rt, switchboard)
    echo = await peer.fetch(ECHO)
    obj = peer.next_import()
    peer.send(R("op:deliver-only", export(echo), [obj, obj, obj, obj]))
    total = 0
    async with asyncio.timeout(5):
        while total < 4:
            msg = await peer.expect("op:gc-export")  # legacy dialect mirrored
            for pos, delta in zip(msg.fields[0], msg.fields[1], strict=True):
                if pos == obj.fields[0]:
                    total += delta
    assert total == 4


async def test_greeter_delivers_with_answer_and_gcs_it(
    rt: Runtime, switchboard: Switchboard
) -> None:
    peer = await connect_raw(rt, switchboard)
    greeter = await peer.fetch(GREETER)
    target = peer.next_import()
    peer.send(R("op:deliver-only", export(greeter), [target]))
    hello = await peer.expect("op:deliver", export(target.fields[0]))
    assert hello.fields[1] == ["Hello"]
    answer_pos, resolver = hello.fields[2], hello.fields[3]
    assert type(answer_pos) is int and resolver.label == S("desc:import-object")
    peer.send(R("op:deliver-only", export(resolver.fields[0]), [S("fulfill"), "Hi"]))
    gc = await peer.expect("op:gc-answer")
    assert answer_pos in gc.fields[0]


async def test_pipelined_fetch_and_listen(rt: Runtime, switchboard: Switchboard) -> None:
    rt.register(lambda: "made", b"maker")
    peer = await connect_raw(rt, switchboard)
    peer.send(R("op:deliver", export(0), [S("fetch"), b"maker"], 0, peer.next_import()))
    listener = peer.next_import()
    peer.send(R("op:deliver", R("desc:answer", 0), [], 1, peer.next_import()))
    peer.send(R("op:listen", R("desc:answer", 1), listener, False))
    reply = await peer.expect("op:deliver-only", export(listener.fields[0]))
    assert reply.fields[1] == [S("fulfill"), "made"]


async def test_exporter_role_and_replay(rt: Runtime, switchboard: Switchboard) -> None:
    g2e = await connect_raw(rt, switchboard, "gifter")
    r2e = await connect_raw(rt, switchboard, "receiver")
    greeter = await g2e.fetch(GREETER)
    r2g = crypto.SessionKey()  # the receiver's key in the gifter-receiver session
    give = R(
        "desc:handoff-give",
        crypto.public_key_value(r2g.public),
        rt.location().to_record(),
        g2e.session_id,
        crypto.public_id(g2e.key.public),
        b"my-gift",
    )
    signed_give = R("desc:sig-envelope", give, crypto.signature_value(g2e.key.sign(encode(give))))

    def withdraw(count: int, key: crypto.SessionKey) -> Record:
        rec = R(
            "desc:handoff-receive",
            r2e.session_id,
            crypto.public_id(r2e.key.public),
            count,
            signed_give,
        )
        return R("desc:sig-envelope", rec, crypto.signature_value(key.sign(encode(rec))))

    deposit = R("op:deliver-only", export(0), [S("deposit-gift"), b"my-gift", export(greeter)])

    async def redeem(envelope: Record) -> list[Any]:
        resolver = r2e.next_import()
        r2e.send(R("op:deliver", export(0), [S("withdraw-gift"), envelope], False, resolver))
        msg = await r2e.expect("op:deliver-only", export(resolver.fields[0]))
        return list(msg.fields[1])

    # withdraw first, deposit afterwards
    resolver = r2e.next_import()
    r2e.send(R("op:deliver", export(0), [S("withdraw-gift"), withdraw(0, r2g)], False, resolver))
    g2e.send(deposit)
    first = await r2e.expect("op:deliver-only", export(resolver.fields[0]))
    assert first.fields[1][0] == S("fulfill")
    assert first.fields[1][1].label == S("desc:import-object")
    # replayed handoff-count: refused even with the gift deposited again
    g2e.send(deposit)
    assert (await redeem(withdraw(0, r2g)))[0] == S("break")
    # bad signature: refused
    assert (await redeem(withdraw(1, crypto.SessionKey())))[0] == S("break")
    # a fresh count with the right key works
    ok = await redeem(withdraw(2, r2g))
    assert ok[0] == S("fulfill") and ok[1].label == S("desc:import-object")


async def test_receiver_role(rt: Runtime, switchboard: Switchboard) -> None:
    g2r = await connect_raw(rt, switchboard, "gifter2")
    accepted: asyncio.Queue[Connection] = asyncio.Queue()
    exporter_nl = switchboard.netlayer("exporter")

    async def accept(conn: Connection) -> None:
        await accepted.put(conn)

    await exporter_nl.serve(accept)
    greeter = await g2r.fetch(GREETER)
    e2g_key = crypto.SessionKey()
    give = R(
        "desc:handoff-give",
        crypto.public_key_value(g2r.peer_key),
        PeerLocation("exporter", "memory").to_record(),
        b"\1" * 32,
        b"\2" * 32,
        b"gift",
    )
    signed_give = R("desc:sig-envelope", give, crypto.signature_value(e2g_key.sign(encode(give))))
    g2r.send(R("op:deliver-only", export(greeter), [signed_give]))
    async with asyncio.timeout(5):
        conn = await accepted.get()
    e2r = RawPeer(conn, PeerLocation("exporter", "memory"))
    await e2r.handshake()
    msg = await e2r.expect("op:deliver", export(0))
    assert msg.fields[1][0] == S("withdraw-gift")
    envelope = msg.fields[1][1]
    rec, sig = envelope.fields
    assert rec.label == S("desc:handoff-receive")
    assert rec.fields[0] == e2r.session_id
    assert rec.fields[1] == crypto.public_id(e2r.peer_key)
    assert rec.fields[3] == signed_give
    assert crypto.verify(g2r.peer_key, crypto.parse_signature(sig), encode(rec))


async def test_gifter_role(rt: Runtime, switchboard: Switchboard) -> None:
    r2g = await connect_raw(rt, switchboard, "receiver3")
    accepted: asyncio.Queue[Connection] = asyncio.Queue()

    async def accept(conn: Connection) -> None:
        await accepted.put(conn)

    await switchboard.netlayer("exporter3").serve(accept)
    enlivener = await r2g.fetch(ENLIVENER)
    sturdy = SturdyRef(PeerLocation("exporter3", "memory"), b"some-swiss")
    resolver = r2g.next_import()
    r2g.send(R("op:deliver", export(enlivener), [sturdy.to_record()], False, resolver))
    async with asyncio.timeout(5):
        conn = await accepted.get()
    e2g = RawPeer(conn, PeerLocation("exporter3", "memory"))
    await e2g.handshake()
    fetch = await e2g.expect("op:deliver", export(0))
    assert fetch.fields[1] == [S("fetch"), b"some-swiss"]
    e2g.send(
        R("op:deliver-only", export(fetch.fields[3].fields[0]), [S("fulfill"), e2g.next_import()])
    )
    deposit = await e2g.expect("op:deliver-only", export(0))
    assert deposit.fields[1][0] == S("deposit-gift")
    reply = await r2g.expect("op:deliver-only", export(resolver.fields[0]))
    assert reply.fields[1][0] == S("fulfill")
    envelope = reply.fields[1][1]
    give, sig = envelope.fields
    assert give.label == S("desc:handoff-give")
    assert crypto.parse_public_key(give.fields[0]) == r2g.key.public
    assert PeerLocation.from_record(give.fields[1]) == e2g.location
    assert give.fields[2] == e2g.session_id
    assert give.fields[3] == crypto.public_id(e2g.peer_key)
    assert give.fields[4] == deposit.fields[1][1]
    assert crypto.verify(e2g.peer_key, crypto.parse_signature(sig), encode(give))


async def test_second_connection_from_same_peer_is_aborted(
    rt: Runtime, switchboard: Switchboard
) -> None:
    nl = switchboard.netlayer("twice")
    await nl.serve(lambda conn: asyncio.sleep(0))
    first = RawPeer(await nl.connect("charter", {}), PeerLocation("twice", "memory"))
    await first.handshake()
    second = RawPeer(await nl.connect("charter", {}), PeerLocation("twice", "memory"))
    await second.handshake()
    await second.expect("op:abort")
    # the first session is unaffected
    assert await first.fetch(ECHO) >= 1


@pytest.mark.parametrize("loser", ["ours", "theirs"])
async def test_crossed_hellos_abort_the_lower_dialer(
    rt: Runtime, switchboard: Switchboard, loser: str
) -> None:
    suite = await connect_raw(rt, switchboard, "suite")
    enlivener = await suite.fetch(ENLIVENER)
    accepted: asyncio.Queue[Connection] = asyncio.Queue()

    async def accept(conn: Connection) -> None:
        await accepted.put(conn)

    other_nl = switchboard.netlayer("other")
    await other_nl.serve(accept)
    other = PeerLocation("other", "memory")
    sturdy = SturdyRef(other, b"my-object")
    suite.send(R("op:deliver-only", export(enlivener), [sturdy.to_record()]))
    async with asyncio.timeout(5):
        inbound = RawPeer(await accepted.get(), other)
    ours = await inbound.expect("op:start-session")  # the runtime dialed us; we stay silent
    our_id = crypto.public_id(crypto.parse_public_key(ours.fields[1]))
    outbound = RawPeer(await other_nl.connect("charter", {}), other)
    while (crypto.public_id(outbound.key.public) < our_id) != (loser == "theirs"):
        outbound.key = crypto.SessionKey()
    outbound.hello()
    if loser == "ours":
        await inbound.expect("op:abort")
        await outbound.expect("op:start-session")
    else:
        await outbound.expect("op:abort")


async def test_fuzzed_traffic_after_handshake(rt: Runtime, switchboard: Switchboard) -> None:
    import random

    rng = random.Random(99)
    samples = [
        encode(R("op:deliver", export(0), [S("fetch"), ECHO], 0, imp(0))),
        encode(R("op:deliver-only", R("desc:answer", 0), [1, imp(3), [imp(3)]])),
        encode(R("op:listen", R("desc:answer", 0), imp(4), True)),
        encode(R("op:index", R("desc:answer", 0), 0, 1)),
        encode(R("op:gc-answers", [0, 1])),
        encode(R("op:gc-exports", [1], [1])),
    ]
    for i in range(40):
        peer = await connect_raw(rt, switchboard, f"fuzz{i}")
        data = b"".join(samples)
        cut = bytearray(data)
        for _ in range(rng.randrange(1, 6)):
            cut[rng.randrange(len(cut))] = rng.randrange(256)
        peer.conn.write(bytes(cut[: rng.randrange(len(cut) + 1)]))
        peer.conn.close()
    # every hostile session ended; the runtime still serves well-behaved peers
    await eventually(lambda: not rt._peers)
    good = await connect_raw(rt, switchboard, "good")
    assert await good.fetch(ECHO) >= 0
