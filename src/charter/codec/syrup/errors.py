"""Typed errors of the Syrup codec; each carries a stable ``code``."""

from __future__ import annotations

from charter.errors import CharterError


class SyrupError(CharterError):
    """Base of every Syrup encoding or decoding error."""

    code = "codec.syrup"


class SyrupEncodeError(SyrupError):
    """A Python value that has no canonical Syrup encoding."""

    code = "codec.syrup.encode"


class SyrupDecodeError(SyrupError):
    """Input that is not exactly one canonical Syrup value.

    ``reason`` says what was wrong and ``offset`` where in the input (or, for a
    stream, where in the bytes fed so far) the problem was found.
    """

    code = "codec.syrup.decode"

    def __init__(self, reason: str, offset: int = -1) -> None:
        where = f" at byte {offset}" if offset >= 0 else ""
        super().__init__(f"invalid Syrup{where}: {reason}")
        self.reason = reason
        self.offset = offset


class SyrupLimitError(SyrupError, ValueError):
    """A decoder limit (``max_depth``, ``max_size``, ``max_int_digits``) out of range."""

    code = "codec.syrup.limit"
