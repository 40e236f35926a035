"""Random (version 4) UUID strings for index rows, drawn from a buffer of OS randomness.

A row id needs no more than ``uuid.uuid4`` gives, but ``uuid4`` makes one ``getrandom``
call and one ``UUID`` object per id; at thousands of rows a second both show. Here one
call fills a buffer for 256 ids and the text is formatted straight from its hex.
"""

from __future__ import annotations

import os

__all__ = ["new_id", "new_ids"]

_PER_REFILL = 256
_buffer = bytearray()


def _take(n: int) -> bytearray:
    global _buffer
    need = 16 * n
    if len(_buffer) < need:
        _buffer += os.urandom(max(need, 16 * _PER_REFILL))
    raw, _buffer = _buffer[:need], _buffer[need:]
    return raw


def new_ids(n: int) -> list[str]:
    """``n`` fresh UUID4 strings (lower-case, hyphenated, like ``str(uuid.uuid4())``)."""
    raw = _take(n)
    for i in range(0, 16 * n, 16):
        raw[i + 6] = (raw[i + 6] & 0x0F) | 0x40  # version 4
        raw[i + 8] = (raw[i + 8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return [
        f"{h[j : j + 8]}-{h[j + 8 : j + 12]}-{h[j + 12 : j + 16]}-{h[j + 16 : j + 20]}-{h[j + 20 : j + 32]}"
        for j in range(0, 32 * n, 32)
    ]


def new_id() -> str:
    """One fresh UUID4 string."""
    return new_ids(1)[0]
