"""Canonical Syrup encoding: one Python value always yields the same bytes.

Dictionary entries and set members are ordered by the bytes of their encoded
key or member, so that the bytes can be hashed and signed.
"""

from __future__ import annotations

import struct
from operator import itemgetter
from typing import Any

from charter.codec.syrup.errors import SyrupEncodeError
from charter.codec.syrup.values import Float32, Record, Symbol

_PACK_D = struct.Struct(">d").pack
_PACK_F = struct.Struct(">f").pack
CANONICAL_NAN_D = b"D\x7f\xf8\x00\x00\x00\x00\x00\x00"
CANONICAL_NAN_F = b"F\x7f\xc0\x00\x00"
_SMALL_POS = tuple(b"%d+" % i for i in range(1024))
_FIRST = itemgetter(0)
# Below this many bits ``%d`` stays under CPython's int-to-str digit limit.
_DIRECT_BITS = 14000


def _decimal(n: int) -> bytes:
    """Base-10 digits of ``n >= 0`` of any size (divide and conquer past the str limit)."""
    if n.bit_length() <= _DIRECT_BITS:
        return b"%d" % n
    half = int(n.bit_length() * 0.30102999566398) // 2
    hi, lo = divmod(n, 10**half)
    return _decimal(hi) + _decimal(lo).rjust(half, b"0")


def _sorted_entries(encoded: list[bytes], what: str) -> list[bytes]:
    encoded.sort()
    for i in range(1, len(encoded)):
        if encoded[i] == encoded[i - 1]:
            raise SyrupEncodeError(f"two {what} have the same encoding")
    return encoded


def _enc(v: Any, out: bytearray) -> None:
    t = type(v)
    if t is Symbol:
        out += v._encoded
    elif t is int:
        if 0 <= v < 1024:
            out += _SMALL_POS[v]
        elif v > 0:
            out += _decimal(v)
            out += b"+"
        else:
            out += _decimal(-v)
            out += b"-"
    elif t is str:
        raw = v.encode("utf-8")
        out += b'%d"' % len(raw)
        out += raw
    elif t is Record:
        out += b"<"
        _enc(v.label, out)
        _enc_items(v.fields, out)
        out += b">"
    elif t is list or t is tuple:
        out += b"["
        _enc_items(v, out)
        out += b"]"
    elif t is bytes:
        out += b"%d:" % len(v)
        out += v
    elif t is bool:
        out += b"t" if v else b"f"
    elif t is float:
        out += b"D" + _PACK_D(v) if v == v else CANONICAL_NAN_D
    elif t is dict:
        _enc_dict(v, out)
    elif t is set or t is frozenset:
        members = _sorted_entries([_standalone(x) for x in v], "set members")
        out += b"#"
        out += b"".join(members)
        out += b"$"
    elif t is Float32:
        out += b"F" + _PACK_F(v) if v == v else CANONICAL_NAN_F
    elif t is bytearray or t is memoryview:
        raw = bytes(v)
        out += b"%d:" % len(raw)
        out += raw
    else:
        _enc_subclass(v, out)


def _enc_items(items: Any, out: bytearray) -> None:
    """A container's items; text, bytes and small integers without a call each."""
    for x in items:
        t = type(x)
        if t is str:
            raw = x.encode("utf-8")
            out += b'%d"' % len(raw)
            out += raw
        elif t is bytes:
            out += b"%d:" % len(x)
            out += x
        elif t is int and 0 <= x < 1024:
            out += _SMALL_POS[x]
        else:
            _enc(x, out)


def _standalone(v: Any) -> bytes:
    """The encoding of one dictionary key or set member, on its own."""
    t = type(v)
    if t is Symbol:
        return v._encoded  # type: ignore[no-any-return]
    if t is str:
        raw = v.encode("utf-8")
        return b'%d"%s' % (len(raw), raw)
    if t is bytes:
        return b"%d:%s" % (len(v), v)
    out = bytearray()
    _enc(v, out)
    return bytes(out)


# Dictionaries at least this large are checked for the string-to-bytes fast path.
_FAST_DICT_MIN = 16


def _is_text_to_bytes(v: dict[Any, Any]) -> bool:
    return all(type(k) is str for k in v) and all(type(x) is bytes for x in v.values())


def _enc_dict(v: dict[Any, Any], out: bytearray) -> None:
    if len(v) >= _FAST_DICT_MIN and _is_text_to_bytes(v):
        # Tables of rows (the ledger's state): whole entries sort as their keys do,
        # because an encoded key is never a prefix of another; str keys never collide.
        parts: list[bytes] = []
        add = parts.append
        for k, x in v.items():
            kb = k.encode("utf-8")
            add(b'%d"%s%d:%s' % (len(kb), kb, len(x), x))
        parts.sort()
        out += b"{"
        out += b"".join(parts)
        out += b"}"
        return
    entries = sorted([(_standalone(k), val) for k, val in v.items()], key=_FIRST)
    out += b"{"
    prev = None
    for kb, val in entries:
        if kb == prev:
            raise SyrupEncodeError("two dictionary keys have the same encoding")
        prev = kb
        out += kb
        _enc(val, out)
    out += b"}"


def _enc_subclass(v: Any, out: bytearray) -> None:
    """Subclasses of the supported types (IntEnum, str enums, ...) encode as their base."""
    if isinstance(v, bool):
        _enc(bool(v), out)
    elif isinstance(v, int):
        _enc(int.__index__(v), out)
    elif isinstance(v, str):
        _enc(str.__str__(v), out)  # the text itself, not an enum's overridden __str__
    elif isinstance(v, Float32):
        _enc(Float32(v), out)
    elif isinstance(v, float):
        _enc(float(v), out)
    elif isinstance(v, bytes | bytearray | memoryview):
        _enc(bytes(v), out)
    elif isinstance(v, list | tuple):
        _enc(list(v), out)
    elif isinstance(v, dict):
        _enc_dict(v, out)
    elif isinstance(v, set | frozenset):
        _enc(frozenset(v), out)
    else:
        raise SyrupEncodeError(f"cannot encode a value of type {type(v).__qualname__}")


def encode_into(value: Any, out: bytearray) -> None:
    """Append the canonical encoding of ``value`` to ``out``.

    On error ``out`` may hold a partial encoding; callers that reuse a buffer
    should truncate it to its previous length.
    """
    try:
        _enc(value, out)
    except UnicodeEncodeError:
        raise SyrupEncodeError("a str or Symbol is not valid Unicode (lone surrogate)") from None
    except RecursionError:
        raise SyrupEncodeError("value nested too deeply or contains a cycle") from None


def encode(value: Any) -> bytes:
    """The canonical Syrup bytes of ``value``."""
    out = bytearray()
    encode_into(value, out)
    return bytes(out)
