"""Syrup encode/decode throughput on typical CapTP messages; prints one JSON object.

Run: ``python bench/bench_codec.py`` (about ten seconds). Each figure is the
best of several timed rounds, in operations per second on one core.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from collections.abc import Callable
from typing import Any

from charter.codec.syrup import Decoder, Record, Symbol, decode, encode


def deliver_message() -> Any:
    """``<op:deliver <desc:export 5> ['hello 42 "world"] 3 <desc:import-promise 7>>``."""
    return Record(
        Symbol("op:deliver"),
        Record(Symbol("desc:export"), 5),
        [Symbol("hello"), 42, "world"],
        3,
        Record(Symbol("desc:import-promise"), 7),
    )


def dict_message() -> Any:
    """A 50-entry dictionary of mixed values, as in a ledger entry or a data batch."""
    entries: dict[Any, Any] = {}
    for i in range(50):
        key = Symbol(f"field-{i}")
        if i % 5 == 0:
            entries[key] = f"value number {i}"
        elif i % 5 == 1:
            entries[key] = i * 7919
        elif i % 5 == 2:
            entries[key] = bytes(range(i % 32))
        elif i % 5 == 3:
            entries[key] = [i, -i, float(i) / 3]
        else:
            entries[key] = Record(Symbol("desc:export"), i)
    return Record(Symbol("op:deliver"), Record(Symbol("desc:answer"), 1), [entries], False)


def rate(fn: Callable[[], object], rounds: int = 5, min_time: float = 0.4) -> float:
    """Best operations per second over ``rounds`` rounds of at least ``min_time`` seconds."""
    n = 1
    while True:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        if time.perf_counter() - start >= min_time / 4:
            break
        n *= 2
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        elapsed = time.perf_counter() - start
        best = max(best, n / elapsed)
    return best


def stream_rate(wire: bytes, count: int = 2000, chunk: int = 4096) -> float:
    """Messages per second through ``Decoder`` when a stream arrives in ``chunk``-byte reads."""
    stream = wire * count
    best = 0.0
    for _ in range(3):
        dec = Decoder()
        got = 0
        start = time.perf_counter()
        for i in range(0, len(stream), chunk):
            got += len(dec.feed(stream[i : i + chunk]))
        elapsed = time.perf_counter() - start
        assert got == count
        best = max(best, count / elapsed)
    return best


def main() -> None:
    results: dict[str, Any] = {
        "benchmark": "codec.syrup",
        "python": sys.version.split()[0],
        "machine": platform.machine(),
    }
    for name, make in (("deliver", deliver_message), ("dict50", dict_message)):
        value = make()
        wire = encode(value)
        assert decode(wire) == value
        results[name] = {
            "bytes": len(wire),
            "encode_per_s": round(rate(lambda v=value: encode(v))),
            "decode_per_s": round(rate(lambda w=wire: decode(w))),
            "stream_decode_per_s": round(stream_rate(wire)),
        }
    blob = bytes(range(256)) * 4096 * 4  # 4 MiB, as in a blob transfer
    chunk_message = Record(Symbol("blob-chunk"), 0, blob)
    wire = encode(chunk_message)
    mib = len(wire) / (1024 * 1024)
    results["blob4m"] = {
        "bytes": len(wire),
        "encode_mib_per_s": round(mib * rate(lambda: encode(chunk_message), rounds=3), 1),
        "decode_mib_per_s": round(mib * rate(lambda: decode(wire), rounds=3), 1),
        "stream_decode_mib_per_s": round(mib * stream_rate(wire, count=4, chunk=65536), 1),
    }
    json.dump(results, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
