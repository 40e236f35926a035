"""Syrup, OCapN's canonical binary encoding.

Every value has exactly one encoding, so encoded bytes are what Charter hashes,
signs and sends. ``encode`` produces that encoding; ``decode`` and ``Decoder``
accept nothing else.

Python mapping: ``t``/``f`` <-> bool, integers <-> int (any size), ``D`` <-> float,
``F`` <-> :class:`Float32`, bytes <-> bytes, strings <-> str, symbols <-> :class:`Symbol`,
lists <-> list (tuple inside dictionary keys and set members; tuples encode as lists),
records <-> :class:`Record`, dictionaries <-> dict, sets <-> frozenset (sets encode too).
"""

from __future__ import annotations

from charter.codec.syrup.decoder import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_INT_DIGITS,
    DEFAULT_MAX_SIZE,
    Decoder,
    decode,
)
from charter.codec.syrup.encoder import encode, encode_into
from charter.codec.syrup.errors import (
    SyrupDecodeError,
    SyrupEncodeError,
    SyrupError,
    SyrupLimitError,
)
from charter.codec.syrup.values import Float32, Record, Symbol

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_INT_DIGITS",
    "DEFAULT_MAX_SIZE",
    "Decoder",
    "Float32",
    "Record",
    "Symbol",
    "SyrupDecodeError",
    "SyrupEncodeError",
    "SyrupError",
    "SyrupLimitError",
    "decode",
    "encode",
    "encode_into",
]
