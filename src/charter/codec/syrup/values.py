"""The Syrup value types that Python has no native equivalent for.

Symbols and records are immutable so that they can be dictionary keys and set
members, and so that a decoder may share one instance between many values.
"""

from __future__ import annotations

import struct
from typing import Any, NoReturn

from charter.codec.syrup.errors import SyrupEncodeError

_PACK_F = struct.Struct(">f").pack
_UNPACK_F = struct.Struct(">f").unpack


def _frozen(self: object, name: str, value: object) -> NoReturn:
    raise AttributeError(f"{type(self).__name__} is immutable")


def _undeletable(self: object, name: str) -> NoReturn:
    raise AttributeError(f"{type(self).__name__} is immutable")


class Symbol:
    """An identifier such as ``op:deliver``; never equal to the ``str`` of its name."""

    __slots__ = ("_encoded", "_hash", "name")
    __match_args__ = ("name",)

    name: str
    _encoded: bytes
    _hash: int

    def __init__(self, name: str) -> None:
        if type(name) is not str:
            if not isinstance(name, str):
                raise SyrupEncodeError(f"a Symbol name must be a str, not {type(name).__name__}")
            name = str.__str__(name)  # the text itself, not an enum's __str__
        try:
            raw = name.encode("utf-8")
        except UnicodeEncodeError:
            raise SyrupEncodeError("a Symbol name must be valid Unicode") from None
        _set_sym_name(self, name)
        _set_sym_encoded(self, b"%d'%s" % (len(raw), raw))
        _set_sym_hash(self, hash((Symbol, name)))

    __setattr__ = _frozen
    __delattr__ = _undeletable

    def __eq__(self, other: object) -> bool:
        if other.__class__ is Symbol:
            return self.name == other.name
        return NotImplemented

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"Symbol({self.name!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Symbol, (self.name,))


_set_sym_name = Symbol.__dict__["name"].__set__
_set_sym_encoded = Symbol.__dict__["_encoded"].__set__
_set_sym_hash = Symbol.__dict__["_hash"].__set__


class Record:
    """A labelled tuple ``<label field...>``: the shape of every CapTP message."""

    __slots__ = ("fields", "label")
    __match_args__ = ("label", "fields")

    label: Any
    fields: tuple[Any, ...]

    def __init__(self, label: Any, *fields: Any) -> None:
        _set_rec_label(self, label)
        _set_rec_fields(self, fields)

    __setattr__ = _frozen
    __delattr__ = _undeletable

    def __eq__(self, other: object) -> bool:
        if other.__class__ is Record:
            return self.label == other.label and self.fields == other.fields
        return NotImplemented

    def __hash__(self) -> int:
        return hash((Record, self.label, self.fields))

    def __repr__(self) -> str:
        inner = ", ".join(repr(x) for x in (self.label, *self.fields))
        return f"Record({inner})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Record, (self.label, *self.fields))


_set_rec_label = Record.__dict__["label"].__set__
_set_rec_fields = Record.__dict__["fields"].__set__


# Slot setters that bypass the immutability guard; the decoder builds records with them.
set_record_label = _set_rec_label
set_record_fields = _set_rec_fields


class Float32(float):
    """A single-precision float (Syrup ``F``), kept distinct so it re-encodes as ``F``.

    The value is rounded to single precision on construction; it compares equal
    to the ``float`` of the same value, as Python numbers do.
    """

    __slots__ = ()

    def __new__(cls, value: float = 0.0) -> Float32:
        v = float(value)
        if v == v:
            try:
                v = _UNPACK_F(_PACK_F(v))[0]
            except OverflowError:
                raise SyrupEncodeError(f"{value!r} is out of single-precision range") from None
        return super().__new__(cls, v)

    def __repr__(self) -> str:
        return f"Float32({float(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Float32, (float(self),))
