"""Snapshot schedule and evidence: digest, canonical record, resuming the tree."""

from __future__ import annotations

import pytest

from charter.codec.syrup import Record, encode
from charter.ledger.errors import LedgerStateError
from charter.ledger.issue import issue_json_receipt
from charter.ledger.merkle import GENESIS_LEAF, MerkleTree
from charter.ledger.signatures import sign_signed_root
from charter.ledger.snapshots import (
    SNAPSHOT_EVIDENCE_LABEL,
    SnapshotError,
    SnapshotEvidence,
    SnapshotPolicy,
    SnapshotSchedule,
)

from .conftest import IAT, Node, SignedLedger, build_ledger


def test_schedule() -> None:
    schedule = SnapshotSchedule(SnapshotPolicy(every_tx=10))
    assert schedule.committed(5) is None
    assert schedule.committed(12) == 12
    schedule.taken(12)
    assert schedule.committed(21) is None
    assert schedule.committed(22) == 22
    with pytest.raises(LedgerStateError):
        schedule.committed(3)
    with pytest.raises(LedgerStateError):
        schedule.taken(30)
    with pytest.raises(ValueError):
        SnapshotPolicy(every_tx=0)


def test_a_large_state_spaces_snapshots_by_its_size() -> None:
    schedule = SnapshotSchedule(SnapshotPolicy(every_tx=10))
    schedule.taken(0, rows=25)  # a state of 25 rows: the next waits 25 transactions
    assert schedule.interval == 25
    assert schedule.committed(24) is None
    assert schedule.committed(25) == 25
    schedule.taken(25, rows=4)  # a small state again: back to every_tx
    assert schedule.committed(34) is None
    assert schedule.committed(35) == 35
    half = SnapshotSchedule(SnapshotPolicy(every_tx=10, growth=0.5), last_rows=100)
    assert half.interval == 50
    plain = SnapshotSchedule(SnapshotPolicy(every_tx=10, growth=0), last_rows=10**6)
    assert plain.committed(10) == 10
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            SnapshotPolicy(growth=bad)


def test_evidence_round_trip_and_digest(ledger: SignedLedger) -> None:
    tree = MerkleTree([GENESIS_LEAF])
    for seqno in range(1, 21):
        tree.append(ledger.components[seqno].leaf())
    evidence = SnapshotEvidence.for_snapshot(20, b"state as of 20", tree)
    assert SnapshotEvidence.decode(evidence.encode()) == evidence
    evidence.check_snapshot(b"state as of 20")
    with pytest.raises(SnapshotError):
        evidence.check_snapshot(b"state as of 21")
    with pytest.raises(SnapshotError):
        SnapshotEvidence.for_snapshot(19, b"x", tree)


def test_a_node_joining_from_a_snapshot_signs_the_same_roots(node: Node) -> None:
    full = build_ledger(node, 60)
    snapshot_at = 37
    prefix = MerkleTree([GENESIS_LEAF])
    for seqno in range(1, snapshot_at + 1):
        prefix.append(full.components[seqno].leaf())
    evidence = SnapshotEvidence.decode(
        SnapshotEvidence.for_snapshot(snapshot_at, b"kv state", prefix).encode()
    )
    resumed = evidence.resume_tree()
    for seqno in range(snapshot_at + 1, 61):
        resumed.append(full.components[seqno].leaf())
    assert resumed.root() == full.tree.root()
    signed = sign_signed_root(node.key, node.cert, view=2, seqno=61, root=resumed.root(), iat=IAT)
    receipt = issue_json_receipt(resumed, 50, full.components[50], signed)
    assert receipt.verify(node.trusted).tx_id == "2.50"


def test_strict_decoding() -> None:
    good = SnapshotEvidence(2, bytes(32), (bytes(32), bytes(32))).to_record().fields
    for bad in (
        Record(SNAPSHOT_EVIDENCE_LABEL, *good[:2]),
        Record(SNAPSHOT_EVIDENCE_LABEL, -1, *good[1:]),
        Record(SNAPSHOT_EVIDENCE_LABEL, good[0], b"short", good[2]),
        Record(SNAPSHOT_EVIDENCE_LABEL, good[0], good[1], [bytes(32)]),
    ):
        with pytest.raises(SnapshotError):
            SnapshotEvidence.decode(encode(bad))
    with pytest.raises(SnapshotError):
        SnapshotEvidence.decode(b"junk")
    with pytest.raises(SnapshotError):
        SnapshotEvidence(2, bytes(32), (bytes(32),)).resume_tree()
