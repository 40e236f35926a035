"""Sans-I/O framers: where one CapTP message ends on a byte stream.

Two framings share one interface (``feed`` bytes in, messages out; ``frame`` a
message's bytes for sending):

* ``unframed``: Syrup values back to back, as deployed OCapN peers speak on stream
  netlayers, split and decoded by the codec's incremental decoder, which can also
  hand back each message's exact bytes, so signature checks can hash what was
  received rather than a re-encoding.
* ``length-prefixed``: each message is a Syrup bytestring ``<len>:<payload>`` whose
  payload is one Syrup value (the form the OCapN group agreed on for netlayers that do
  not frame).

Both enforce a maximum message size as soon as a message is known to exceed it (a
length prefix, or buffered bytes), so a hostile peer cannot make us hold more than
one maximum-sized message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final, Protocol

from charter.codec.syrup import Decoder, SyrupDecodeError, decode
from charter.errors import CharterError

#: Largest message accepted or sent unless a framer is told otherwise.
DEFAULT_MAX_MESSAGE_SIZE: Final = 8 * 1024 * 1024

UNFRAMED: Final = "unframed"
LENGTH_PREFIXED: Final = "length-prefixed"
FRAMINGS: Final = (UNFRAMED, LENGTH_PREFIXED)


class FramingError(CharterError):
    """The byte stream cannot be split into messages."""

    code = "ocapn.framing"


class FrameTooLargeError(FramingError):
    """A message exceeds the framer's size limit."""

    code = "ocapn.framing.too_large"


class FrameSyntaxError(FramingError):
    """The bytes are not a sequence of framed Syrup values."""

    code = "ocapn.framing.syntax"


class FrameDecodeError(FramingError):
    """A framed message is not exactly one valid Syrup value."""

    code = "ocapn.framing.decode"


@dataclass(frozen=True, slots=True)
class Message:
    """One received message: its decoded value and the exact bytes it was decoded from."""

    value: Any
    raw: bytes


class Framer(Protocol):
    """What a session driver needs from a framing."""

    name: str
    max_message_size: int

    def feed(self, data: bytes) -> list[Any]:
        """Decoded values of the messages completed by ``data``."""
        ...

    def feed_messages(self, data: bytes) -> list[Message]:
        """Like ``feed``, with each message's raw bytes."""
        ...

    def frame(self, message: bytes) -> bytes:
        """The bytes to send for one encoded message."""
        ...


def _decode_one(raw: bytes) -> Any:
    try:
        return decode(raw)
    except SyrupDecodeError as exc:
        raise FrameDecodeError(f"message is not one valid Syrup value: {exc}") from exc
    except (ValueError, TypeError, IndexError, KeyError, RecursionError) as exc:
        raise FrameDecodeError(f"message is not one valid Syrup value: {exc!r}") from exc


class _BaseFramer:
    name: str

    def __init__(self, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        if max_message_size <= 0:
            raise FramingError("max_message_size must be positive")
        self.max_message_size = max_message_size
        self._buf = bytearray()
        self._failed: FramingError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete message."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Any]:
        return [m.value for m in self.feed_messages(data)]

    def feed_messages(self, data: bytes) -> list[Message]:
        if self._failed is not None:
            raise self._failed
        try:
            return [Message(_decode_one(raw), raw) for raw in self._split(data)]
        except FramingError as exc:
            # A stream that went wrong once cannot be resynchronized: stay failed.
            self._failed = exc
            self._buf.clear()
            raise

    def _check_size(self, size: int) -> None:
        if size > self.max_message_size:
            raise FrameTooLargeError(
                f"message of {size} bytes exceeds the limit of {self.max_message_size}"
            )

    def _split(self, data: bytes) -> list[bytes]:
        raise NotImplementedError


_DIGITS = re.compile(rb"[0-9]*")


def _framing_error(exc: SyrupDecodeError) -> FramingError:
    if "exceeds the limit" in exc.reason:
        return FrameTooLargeError(f"message too large: {exc.reason}")
    return FrameDecodeError(f"not a stream of Syrup values: {exc.reason}")


class UnframedFramer(_BaseFramer):
    """Syrup values back to back; a message is one complete top-level value.

    Boundaries, decoding and the size limit (on every value, complete or not) are the
    codec's incremental ``Decoder``, which also hands back each value's exact bytes.
    """

    name = UNFRAMED

    def __init__(self, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        super().__init__(max_message_size)
        self._decoder = Decoder(max_size=max_message_size)

    @property
    def buffered(self) -> int:
        return self._decoder.pending

    def frame(self, message: bytes) -> bytes:
        self._check_size(len(message))
        return message

    def feed(self, data: bytes) -> list[Any]:
        if self._failed is not None:
            raise self._failed
        try:
            return self._decoder.feed(data)
        except SyrupDecodeError as exc:
            self._failed = _framing_error(exc)
            raise self._failed from exc

    def feed_messages(self, data: bytes) -> list[Message]:
        if self._failed is not None:
            raise self._failed
        try:
            return [Message(value, raw) for value, raw in self._decoder.feed_raw(data)]
        except SyrupDecodeError as exc:
            self._failed = _framing_error(exc)
            raise self._failed from exc


class LengthPrefixedFramer(_BaseFramer):
    """Each message is the Syrup bytestring ``<len>:<payload>``; the payload is one value."""

    name = LENGTH_PREFIXED

    def frame(self, message: bytes) -> bytes:
        self._check_size(len(message))
        return b"%d:%s" % (len(message), message)

    def _split(self, data: bytes) -> list[bytes]:
        buf = self._buf
        buf += data
        n = len(buf)
        pos = 0
        out: list[bytes] = []
        digits_limit = len(str(self.max_message_size))
        while pos < n:
            colon = buf.find(b":", pos, pos + digits_limit + 1)
            if colon < 0:
                if n - pos <= digits_limit and _DIGITS.fullmatch(buf, pos, n):
                    break
                raise FrameSyntaxError("expected a length prefix <digits>:")
            prefix = bytes(buf[pos:colon])
            if not prefix or not prefix.isdigit():
                raise FrameSyntaxError(f"bad length prefix {prefix[:16]!r}")
            length = int(prefix)
            self._check_size(length)
            end = colon + 1 + length
            if end > n:
                break
            out.append(bytes(buf[colon + 1 : end]))
            pos = end
        if pos:
            del buf[:pos]
        return out


def make_framer(name: str, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> Framer:
    """The framer called ``name`` (``unframed`` or ``length-prefixed``)."""
    if name == UNFRAMED:
        return UnframedFramer(max_message_size)
    if name == LENGTH_PREFIXED:
        return LengthPrefixedFramer(max_message_size)
    raise FramingError(f"unknown framing {name!r}; expected one of {', '.join(FRAMINGS)}")
