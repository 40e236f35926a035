"""A transaction in a few words: decoded with each area's parser, never trusted."""

from __future__ import annotations

from charter.codec.syrup import Record, Symbol, encode
from charter.ledger.engine.commands import Command
from charter.multiparty.pins import PinCommand
from charter.tokens.model import CreatePool, Mint, PoolType, Transfer
from charter.ui.describe import describe_command


def test_commands_are_described_without_trusting_them() -> None:
    pool = Command("tokens", CreatePool("gold", PoolType.FUNGIBLE, 2).encode())
    assert describe_command(pool) == (
        "tokens",
        {"op": "pool", "pool": "gold", "summary": "create pool gold"},
    )
    mint = Command("tokens", Mint("gold", "bank", 7).encode())
    assert describe_command(mint)[1]["summary"] == "mint 7 gold to bank"
    move = Command("tokens", Transfer("gold", "bank", "shop", 3).encode())
    assert describe_command(move)[1]["summary"] == "transfer 3 gold bank → shop"
    pins = Command("mp", PinCommand(b"\x01" * 32, (b"\x02" * 32, b"\x03" * 32), 5).encode())
    kind, detail = describe_command(pins)
    assert (kind, detail["op"], detail["pins"]) == ("mp", "pins", 2)
    assert detail["summary"] == "2 message pins"
    boot = Command("gov", encode(Record(Symbol("charter-gov-bootstrap"), b"x")))
    assert describe_command(boot) == ("governance", {"op": "bootstrap", "summary": "bootstrap"})
    for app in ("tokens", "mp", "gov"):
        kind, detail = describe_command(Command(app, b"\xff not syrup"))
        assert detail["summary"].startswith("malformed") or detail["op"] is None
    assert describe_command(Command("elsewhere", b""))[0] == "other"
