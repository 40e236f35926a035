"""The incremental Decoder yields the same values however a stream is split."""

from __future__ import annotations

import random
from typing import Any

import pytest

from charter.codec.syrup import Decoder, Record, Symbol, SyrupDecodeError, decode, encode

MESSAGES: list[Any] = [
    Record(Symbol("op:deliver"), Record(Symbol("desc:export"), 5), [Symbol("hi"), 42], 3, False),
    {b"k": frozenset({1, 2}), Symbol("s"): [1.5, -7, "x" * 300]},
    b"\x00" * 1000,
    frozenset({(1, 2), "a", Symbol("b")}),
    {(1, (2,)): {3: [4]}},
    12345678901234567890,
    True,
    "björn",
]
STREAM = b"".join(encode(m) for m in MESSAGES)


def feed_in_chunks(stream: bytes, cuts: list[int]) -> list[Any]:
    dec = Decoder()
    out: list[Any] = []
    prev = 0
    for cut in [*cuts, len(stream)]:
        out.extend(dec.feed(stream[prev:cut]))
        prev = cut
    assert dec.pending == 0
    return out


def test_whole_stream_at_once() -> None:
    assert feed_in_chunks(STREAM, []) == MESSAGES


def test_byte_by_byte() -> None:
    assert feed_in_chunks(STREAM, list(range(1, len(STREAM)))) == MESSAGES


def test_random_splits() -> None:
    rng = random.Random(1234)
    for _ in range(300):
        cuts = sorted(rng.sample(range(1, len(STREAM)), rng.randint(1, 40)))
        assert feed_in_chunks(STREAM, cuts) == MESSAGES


def test_pending_counts_the_partial_value() -> None:
    dec = Decoder()
    first = encode(MESSAGES[0])
    assert dec.feed(first + b"[1+2") == [MESSAGES[0]]
    assert dec.pending == 4
    assert dec.feed(b"+") == []
    assert dec.pending == 5
    assert dec.feed(b"]t") == [[1, 2], True]
    assert dec.pending == 0


def test_claimed_length_beyond_the_limit_fails_before_buffering() -> None:
    dec = Decoder(max_size=1000)
    with pytest.raises(SyrupDecodeError, match="exceeds the limit"):
        dec.feed(b"1000000:")
    dec = Decoder(max_size=10)
    dec.feed(b"[1+2+3+")
    with pytest.raises(SyrupDecodeError, match="exceeds the limit"):
        dec.feed(b"4+5+6+")


def test_error_is_sticky_and_offset_is_in_the_stream() -> None:
    dec = Decoder()
    assert dec.feed(b"t[1+") == [True]
    with pytest.raises(SyrupDecodeError) as info:
        dec.feed(b"01+]")
    assert info.value.offset == 4
    with pytest.raises(SyrupDecodeError):
        dec.feed(b"t")


def test_stream_decoder_agrees_with_decode() -> None:
    for m in MESSAGES:
        wire = encode(m)
        assert Decoder().feed(wire) == [decode(wire)]


def test_size_limit_applies_per_value_in_a_large_chunk() -> None:
    dec = Decoder(max_size=8)
    small = [b"x" * 5, 7, [1, 2]]
    stream = b"".join(encode(v) for v in small) * 5
    assert len(stream) > 8
    assert dec.feed(stream) == small * 5
    with pytest.raises(SyrupDecodeError, match="exceeds the limit"):
        Decoder(max_size=8).feed(stream + encode(b"y" * 7))


def test_bytes_like_input() -> None:
    wire = encode([1, "a"])
    assert decode(memoryview(wire)) == decode(bytearray(wire)) == [1, "a"]
    assert Decoder().feed(bytearray(wire)) == [[1, "a"]]


def test_feed_raw_returns_the_exact_bytes_of_each_value() -> None:
    rng = random.Random(99)
    wires = [encode(m) for m in MESSAGES]
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(STREAM)), rng.randint(1, 30)))
        dec = Decoder()
        got: list[tuple[Any, bytes]] = []
        prev = 0
        for cut in [*cuts, len(STREAM)]:
            got.extend(dec.feed_raw(STREAM[prev:cut]))
            prev = cut
        assert [raw for _, raw in got] == wires
        assert [v for v, _ in got] == MESSAGES


def test_large_body_in_small_chunks() -> None:
    body = bytes(range(256)) * 4096  # 1 MiB
    wire = encode([body, "tail"])
    dec = Decoder()
    got: list[Any] = []
    for i in range(0, len(wire), 1000):
        got.extend(dec.feed(wire[i : i + 1000]))
        if not got:
            assert dec.pending == min(i + 1000, len(wire))
    assert got == [[body, "tail"]]
    assert dec.pending == 0
