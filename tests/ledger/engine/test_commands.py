"""Commands: handler-computed writes, refusals, table confinement, the node directory."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.codec.syrup import decode, encode
from charter.crypto import Ed25519PrivateKey
from charter.ledger.engine import (
    NODES_TABLE,
    Command,
    CommandContext,
    CommandRefused,
    DirectoryEntry,
    Engine,
    NodeStatus,
    Transaction,
    TransactionError,
    TxStatus,
    Write,
)
from charter.ledger.signatures import SignaturePolicy
from charter.ledger.trust import NodeCert

from .conftest import LogBuilder, Net, make_signer


class Counter:
    """Adds an amount to a counter; refuses to go below zero."""

    tables = ("charter.counter.",)

    def __init__(self) -> None:
        self.seen: list[CommandContext] = []

    def execute(self, ctx: CommandContext, body: bytes) -> Sequence[Write]:
        self.seen.append(ctx)
        amount = decode(body)
        assert isinstance(amount, int)
        now = int(ctx.get("charter.counter.v", "n") or b"0")
        if now + amount < 0:
            raise CommandRefused("counter.negative", f"{now} + {amount} is below zero")
        return [Write("charter.counter.v", "n", str(now + amount).encode())]


class Escaper:
    tables = ("charter.counter.",)

    def execute(self, ctx: CommandContext, body: bytes) -> Sequence[Write]:
        return [Write("t", "k", b"x")]


class Director:
    """Writes the node directory, as governance does."""

    tables = (NODES_TABLE,)

    def __init__(self, entry: DirectoryEntry) -> None:
        self.entry = entry

    def execute(self, ctx: CommandContext, body: bytes) -> Sequence[Write]:
        status = NodeStatus(body.decode())
        e = self.entry
        record = DirectoryEntry(e.name, e.member, e.batch_key, e.ledger_cert, status)
        return [Write(NODES_TABLE, e.name, record.encode())]


def cmd(amount: int, app: str = "counter") -> Command:
    return Command(app, encode(amount), client_ref=f"add {amount}")


def builder(net: Net, **handlers: object) -> LogBuilder:
    engine = net.engine(
        signature_policy=SignaturePolicy(every_tx=10),
        handlers=handlers,
        node_members={"node-1": "alice"},
    )
    return LogBuilder(net, ref=engine)


def test_command_applies_computed_writes_atomically_and_refuses_by_rule(net: Net) -> None:
    counter = Counter()
    log = builder(net, counter=counter)
    log.add(net.batch("node-1", 0, [cmd(5), cmd(-7), cmd(-5)]))  # type: ignore[list-item]
    engine = log.engine
    assert engine.get("charter.counter.v", "n") == b"0"
    assert [c.member for c in counter.seen] == ["alice"] * 3
    assert counter.seen[0].submitter == "node-1"
    assert engine.status(counter.seen[1].tx_id) is TxStatus.INVALID
    reason = engine.invalid_reason(counter.seen[1].tx_id)
    assert reason is not None and reason.startswith("counter.negative:")
    log.signature()
    assert engine.status(counter.seen[0].tx_id) is TxStatus.COMMITTED
    # the leaf's claims digest commits to the command itself
    assert engine.leaf_components(counter.seen[0].seqno).claims_digest == cmd(5).claims_digest()


def test_every_node_computes_the_same_state(net: Net) -> None:
    log = builder(net, counter=Counter())
    for i, amount in enumerate([3, -1, -9, 4]):
        log.add(net.batch("node-2", i, [cmd(amount)]))  # type: ignore[list-item]
    log.signature()
    other = net.engine(
        signature_policy=SignaturePolicy(every_tx=10), handlers={"counter": Counter()}
    )
    other.apply(log.entries)
    assert other.root() == log.engine.root()
    assert other.state_digest() == log.engine.state_digest()


def test_unknown_app_and_writes_outside_declared_tables_are_invalid(net: Net) -> None:
    log = builder(net, esc=Escaper())
    log.add(net.batch("node-1", 0, [cmd(1, "nope"), cmd(1, "esc")]))  # type: ignore[list-item]
    invalid = sorted(log.engine._invalid.values())
    assert invalid[0].startswith("engine.app:")
    assert invalid[1].startswith("engine.tables:")
    assert log.engine.get("t", "k") is None


def test_plain_transactions_still_cannot_touch_reserved_tables(net: Net) -> None:
    with pytest.raises(TransactionError):
        Transaction.of([Write(NODES_TABLE, "x", b"y")])


def test_command_fields_are_bounded() -> None:
    with pytest.raises(TransactionError):
        Command("", b"")
    with pytest.raises(TransactionError):
        Command("a", b"x" * ((1 << 20) + 1))
    with pytest.raises(TransactionError):
        Command("a", b"", client_ref="r" * 300)


def test_directory_admits_and_retires_nodes(net: Net) -> None:
    newcomer = Ed25519PrivateKey.generate()
    signer = make_signer()
    entry = DirectoryEntry(
        "node-4", "dave", newcomer.public_key, NodeCert.from_x509(signer.cert.x509)
    )
    log = builder(net, gov=Director(entry))
    engine = log.engine

    def batch4(seq: int) -> bytes:
        from charter.ledger.engine import sign_batch

        return sign_batch(newcomer, "node-4", seq, [Transaction.of([Write("t", "a", b"1")])])

    log.add(batch4(0))
    assert engine.get("t", "a") is None  # unknown submitter
    log.add(net.batch("node-1", 0, [Command("gov", b"pending")]))  # type: ignore[list-item]
    log.add(batch4(1))
    assert engine.get("t", "a") is None and engine.node("node-4") is None
    log.add(net.batch("node-1", 1, [Command("gov", b"trusted")]))  # type: ignore[list-item]
    log.add(batch4(2))
    assert engine.get("t", "a") == b"1"
    assert engine.node("node-4") is not None and engine.node("node-4").member == "dave"  # type: ignore[union-attr]
    # the new node's ledger key may now sign roots
    signed = engine.make_signature(log.term, signer.key, signer.cert, 1_700_000_000_000)
    log.add(signed)
    assert engine.signed_upto == engine.last_seqno
    # a snapshot keeps the directory
    snap = engine.snapshot()
    restored: Engine = net.engine(handlers={"gov": Director(entry)})
    restored.restore(snap)
    assert restored.node("node-4") is not None
    log.add(net.batch("node-1", 2, [Command("gov", b"retired")]))  # type: ignore[list-item]
    log.add(sign_batch_put(newcomer, 3))
    assert engine.get("t", "b") is None and engine.node("node-4") is None


def sign_batch_put(key: Ed25519PrivateKey, seq: int) -> bytes:
    from charter.ledger.engine import sign_batch

    return sign_batch(key, "node-4", seq, [Transaction.of([Write("t", "b", b"2")])])


def test_written_names_are_checked_even_after_a_table_was_seen_valid() -> None:
    from charter.ledger.engine.commands import check_writes

    ok = [Write("charter.counter.v", "n", b"1")]
    assert check_writes("counter", ("charter.counter.",), ok) == ok
    # the same table is outside another handler's prefixes
    with pytest.raises(CommandRefused) as refused:
        check_writes("other", ("other.",), ok)
    assert refused.value.rule == "engine.tables"
    # a handler's own set of checked tables skips only those, and never takes a bad one
    seen: set[str] = set()
    assert check_writes("counter", ("charter.counter.",), ok, seen) == ok
    assert seen == {"charter.counter.v"}
    for odd in ("other.v", ["charter.counter.v"]):
        with pytest.raises(CommandRefused):
            check_writes("counter", ("charter.counter.",), [Write(odd, "n", b"1")], seen)  # type: ignore[arg-type]
    assert seen == {"charter.counter.v"}
    # keys outside the ASCII shortcut still get the full name check
    assert check_writes("counter", ("charter.counter.",), [Write("charter.counter.v", "é", b"")])
    for bad in ("", "\ud800", "é" * 600):
        with pytest.raises(TransactionError):
            check_writes("counter", ("charter.counter.",), [Write("charter.counter.v", bad, b"")])
    with pytest.raises(TransactionError):
        check_writes(
            "counter", ("charter.counter.",), [Write("charter.counter.v", "k" * 1025, b"")]
        )


@settings(max_examples=200, deadline=None)
@given(
    st.text(min_size=1, max_size=20),
    st.binary(max_size=300),
    st.text(max_size=20),
)
def test_the_claims_digest_is_the_digest_of_the_command_record(
    app: str, body: bytes, ref: str
) -> None:
    try:
        cmd = Command(app, body, ref)
    except TransactionError:
        return  # not a command (e.g. a lone surrogate)
    assert cmd.claims_digest() == hashlib.sha256(encode(cmd.to_record())).digest()


def test_a_command_after_a_directory_change_in_its_batch_sees_the_change(net: Net) -> None:
    newcomer = Ed25519PrivateKey.generate()
    entry = DirectoryEntry(
        "node-4", "dave", newcomer.public_key, NodeCert.from_x509(make_signer().cert.x509)
    )
    counter = Counter()
    log = builder(net, gov=Director(entry), counter=counter)
    log.add(net.batch("node-1", 0, [Command("gov", b"trusted")]))  # type: ignore[list-item]
    from charter.ledger.engine import sign_batch

    # node-4 retires itself, then adds: the add runs with no member behind node-4
    log.add(sign_batch(newcomer, "node-4", 0, [cmd(1), Command("gov", b"retired"), cmd(2)]))
    assert [c.member for c in counter.seen] == ["dave", ""]
