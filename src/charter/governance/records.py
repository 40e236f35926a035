"""Strict readers for the Syrup records governance stores and signs.

Everything read here is untrusted (a request from a client, a value from a log that
may have been tampered with): each reader checks the label, arity and field types
and raises ``RequestFormatError`` naming what is wrong.
"""

from __future__ import annotations

from collections.abc import Sequence

from charter.codec.syrup import Record, Symbol, SyrupError, decode
from charter.governance.errors import RequestFormatError

MAX_NAME_BYTES = 63
MAX_TEXT_BYTES = 4096


def decode_record(data: bytes, label: Symbol, arity: int, what: str) -> Sequence[object]:
    """The fields of the canonical record ``<label ...>`` encoded in ``data``."""
    if type(data) is not bytes:
        raise RequestFormatError(f"{what}: expected bytes")
    try:
        value = decode(data)
    except SyrupError as exc:
        raise RequestFormatError(f"{what}: not canonical Syrup: {exc.message}") from None
    return record_fields(value, label, arity, what)


def record_fields(value: object, label: Symbol, arity: int, what: str) -> Sequence[object]:
    if not isinstance(value, Record) or value.label != label:
        raise RequestFormatError(f"{what}: not a {label.name} record")
    if len(value.fields) != arity:
        raise RequestFormatError(f"{what}: a {label.name} record has {arity} fields")
    return value.fields


def text(value: object, what: str, *, limit: int = MAX_TEXT_BYTES, empty: bool = True) -> str:
    if type(value) is not str:
        raise RequestFormatError(f"{what}: expected a string")
    if len(value.encode("utf-8", "surrogatepass")) > limit:
        raise RequestFormatError(f"{what}: at most {limit} bytes")
    if not empty and not value:
        raise RequestFormatError(f"{what}: must not be empty")
    return value


def name(value: object, what: str) -> str:
    """A member, node, user or role name: 1..63 bytes of [A-Za-z0-9._-]."""
    s = text(value, what, limit=MAX_NAME_BYTES, empty=False)
    if not all(c.isascii() and (c.isalnum() or c in "._-") for c in s) or s[0] in ".-":
        raise RequestFormatError(f"{what}: {s!r} is not a valid name")
    return s


def integer(value: object, what: str, *, low: int = 0, high: int = 2**63 - 1) -> int:
    if type(value) is not int or not low <= value <= high:
        raise RequestFormatError(f"{what}: expected an integer in {low}..{high}")
    return value


def octets(value: object, what: str, *, size: int | None = None, limit: int = 1 << 16) -> bytes:
    if type(value) is not bytes:
        raise RequestFormatError(f"{what}: expected bytes")
    if size is not None and len(value) != size:
        raise RequestFormatError(f"{what}: expected {size} bytes")
    if len(value) > limit:
        raise RequestFormatError(f"{what}: at most {limit} bytes")
    return value


def boolean(value: object, what: str) -> bool:
    if type(value) is not bool:
        raise RequestFormatError(f"{what}: expected a boolean")
    return value


def symbol(value: object, what: str, allowed: Sequence[str]) -> str:
    if not isinstance(value, Symbol) or value.name not in allowed:
        raise RequestFormatError(f"{what}: expected one of {', '.join(allowed)}")
    return value.name


def names(value: object, what: str, *, limit: int = 64) -> tuple[str, ...]:
    """A sorted, duplicate-free list of names (sorted so the encoding is canonical)."""
    if not isinstance(value, list) or len(value) > limit:
        raise RequestFormatError(f"{what}: expected a list of at most {limit} names")
    out = tuple(name(v, what) for v in value)
    if list(out) != sorted(set(out)):
        raise RequestFormatError(f"{what}: names must be sorted and unique")
    return out


def string_map(value: object, what: str, *, limit: int = 64) -> dict[str, str]:
    if not isinstance(value, dict) or len(value) > limit:
        raise RequestFormatError(f"{what}: expected a dictionary of at most {limit} entries")
    out: dict[str, str] = {}
    for k, v in value.items():
        out[name(k, what)] = text(v, what)
    return out


__all__ = [
    "boolean",
    "decode_record",
    "integer",
    "name",
    "names",
    "octets",
    "record_fields",
    "string_map",
    "symbol",
    "text",
]


def symbol_text(value: object, what: str, allowed: Sequence[str]) -> str:
    """A string that must be one of ``allowed``."""
    s = text(value, what, limit=64)
    if s not in allowed:
        raise RequestFormatError(f"{what}: expected one of {', '.join(allowed)}")
    return s
