"""Property tests: round trips, canonical uniqueness, order independence, streaming."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.codec.syrup import (
    Decoder,
    Float32,
    Record,
    Symbol,
    SyrupDecodeError,
    SyrupEncodeError,
    decode,
    encode,
)

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
symbols = text.map(Symbol)
integers = st.one_of(st.integers(-(2**70), 2**70), st.integers(-1000, 1000))


def _scalars(allow_nan: bool) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.booleans(),
        integers,
        st.floats(allow_nan=allow_nan),
        st.floats(width=32, allow_nan=allow_nan).map(Float32),
        st.binary(max_size=20),
        text,
        symbols,
    )


def _records(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Record]:
    return st.builds(
        lambda label, fields: Record(label, *fields),
        st.one_of(symbols, children),
        st.lists(children, max_size=4),
    )


# Hashable values: what may be a dictionary key or a set member. No NaN, since
# two NaN objects are distinct in Python but share one Syrup encoding.
hashables = st.recursive(
    _scalars(allow_nan=False),
    lambda children: st.one_of(
        st.lists(children, max_size=4).map(tuple),
        st.frozensets(children, max_size=4),
        _records(children),
    ),
    max_leaves=12,
)

values = st.recursive(
    _scalars(allow_nan=True),
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=5).map(tuple),
        st.dictionaries(hashables, children, max_size=5),
        st.frozensets(hashables, max_size=5),
        st.sets(hashables, max_size=5),
        _records(children),
    ),
    max_leaves=25,
)


def same(expected: Any, got: Any, *, key: bool = False) -> bool:
    """Whether ``got`` is what decoding ``expected``'s encoding should give.

    Types must match exactly (a list or tuple decodes to a list, or to a tuple in
    a key or set member; a set to a frozenset), floats by bits up to NaN.
    """
    t = type(expected)
    if t is float or t is Float32:
        if type(got) is not t:
            return False
        if math.isnan(expected):
            return math.isnan(got)
        return bool(expected == got and math.copysign(1.0, expected) == math.copysign(1.0, got))
    if t is list or t is tuple:
        if type(got) is not (tuple if key else list) or len(got) != len(expected):
            return False
        return all(same(a, b, key=key) for a, b in zip(expected, got, strict=True))
    if t is set or t is frozenset:
        return type(got) is frozenset and got == expected
    if t is dict:
        if type(got) is not dict or len(got) != len(expected):
            return False
        return all(k in got and same(v, got[k]) for k, v in expected.items())
    if t is Record:
        return (
            type(got) is Record
            and same(expected.label, got.label, key=key)
            and len(expected.fields) == len(got.fields)
            and all(same(a, b, key=key) for a, b in zip(expected.fields, got.fields, strict=True))
        )
    return type(got) is t and bool(got == expected)


SETTINGS = settings(max_examples=200, deadline=None)


@SETTINGS
@given(values)
def test_round_trip(value: Any) -> None:
    wire = encode(value)
    decoded = decode(wire)
    assert same(value, decoded)
    assert encode(decoded) == wire


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(hashables, st.integers(), max_size=8), st.randoms(use_true_random=False))
def test_dict_and_set_encoding_ignore_insertion_order(
    mapping: dict[Any, int], rnd: random.Random
) -> None:
    items = list(mapping.items())
    rnd.shuffle(items)
    assert encode(dict(items)) == encode(mapping)
    keys = [k for k, _ in items]
    assert encode(set(keys)) == encode(set(reversed(keys))) == encode(frozenset(mapping))
    entries = sorted(encode(k) + encode(v) for k, v in mapping.items())
    assert encode(mapping) == b"{" + b"".join(entries) + b"}"
    members = sorted(encode(k) for k in keys)
    assert encode(set(keys)) == b"#" + b"".join(members) + b"$"


TOKENS = [
    b"t", b"f", b"0+", b"1+", b"7-", b"0-", b"01+", b"12+", b"[", b"]", b"{", b"}", b"<", b">",
    b"#", b"$", b"1'a", b"1'b", b"0'", b"1:a", b"0:", b'1"a', b'2"\xc3\xa9', b'1"\xff',
    b"D\x00\x00\x00\x00\x00\x00\x00\x00", b"D\x7f\xf8\x00\x00\x00\x00\x00\x00",
    b"F\x3f\x80\x00\x00", b"2:", b"x",
]  # fmt: skip


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=12).map(b"".join))
def test_canonical_uniqueness(wire: bytes) -> None:
    """Whatever decodes re-encodes to exactly the same bytes."""
    try:
        value = decode(wire)
    except SyrupDecodeError:
        return
    assert encode(value) == wire


@settings(max_examples=100, deadline=None)
@given(st.lists(values, min_size=1, max_size=4), st.data())
def test_stream_splits_do_not_matter(messages: list[Any], data: st.DataObject) -> None:
    stream = b"".join(encode(m) for m in messages)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    dec = Decoder()
    out: list[Any] = []
    prev = 0
    for cut in [*cuts, len(stream)]:
        out.extend(dec.feed(stream[prev:cut]))
        prev = cut
    assert dec.pending == 0
    assert len(out) == len(messages)
    assert all(same(m, o) for m, o in zip(messages, out, strict=True))


row_keys = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@given(st.dictionaries(row_keys, st.binary(max_size=12), min_size=16, max_size=60))
@settings(max_examples=200)
def test_tables_of_rows_encode_as_the_generic_dictionary_rule_says(rows: dict[str, bytes]) -> None:
    """Large str-to-bytes dictionaries take a shortcut; it must give the same bytes."""
    entries = sorted((encode(k), encode(v)) for k, v in rows.items())
    assert encode(rows) == b"{" + b"".join(k + v for k, v in entries) + b"}"
    assert decode(encode(rows)) == rows


def test_a_large_dictionary_of_other_values_still_encodes_generically() -> None:
    mixed: dict[Any, Any] = {f"k{i}": b"v" for i in range(40)}
    mixed["k7"] = 7  # one value is not bytes
    mixed[b"raw"] = b"x"  # one key is not str
    entries = sorted((encode(k), encode(v)) for k, v in mixed.items())
    assert encode(mixed) == b"{" + b"".join(k + v for k, v in entries) + b"}"
    surrogate = {f"k{i}": b"" for i in range(40)} | {"\ud800": b""}
    with pytest.raises(SyrupEncodeError):
        encode(surrogate)
