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

from charter.codec.syrup.errors import SyrupDecodeError, SyrupLimitError
from charter.codec.syrup.values import Float32, Record, Symbol, set_record_fields, set_record_label

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

_LIST, _RECORD, _DICT, _SET, _TOP = 0, 1, 2, 3, 9
_CLOSES = {62: _RECORD, 93: _LIST, 125: _DICT, 36: _SET}
_NO_KEY: Any = object()
_SYMBOLS: dict[bytes, Symbol] = {}
_SYMBOL_CACHE_MAX = 4096
_SYMBOL_CACHE_NAME_MAX = 64
_new_object = object.__new__
_set_label = set_record_label
_set_fields = set_record_fields


class _Incomplete(Exception):
    """The input ended inside a value; ``resume`` is where to start again."""

    def __init__(self, resume: int, need: int, value_start: int) -> None:
        self.resume = resume
        self.need = need
        self.value_start = value_start  # -1: the value began before this call


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
    out: list[Any] | None,
    ends: list[int] | None = None,
) -> tuple[Any, int]:
    """Parse tokens from ``pos`` until the value at the bottom of ``stack`` completes.

    With ``out`` None, returns that value and the position after it. With a list,
    appends every completed top-level value to it and goes on; it returns
    ``(None, end)`` if the input ends between values; ``ends``, if given, receives
    the position after each of those values. Raises :class:`_Incomplete`
    when the input ends inside a value; ``stack`` is then left consistent for a
    resume at ``resume``. Frames are lists ``[kind, items, frozen, start, prev, key]``:
    ``frozen`` marks dictionary-key/set-member context, ``start`` the offset of the
    key or member being read and ``prev`` the encoding of the previous one (both
    only for dictionaries and sets), ``key`` a dictionary's pending key.
    """
    digits = _DIGITS
    v: Any
    top: Any
    items: Any
    value_start = -1 if stack else pos
    # The top frame, its kind and its items, cached in locals; kind _TOP: no frame.
    if stack:
        top = stack[-1]
        kind = top[0]
        items = top[1]
    else:
        top = None
        kind = _TOP
        items = None
    while True:
        if pos >= end:
            if out is not None and kind == _TOP:
                return None, pos
            raise _Incomplete(pos, pos + 1, value_start)
        c = data[pos]
        if 48 <= c <= 57:  # a number, or the length of a string, symbol or bytes
            j = pos + 1
            if j < end and 48 <= data[j] <= 57:
                j = digits(data, j).end()  # type: ignore[union-attr]
                if c == 48:
                    raise SyrupDecodeError("number with a leading zero", pos)
                n = -1  # several digits: convert below, after the limits are checked
            else:
                n = c - 48
            if j >= end:
                if j - pos > max_int_digits and j - pos > 18:
                    raise SyrupDecodeError(f"more than {max_int_digits} digits", pos)
                raise _Incomplete(pos, j + 1, value_start)
            t = data[j]
            if t == 39:  # "'" symbol
                if n < 0:
                    n = _length(data, pos, j, max_size)
                s = j + 1
                e = s + n
                if e > end:
                    raise _Incomplete(pos, e, value_start)
                raw = data[s:e]
                v = _SYMBOLS.get(raw)
                if v is None:
                    v = _symbol(raw, pos)
                pos = e
            elif t == 43 or t == 45:  # '+' '-'
                if n < 0:
                    nd = j - pos
                    if nd > max_int_digits:
                        raise SyrupDecodeError(
                            f"integer has more than {max_int_digits} digits", pos
                        )
                    n = int(data[pos:j]) if nd <= _DIRECT_DIGITS else _decimal_to_int(data[pos:j])
                if t == 45:
                    if n == 0:
                        raise SyrupDecodeError("negative zero '0-' is not canonical", pos)
                    n = -n
                v = n
                pos = j + 1
            elif t == 34 or t == 58:  # '"' ':'
                if n < 0:
                    n = _length(data, pos, j, max_size)
                s = j + 1
                e = s + n
                if e > end:
                    raise _Incomplete(pos, e, value_start)
                if t == 34:
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
            if kind == _TOP:
                frozen = False
            else:
                if len(stack) >= max_depth:
                    raise SyrupDecodeError(f"nesting deeper than {max_depth}", pos)
                frozen = top[2] or kind == _SET or (kind == _DICT and top[5] is _NO_KEY)
            pos += 1
            if c == 60:
                kind = _RECORD
                items = []
                top = [_RECORD, items, frozen, 0, None, _NO_KEY]
            elif c == 91:
                kind = _LIST
                items = []
                top = [_LIST, items, frozen, 0, None, _NO_KEY]
            elif c == 123:
                if frozen:
                    raise SyrupDecodeError(
                        "a dictionary as a dictionary key or set member is not supported",
                        pos - 1,
                    )
                kind = _DICT
                items = {}
                top = [_DICT, items, frozen, pos, None, _NO_KEY]
            else:
                kind = _SET
                items = []
                top = [_SET, items, frozen, pos, None, _NO_KEY]
            stack.append(top)
            continue
        elif c == 62 or c == 93 or c == 125 or c == 36:  # '>' ']' '}' '$'
            if kind != _CLOSES[c]:
                raise _bad_close(stack, chr(c), pos)
            if kind == _RECORD:
                if not items:
                    raise SyrupDecodeError("record without a label", pos)
                v = _new_object(Record)
                _set_label(v, items[0])
                _set_fields(v, tuple(items[1:]))
            elif kind == _LIST:
                v = tuple(items) if top[2] else items
            elif kind == _DICT:
                if top[5] is not _NO_KEY:
                    raise SyrupDecodeError("dictionary key without a value", pos)
                v = items
            else:
                try:
                    v = frozenset(items)
                except RecursionError:
                    raise SyrupDecodeError("set member nested too deeply to hash", pos) from None
                if len(v) != len(items):
                    raise SyrupDecodeError(
                        "set members that differ in Syrup are equal in Python (e.g. t and 1+)",
                        pos,
                    )
            pos += 1
            stack.pop()
            if stack:
                top = stack[-1]
                kind = top[0]
                items = top[1]
            else:
                top = None
                kind = _TOP
                items = None
        elif c == 116:  # 't'
            v = True
            pos += 1
        elif c == 102:  # 'f'
            v = False
            pos += 1
        elif c == 68:  # 'D'
            if pos + 9 > end:
                raise _Incomplete(pos, pos + 9, value_start)
            v = _UNPACK_D(data, pos + 1)[0]
            if v != v and data[pos + 1 : pos + 9] != _NAN_D:
                raise SyrupDecodeError("NaN that is not the canonical quiet NaN", pos)
            pos += 9
        elif c == 70:  # 'F'
            if pos + 5 > end:
                raise _Incomplete(pos, pos + 5, value_start)
            f = _UNPACK_F(data, pos + 1)[0]
            if f != f and data[pos + 1 : pos + 5] != _NAN_F:
                raise SyrupDecodeError("NaN that is not the canonical quiet NaN", pos)
            v = Float32(f)
            pos += 5
        else:
            raise SyrupDecodeError(f"unknown type byte {bytes([c])!r}", pos)

        # A value is complete: hand it to its container, or return it.
        if kind <= _RECORD:
            items.append(v)
        elif kind == _TOP:
            if out is None:
                return v, pos
            out.append(v)
            if ends is not None:
                ends.append(pos)
            value_start = pos
        elif kind == _DICT:
            if top[5] is _NO_KEY:
                start = top[3]
                kb = data[start:pos]
                prev = top[4]
                if prev is not None and kb <= prev:
                    raise SyrupDecodeError(
                        "dictionary keys not in canonical order"
                        if kb < prev
                        else "duplicate dictionary key",
                        start,
                    )
                top[4] = kb
                top[5] = v
            else:
                n = len(items)
                try:
                    items[top[5]] = v
                except RecursionError:
                    raise SyrupDecodeError(
                        "dictionary key nested too deeply to hash", pos
                    ) from None
                if len(items) == n:
                    raise SyrupDecodeError(
                        "dictionary keys that differ in Syrup are equal in Python (e.g. t and 1+)",
                        pos,
                    )
                top[5] = _NO_KEY
                top[3] = pos
        else:
            start = top[3]
            kb = data[start:pos]
            prev = top[4]
            if prev is not None and kb <= prev:
                raise SyrupDecodeError(
                    "set members not in canonical order" if kb < prev else "duplicate set member",
                    start,
                )
            top[4] = kb
            items.append(v)
            top[3] = pos


def _length(data: bytes, pos: int, j: int, max_size: int) -> int:
    """The value of a multi-digit length prefix ``data[pos:j]``, within ``max_size``."""
    if j - pos > 18:
        raise SyrupDecodeError(f"length exceeds the limit of {max_size} bytes", pos)
    n = int(data[pos:j])
    if n > max_size:
        raise SyrupDecodeError(f"length {n} exceeds the limit of {max_size} bytes", pos)
    return n


def _check_limits(max_depth: int, max_size: int, max_int_digits: int) -> None:
    if not 1 <= max_depth <= HARD_MAX_DEPTH:
        raise SyrupLimitError(f"max_depth must be between 1 and {HARD_MAX_DEPTH}")
    if max_size < 1:
        raise SyrupLimitError("max_size must be positive")
    if max_int_digits < 1:
        raise SyrupLimitError("max_int_digits must be positive")


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
    if not 1 <= max_depth <= HARD_MAX_DEPTH or max_int_digits < 1 or max_size < 1:
        _check_limits(max_depth, max_size, max_int_digits)
    if end > max_size:
        raise SyrupDecodeError(f"input of {end} bytes exceeds the limit of {max_size}", 0)
    try:
        value, pos = _parse(data, 0, end, [], max_depth, max_size, max_int_digits, None)
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
    and keeps the state of a partial one. ``feed_raw`` also returns the exact
    bytes of each value, for callers that hash or verify what was received.

    After an error the stream cannot be resynchronised: every later call raises
    the same error, and values completed earlier in the failing call are dropped.
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
        self._dropped: list[bytes] = []  # its bytes before ``_offset``, for ``feed_raw``
        self._error: SyrupDecodeError | None = None

    @property
    def pending(self) -> int:
        """Bytes received so far of a value that is not yet complete."""
        if not self._stack and not self._buf:
            return 0
        return self._offset + len(self._buf) + self._chunks_len - self._value_start

    def feed(self, data: bytes | bytearray | memoryview) -> list[Any]:
        """Take the next bytes of the stream; return the values they complete, in order."""
        buf = self._take(data)
        if buf is None:
            return []
        return self._guarded_run(buf, None)

    def feed_raw(self, data: bytes | bytearray | memoryview) -> list[tuple[Any, bytes]]:
        """Like ``feed``, with each value paired with the exact bytes it was decoded from."""
        buf = self._take(data)
        if buf is None:
            return []
        if self._stack or self._buf:
            start = self._value_start - self._offset
            prefix = b"".join(self._dropped)
        else:
            start = self._resume
            prefix = b""
        ends: list[int] = []
        values = self._guarded_run(buf, ends)
        out: list[tuple[Any, bytes]] = []
        for value, end in zip(values, ends, strict=True):
            raw = prefix + buf[:end] if start < 0 else buf[start:end]
            out.append((value, raw))
            start = end
        return out

    def _take(self, data: bytes | bytearray | memoryview) -> bytes | None:
        """Buffer ``data``; return the bytes to parse now, or None if parsing cannot progress."""
        if self._error is not None:
            raise self._error
        if not data:
            return None
        if type(data) is not bytes:
            data = bytes(data)
        if self._need:
            self._chunks.append(data)
            self._chunks_len += len(data)
            if len(self._buf) + self._chunks_len < self._need:
                return None
            data = self._buf + b"".join(self._chunks)
            self._chunks = []
            self._chunks_len = 0
        elif self._buf:
            data = self._buf + data
        return data

    def _guarded_run(self, data: bytes, ends: list[int] | None) -> list[Any]:
        try:
            return self._run(data, ends)
        except SyrupDecodeError as exc:
            err = SyrupDecodeError(exc.reason, exc.offset + self._offset if exc.offset >= 0 else -1)
            self._error = err
            self._buf = b""
            self._stack = []
            self._dropped = []
            raise err from None

    def _run(self, data: bytes, ends: list[int] | None) -> list[Any]:
        out: list[Any] = []
        stack = self._stack
        end = len(data)
        pos = self._resume
        max_size = self._max_size
        limits = (self._max_depth, max_size, self._max_int_digits)
        earliest = self._value_start if stack else self._offset + pos
        try:
            if self._offset + end - earliest <= max_size:
                # No value in this data can exceed the limit: parse all in one go.
                _parse(data, pos, end, stack, *limits, out, ends)
            else:
                while pos < end:
                    if not stack:
                        self._value_start = self._offset + pos
                    value, pos = _parse(data, pos, end, stack, *limits, None)
                    if self._offset + pos - self._value_start > max_size:
                        raise SyrupDecodeError(f"value exceeds the limit of {max_size} bytes", pos)
                    out.append(value)
                    if ends is not None:
                        ends.append(pos)
        except _Incomplete as inc:
            if inc.value_start >= 0:
                self._value_start = self._offset + inc.value_start
            if self._offset + inc.need - self._value_start > max_size:
                raise SyrupDecodeError(
                    f"value exceeds the limit of {max_size} bytes", inc.resume
                ) from None
            self._suspend(data, inc.resume, inc.need)
            return out
        self._buf = b""
        self._need = 0
        self._resume = 0
        self._offset += end
        self._dropped = []
        return out

    def _suspend(self, data: bytes, resume: int, need: int) -> None:
        """Keep only the bytes still referenced: the resume point and open keys/members.

        The incomplete value's bytes that are let go are kept aside in ``_dropped``
        so that ``feed_raw`` can still return the value's exact bytes.
        """
        keep = resume
        for fr in self._stack:
            if (fr[0] == _SET or (fr[0] == _DICT and fr[5] is _NO_KEY)) and fr[3] < keep:
                keep = fr[3]
        start = self._value_start - self._offset
        if start >= 0:
            self._dropped = []  # the value began in this data
        if keep > start:
            self._dropped.append(data[max(start, 0) : keep])
        if keep:
            for fr in self._stack:
                fr[3] -= keep
        self._buf = data[keep:]
        self._offset += keep
        self._resume = resume - keep
        self._need = need - keep
