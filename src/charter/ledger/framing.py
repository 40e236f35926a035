"""Record framing for segment files, sans I/O.

Each record is ``[u32 length][u32 crc][payload]`` (little-endian), where the CRC32C
covers the four length bytes and then the payload, so a flipped bit in the length
is caught as surely as one in the payload. Scanning a buffer classifies what
follows the last good record: nothing, a torn tail (an incomplete frame or a
zero-filled region, which is what a crash during an append leaves), or damage.
"""

from __future__ import annotations

import struct
from array import array
from dataclasses import dataclass
from enum import Enum

from crc32c import crc32c

HEADER = struct.Struct("<II")
HEADER_SIZE = HEADER.size
LENGTH = struct.Struct("<I")
# Larger lengths can only be damage: no Charter record comes close.
MAX_RECORD_SIZE = 64 * 1024 * 1024


def frame_crc(payload: bytes | memoryview, length: int) -> int:
    return crc32c(payload, crc32c(LENGTH.pack(length)))


def encode_frame(payload: bytes) -> bytes:
    n = len(payload)
    if n > MAX_RECORD_SIZE:
        raise ValueError(f"record of {n} bytes exceeds the {MAX_RECORD_SIZE}-byte limit")
    return HEADER.pack(n, frame_crc(payload, n)) + payload


def encode_frames(payloads: list[bytes]) -> bytes:
    """All frames joined, so that a batch is one write call."""
    return b"".join([encode_frame(p) for p in payloads])


class Tail(Enum):
    CLEAN = "clean"
    TORN = "torn"
    CORRUPT = "corrupt"


@dataclass(frozen=True, slots=True)
class ScanResult:
    """Offsets of the good records, where they end, and what follows them."""

    offsets: array[int]
    end: int
    tail: Tail
    reason: str = ""


def scan(buf: bytes | memoryview) -> ScanResult:
    """Walk ``buf`` frame by frame, checking every length and CRC."""
    view = memoryview(buf)
    size = len(view)
    offsets: array[int] = array("Q")
    pos = 0
    unpack = HEADER.unpack_from
    while pos < size:
        remaining = size - pos
        if remaining < HEADER_SIZE:
            return _tail(view, pos, offsets, "partial record header")
        length, crc = unpack(view, pos)
        if length > MAX_RECORD_SIZE:
            if _all_zero(view, pos):
                return ScanResult(offsets, pos, Tail.TORN, "zero-filled tail")
            return ScanResult(offsets, pos, Tail.CORRUPT, f"bad record length {length}")
        end = pos + HEADER_SIZE + length
        if end > size:
            return _tail(view, pos, offsets, f"record of {length} bytes runs past end of file")
        if frame_crc(view[pos + HEADER_SIZE : end], length) != crc:
            if _all_zero(view, pos):
                return ScanResult(offsets, pos, Tail.TORN, "zero-filled tail")
            return ScanResult(offsets, pos, Tail.CORRUPT, "CRC mismatch")
        offsets.append(pos)
        pos = end
    return ScanResult(offsets, pos, Tail.CLEAN)


def check_frame(frame: bytes | memoryview) -> bytes:
    """The payload of one complete frame; ValueError names what is wrong."""
    if len(frame) < HEADER_SIZE:
        raise ValueError("partial record header")
    length, crc = HEADER.unpack_from(frame, 0)
    if length != len(frame) - HEADER_SIZE:
        raise ValueError(f"bad record length {length}")
    payload = bytes(frame[HEADER_SIZE:])
    if frame_crc(payload, length) != crc:
        raise ValueError("CRC mismatch")
    return payload


def _tail(view: memoryview, pos: int, offsets: array[int], reason: str) -> ScanResult:
    return ScanResult(offsets, pos, Tail.TORN, reason)


def _all_zero(view: memoryview, pos: int) -> bool:
    rest = view[pos:].tobytes()
    return len(rest) > 0 and rest.count(0) == len(rest)
