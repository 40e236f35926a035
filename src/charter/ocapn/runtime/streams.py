"""The framer a session driver uses for a framing name.

For the default unframed stream the driver needs only decoded values, not each
message's raw bytes, so it uses the Syrup codec's incremental ``Decoder`` directly
(one pass over the bytes, about twice as fast as scanning for boundaries and then
decoding). Length-prefixed framing comes from ``charter.ocapn.framing``.
"""

from __future__ import annotations

from typing import Any

from charter.codec.syrup import Decoder
from charter.ocapn.framing import UNFRAMED, Framer, FrameTooLargeError, make_framer


class DecoderFramer:
    """Unframed Syrup values back to back, decoded in one pass."""

    name = UNFRAMED

    def __init__(self, max_message_size: int) -> None:
        self.max_message_size = max_message_size
        self._decoder = Decoder(max_size=max_message_size)

    def feed(self, data: bytes) -> list[Any]:
        return self._decoder.feed(data)

    def frame(self, message: bytes) -> bytes:
        if len(message) > self.max_message_size:
            raise FrameTooLargeError(
                f"message of {len(message)} bytes exceeds the limit of {self.max_message_size}"
            )
        return message


def stream_framer(name: str, max_message_size: int) -> Framer | DecoderFramer:
    if name == UNFRAMED:
        return DecoderFramer(max_message_size)
    return make_framer(name, max_message_size)
