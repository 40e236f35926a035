"""Parsing and emission of CapTP operations in both dialects."""

from __future__ import annotations

from typing import Any

import pytest

from charter.codec.syrup import Record, Symbol, decode, encode
from charter.ocapn.captp import crypto
from charter.ocapn.captp.errors import ProtocolError
from charter.ocapn.captp.messages import (
    Abort,
    Answer,
    Deliver,
    Dialect,
    Export,
    GcAnswers,
    GcExports,
    HandoffGive,
    HandoffReceive,
    ImportObject,
    ImportPromise,
    Listen,
    Select,
    SelectKind,
    SigEnvelope,
    StartSession,
    dialect_hint,
    parse_operation,
)
from charter.ocapn.locator import PeerLocation

S = Symbol


def R(label: str, *fields: Any) -> Record:
    return Record(S(label), *fields)


def exp(n: int) -> Record:
    return R("desc:export", n)


def imp(n: int) -> Record:
    return R("desc:import-object", n)


def roundtrip(op: Any, dialect: Dialect) -> Any:
    return parse_operation(decode(encode(op.to_record(dialect))))


def test_deliver_current_and_legacy_forms() -> None:
    op = parse_operation(R("op:deliver", exp(3), [S("go"), 1], 7, imp(2)))
    assert op == Deliver(Export(3), [S("go"), 1], 7, ImportObject(2))
    assert dialect_hint(op) is None

    ff = parse_operation(R("op:deliver", R("desc:answer", 0), ["x"], False, False))
    assert ff == Deliver(Answer(0), ["x"], None, None)
    assert dialect_hint(ff) is Dialect.CURRENT

    only = parse_operation(R("op:deliver-only", exp(0), []))
    assert isinstance(only, Deliver) and only.only and only.resolver is None
    assert dialect_hint(only) is Dialect.LEGACY

    # an answer position without a resolver: the sender only pipelines on it
    op = parse_operation(R("op:deliver", exp(1), [], 3, False))
    assert op == Deliver(Export(1), [], 3, None) and dialect_hint(op) is Dialect.CURRENT

    # a resolver without answer position (the test suite's usual form)
    op = parse_operation(R("op:deliver", exp(1), [], False, R("desc:import-promise", 4)))
    assert op == Deliver(Export(1), [], None, ImportPromise(4))


def test_fire_and_forget_emission_follows_dialect() -> None:
    op = Deliver(Export(5), ["hi"])
    assert op.to_record(Dialect.LEGACY).label == S("op:deliver-only")
    current = op.to_record(Dialect.CURRENT)
    assert current.label == S("op:deliver") and current.fields[2:] == (False, False)
    assert roundtrip(op, Dialect.LEGACY).only
    assert roundtrip(op, Dialect.CURRENT) == op


def test_listen_two_and_three_fields() -> None:
    two = parse_operation(R("op:listen", exp(2), imp(9)))
    assert two == Listen(Export(2), ImportObject(9), False)
    assert dialect_hint(two) is Dialect.CURRENT
    three = parse_operation(R("op:listen", R("desc:answer", 1), imp(9), True))
    assert isinstance(three, Listen) and three.wants_partial and three.legacy
    assert dialect_hint(three) is Dialect.LEGACY
    op = Listen(Export(2), ImportObject(9), True)
    assert len(op.to_record(Dialect.LEGACY).fields) == 3
    assert len(op.to_record(Dialect.CURRENT).fields) == 2


def test_gc_plural_and_singular() -> None:
    assert parse_operation(R("op:gc-exports", [1, 2], [3, 1])) == GcExports([1, 2], [3, 1])
    legacy = parse_operation(R("op:gc-export", 4, 2))
    assert isinstance(legacy, GcExports) and legacy.positions == [4] and legacy.deltas == [2]
    legacy_list = parse_operation(R("op:gc-export", [4], [2]))
    assert isinstance(legacy_list, GcExports) and legacy_list.legacy
    assert parse_operation(R("op:gc-answers", [0, 5])) == GcAnswers([0, 5])
    singular = parse_operation(R("op:gc-answer", 5))
    assert isinstance(singular, GcAnswers) and singular.positions == [5] and singular.legacy
    assert GcExports([1], [1]).to_record(Dialect.LEGACY).label == S("op:gc-export")
    assert GcAnswers([1]).to_record(Dialect.CURRENT).label == S("op:gc-answers")


def test_select_ops() -> None:
    assert parse_operation(R("op:get", R("desc:answer", 1), "name", 2)) == Select(
        SelectKind.GET, Answer(1), "name", 2
    )
    assert parse_operation(R("op:index", R("desc:import-promise", 3), 0, 4)) == Select(
        SelectKind.INDEX, Export(3), 0, 4
    )
    op = parse_operation(R("op:untag", exp(1), "point", 9))
    assert isinstance(op, Select) and op.kind is SelectKind.UNTAG
    assert roundtrip(op, Dialect.CURRENT) == op


def test_abort() -> None:
    assert parse_operation(R("op:abort", "bye")) == Abort("bye")


@pytest.mark.parametrize(
    "value",
    [
        b"not a record",
        R("op:unknown", 1),
        Record("op:deliver", exp(1), [], False, False),  # label must be a symbol
        R("op:deliver", exp(1), [], False),  # too few fields
        R("op:deliver", exp(-1), [], False, False),  # negative position
        R("op:deliver", exp(True), [], False, False),  # booleans are not positions
        R("op:deliver", imp(1), [], False, False),  # target must be export/answer
        R("op:deliver", exp(1), "args", False, False),  # args must be a list
        R("op:deliver", exp(1), [], False, exp(2)),  # resolver must be an import
        R("op:deliver", exp(1), [], 1.5, imp(1)),
        R("op:deliver-only", exp(1)),
        R("op:listen", exp(1)),
        R("op:listen", exp(1), imp(1), "yes"),
        R("op:gc-exports", [1, 2], [1]),
        R("op:gc-exports", [1], ["x"]),
        R("op:gc-answers", "x"),
        R("op:get", exp(1), 5, 1),
        R("op:index", exp(1), "0", 1),
        R("op:abort", 5),
        R("op:start-session", "1.0", b"key", False, False),
        R("desc:export"),
    ],
)
def test_malformed_operations_are_protocol_errors(value: Any) -> None:
    with pytest.raises(ProtocolError):
        parse_operation(value)


def test_public_key_and_signature_forms() -> None:
    key = crypto.SessionKey()
    wire = crypto.public_key_value(key.public)
    assert crypto.parse_public_key(decode(encode(wire))) == key.public
    sig = key.sign(b"data")
    assert crypto.parse_signature(decode(encode(crypto.signature_value(sig)))) == sig
    assert crypto.verify(key.public, sig, b"data")
    assert not crypto.verify(key.public, sig, b"other")
    with pytest.raises(ProtocolError):
        crypto.parse_public_key([S("public-key"), [S("ecc")]])
    with pytest.raises(ProtocolError):
        crypto.parse_signature([S("sig-val"), [S("eddsa"), [S("r"), b"x"], [S("s"), b"y"]]])


def test_session_id_is_symmetric() -> None:
    a, b = crypto.SessionKey(), crypto.SessionKey()
    assert crypto.session_id(a.public, b.public) == crypto.session_id(b.public, a.public)
    assert len(crypto.public_id(a.public)) == 32


def test_handoff_certificates_roundtrip() -> None:
    loc = PeerLocation("exporter", "memory")
    key = crypto.SessionKey()
    give = HandoffGive(key.public, loc, b"s" * 32, b"g" * 32, b"gift-of-any-length")
    assert HandoffGive.parse(decode(encode(give.to_record()))) == give
    env = SigEnvelope(give.to_record(), key.sign(encode(give.to_record())))
    receive = HandoffReceive(b"r" * 32, b"q" * 32, 3, env)
    parsed = HandoffReceive.parse(decode(encode(receive.to_record())))
    assert parsed == receive
    assert HandoffGive.parse(parsed.signed_give.signed).gift_id == b"gift-of-any-length"
    with pytest.raises(ProtocolError):
        HandoffReceive.parse(R("desc:handoff-receive", b"x", b"y", -1, env.to_record()))


def test_start_session_record_shape() -> None:
    key = crypto.SessionKey()
    loc = PeerLocation("me", "memory")
    op = StartSession("1.0", key.public, loc, loc.to_record(), key.sign(b"x"))
    parsed = parse_operation(decode(encode(op.to_record())))
    assert isinstance(parsed, StartSession)
    assert parsed.public_key == key.public and parsed.location == loc


@pytest.mark.parametrize("dialect", [Dialect.CURRENT, Dialect.LEGACY])
@pytest.mark.parametrize(
    "op",
    [
        Deliver(Export(0), []),
        Deliver(Answer(12345678901234567890), [1, -2, "x", b"y", [S("z")], {"k": 1.5}]),
        Deliver(Export(3), [R("desc:import-object", 4)], 0, ImportObject(7)),
        Deliver(Export(3), [], None, ImportPromise(9)),
        Deliver(Answer(1), [True, False], 5, ImportPromise(0)),
    ],
)
def test_fast_deliver_encoding_is_canonical(op: Deliver, dialect: Dialect) -> None:
    assert op.encode(dialect) == encode(op.to_record(dialect))
