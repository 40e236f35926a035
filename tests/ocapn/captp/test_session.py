"""The sans-I/O session: handshake, tables, dispatch, GC, abort and hostile input."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import pytest

from charter.codec.syrup import Record, Symbol, decode, encode
from charter.ocapn.captp import crypto
from charter.ocapn.captp.errors import SessionAbortedError
from charter.ocapn.captp.messages import Answer, Dialect, Export, SelectKind, SigEnvelope
from charter.ocapn.captp.session import (
    Aborted,
    AnswersReleased,
    Delivered,
    Established,
    Event,
    ExportObject,
    ExportPromise,
    ExportsReleased,
    ListenRequested,
    Outgoing,
    Selected,
    Session,
    ToAnswer,
    ToImport,
)
from charter.ocapn.locator import PeerLocation

S = Symbol


@dataclass(frozen=True)
class Imported:
    position: int
    promise: bool = False


@dataclass(frozen=True)
class AnswerSlot:
    position: int


class Obj:
    """A local object handle (identity matters)."""


class Hooks:
    def __init__(self) -> None:
        self.import_counts: dict[int, int] = {}
        self.gifts: list[SigEnvelope] = []

    def import_object(self, position: int) -> Any:
        self.import_counts[position] = self.import_counts.get(position, 0) + 1
        return Imported(position)

    def import_promise(self, position: int) -> Any:
        self.import_counts[position] = self.import_counts.get(position, 0) + 1
        return Imported(position, True)

    def new_answer(self, position: int) -> Any:
        return AnswerSlot(position)

    def handoff_give(self, envelope: SigEnvelope) -> Any:
        self.gifts.append(envelope)
        return ("gift", len(self.gifts))

    def describe(self, value: Any) -> Outgoing | None:
        if isinstance(value, Imported):
            return ToImport(value.position)
        if isinstance(value, AnswerSlot):
            return ToAnswer(value.position)
        if isinstance(value, Obj):
            return ExportObject(value)
        if value == "a-promise":
            return None
        return None


BOOT = Obj()


def make(name: str, **kw: Any) -> tuple[Session, Hooks]:
    hooks = Hooks()
    return Session(PeerLocation(name, "memory"), hooks, BOOT, **kw), hooks


def pump(src: Session, dst: Session) -> list[Event]:
    events: list[Event] = []
    for raw in src.take_outgoing():
        events.extend(dst.receive(decode(raw)))
    return events


def pair(**kw: Any) -> tuple[Session, Hooks, Session, Hooks]:
    a, ha = make("alice", **kw)
    b, hb = make("bob", **kw)
    a.start()
    b.start()
    ev_b = pump(a, b)
    ev_a = pump(b, a)
    assert ev_a == [Established(PeerLocation("bob", "memory"), b.key.public)]
    assert ev_b == [Established(PeerLocation("alice", "memory"), a.key.public)]
    return a, ha, b, hb


def test_handshake_establishes_and_agrees_on_ids() -> None:
    a, _, b, _ = pair()
    assert a.is_open and b.is_open
    assert a.session_id == b.session_id
    assert a.peer_public_id == b.local_public_id


def test_bad_location_signature_aborts() -> None:
    a, _ = make("alice")
    b, _ = make("bob")
    a.start()
    good = decode(a.take_outgoing()[0])
    forged = Record(
        good.label,
        good.fields[0],
        good.fields[1],
        good.fields[2],
        crypto.signature_value(crypto.SessionKey().sign(b"x")),
    )
    events = b.receive(forged)
    assert len(events) == 1 and isinstance(events[0], Aborted)
    assert "signature" in events[0].reason
    assert b.aborted
    assert decode(b.take_outgoing()[-1]).label == S("op:abort")


def test_wrong_version_aborts() -> None:
    a, _ = make("alice")
    b, _ = make("bob")
    a.start()
    good = decode(a.take_outgoing()[0])
    events = b.receive(Record(good.label, "0.9", *good.fields[1:]))
    assert isinstance(events[0], Aborted) and "version" in events[0].reason


def test_operation_before_start_session_aborts() -> None:
    b, _ = make("bob")
    events = b.receive(Record(S("op:deliver-only"), Record(S("desc:export"), 0), []))
    assert isinstance(events[0], Aborted)
    assert b.receive(Record(S("op:abort"), "late")) == []


def test_deliver_maps_descriptors_and_answers() -> None:
    a, _ha, b, _hb = pair()
    obj = Obj()
    pos = a.deliver(Export(0), [S("fetch"), b"swiss", obj], answer=True, resolver=Obj())
    assert pos == 0
    (ev,) = pump(a, b)
    assert isinstance(ev, Delivered)
    assert ev.target is BOOT
    assert ev.args[:2] == [S("fetch"), b"swiss"]
    assert ev.args[2] == Imported(1)
    assert ev.answer == AnswerSlot(0)
    assert ev.resolver == Imported(2)
    assert a.export_refcount(obj) == 1

    # pipelined: a message to the answer, and the answer passed as an argument
    a.deliver(Answer(0), ["drive", AnswerSlot(0)])
    (ev2,) = pump(a, b)
    assert isinstance(ev2, Delivered) and ev2.target == AnswerSlot(0)
    assert ev2.args == ["drive", AnswerSlot(0)] and ev2.answer is None

    # b sends a's object back: it arrives as the very same handle
    b.deliver(Export(1), ["hi", Imported(1)])
    (ev3,) = pump(b, a)
    assert isinstance(ev3, Delivered) and ev3.target is obj and ev3.args[1] is obj


def test_reused_answer_position_aborts() -> None:
    a, _, b, _ = pair()
    a.deliver(Export(0), [], answer=True, resolver=Obj())
    pump(a, b)
    events = b.receive(
        Record(
            S("op:deliver"), Record(S("desc:export"), 0), [], 0, Record(S("desc:import-object"), 9)
        )
    )
    assert isinstance(events[0], Aborted) and "in use" in events[0].reason


def test_unknown_export_aborts() -> None:
    _a, _, b, _ = pair()
    events = b.receive(Record(S("op:deliver-only"), Record(S("desc:export"), 42), []))
    assert isinstance(events[0], Aborted) and "no export" in events[0].reason


def test_gc_exports_counts_every_send() -> None:
    a, _, b, hb = pair()
    obj = Obj()
    a.deliver(Export(0), [obj, obj])
    a.deliver(Export(0), [obj])
    pump(a, b)
    assert a.export_refcount(obj) == 3 and hb.import_counts[1] == 3
    b.release_import(1, 2)
    assert pump(b, a) == []
    assert a.export_refcount(obj) == 1
    b.release_import(1, 1)
    (ev,) = pump(b, a)
    assert ev == ExportsReleased([obj])
    assert a.export_count == 0
    # the position is gone: the peer may no longer name it
    events = a.receive(Record(S("op:deliver-only"), Record(S("desc:export"), 1), []))
    assert isinstance(events[0], Aborted)


def test_gc_answers_release_answers() -> None:
    a, _, b, _ = pair()
    a.deliver(Export(0), [], answer=True, resolver=Obj())
    a.deliver(Export(0), [], answer=True, resolver=Obj())
    pump(a, b)
    assert b.answer_count == 2
    a.release_answer(0)
    a.release_answer(1)
    out = a.take_outgoing()
    assert len(out) == 1  # batched into one message
    (ev,) = b.receive(decode(out[0]))
    assert ev == AnswersReleased([AnswerSlot(0), AnswerSlot(1)])
    assert b.answer_count == 0


def test_listen_and_select_events() -> None:
    a, _, b, _ = pair()
    a.deliver(Export(0), [], answer=True, resolver=Obj())
    pump(a, b)
    listener = Obj()
    a.listen(Answer(0), listener)
    pos = a.select(SelectKind.INDEX, Answer(0), 1)
    ev_listen, ev_select = pump(a, b)
    assert isinstance(ev_listen, ListenRequested) and ev_listen.target == AnswerSlot(0)
    assert isinstance(ev_select, Selected)
    assert ev_select.kind is SelectKind.INDEX and ev_select.key == 1
    assert ev_select.answer == AnswerSlot(pos)


def test_dialect_mirrors_peer_unless_fixed() -> None:
    a, _, b, _ = pair()
    assert a.dialect is Dialect.LEGACY  # the default before the peer shows its dialect
    b.receive(Record(S("op:deliver"), Record(S("desc:export"), 0), [], False, False))
    assert b.dialect is Dialect.CURRENT
    b.deliver(Export(0), ["x"])
    assert decode(b.take_outgoing()[0]).label == S("op:deliver")
    b.receive(Record(S("op:deliver-only"), Record(S("desc:export"), 0), []))
    b.deliver(Export(0), ["x"])
    assert decode(b.take_outgoing()[0]).label == S("op:deliver-only")

    fixed, _ = make("carol", dialect=Dialect.CURRENT)
    assert fixed.dialect is Dialect.CURRENT


def test_abort_kills_the_session_both_ways() -> None:
    a, _, b, _ = pair()
    a.abort("done")
    (ev,) = pump(a, b)
    assert ev == Aborted("done", by_peer=True)
    assert b.receive(Record(S("op:deliver-only"), Record(S("desc:export"), 0), [])) == []
    with pytest.raises(SessionAbortedError):
        b.deliver(Export(0), [])
    with pytest.raises(SessionAbortedError):
        a.deliver(Export(0), [])
    assert a.take_outgoing() == []


def test_not_passable_value_raises_for_the_sender() -> None:
    a, _, _b, _ = pair()
    with pytest.raises(Exception, match="cannot pass"):
        a.deliver(Export(0), [object()])


def test_promise_export_descriptor() -> None:
    class PHooks(Hooks):
        def describe(self, value: Any) -> Outgoing | None:
            if isinstance(value, Obj):
                return ExportPromise(value)
            return super().describe(value)

    a = Session(PeerLocation("alice", "memory"), PHooks(), BOOT)
    b, _ = make("bob")
    a.start()
    b.start()
    pump(a, b)
    pump(b, a)
    a.deliver(Export(0), [Obj()])
    (ev,) = pump(a, b)
    assert isinstance(ev, Delivered) and ev.args == [Imported(1, True)]


def test_handoff_give_goes_to_hooks() -> None:
    a, _, b, hb = pair()
    key = crypto.SessionKey()
    give = Record(
        S("desc:handoff-give"),
        crypto.public_key_value(key.public),
        PeerLocation("x", "memory").to_record(),
        b"s",
        b"g",
        0,
    )
    env = SigEnvelope(give, key.sign(encode(give)))
    a.deliver(Export(0), [env])
    (ev,) = pump(a, b)
    assert isinstance(ev, Delivered) and ev.args == [("gift", 1)]
    assert hb.gifts == [env]


def _mutate(rng: random.Random, data: bytes) -> bytes:
    choice = rng.randrange(4)
    if choice == 0 and data:
        return data[: rng.randrange(len(data))]
    if choice == 1:
        b = bytearray(data)
        for _ in range(rng.randrange(1, 4)):
            if b:
                b[rng.randrange(len(b))] = rng.randrange(256)
        return bytes(b)
    if choice == 2:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
    return data + data[: rng.randrange(len(data) + 1)]


def _deep(n: int) -> Any:
    v: Any = Record(S("desc:import-object"), 1)
    for _ in range(n):
        v = [v]
    return v


HOSTILE: list[Any] = [
    Record(S("op:deliver"), Record(S("desc:export"), 0), [_deep(300)], False, False),
    Record(
        S("op:deliver"),
        Record(S("desc:export"), 0),
        [Record(S("desc:import-object"), -5)],
        False,
        False,
    ),
    Record(
        S("op:deliver"), Record(S("desc:export"), 0), [Record(S("desc:answer"), 99)], False, False
    ),
    Record(
        S("op:deliver"),
        Record(S("desc:export"), 0),
        [Record(S("desc:sig-envelope"), 1, 2)],
        False,
        False,
    ),
    Record(S("op:gc-exports"), [1], [-1]),
    Record(S("op:listen"), Record(S("desc:answer"), 10**40), Record(S("desc:import-object"), 1)),
    Record(S("op:start-session"), "1.0", b"", b"", b""),
    Record(S("op:get"), Record(S("desc:answer"), 0), "x", True),
    {"a": 1},
    [1, 2, 3],
    Symbol("op:abort"),
]


def test_fuzzed_and_hostile_input_aborts_never_raises() -> None:
    from charter.ocapn.framing import UnframedFramer

    rng = random.Random(1234)
    a0, _, _b0, _ = pair()
    samples: list[bytes] = []
    obj = Obj()
    a0.deliver(
        Export(0), [S("fetch"), b"x", obj, {"k": [1, 2.5, "s"]}], answer=True, resolver=Obj()
    )
    a0.listen(Answer(0), Obj())
    a0.select(SelectKind.GET, Answer(0), "k")
    a0.release_import(3, 1)
    samples.extend(a0.take_outgoing())
    assert samples
    aborted = 0
    for i in range(400):
        _, _, b, _ = pair()
        framer = UnframedFramer(max_message_size=1 << 16)
        data = _mutate(rng, rng.choice(samples)) if i % 10 else encode(rng.choice(HOSTILE))
        try:
            values = framer.feed(data)
        except Exception as exc:  # the framer rejects: the driver aborts the session
            b.fail(f"framing: {exc}")
            values = []
        for v in values:
            events = b.receive(v)
            assert all(isinstance(e, Event.__args__) for e in events)  # type: ignore[attr-defined]
        if b.aborted:
            aborted += 1
            assert b.receive(values[0] if values else 0) == []
    assert aborted > 100
    # hostile records each abort a fresh session
    for value in HOSTILE:
        _, _, b, _ = pair()
        events = b.receive(value)
        assert events and isinstance(events[-1], Aborted), value
