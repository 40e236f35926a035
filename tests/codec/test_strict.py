"""Hostile and non-canonical input is rejected with a SyrupDecodeError and a reason."""

from __future__ import annotations

from typing import Any

import pytest

from charter.codec.syrup import (
    Decoder,
    Record,
    Symbol,
    SyrupDecodeError,
    SyrupEncodeError,
    SyrupError,
    SyrupLimitError,
    decode,
    encode,
)
from charter.errors import CharterError

REJECTED: list[tuple[bytes, str]] = [
    (b"", "empty input"),
    (b"00+", "leading zero"),
    (b"01+", "leading zero"),
    (b"0-", "negative zero"),
    (b"03:abc", "leading zero"),
    (b"3:ab", "ends early"),
    (b"5", "ends early"),
    (b"[1+", "ends early"),
    (b"D\x00\x00", "ends early"),
    (b"F\x00", "ends early"),
    (b"1+2+", "trailing"),
    (b"t ", "trailing"),
    (b" t", "unknown type byte"),
    (b"x", "unknown type byte"),
    (b"1x", "after digits"),
    (b"]", "outside any container"),
    (b"[1+>", "inside a list"),
    (b"<>", "without a label"),
    (b"{1+}", "key without a value"),
    (b"{2+t1+f}", "canonical order"),
    (b"{1+t1+f}", "duplicate dictionary key"),
    (b"#2+1+$", "canonical order"),
    (b"#1+1+$", "duplicate set member"),
    (b"{1:bt0:f}", "canonical order"),
    (b"#1+t$", "equal in Python"),
    (b"{1+tt1+}", "equal in Python"),
    (b"#D\x00\x00\x00\x00\x00\x00\x00\x00D\x80\x00\x00\x00\x00\x00\x00\x00$", "equal in Python"),
    (b"D\x7f\xf8\x00\x00\x00\x00\x00\x01", "canonical quiet NaN"),
    (b"D\xff\xf8\x00\x00\x00\x00\x00\x00", "canonical quiet NaN"),
    (b"F\x7f\xc0\x00\x01", "canonical quiet NaN"),
    (b'2"\xc3\x28', "not valid UTF-8"),
    (b'3"\xed\xa0\x80', "not valid UTF-8"),
    (b"1'\xff", "not valid UTF-8"),
    (b"{{}t}", "dictionary as a dictionary key"),
    (b"#{}$", "dictionary as a dictionary key or set member"),
    (b"99999999999999999999999:", "exceeds the limit"),
    (b"4294967296:x", "exceeds the limit"),
    (b"[" * 300 + b"]" * 300, "nesting deeper than 256"),
]


@pytest.mark.parametrize(("wire", "reason"), REJECTED, ids=[repr(w[:40]) for w, _ in REJECTED])
def test_rejects(wire: bytes, reason: str) -> None:
    with pytest.raises(SyrupDecodeError) as info:
        decode(wire)
    assert reason in info.value.reason
    assert info.value.code == "codec.syrup.decode"
    assert isinstance(info.value, SyrupError)
    assert isinstance(info.value, CharterError)


def test_offset_points_at_the_problem() -> None:
    with pytest.raises(SyrupDecodeError) as info:
        decode(b"[1+2+01+]")
    assert info.value.offset == 5
    assert "at byte 5" in str(info.value)


def test_size_limit() -> None:
    assert decode(b"3:abc", max_size=5) == b"abc"
    with pytest.raises(SyrupDecodeError, match="exceeds the limit"):
        decode(b"3:abc", max_size=4)


def test_depth_limit_is_exact() -> None:
    assert decode(b"[[[]]]", max_depth=3) == [[[]]]
    with pytest.raises(SyrupDecodeError, match="nesting deeper than 2"):
        decode(b"[[[]]]", max_depth=2)


def test_deep_nesting_within_the_hard_limit_is_iterative() -> None:
    depth = 9_000
    value = decode(b"[" * depth + b"]" * depth, max_depth=depth)
    for _ in range(depth - 1):
        value = value[0]
    assert value == []


def test_deep_keys_that_cannot_be_hashed_are_decode_errors() -> None:
    depth = 5_000
    wire = b"#" + b"<1'a" * depth + b">" * depth + b"$"
    with pytest.raises(SyrupDecodeError, match="too deeply"):
        decode(wire, max_depth=depth + 1)


def test_integer_digit_limit() -> None:
    wire = b"9" * 101 + b"+"
    assert decode(wire, max_int_digits=101) == int("9" * 101)
    with pytest.raises(SyrupDecodeError, match="more than 100 digits"):
        decode(wire, max_int_digits=100)


def test_bad_limits_are_rejected() -> None:
    with pytest.raises(SyrupLimitError):
        decode(b"t", max_depth=0)
    with pytest.raises(SyrupLimitError):
        decode(b"t", max_depth=100_000)
    with pytest.raises(SyrupLimitError):
        decode(b"t", max_size=0)
    with pytest.raises(SyrupLimitError):
        Decoder(max_int_digits=0)


class _Opaque:
    pass


@pytest.mark.parametrize(
    ("value", "name"),
    [(None, "NoneType"), (_Opaque(), "_Opaque"), ([1, object()], "object"), ({1: 1j}, "complex")],
)
def test_encode_rejects_unknown_types(value: Any, name: str) -> None:
    with pytest.raises(SyrupEncodeError, match=name) as info:
        encode(value)
    assert info.value.code == "codec.syrup.encode"


def test_encode_rejects_cycles_and_surrogates() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(SyrupEncodeError, match="cycle"):
        encode(loop)
    with pytest.raises(SyrupEncodeError, match="Unicode"):
        encode("\ud800")
    with pytest.raises(SyrupEncodeError, match="Unicode"):
        Symbol("\udfff")


def test_encode_rejects_keys_with_equal_encodings() -> None:
    nan1, nan2 = float("nan"), float("nan")
    with pytest.raises(SyrupEncodeError, match="same encoding"):
        encode({nan1: 1, nan2: 2})
    with pytest.raises(SyrupEncodeError, match="same encoding"):
        encode({nan1, nan2})


def test_values_are_immutable_and_hashable() -> None:
    sym = Symbol("a")
    rec = Record(sym, 1, (2, 3))
    with pytest.raises(AttributeError):
        sym.name = "b"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        rec.label = 1  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del sym.name
    with pytest.raises(AttributeError):
        del rec.fields
    assert sym != "a"
    assert "a" != sym  # noqa: SIM300
    assert hash(sym) != hash("a")
    assert {rec: 1}[Record(Symbol("a"), 1, (2, 3))] == 1
    assert rec != (sym, 1, (2, 3))
    assert repr(rec) == "Record(Symbol('a'), 1, (2, 3))"


def test_values_support_pattern_matching() -> None:
    message = decode(b"<10'op:deliver<11'desc:export5+>[]f>")
    match message:
        case Record(
            Symbol("op:deliver"), (Record(Symbol("desc:export"), (position,)), args, answer)
        ):
            assert (position, args, answer) == (5, [], False)
        case _:
            raise AssertionError(message)
