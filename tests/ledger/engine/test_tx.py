from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.codec.syrup import Record, Symbol, encode
from charter.ledger.engine import Transaction, TransactionError, Write
from charter.ledger.engine.entries import (
    BatchEntry,
    MalformedEntry,
    encode_batch_body,
    parse_entry,
    seal_batch,
)
from charter.ledger.engine.tx import (
    EMPTY_WRITE_SET_DIGEST,
    MAX_KEY_BYTES,
    MAX_TABLE_BYTES,
    encode_write_set,
)


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


_NAMES = st.text(min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(_NAMES, _NAMES, st.one_of(st.none(), st.binary(max_size=40))),
        max_size=8,
    )
)
def test_the_formatted_write_set_is_the_generic_encoding(
    writes: list[tuple[str, str, bytes | None]],
) -> None:
    made = tuple(Write(*w) for w in writes)
    generic = encode([[t, k, False if v is None else v] for t, k, v in made])
    assert encode_write_set(made) == generic


def test_a_write_set_of_unexpected_types_falls_back_to_the_generic_encoder() -> None:
    odd = (Write("t", "k", bytearray(b"v")),)  # type: ignore[arg-type]
    assert encode_write_set(odd) == encode([["t", "k", bytearray(b"v")]])
