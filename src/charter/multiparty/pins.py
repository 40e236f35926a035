"""The ledger command of the multi-party layer (app ``"mp"``): a batch's pins, in order.

The body is ``<charter-mp-pins batch-hash [pin...]>``: the batch's hash and one pin per
message, nothing else; no topic, group, data or message id enters the ledger. The handler
checks the shape only and writes nothing: every node's aggregator reads the command from
its apply listener (``AppliedTx.command``), at its place in the log, with the submitting
node the engine verified.

A ``<charter-mp-clock>`` body carries no pins: a node submits one when a context has been
held back longer than the failure timeout and nothing else moves ledger time forward
(see ``docs/ordering.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from charter.codec.syrup import Record, Symbol, SyrupError, decode, encode
from charter.ledger.engine import CommandContext, CommandRefused, Write
from charter.multiparty.errors import MalformedPins

__all__ = ["APP", "CLOCK_BODY", "MAX_PINS", "MpHandler", "PinCommand", "parse_body"]

APP = "mp"
MAX_PINS = 4096
_PINS = Symbol("charter-mp-pins")
_CLOCK = Symbol("charter-mp-clock")
CLOCK_BODY = encode(Record(_CLOCK))


@dataclass(frozen=True, slots=True)
class PinCommand:
    batch_hash: bytes
    pins: tuple[bytes, ...]

    def encode(self) -> bytes:
        return encode(Record(_PINS, self.batch_hash, list(self.pins)))


def parse_body(body: bytes) -> PinCommand | None:
    """The pins of a command body; ``None`` for a clock command; raises if malformed."""
    try:
        rec = decode(body)
    except SyrupError as exc:
        raise MalformedPins(f"not canonical Syrup: {exc.message}") from None
    if isinstance(rec, Record) and rec.label == _CLOCK and not rec.fields:
        return None
    if not isinstance(rec, Record) or rec.label != _PINS or len(rec.fields) != 2:
        raise MalformedPins("not a charter-mp-pins record")
    batch_hash, pins = rec.fields
    if type(batch_hash) is not bytes or len(batch_hash) != 32:
        raise MalformedPins("a batch hash is 32 bytes")
    if type(pins) is not list or not 1 <= len(pins) <= MAX_PINS:
        raise MalformedPins(f"a batch has 1 to {MAX_PINS} pins")
    if any(type(p) is not bytes or len(p) != 32 for p in pins):
        raise MalformedPins("a pin is 32 bytes")
    if len(set(pins)) != len(pins):
        raise MalformedPins("a batch names a pin twice")
    return PinCommand(batch_hash, tuple(pins))


class MpHandler:
    """Shape checks only; the ordering happens in each node's aggregator."""

    tables: Sequence[str] = ("mp.",)

    def execute(self, ctx: CommandContext, body: bytes) -> Sequence[Write]:
        try:
            parse_body(body)
        except MalformedPins as exc:
            raise CommandRefused("mp.pins", exc.message) from None
        return []
