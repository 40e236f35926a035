"""Framers: message boundaries, raw bytes, limits and hostile input."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.codec.syrup import Record, Symbol, encode
from charter.ocapn.framing import (
    FrameDecodeError,
    FrameSyntaxError,
    FrameTooLargeError,
    FramingError,
    LengthPrefixedFramer,
    UnframedFramer,
    make_framer,
)

DELIVER = Record(
    Symbol("op:deliver"),
    Record(Symbol("desc:export"), 0),
    [Symbol("fetch"), b"VMDDd1voKWarCe2GvgLbxbVFysNzRPzx"],
    False,
    False,
)

syrup_values: st.SearchStrategy[Any] = st.recursive(
    st.none().map(lambda _: False)
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.binary(max_size=40)
    | st.text(max_size=20)
    | st.text(max_size=10).map(Symbol)
    | st.floats(allow_nan=False),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(max_size=5), children, max_size=4)
        | st.builds(
            lambda label, fields: Record(Symbol(label), *fields),
            st.text(min_size=1, max_size=8),
            st.lists(children, max_size=4),
        )
    ),
    max_leaves=20,
)


def chunked(data: bytes, sizes: list[int]) -> list[bytes]:
    out, pos = [], 0
    for size in sizes:
        out.append(data[pos : pos + size])
        pos += size
    out.append(data[pos:])
    return out


@pytest.mark.parametrize("name", ["unframed", "length-prefixed"])
def test_round_trip_of_op_deliver(name: str) -> None:
    framer = make_framer(name)
    payload = encode(DELIVER)
    wire = framer.frame(payload) * 3
    messages = framer.feed_messages(wire)
    assert [m.value for m in messages] == [DELIVER] * 3
    assert all(m.raw == payload for m in messages)


def test_length_prefixed_wire_form() -> None:
    framer = LengthPrefixedFramer()
    assert framer.frame(b"3:abc") == b"5:3:abc"
    assert framer.feed(b"5:3:abc") == [b"abc"]


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(syrup_values, min_size=1, max_size=6),
    cuts=st.lists(st.integers(min_value=0, max_value=9), max_size=40),
    name=st.sampled_from(["unframed", "length-prefixed"]),
)
def test_any_chunking_gives_the_same_messages(
    values: list[Any], cuts: list[int], name: str
) -> None:
    framer = make_framer(name)
    payloads = [encode(v) for v in values]
    wire = b"".join(framer.frame(p) for p in payloads)
    got = []
    for piece in chunked(wire, cuts):
        got.extend(framer.feed_messages(piece))
    assert [m.raw for m in got] == payloads
    assert [encode(m.value) for m in got] == payloads
    assert framer.buffered == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["unframed", "length-prefixed"])
def test_big_message_across_many_reads(name: str) -> None:
    framer = make_framer(name)
    big = Record(
        Symbol("op:deliver"), Record(Symbol("desc:export"), 1), [b"x" * 3_000_000], False, False
    )
    wire = framer.frame(encode(big))
    got = []
    for i in range(0, len(wire), 65536):
        got.extend(framer.feed(wire[i : i + 65536]))
    assert got == [big]


def test_unframed_rejects_oversized_bytestring_before_buffering_it() -> None:
    framer = UnframedFramer(max_message_size=1000)
    with pytest.raises(FrameTooLargeError) as info:
        framer.feed(b"[5000:")
    assert info.value.code == "ocapn.framing.too_large"
    # once failed, always failed: the stream cannot be resynchronized
    with pytest.raises(FrameTooLargeError):
        framer.feed(encode([1]))


def test_unframed_rejects_endless_list() -> None:
    framer = UnframedFramer(max_message_size=100)
    with pytest.raises(FrameTooLargeError):
        for _ in range(100):
            framer.feed(b"[1+2+3+")


def test_length_prefixed_rejects_oversized_prefix() -> None:
    framer = LengthPrefixedFramer(max_message_size=1000)
    with pytest.raises(FrameTooLargeError):
        framer.feed(b"1001:")
    with pytest.raises(FrameSyntaxError):
        LengthPrefixedFramer(max_message_size=1000).feed(b"99999999")


def test_frame_refuses_oversized_outgoing_message() -> None:
    for framer in (UnframedFramer(10), LengthPrefixedFramer(10)):
        with pytest.raises(FrameTooLargeError):
            framer.frame(b"x" * 11)


@pytest.mark.parametrize(
    ("name", "wire", "error"),
    [
        ("unframed", b"]", FrameDecodeError),
        ("unframed", b"<3'foo?", FrameDecodeError),
        ("unframed", b"12x", FrameDecodeError),
        ("unframed", b"{1+}", FrameDecodeError),
        ("unframed", b"<>", FrameDecodeError),
        ("length-prefixed", b"x:", FrameSyntaxError),
        ("length-prefixed", b":abc", FrameSyntaxError),
        ("length-prefixed", b"4:1+1+", FrameDecodeError),
        ("length-prefixed", b"2:[[", FrameDecodeError),
        ("length-prefixed", b"0:", FrameDecodeError),
    ],
)
def test_garbage_is_a_typed_error(name: str, wire: bytes, error: type[FramingError]) -> None:
    with pytest.raises(error):
        make_framer(name).feed(wire)


def test_incomplete_input_waits_for_more() -> None:
    framer = UnframedFramer()
    wire = encode(DELIVER)
    for i in range(len(wire) - 1):
        assert UnframedFramer().feed(wire[:i]) == []
    assert framer.feed(wire[:-1]) == []
    assert framer.feed(wire[-1:]) == [DELIVER]
    lp = LengthPrefixedFramer()
    assert lp.feed(b"1") == [] and lp.feed(b"2:") == [] and lp.feed(wire[:5]) == []


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.sampled_from(["unframed", "length-prefixed"]))
def test_fuzzed_bytes_never_escape_as_untyped_errors(data: bytes, name: str) -> None:
    framer = make_framer(name, max_message_size=4096)
    with contextlib.suppress(FramingError):
        framer.feed(data)


def test_unknown_framing_name() -> None:
    with pytest.raises(FramingError):
        make_framer("smoke-signals")
