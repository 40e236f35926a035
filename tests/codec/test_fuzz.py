"""Seeded fuzzing: random and mutated inputs may only ever raise SyrupDecodeError.

Every input that does decode must be canonical (re-encode to the same bytes),
and the stream decoder, fed the same bytes in random chunks, must agree.
"""

from __future__ import annotations

import random
from typing import Any

from charter.codec.syrup import Decoder, Float32, Record, Symbol, SyrupDecodeError, decode, encode

FUZZ_INPUTS = 100_000
SYNTAX = b"0123456789+-:\"'[]{}<>#$tfDF"
LIMITS = {"max_depth": 24, "max_size": 4096, "max_int_digits": 60}


def random_value(rng: random.Random, depth: int = 0, key: bool = False) -> Any:
    """A random Syrup value; ``key`` keeps it hashable."""
    kind = rng.randrange(14 if depth < 4 else 8)
    if kind == 0:
        return rng.random() < 0.5
    if kind == 1:
        return rng.randint(-(10 ** rng.randint(1, 25)), 10 ** rng.randint(1, 25))
    if kind == 2:
        return rng.choice([0.0, -0.0, 1.5, -2.25e300, float("inf"), rng.random()])
    if kind == 3:
        return rng.randbytes(rng.randrange(12))
    if kind == 4:
        return "".join(rng.choice("ab\u00e9\u718a\U0001f600") for _ in range(rng.randrange(6)))
    if kind == 5:
        return Symbol(rng.choice(["op:deliver", "desc:export", "a", "", "h\u00e4mta"]))
    if kind == 6:
        return Float32(rng.choice([0.5, -3.0, 1e30]))
    if kind == 7:
        return rng.randrange(10)
    if kind == 8 and not key:
        return float("nan")
    children = [random_value(rng, depth + 1, key) for _ in range(rng.randrange(5))]
    if kind in (8, 9):
        return tuple(children) if key else children
    if kind == 10:
        return Record(Symbol("desc:import-promise"), *children)
    if kind == 11:
        return frozenset(random_value(rng, depth + 1, True) for _ in range(rng.randrange(4)))
    if kind == 12 and not key:
        return {random_value(rng, depth + 1, True): c for c in children}
    return Record(random_value(rng, depth + 1, key), *children)


def mutate(rng: random.Random, data: bytes, corpus: list[bytes]) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(8)
        at = rng.randrange(len(buf) + 1)
        if op == 0 and buf:  # flip a bit
            i = min(at, len(buf) - 1)
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1 and buf:  # replace a byte by a syntactically interesting one
            buf[min(at, len(buf) - 1)] = rng.choice(SYNTAX)
        elif op == 2:  # truncate
            del buf[at:]
        elif op == 3:  # insert bytes
            buf[at:at] = rng.randbytes(rng.randint(1, 4))
        elif op == 4:  # delete a range
            del buf[at : at + rng.randint(1, 6)]
        elif op == 5:  # duplicate a slice
            buf[at:at] = buf[rng.randrange(len(buf) + 1) :][: rng.randint(1, 12)]
        elif op == 6:  # change a length prefix or number
            digits = [i for i, b in enumerate(buf) if 48 <= b <= 57]
            if digits:
                i = rng.choice(digits)
                buf[i : i + 1] = str(rng.choice([0, 1, 9, 10, 99, 4096, 10**12])).encode()
        else:  # splice in part of another input
            other = rng.choice(corpus)
            buf[at:at] = other[rng.randrange(len(other) + 1) :][: rng.randint(1, 20)]
    return bytes(buf)


def check(rng: random.Random, data: bytes) -> int:
    """Decode ``data`` both ways; return 1 if it was a valid value."""
    valid = 0
    try:
        value = decode(data, **LIMITS)
    except SyrupDecodeError:
        value = None
    else:
        valid = 1
        assert encode(value) == data, data
    dec = Decoder(**LIMITS)
    got: list[tuple[Any, bytes]] = []
    pos = 0
    raw_mode = rng.random() < 0.5
    try:
        while pos < len(data):
            step = rng.randint(1, max(1, len(data)))
            chunk = data[pos : pos + step]
            if raw_mode:
                got.extend(dec.feed_raw(chunk))
            else:
                got.extend((v, encode(v)) for v in dec.feed(chunk))
            pos += step
    except SyrupDecodeError:
        return valid
    consumed = len(data) - dec.pending
    assert all(encode(v) == raw for v, raw in got), data
    assert b"".join(raw for _, raw in got) == data[:consumed], data
    if valid:
        assert dec.pending == 0 and len(got) == 1, data
    return valid


def test_fuzz_decode_and_stream() -> None:
    rng = random.Random(20261122)
    corpus = [encode(random_value(rng)) for _ in range(300)]
    corpus += [b"<10'op:deliver<11'desc:export5+>[5'hello42+5\"world]3+<19'desc:import-promise7+>>"]
    valid = 0
    for i in range(FUZZ_INPUTS):
        if i % 10 == 0:
            data = rng.randbytes(rng.randrange(24))
        elif i % 10 == 1:
            data = bytes(rng.choice(SYNTAX) for _ in range(rng.randrange(24)))
        else:
            data = mutate(rng, rng.choice(corpus), corpus)
        valid += check(rng, data)
    # The mutations must keep reaching the decoder's success paths, not only its errors.
    assert valid > FUZZ_INPUTS // 100


def test_corpus_is_canonical() -> None:
    rng = random.Random(7)
    for _ in range(500):
        value = random_value(rng)
        wire = encode(value)
        assert encode(decode(wire)) == wire
