from __future__ import annotations

import hashlib

import pytest

from charter.codec.syrup import Record, Symbol, encode
from charter.ledger.engine import Transaction, TransactionError, Write
from charter.ledger.engine.entries import (
    BatchEntry,
    MalformedEntry,
    encode_batch_body,
    parse_entry,
    seal_batch,
)
from charter.ledger.engine.tx import EMPTY_WRITE_SET_DIGEST, MAX_KEY_BYTES, MAX_TABLE_BYTES


def test_writes_are_sorted_and_digest_is_over_the_canonical_write_set() -> None:
    tx = Transaction.of([("b", "k", b"2"), ("a", "z", None), ("a", "k", b"1")])
    assert [w[:2] for w in tx.writes] == [("a", "k"), ("a", "z"), ("b", "k")]
    expected = encode([["a", "k", b"1"], ["a", "z", False], ["b", "k", b"2"]])
    assert tx.write_set_digest() == hashlib.sha256(expected).digest()
    assert hashlib.sha256(b"[]").digest() == EMPTY_WRITE_SET_DIGEST


def test_record_round_trip() -> None:
    tx = Transaction.of(
        [Write("t", "k", b"v"), Write("t", "gone", None)],
        claims_digest=bytes(range(32)),
        client_ref="order-17",
    )
    assert Transaction.from_record(tx.to_record()) == tx


@pytest.mark.parametrize(
    ("writes", "match"),
    [
        ([("charter.members", "k", b"v")], "reserved"),
        ([("", "k", b"v")], "non-empty"),
        ([("t", "", b"v")], "non-empty"),
        ([("t" * (MAX_TABLE_BYTES + 1), "k", b"v")], "at most"),
        ([("t", "k" * (MAX_KEY_BYTES + 1), b"v")], "at most"),
        ([("t", "\ud800", b"v")], "UTF-8"),
        ([("t", "k", b"1"), ("t", "k", b"2")], "twice"),
        ([("t", "k", "text")], "bytes"),
    ],
)
def test_bad_transactions_are_refused(writes: list[tuple[str, str, object]], match: str) -> None:
    with pytest.raises(TransactionError, match=match) as info:
        Transaction.of(writes)  # type: ignore[arg-type]
    assert info.value.code == "ledger.engine.tx"


def test_reserved_tables_are_open_to_governance_only() -> None:
    tx = Transaction.of([("charter.members", "m1", b"x")], reserved_ok=True)
    with pytest.raises(TransactionError, match="reserved"):
        Transaction.from_record(tx.to_record())


def test_claims_and_reference_are_checked() -> None:
    with pytest.raises(TransactionError, match="32 bytes"):
        Transaction.of([("t", "k", b"v")], claims_digest=b"short")
    with pytest.raises(TransactionError, match="reference"):
        Transaction.of([("t", "k", b"v")], client_ref="r" * 300)


def test_unsorted_writes_from_the_log_are_refused() -> None:
    record = Record(Symbol("charter-tx"), [["t", "b", b"1"], ["t", "a", b"2"]], bytes(32), "")
    with pytest.raises(TransactionError, match="sorted"):
        Transaction.from_record(record)


def test_batch_framing_parses_and_garbage_is_malformed() -> None:
    tx = Transaction.of([("t", "k", b"v")])
    body = encode_batch_body("node-1", 3, [tx, tx])
    parsed = parse_entry(seal_batch(body, b"sig"))
    assert isinstance(parsed, BatchEntry)
    assert (parsed.submitter, parsed.batch_seq, parsed.body, len(parsed.txs)) == (
        "node-1",
        3,
        body,
        2,
    )
    for data in (b"not syrup", encode(5), encode(Record(Symbol("other"))), seal_batch(b"x", b"")):
        assert isinstance(parse_entry(data), MalformedEntry)
    empty = encode(Record(Symbol("charter-batch-body"), "node-1", 1, []))
    assert isinstance(parse_entry(seal_batch(empty, b"")), MalformedEntry)
