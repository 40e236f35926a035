"""The test peer as the exporter of third-party handoffs, driven by hand-signed certificates.

Two raw sessions from this process play gifter (G) and receiver (R); the exporter
(E) is the test peer in its own process. Certificates are built and signed here from
the specification, so a replayed handoff-count and a bad signature are exactly the
bytes an attacker would send.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rawcaptp import (
    RawSession,
    S,
    deliver,
    export,
    import_object,
    open_raw_session,
    raw_public,
    signed_handoff_give,
    signed_handoff_receive,
)

from charter.codec.syrup import Record
from charter.ocapn.testpeer import GREETER_SWISS


class Handoff:
    """G holds E's greeter and gives it to R (whose G-R key is ``r2g``)."""

    def __init__(self, g: RawSession, r: RawSession, greeter_pos: int) -> None:
        self.g = g
        self.r = r
        self.greeter_pos = greeter_pos
        self.r2g = Ed25519PrivateKey.generate()

    def give(self, gift_id: bytes) -> Record:
        assert self.g.peer_location is not None
        return signed_handoff_give(
            self.g.key,
            raw_public(self.r2g),
            self.g.peer_location,
            self.g.id,
            self.g.our_side,
            gift_id,
        )

    async def deposit(self, gift_id: bytes) -> None:
        self.g.send(
            deliver(export(0), [S("deposit-gift"), gift_id, export(self.greeter_pos)], False, False)
        )
        await self.g.writer.drain()

    def receive(self, give: Record, count: int, *, tamper: bool = False) -> Record:
        envelope = signed_handoff_receive(self.r2g, self.r.id, self.r.our_side, count, give)
        if tamper:
            wrong = self.r2g.sign(b"this is not the certificate")
            sig = [S("sig-val"), [S("eddsa"), [S("r"), wrong[:32]], [S("s"), wrong[32:]]]]
            envelope = Record(envelope.label, envelope.fields[0], sig)
        return envelope

    async def withdraw(self, envelope: Record) -> int:
        resolver = self.r.new_import()
        self.r.send(
            deliver(export(0), [S("withdraw-gift"), envelope], False, import_object(resolver))
        )
        await self.r.writer.drain()
        return resolver


async def test_exporter_checks_certificates_and_handoff_counts(peers) -> None:  # type: ignore[no-untyped-def]
    exporter = await peers()
    port = int(exporter.location.hints_dict()["port"])
    g = await open_raw_session("127.0.0.1", port)
    r = await open_raw_session("127.0.0.1", port)
    greeter = await g.fetch(GREETER_SWISS)
    h = Handoff(g, r, greeter)

    # 1. gift deposited first, then withdrawn: R gets E's greeter and it greets
    give = h.give(b"gift-1")
    await h.deposit(b"gift-1")
    envelope = h.receive(give, r.next_handoff_count())
    resolver = await h.withdraw(envelope)
    verb, ref = await r.resolution(resolver)
    assert verb == S("fulfill") and ref.label == S("desc:import-object")
    greeted = r.new_import()
    r.send(deliver(export(ref.fields[0]), [import_object(greeted)], False, False))
    await r.writer.drain()
    hello = await r.expect_to(greeted)
    assert hello.fields[1] == ["Hello"]

    # 2. the very same withdraw replayed (same handoff-count) is refused, even with a
    #    fresh deposit under the same gift id
    await h.deposit(b"gift-1")
    replay = await h.withdraw(envelope)
    verb, _ = await r.resolution(replay)
    assert verb == S("break")

    # 3. a handoff-receive whose signature does not verify is refused
    give2 = h.give(b"gift-2")
    await h.deposit(b"gift-2")
    forged = await h.withdraw(h.receive(give2, r.next_handoff_count(), tamper=True))
    verb, _ = await r.resolution(forged)
    assert verb == S("break")

    # 4. withdraw first, deposit later: the answer waits for the gift
    give3 = h.give(b"a-much-longer-gift-identifier-of-any-length" * 3)
    pending = await h.withdraw(h.receive(give3, r.next_handoff_count()))
    await h.deposit(b"a-much-longer-gift-identifier-of-any-length" * 3)
    verb, ref3 = await r.resolution(pending)
    assert verb == S("fulfill") and ref3.label == S("desc:import-object")

    # 5. a certificate for another receiver key is refused
    stranger = Handoff(g, r, greeter)
    give4 = h.give(b"gift-4")  # names h.r2g as receiver ...
    await h.deposit(b"gift-4")
    wrong_receiver = await stranger.withdraw(stranger.receive(give4, r.next_handoff_count()))
    verb, _ = await r.resolution(wrong_receiver)  # ... but stranger.r2g signed the receive
    assert verb == S("break")

    await g.close()
    await r.close()
