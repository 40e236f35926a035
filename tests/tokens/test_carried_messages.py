"""Token operations carrying a message, in the handler: the pins record is part of the
canonical body, recorded with the history row, and usable by one operation only."""

from __future__ import annotations

import hashlib

from charter.codec.syrup import Record, Symbol, encode
from charter.multiparty.bound import pins_record_of
from charter.multiparty.pins import PinCommand
from charter.tokens import queries as q
from charter.tokens.model import (
    T_MESSAGES,
    Burn,
    CreatePool,
    Mint,
    PoolType,
    Transfer,
    decode_operation,
)

from .harness import Ledger

PIN = hashlib.sha256(b"pin").digest()
BATCH = hashlib.sha256(b"batch").digest()
RECORD = PinCommand(BATCH, (PIN,), 1_700_000_000_000_000)


def _ledger() -> Ledger:
    led = Ledger()
    assert led.run("bank", CreatePool("usd", PoolType.FUNGIBLE, 2)).ok
    assert led.run("bank", Mint("usd", "bank", 1000)).ok
    return led


def test_bodies_without_a_message_keep_their_bytes_and_with_one_round_trip() -> None:
    plain = Transfer("usd", "bank", "supplier", 5)
    assert plain.encode() == encode(
        Record(Symbol("transfer"), "usd", "bank", "supplier", 5, "", "", b"")
    )
    assert Burn("usd", "bank", 5).encode() == encode(Record(Symbol("burn"), "usd", "bank", 5, ""))
    for op in (
        Transfer("usd", "bank", "supplier", 5, message=RECORD),
        Mint("usd", "bank", 5, message=RECORD),
        Burn("usd", "bank", 5, message=RECORD),
    ):
        body = op.encode()
        assert decode_operation(body) == op
        assert pins_record_of("tokens", body) == RECORD
        assert pins_record_of("mp", body) is None
    assert pins_record_of("tokens", plain.encode()) is None


def test_a_transfer_carrying_a_message_records_its_pin_and_batch() -> None:
    led = _ledger()
    done = led.run("bank", Transfer("usd", "bank", "supplier", 300, message=RECORD))
    assert done.ok, done.reason
    (row,) = [r for r in q.transfers(led.kv) if r.to == "supplier"]
    assert row.pin == PIN and row.batch_hash == BATCH and row.amount == 300
    assert led.kv.get(T_MESSAGES, PIN.hex()) == f"1.{done.seqno}".encode()
    assert q.balance(led.kv, "usd", "supplier") == 300


def test_one_message_one_operation() -> None:
    led = _ledger()
    assert led.run("bank", Mint("usd", "bank", 1, message=RECORD)).ok
    again = led.run("bank", Transfer("usd", "bank", "supplier", 1, message=RECORD))
    assert again.rule == "tokens.message.used" and "1.3" in (again.reason or "")
    assert q.balance(led.kv, "usd", "supplier") == 0


def test_malformed_carried_messages_are_refused_and_change_nothing() -> None:
    led = _ledger()
    before = led.kv.digest()
    two = PinCommand(BATCH, (PIN, hashlib.sha256(b"other").digest()), 1)
    assert led.run("bank", Transfer("usd", "bank", "s", 1, message=two)).rule == "tokens.message"
    both = Transfer("usd", "bank", "s", 1, pin=b"\x01" * 32, message=RECORD)
    assert led.run("bank", both).rule == "tokens.message"
    bad = encode(
        Record(
            Symbol("transfer"),
            "usd",
            "bank",
            "s",
            1,
            "",
            "",
            b"",
            Record(Symbol("charter-mp-pins"), b"short", [PIN], 1),
        )
    )
    assert led.run("bank", bad).rule == "tokens.body"
    assert pins_record_of("tokens", bad) is None
    # refused for its balance: the record is still readable (the refusal names the pin)
    poor = Transfer("usd", "bank", "s", 10**6, message=RECORD)
    refused = led.run("bank", poor)
    assert refused.rule == "tokens.balance"
    assert pins_record_of("tokens", poor.encode()) == RECORD
    assert led.kv.digest() == before
