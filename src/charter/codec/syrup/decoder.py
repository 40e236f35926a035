"""Strict Syrup decoding: accept only the one canonical encoding of each value.

The parser is an explicit-stack state machine, so hostile nesting cannot
exhaust the Python stack, and so that a stream decoder can stop at the end of
its input and resume when more arrives (sans-I/O: bytes in, values out).
Anything that is not canonical Syrup raises :class:`SyrupDecodeError`.

Python equality is coarser than Syrup's (``True == 1 == 1.0``, ``0.0 == -0.0``),
so a dictionary or set whose distinct Syrup keys would merge in Python is
rejected rather than silently losing an entry. Inside a dictionary key or a set
member, lists decode to tuples so that they are hashable; a dictionary there has
no hashable Python form and is rejected.
"""

from __future__ import annotations

import re
import struct
from typing import Any

from charter.codec.syrup.errors import SyrupDecodeError
from charter.codec.syrup.values import Float32, Symbol, make_record

DEFAULT_MAX_DEPTH = 256
DEFAULT_MAX_SIZE = 64 * 1024 * 1024
DEFAULT_MAX_INT_DIGITS = 10_000
# Deeper structures risk exhausting the C stack while hashing nested keys.
HARD_MAX_DEPTH = 10_000

_UNPACK_D = struct.Struct(">d").unpack_from
_UNPACK_F = struct.Struct(">f").unpack_from
_NAN_D = b"\x7f\xf8\x00\x00\x00\x00\x00\x00"
_NAN_F = b"\x7f\xc0\x00\x00"
_DIGITS = re.compile(b"[0-9]*").match
# CPython refuses int() on more digits than this without a global setting.
_DIRECT_DIGITS = 4000

_LIST, _RECORD, _DICT, _SET = 0, 1, 2, 3
_NO_KEY: Any = object()
_SYMBOLS: dict[bytes, Symbol] = {}
_SYMBOL_CACHE_MAX = 4096
_SYMBOL_CACHE_NAME_MAX = 64


class _Incomplete(Exception):
    """The input ended inside a value; ``resume`` is where to start again."""

    def __init__(self, resume: int, need: int) -> None:
        self.resume = resume
        self.need = need


def _decimal_to_int(digits: bytes) -> int:
    if len(digits) <= _DIRECT_DIGITS:
        return int(digits)
    half = len(digits) // 2
    scale: int = 10**half
    return _decimal_to_int(digits[:-half]) * scale + _decimal_to_int(digits[-half:])


def _symbol(raw: bytes, pos: int) -> Symbol:
    sym = _SYMBOLS.get(raw)
    if sym is None:
        try:
            sym = Symbol(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise SyrupDecodeError("symbol is not valid UTF-8", pos) from None
        if len(raw) <= _SYMBOL_CACHE_NAME_MAX and len(_SYMBOLS) < _SYMBOL_CACHE_MAX:
            _SYMBOLS[raw] = sym
    return sym


_TYPE_NAMES = {_LIST: "list", _RECORD: "record", _DICT: "dictionary", _SET: "set"}
_CLOSERS = {_LIST: "]", _RECORD: ">", _DICT: "}", _SET: "$"}


def _bad_close(stack: list[list[Any]], byte: str, pos: int) -> SyrupDecodeError:
    if not stack:
        return SyrupDecodeError(f"unexpected {byte!r} outside any container", pos)
    kind = stack[-1][0]
    return SyrupDecodeError(
        f"unexpected {byte!r} inside a {_TYPE_NAMES[kind]} (expected {_CLOSERS[kind]!r})", pos
    )


def _parse(
    data: bytes,
    pos: int,
    end: int,
    stack: list[list[Any]],
    max_depth: int,
    max_size: int,
    max_int_digits: int,
) -> tuple[Any, int]:
    """Parse tokens from ``pos`` until the value at the bottom of ``stack`` completes.

    Returns that value and the position after it. Raises :class:`_Incomplete`
    when the input ends first; ``stack`` is then left consistent for a resume
    at ``resume``. Frames are lists ``[kind, items, frozen, start, prev, key]``:
    ``frozen`` marks dictionary-key/set-member context, ``start`` the offset
    of the key or member being read and ``prev`` the encoding of the previous
    one (both only for dictionaries and sets), ``key`` a dictionary's pending key.
    """
    digits = _DIGITS
    unpack_d = _UNPACK_D
    v: Any
    while True:
        if pos >= end:
            raise _Incomplete(pos, pos + 1)
        c = data[pos]
        if 48 <= c <= 57:
            j = digits(data, pos).end()  # type: ignore[union-attr]
            nd = j - pos
            if j >= end:
                if nd > max_int_digits:
                    raise SyrupDecodeError(f"more than {max_int_digits} digits", pos)
                raise _Incomplete(pos, j + 1)
            if c == 48 and nd > 1:
                raise SyrupDecodeError("number with a leading zero", pos)
            t = data[j]
            if t == 43 or t == 45:  # '+' '-'
                if nd > max_int_digits:
                    raise SyrupDecodeError(f"integer has more than {max_int_digits} digits", pos)
                v = int(data[pos:j]) if nd <= _DIRECT_DIGITS else _decimal_to_int(data[pos:j])
                if t == 45:
                    if c == 48:
                        raise SyrupDecodeError("negative zero '0-' is not canonical", pos)
                    v = -v
                pos = j + 1
            elif t == 34 or t == 39 or t == 58:  # '"' "'" ':'
                if nd > 18:
                    raise SyrupDecodeError(f"length exceeds the limit of {max_size} bytes", pos)
                n = int(data[pos:j])
                if n > max_size:
                    raise SyrupDecodeError(f"length {n} exceeds the limit of {max_size} bytes", pos)
                s = j + 1
                e = s + n
                if e > end:
                    raise _Incomplete(pos, e)
                if t == 39:
                    v = _symbol(data[s:e], pos)
                elif t == 34:
                    try:
                        v = data[s:e].decode("utf-8")
                    except UnicodeDecodeError as exc:
                        raise SyrupDecodeError(
                            f"string is not valid UTF-8 ({exc.reason})", s + exc.start
                        ) from None
                else:
                    v = data[s:e]
                pos = e
            else:
                raise SyrupDecodeError(f"unexpected byte {bytes([t])!r} after digits", j)
        elif c == 60 or c == 91 or c == 123 or c == 35:  # '<' '[' '{' '#'
            if len(stack) >= max_depth:
                raise SyrupDecodeError(f"nesting deeper than {max_depth}", pos)
            if stack:
                top = stack[-1]
                frozen = top[2] or top[0] == _SET or (top[0] == _DICT and top[5] is _NO_KEY)
            else:
                frozen = False
            pos += 1
            if c == 60:
                stack.append([_RECORD, [], frozen, 0, None, _NO_KEY])
            elif c == 91:
                stack.append([_LIST, [], frozen, 0, None, _NO_KEY])
            elif c == 123:
                if frozen:
                    raise SyrupDecodeError(
                        "a dictionary as a dictionary key or set member is not supported",
                        pos - 1,
                    )
                stack.append([_DICT, {}, frozen, pos, None, _NO_KEY])
            else:
                stack.append([_SET, [], frozen, pos, None, _NO_KEY])
            continue
        elif c == 62:  # '>'
            if not stack or stack[-1][0] != _RECORD:
                raise _bad_close(stack, ">", pos)
            items = stack.pop()[1]
            if not items:
                raise SyrupDecodeError("record without a label", pos)
            v = make_record(items[0], tuple(items[1:]))
            pos += 1
        elif c == 93:  # ']'
            if not stack or stack[-1][0] != _LIST:
                raise _bad_close(stack, "]", pos)
            fr = stack.pop()
            v = tuple(fr[1]) if fr[2] else fr[1]
            pos += 1
        elif c == 116:  # 't'
            v = True
            pos += 1
        elif c == 102:  # 'f'
            v = False
            pos += 1
        elif c == 68:  # 'D'
            if pos + 9 > end:
                raise _Incomplete(pos, pos + 9)
            v = unpack_d(data, pos + 1)[0]
            if v != v and data[pos + 1 : pos + 9] != _NAN_D:
                raise SyrupDecodeError("NaN that is not the canonical quiet NaN", pos)
            pos += 9
        elif c == 125:  # '}'
            if not stack or stack[-1][0] != _DICT:
                raise _bad_close(stack, "}", pos)
            if stack[-1][5] is not _NO_KEY:
                raise SyrupDecodeError("dictionary key without a value", pos)
            v = stack.pop()[1]
            pos += 1
        elif c == 36:  # '$'
            if not stack or stack[-1][0] != _SET:
                raise _bad_close(stack, "$", pos)
            members = stack.pop()[1]
            try:
                v = frozenset(members)
            except RecursionError:
                raise SyrupDecodeError("set member nested too deeply to hash", pos) from None
            if len(v) != len(members):
                raise SyrupDecodeError(
                    "set members that differ in Syrup are equal in Python (e.g. t and 1+)", pos
                )
            pos += 1
        elif c == 70:  # 'F'
            if pos + 5 > end:
                raise _Incomplete(pos, pos + 5)
            f = _UNPACK_F(data, pos + 1)[0]
            if f != f and data[pos + 1 : pos + 5] != _NAN_F:
                raise SyrupDecodeError("NaN that is not the canonical quiet NaN", pos)
            v = Float32(f)
            pos += 5
        else:
            raise SyrupDecodeError(f"unknown type byte {bytes([c])!r}", pos)

        # A value is complete: hand it to its container, or return it.
        if not stack:
            return v, pos
        fr = stack[-1]
        kind = fr[0]
        if kind <= _RECORD:
            fr[1].append(v)
        elif kind == _DICT:
            if fr[5] is _NO_KEY:
                kb = data[fr[3] : pos]
                prev = fr[4]
                if prev is not None and kb <= prev:
                    raise SyrupDecodeError(
                        "dictionary keys not in canonical order"
                        if kb < prev
                        else "duplicate dictionary key",
                        fr[3],
                    )
                fr[4] = kb
                fr[5] = v
            else:
                d = fr[1]
                n = len(d)
                try:
                    d[fr[5]] = v
                except RecursionError:
                    raise SyrupDecodeError(
                        "dictionary key nested too deeply to hash", pos
                    ) from None
                if len(d) == n:
                    raise SyrupDecodeError(
                        "dictionary keys that differ in Syrup are equal in Python (e.g. t and 1+)",
                        pos,
                    )
                fr[5] = _NO_KEY
                fr[3] = pos
        else:
            kb = data[fr[3] : pos]
            prev = fr[4]
            if prev is not None and kb <= prev:
                raise SyrupDecodeError(
                    "set members not in canonical order" if kb < prev else "duplicate set member",
                    fr[3],
                )
            fr[4] = kb
            fr[1].append(v)
            fr[3] = pos


def _check_limits(max_depth: int, max_size: int, max_int_digits: int) -> None:
    if not 1 <= max_depth <= HARD_MAX_DEPTH:
        raise ValueError(f"max_depth must be between 1 and {HARD_MAX_DEPTH}")
    if max_size < 1:
        raise ValueError("max_size must be positive")
    if max_int_digits < 1:
        raise ValueError("max_int_digits must be positive")


def decode(
    data: bytes | bytearray | memoryview,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_size: int = DEFAULT_MAX_SIZE,
    max_int_digits: int = DEFAULT_MAX_INT_DIGITS,
) -> Any:
    """Decode exactly one canonical Syrup value that fills all of ``data``."""
    if type(data) is not bytes:
        data = bytes(data)
    end = len(data)
    if end > max_size:
        if max_size < 1:
            _check_limits(max_depth, max_size, max_int_digits)
        raise SyrupDecodeError(f"input of {end} bytes exceeds the limit of {max_size}", 0)
    if not 1 <= max_depth <= HARD_MAX_DEPTH or max_int_digits < 1:
        _check_limits(max_depth, max_size, max_int_digits)
    try:
        value, pos = _parse(data, 0, end, [], max_depth, max_size, max_int_digits)
    except _Incomplete as inc:
        if end == 0:
            raise SyrupDecodeError("empty input", 0) from None
        raise SyrupDecodeError(
            f"input ends early: a value needs at least {inc.need} bytes, input has {end}", end
        ) from None
    if pos != end:
        raise SyrupDecodeError(f"{end - pos} trailing bytes after the value", pos)
    return value


class Decoder:
    """Incremental decoder for a stream of concatenated Syrup values.

    Feed it bytes as they arrive; it returns every value those bytes complete
    and keeps the state of a partial one. After an error the stream cannot be
    resynchronised, so every later ``feed`` raises the same error.
    """

    def __init__(
        self,
        max_depth: int = DEFAULT_MAX_DEPTH,
        max_size: int = DEFAULT_MAX_SIZE,
        *,
        max_int_digits: int = DEFAULT_MAX_INT_DIGITS,
    ) -> None:
        _check_limits(max_depth, max_size, max_int_digits)
        self._max_depth = max_depth
        self._max_size = max_size
        self._max_int_digits = max_int_digits
        self._buf = b""  # unparsed bytes, from the resume point on
        self._chunks: list[bytes] = []  # bytes fed while waiting for ``_need``
        self._chunks_len = 0
        self._need = 0  # do not parse again until the buffer holds this many bytes
        self._resume = 0  # where in ``_buf`` parsing restarts
        self._stack: list[list[Any]] = []
        self._offset = 0  # stream offset of ``_buf[0]``
        self._value_start = 0  # stream offset where the incomplete value began
        self._error: SyrupDecodeError | None = None

    @property
    def pending(self) -> int:
        """Bytes received so far of a value that is not yet complete."""
        if not self._stack and not self._buf:
            return 0
        return self._offset + len(self._buf) + self._chunks_len - self._value_start

    def feed(self, data: bytes | bytearray | memoryview) -> list[Any]:
        """Take the next bytes of the stream; return the values they complete, in order."""
        if self._error is not None:
            raise self._error
        if not data:
            return []
        if type(data) is not bytes:
            data = bytes(data)
        if self._need:
            self._chunks.append(data)
            self._chunks_len += len(data)
            if len(self._buf) + self._chunks_len < self._need:
                return []
            data = self._buf + b"".join(self._chunks)
            self._chunks = []
            self._chunks_len = 0
        elif self._buf:
            data = self._buf + data
        try:
            return self._run(data)
        except SyrupDecodeError as exc:
            err = SyrupDecodeError(exc.reason, exc.offset + self._offset if exc.offset >= 0 else -1)
            self._error = err
            self._buf = b""
            self._stack = []
            raise err from None

    def _run(self, data: bytes) -> list[Any]:
        out: list[Any] = []
        stack = self._stack
        end = len(data)
        pos = self._resume
        max_size = self._max_size
        while pos < end:
            if not stack:
                self._value_start = self._offset + pos
            try:
                value, pos = _parse(
                    data, pos, end, stack, self._max_depth, max_size, self._max_int_digits
                )
            except _Incomplete as inc:
                if self._offset + inc.need - self._value_start > max_size:
                    raise SyrupDecodeError(
                        f"value exceeds the limit of {max_size} bytes", inc.resume
                    ) from None
                self._suspend(data, inc.resume, inc.need)
                return out
            if self._offset + pos - self._value_start > max_size:
                raise SyrupDecodeError(f"value exceeds the limit of {max_size} bytes", pos)
            out.append(value)
        self._buf = b""
        self._need = 0
        self._resume = 0
        self._offset += end
        return out

    def _suspend(self, data: bytes, resume: int, need: int) -> None:
        """Keep only the bytes still referenced: the resume point and open keys/members."""
        keep = resume
        for fr in self._stack:
            if (fr[0] == _SET or (fr[0] == _DICT and fr[5] is _NO_KEY)) and fr[3] < keep:
                keep = fr[3]
        if keep:
            for fr in self._stack:
                fr[3] -= keep
        self._buf = data[keep:]
        self._offset += keep
        self._resume = resume - keep
        self._need = need - keep
