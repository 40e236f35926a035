"""Typed errors of the multi-party layer; codes start with ``mp.``."""

from __future__ import annotations

from charter.errors import CharterError


class MultipartyError(CharterError):
    code = "mp"


class MalformedBatch(MultipartyError):
    """Bytes that are not a well-formed, correctly signed and pinned batch."""

    code = "mp.batch.malformed"


class MalformedPins(MultipartyError):
    code = "mp.pins.malformed"


class InvalidMessage(MultipartyError):
    """A message a client asked for that cannot be sent as given."""

    code = "mp.message.invalid"


__all__ = ["InvalidMessage", "MalformedBatch", "MalformedPins", "MultipartyError"]
