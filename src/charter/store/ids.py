"""Time-ordered (version 7) UUID strings for index rows, drawn from a buffer of OS randomness.

Version 7 (RFC 9562): 48 bits of Unix milliseconds, then random bits. Rows inserted one
after another get ids that sort after one another, so each unique index on an id grows
at its end: random (version 4) ids land on a random page of the index each, and once the
index is larger than the page cache every row costs a page written (and read). ``uuid``
makes one ``getrandom`` call and one ``UUID`` object per id; here one call fills a
buffer for 256 ids and the text is formatted straight from its hex.
"""

from __future__ import annotations

import os
import time

__all__ = ["new_id", "new_ids"]

_PER_REFILL = 256
_buffer = bytearray()


def _take(n: int) -> bytearray:
    global _buffer
    need = 10 * n
    if len(_buffer) < need:
        _buffer += os.urandom(max(need, 10 * _PER_REFILL))
    raw, _buffer = _buffer[:need], _buffer[need:]
    return raw


def new_ids(n: int) -> list[str]:
    """``n`` fresh UUIDv7 strings (lower-case, hyphenated, like ``str(uuid.UUID(...))``)."""
    stamp = (time.time_ns() // 1_000_000).to_bytes(6, "big")
    rand = _take(n)
    raw = bytearray()
    for i in range(0, 10 * n, 10):
        raw += stamp
        raw += rand[i : i + 10]
        raw[-10] = (raw[-10] & 0x0F) | 0x70  # version 7
        raw[-8] = (raw[-8] & 0x3F) | 0x80  # RFC 9562 variant
    h = raw.hex()
    return [
        f"{h[j : j + 8]}-{h[j + 8 : j + 12]}-{h[j + 12 : j + 16]}-{h[j + 16 : j + 20]}-{h[j + 20 : j + 32]}"
        for j in range(0, 32 * n, 32)
    ]


def new_id() -> str:
    """One fresh UUIDv7 string."""
    return new_ids(1)[0]
