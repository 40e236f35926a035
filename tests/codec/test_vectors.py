"""Fixed byte vectors from the Syrup specification, in both directions."""

from __future__ import annotations

import math
from typing import Any

import pytest

from charter.codec.syrup import Float32, Record, Symbol, decode, encode

VECTORS: list[tuple[Any, bytes]] = [
    (True, b"t"),
    (False, b"f"),
    (0, b"0+"),
    (72, b"72+"),
    (-5, b"5-"),
    (2**64, b"18446744073709551616+"),
    (-(2**70), b"1180591620717411303424-"),
    (b"cat", b"3:cat"),
    (b"", b"0:"),
    ("bear", b'4"bear'),
    ("björn", b'6"bj\xc3\xb6rn'),
    ("熊", b'3"\xe7\x86\x8a'),
    ("", b'0"'),
    (Symbol("fetch"), b"5'fetch"),
    (Symbol("hämta"), b"6'h\xc3\xa4mta"),
    (Symbol(""), b"0'"),
    ([1, 2, 3], b"[1+2+3+]"),
    ([], b"[]"),
    ({b"name": "Alice", b"age": 30, b"isAlive": True}, b'{3:age30+4:name5"Alice7:isAlivet}'),
    ({}, b"{}"),
    (Record(b"person", "Alice", 30, True), b'<6:person5"Alice30+t>'),
    (Record(Symbol("op:abort")), b"<8'op:abort>"),
    (frozenset({3, 2, 1}), b"#1+2+3+$"),
    (frozenset(), b"#$"),
    (1.5, b"D\x3f\xf8\x00\x00\x00\x00\x00\x00"),
    (-0.0, b"D\x80\x00\x00\x00\x00\x00\x00\x00"),
    (math.inf, b"D\x7f\xf0\x00\x00\x00\x00\x00\x00"),
    (-math.inf, b"D\xff\xf0\x00\x00\x00\x00\x00\x00"),
    (Float32(1.5), b"F\x3f\xc0\x00\x00"),
    (
        Record(
            Symbol("op:deliver"),
            Record(Symbol("desc:export"), 5),
            [Symbol("hello"), 42, "world"],
            3,
            Record(Symbol("desc:import-promise"), 7),
        ),
        b"<10'op:deliver<11'desc:export5+>[5'hello42+5\"world]3+<19'desc:import-promise7+>>",
    ),
]


@pytest.mark.parametrize(("value", "wire"), VECTORS, ids=[repr(w) for _, w in VECTORS])
def test_encode_matches_vector(value: Any, wire: bytes) -> None:
    assert encode(value) == wire


@pytest.mark.parametrize(("value", "wire"), VECTORS, ids=[repr(w) for _, w in VECTORS])
def test_decode_matches_vector(value: Any, wire: bytes) -> None:
    decoded = decode(wire)
    assert decoded == value
    assert type(decoded) is type(value) or (type(value) is tuple and type(decoded) is list)
    if isinstance(value, float):
        assert math.copysign(1.0, decoded) == math.copysign(1.0, value)


def test_nan_encodes_canonically() -> None:
    assert encode(math.nan) == b"D\x7f\xf8\x00\x00\x00\x00\x00\x00"
    assert encode(-math.nan) == b"D\x7f\xf8\x00\x00\x00\x00\x00\x00"
    assert encode(Float32(math.nan)) == b"F\x7f\xc0\x00\x00"
    assert math.isnan(decode(b"D\x7f\xf8\x00\x00\x00\x00\x00\x00"))
    assert math.isnan(decode(b"F\x7f\xc0\x00\x00"))


def test_zoo() -> None:
    """The specification's sample structure, written with today's integer form."""
    zoo = Record(
        b"zoo",
        "The Grand Menagerie",
        [
            {
                Symbol("species"): b"cat",
                Symbol("name"): "Tabatha",
                Symbol("age"): 12,
                Symbol("weight"): 8.2,
                Symbol("alive?"): True,
                Symbol("eats"): {b"mice", b"fish", b"kibble"},
            },
            {
                Symbol("species"): b"monkey",
                Symbol("name"): "George",
                Symbol("age"): 6,
                Symbol("weight"): 17.24,
                Symbol("alive?"): False,
                Symbol("eats"): {b"bananas", b"insects"},
            },
        ],
    )
    wire = (
        b'<3:zoo19"The Grand Menagerie['
        b"{3'age12+4'eats#4:fish4:mice6:kibble$4'name7\"Tabatha6'alive?t"
        b"6'weightD@ ffffff7'species3:cat}"
        b"{3'age6+4'eats#7:bananas7:insects$4'name6\"George6'alive?f"
        b"6'weightD@1=p\xa3\xd7\n=7'species6:monkey}]>"
    )
    assert encode(zoo) == wire
    assert decode(wire) == zoo


def test_list_inputs_encode_alike() -> None:
    assert encode((1, "a")) == encode([1, "a"]) == b'[1+1"a]'
    assert encode(bytearray(b"ab")) == encode(memoryview(b"ab")) == b"2:ab"
    assert encode({1, 2}) == encode(frozenset({2, 1}))


def test_list_in_key_decodes_to_tuple() -> None:
    value = decode(b"{[1+2+]t}")
    assert value == {(1, 2): True}
    assert decode(b"#[1+]$") == frozenset({(1,)})
    assert decode(b"{<1'p[1+]>t}") == {Record(Symbol("p"), (1,)): True}


def test_huge_integers_round_trip() -> None:
    for n in (10**5000 + 7, -(7**9000), 2**30000 - 1):
        wire = encode(n)
        assert wire[-1:] == (b"+" if n > 0 else b"-")
        assert decode(wire, max_int_digits=30_000) == n


def test_bool_is_not_int() -> None:
    assert encode(True) == b"t"
    assert encode(1) == b"1+"
    assert decode(b"t") is True


def test_subclasses_encode_as_their_base() -> None:
    import enum
    from collections import OrderedDict

    class Colour(str, enum.Enum):  # noqa: UP042 (its __str__ is not the value)
        RED = "red"

    class Level(enum.IntEnum):
        HIGH = 3

    assert encode(Colour.RED) == b'3"red'
    assert encode(Level.HIGH) == b"3+"
    assert encode(OrderedDict([(2, 1), (1, 2)])) == b"{1+2+2+1+}"
