"""The signature schedule (sans-I/O) and the signed-root record."""

from __future__ import annotations

import dataclasses

import pytest

from charter.codec.syrup import Record, Symbol, encode
from charter.ledger.cose_receipts import sign_root_cose
from charter.ledger.errors import LedgerStateError, SignedRootError, UntrustedSignerError
from charter.ledger.signatures import (
    SignaturePolicy,
    SignatureSchedule,
    SignedRoot,
    sign_signed_root,
    verify_signed_root,
)

from .conftest import IAT, Node, SignedLedger


def test_due_every_n_transactions() -> None:
    schedule = SignatureSchedule(SignaturePolicy(every_tx=3, every_ms=10_000))
    assert schedule.ms_until_due() is None
    assert not schedule.appended(1)
    assert not schedule.appended(2)
    assert schedule.appended(3)
    assert schedule.ms_until_due() == 0
    schedule.signed(4)
    assert schedule.unsigned == 0 and not schedule.due
    assert not schedule.appended(5)
    assert not schedule.appended(6)
    assert schedule.appended(7)


def test_due_after_time_only_when_something_is_unsigned() -> None:
    schedule = SignatureSchedule(SignaturePolicy(every_tx=100, every_ms=50))
    assert not schedule.elapsed(80)  # nothing to sign yet
    assert schedule.appended(1)  # the interval had passed: sign the first transaction soon
    schedule.signed(2)
    assert not schedule.appended(3)
    assert schedule.ms_until_due() == 50
    assert not schedule.elapsed(30)
    assert schedule.ms_until_due() == 20
    assert schedule.elapsed(20)
    assert schedule.ms_until_due() == 0


def test_truncation_and_order() -> None:
    schedule = SignatureSchedule(SignaturePolicy(every_tx=2, every_ms=1000), last_signed_seqno=10)
    schedule.appended(11)
    with pytest.raises(LedgerStateError):
        schedule.appended(11)
    schedule.truncated(10)
    assert schedule.unsigned == 0
    assert not schedule.appended(11)
    with pytest.raises(LedgerStateError):
        schedule.signed(9)
    with pytest.raises(ValueError):
        schedule.elapsed(-1)
    with pytest.raises(ValueError):
        SignaturePolicy(every_tx=0)


def test_signed_root_round_trips_through_syrup(node: Node, ledger: SignedLedger) -> None:
    signed = ledger.signed
    data = signed.encode()
    assert SignedRoot.decode(data) == signed
    assert signed.tx_id == "2.41" and signed.tree_size == 41
    assert verify_signed_root(SignedRoot.decode(data), node.trusted).node_id == signed.node_id
    assert verify_signed_root(signed).node_id == node.node_cert.node_id


def test_tampered_signed_roots_fail(node: Node, other_node: Node, ledger: SignedLedger) -> None:
    signed = ledger.signed
    other_root = bytes(32)
    for bad in (
        dataclasses.replace(signed, root=other_root),
        dataclasses.replace(signed, seqno=signed.seqno + 1),
        dataclasses.replace(signed, node_id="00" * 32),
        # one bit flipped (setting the last byte to 0 changed nothing 1 time in 256)
        dataclasses.replace(
            signed, signature=signed.signature[:-1] + bytes([signed.signature[-1] ^ 1])
        ),
        dataclasses.replace(signed, cert=other_node.node_cert.der),
        dataclasses.replace(
            signed,
            cose_signature=sign_root_cose(node.key, signed.root, txid="2.99", iat=IAT),
        ),
    ):
        with pytest.raises(SignedRootError):
            verify_signed_root(bad)
    with pytest.raises(UntrustedSignerError):
        verify_signed_root(signed, other_node.trusted)


def test_signed_root_decoding_is_strict(ledger: SignedLedger) -> None:
    with pytest.raises(SignedRootError):
        SignedRoot.decode(b"not syrup")
    fields = ledger.signed.to_record().fields
    for bad in (
        Record(Symbol("other"), *fields),
        Record(ledger.signed.to_record().label, *fields[:-1]),
        Record(ledger.signed.to_record().label, -1, *fields[1:]),
        Record(ledger.signed.to_record().label, fields[0], fields[1], b"short", *fields[3:]),
    ):
        with pytest.raises(SignedRootError):
            SignedRoot.decode(encode(bad))


def test_signing_needs_the_certificates_key(node: Node, other_node: Node) -> None:
    with pytest.raises(SignedRootError):
        sign_signed_root(node.key, other_node.cert, view=1, seqno=2, root=bytes(32), iat=IAT)
