"""Messages pinned by another app's transaction: a token operation that carries a message.

Such a message goes alone into its own batch, sealed and signed like any other, whose body
names the app that pins it (``Batch.pinned_by``). Instead of an ``mp`` pin command, the
author node submits that app's command with the batch's pins record
(``<charter-mp-pins batch-hash [pin] time-us>``) embedded in its canonical body. Each node's
ledger listener hands the multi-party writer every applied transaction of such an app
whose body may embed a record; the writer reads the record back here. A valid
transaction's record counts exactly as an ``mp`` pin command at its seqno; a refused one
as the refusal of its batch's message. Either way the ledger holds the salted pin and the
batch hash only.
"""

from __future__ import annotations

from dataclasses import dataclass

from charter.multiparty.pins import PINS_LABEL, PinCommand
from charter.tokens.model import APP as TOKENS
from charter.tokens.model import BadBody, decode_operation

__all__ = ["TOKENS", "BoundMessage", "may_carry_pins", "pins_record_of"]


@dataclass(frozen=True, slots=True)
class BoundMessage:
    """A message sealed for another app's transaction: what that transaction must embed."""

    message_id: str
    record: PinCommand


def may_carry_pins(app: str, body: bytes) -> bool:
    """A quick test on the apply path: could this command embed a pins record?"""
    return app == TOKENS and PINS_LABEL in body


def pins_record_of(app: str, body: bytes) -> PinCommand | None:
    """The pins record a command of ``app`` embeds, or None (none, or not well-formed:
    the handler refuses a malformed one, and a refusal without a record names no pin)."""
    if not may_carry_pins(app, body):
        return None
    try:
        op = decode_operation(body)
    except BadBody:
        return None
    return getattr(op, "message", None)
