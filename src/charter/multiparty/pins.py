"""The ledger command of the multi-party layer (app ``"mp"``): a batch's pins, in order.

The body is ``<charter-mp-pins batch-hash [pin...] time-us>``: the batch's hash, one pin per
message and the submitting node's clock (microseconds), nothing else; no topic, group, data
or message id enters the ledger. The times in applied ``mp`` commands are the *ledger time*
of the failure policy (``docs/ordering.md``); the engine verified who signed them. The handler
checks the shape only and writes nothing: every node's aggregator reads the command from
its apply listener (``AppliedTx.command``), at its place in the log, with the submitting
node the engine verified.

A ``<charter-mp-clock time-us>`` body carries no pins: a node submits one when a context has
been held back longer than the failure timeout and nothing else moves ledger time forward.

The same pins record may travel inside another app's command instead (``bound``): a token
operation carrying a message embeds it, so that one transaction orders both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from charter.codec.syrup import Record, Symbol, SyrupError, decode, encode
from charter.ledger.engine import CommandContext, CommandRefused, Write
from charter.multiparty.errors import MalformedPins

__all__ = [
    "APP",
    "MAX_PINS",
    "PINS_LABEL",
    "Clock",
    "MpHandler",
    "PinCommand",
    "parse_body",
    "parse_pin_record",
]

APP = "mp"
MAX_PINS = 4096
_PINS = Symbol("charter-mp-pins")
PINS_LABEL = _PINS.name.encode()
"""The label's bytes: present in every body that embeds a pins record (a cheap filter)."""
_CLOCK = Symbol("charter-mp-clock")


@dataclass(frozen=True, slots=True)
class PinCommand:
    batch_hash: bytes
    pins: tuple[bytes, ...]
    time_us: int

    def to_record(self) -> Record:
        return Record(_PINS, self.batch_hash, list(self.pins), self.time_us)

    def encode(self) -> bytes:
        return encode(self.to_record())


@dataclass(frozen=True, slots=True)
class Clock:
    time_us: int

    def encode(self) -> bytes:
        return encode(Record(_CLOCK, self.time_us))


def parse_body(body: bytes) -> PinCommand | Clock:
    """A command body, parsed; raises ``MalformedPins`` if malformed."""
    try:
        rec = decode(body)
    except SyrupError as exc:
        raise MalformedPins(f"not canonical Syrup: {exc.message}") from None
    if isinstance(rec, Record) and rec.label == _CLOCK and len(rec.fields) == 1:
        (t,) = rec.fields
        if type(t) is not int or t < 0:
            raise MalformedPins("a clock is a non-negative integer")
        return Clock(t)
    return parse_pin_record(rec)


def parse_pin_record(rec: object) -> PinCommand:
    """A decoded ``<charter-mp-pins ...>`` value, checked; raises ``MalformedPins``."""
    if not isinstance(rec, Record) or rec.label != _PINS or len(rec.fields) != 3:
        raise MalformedPins("not a charter-mp-pins record")
    batch_hash, pins, time_us = rec.fields
    if type(time_us) is not int or time_us < 0:
        raise MalformedPins("a clock is a non-negative integer")
    if type(batch_hash) is not bytes or len(batch_hash) != 32:
        raise MalformedPins("a batch hash is 32 bytes")
    if type(pins) is not list or not 1 <= len(pins) <= MAX_PINS:
        raise MalformedPins(f"a batch has 1 to {MAX_PINS} pins")
    if any(type(p) is not bytes or len(p) != 32 for p in pins):
        raise MalformedPins("a pin is 32 bytes")
    if len(set(pins)) != len(pins):
        raise MalformedPins("a batch names a pin twice")
    return PinCommand(batch_hash, tuple(pins), time_us)


class MpHandler:
    """Shape checks only; the ordering happens in each node's aggregator."""

    tables: Sequence[str] = ("mp.",)

    def execute(self, ctx: CommandContext, body: bytes) -> Sequence[Write]:
        try:
            parse_body(body)
        except MalformedPins as exc:
            raise CommandRefused("mp.pins", exc.message) from None
        return []
