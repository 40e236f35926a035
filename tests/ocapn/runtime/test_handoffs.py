"""Third-party handoffs among three runtimes: gifter (alice), receiver (bob), exporter (carol)."""

from __future__ import annotations

from typing import Any

import pytest

from charter.codec.syrup import Symbol, encode
from charter.ocapn.captp.crypto import SessionKey
from charter.ocapn.captp.messages import Export, HandoffGive, HandoffReceive, SigEnvelope
from charter.ocapn.runtime import PeerSession, Promise, PromiseBrokenError, RemoteRef, Runtime

from .conftest import MakeRuntime

S = Symbol


class Carol:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, text: str) -> str:
        self.calls.append(text)
        return f"carol got {text}"


async def three(make_runtime: MakeRuntime) -> tuple[Runtime, Runtime, Runtime]:
    return await make_runtime("alice"), await make_runtime("bob"), await make_runtime("carol")


async def test_handoff_through_the_runtime(make_runtime: MakeRuntime) -> None:
    a, b, c = await three(make_runtime)
    carol = Carol()
    carol_ref = await a.enliven(c.register(carol))

    async def bob(ref: Any) -> Any:
        assert isinstance(ref, Promise)  # a handoff arrives as a promise for the gift
        resolved = await ref
        assert isinstance(resolved, RemoteRef)
        return await resolved("hi from bob")

    bob_ref = await a.enliven(b.register(bob))
    assert await bob_ref(carol_ref) == "carol got hi from bob"
    assert carol.calls == ["hi from bob"]
    # bob now has his own session with carol
    assert {p.peer_location.designator for p in b.sessions} == {"alice", "carol"}
    # a second handoff reuses bob's session with carol
    assert await bob_ref(carol_ref) == "carol got hi from bob"
    assert len(b.sessions) == 2


class Manual:
    """Plays gifter (over alice's session with carol) and receiver (bob's session with carol)."""

    def __init__(self, ge: PeerSession, er: PeerSession) -> None:
        self.ge, self.er = ge, er
        self.receiver_key = SessionKey()  # bob's key in a (simulated) gifter-receiver session

    def give(self, gid: int | bytes, gifter_key: SessionKey | None = None) -> SigEnvelope:
        s = self.ge.session
        assert s.peer_location is not None
        give = HandoffGive(
            self.receiver_key.public, s.peer_location, s.session_id, s.local_public_id, gid
        ).to_record()
        return SigEnvelope(give, (gifter_key or s.key).sign(encode(give)))

    def receive(self, give: SigEnvelope, count: int, key: SessionKey | None = None) -> SigEnvelope:
        s = self.er.session
        rec = HandoffReceive(s.session_id, s.local_public_id, count, give).to_record()
        return SigEnvelope(rec, (key or self.receiver_key).sign(encode(rec)))

    def deposit(self, gid: int | bytes, ref: RemoteRef) -> None:
        self.ge.deliver_only(Export(0), [S("deposit-gift"), gid, ref])

    def withdraw(self, envelope: SigEnvelope) -> Promise:
        return self.er.bootstrap_ref().send(S("withdraw-gift"), envelope)


async def manual(make_runtime: MakeRuntime) -> tuple[Manual, RemoteRef, Carol]:
    a, b, c = await three(make_runtime)
    carol = Carol()
    sturdy = c.register(carol)
    carol_ref = await a.enliven(sturdy)
    await b.enliven(sturdy)  # gives bob a session with carol
    ge = await a.connect(c.location())
    er = await b.connect(c.location())
    return Manual(ge, er), carol_ref, carol


async def test_gift_deposited_before_withdraw(make_runtime: MakeRuntime) -> None:
    m, carol_ref, _ = await manual(make_runtime)
    m.deposit(7, carol_ref)
    got = await m.withdraw(m.receive(m.give(7), 0))
    assert await got("before") == "carol got before"


async def test_gift_deposited_after_withdraw(make_runtime: MakeRuntime) -> None:
    m, carol_ref, _ = await manual(make_runtime)
    pending = m.withdraw(m.receive(m.give(b"a-gift-id-of-any-length"), 0))
    # a round trip on the same session: carol has seen the withdraw and is waiting
    with pytest.raises(PromiseBrokenError):
        await m.er.bootstrap_ref().send(S("fetch"), b"nothing-here")
    assert not pending.settled
    m.deposit(b"a-gift-id-of-any-length", carol_ref)
    got = await pending
    assert await got("after") == "carol got after"


async def test_replayed_handoff_count_is_refused(make_runtime: MakeRuntime) -> None:
    m, carol_ref, _ = await manual(make_runtime)
    give = m.give(1)
    m.deposit(1, carol_ref)
    got = await m.withdraw(m.receive(give, 5))
    assert isinstance(got, RemoteRef)
    m.deposit(1, carol_ref)
    with pytest.raises(PromiseBrokenError, match="replay"):
        await m.withdraw(m.receive(give, 5))
    # a fresh count for the re-deposited gift works
    assert isinstance(await m.withdraw(m.receive(give, 6)), RemoteRef)


async def test_bad_receive_signature_is_refused(make_runtime: MakeRuntime) -> None:
    m, carol_ref, _ = await manual(make_runtime)
    m.deposit(2, carol_ref)
    with pytest.raises(PromiseBrokenError, match="handoff-receive signature"):
        await m.withdraw(m.receive(m.give(2), 0, key=SessionKey()))


async def test_bad_give_signature_is_refused(make_runtime: MakeRuntime) -> None:
    m, carol_ref, _ = await manual(make_runtime)
    m.deposit(3, carol_ref)
    with pytest.raises(PromiseBrokenError, match="handoff-give signature"):
        await m.withdraw(m.receive(m.give(3, gifter_key=SessionKey()), 0))
    # the refused attempt did not consume the gift
    assert isinstance(await m.withdraw(m.receive(m.give(3), 1)), RemoteRef)


async def test_handoff_naming_another_session_is_refused(make_runtime: MakeRuntime) -> None:
    m, carol_ref, _ = await manual(make_runtime)
    m.deposit(4, carol_ref)
    s = m.er.session
    give = m.give(4)
    rec = HandoffReceive(b"\0" * 32, s.local_public_id, 0, give).to_record()
    forged = SigEnvelope(rec, m.receiver_key.sign(encode(rec)))
    with pytest.raises(PromiseBrokenError, match="another session"):
        await m.withdraw(forged)
