"""Frame encoding and the scanner's classification of what follows the last good frame."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from charter.ledger.framing import (
    HEADER_SIZE,
    MAX_RECORD_SIZE,
    Tail,
    check_frame,
    encode_frame,
    encode_frames,
    scan,
)


@given(st.lists(st.binary(max_size=300), max_size=20))
def test_frames_scan_back_exactly(payloads: list[bytes]) -> None:
    buf = encode_frames(payloads)
    result = scan(buf)
    assert result.tail is Tail.CLEAN
    assert result.end == len(buf)
    assert len(result.offsets) == len(payloads)
    for offset, payload in zip(result.offsets, payloads, strict=True):
        frame = buf[offset : offset + HEADER_SIZE + len(payload)]
        assert check_frame(frame) == payload


def test_every_prefix_of_a_frame_is_a_torn_tail() -> None:
    good = encode_frames([b"first", b"second"])
    last = encode_frame(b"the last record")
    for cut in range(1, len(last)):
        result = scan(good + last[:cut])
        assert result.tail is Tail.TORN, cut
        assert result.end == len(good)
        assert len(result.offsets) == 2


def test_zero_filled_tail_is_torn() -> None:
    good = encode_frames([b"a", b"b"])
    result = scan(good + bytes(4096))
    assert result.tail is Tail.TORN
    assert result.end == len(good)


def test_crc_mismatch_is_corruption_not_a_tail() -> None:
    buf = bytearray(encode_frames([b"alpha", b"beta", b"gamma"]))
    buf[HEADER_SIZE + 1] ^= 0x01
    result = scan(bytes(buf))
    assert result.tail is Tail.CORRUPT
    assert result.end == 0
    assert "CRC" in result.reason


def test_flipped_length_bit_is_caught() -> None:
    buf = bytearray(encode_frames([b"alpha", b"beta", b"gamma"]))
    buf[0] ^= 0x01  # length 5 -> 4: frame still fits, CRC covers the length
    assert scan(bytes(buf)).tail is Tail.CORRUPT


def test_absurd_length_is_corruption() -> None:
    buf = bytearray(encode_frames([b"alpha", b"beta"]))
    buf[3] = 0xFF
    result = scan(bytes(buf))
    assert result.tail is Tail.CORRUPT
    assert "length" in result.reason


def test_oversized_record_refused() -> None:
    with pytest.raises(ValueError):
        encode_frame(bytes(MAX_RECORD_SIZE + 1))
