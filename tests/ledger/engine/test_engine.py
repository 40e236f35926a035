from __future__ import annotations

import itertools
import json

import pytest

from charter.codec.syrup import Record, decode, encode
from charter.consensus.types import Entry
from charter.crypto import Ed25519PrivateKey
from charter.ledger.engine import (
    LATEST,
    SIGNATURES_TABLE,
    SNAPSHOTS_TABLE,
    EngineHaltedError,
    EngineOrderError,
    EngineSnapshotError,
    EntryKind,
    ReceiptUnavailableError,
    Transaction,
    TxStatus,
    Waiters,
    seal_batch,
    sign_batch,
    signature_entry,
)
from charter.ledger.engine.entries import BatchEntry, SignatureEntry, parse_entry
from charter.ledger.engine.tx import EMPTY_WRITE_SET_DIGEST, ZERO_DIGEST
from charter.ledger.errors import ReceiptError
from charter.ledger.signatures import SignaturePolicy, SignedRoot, sign_signed_root
from charter.ledger.snapshots import SnapshotEvidence, SnapshotPolicy
from charter.ledger.verify import load_receipt, verify_receipt

from .conftest import NOW_MS, LogBuilder, Net, Signer  # type: ignore[import-not-found]


def tx(key: str, value: bytes | None, table: str = "t") -> Transaction:
    return Transaction.of([(table, key, value)])


def test_seqnos_and_tx_ids_follow_leaves_not_raft_indices(log: LogBuilder) -> None:
    log.noop()
    log.conf_change()
    log.put("node-1", ("a", b"1"), ("b", b"2"), ("c", b"3"))
    log.new_term()
    applied = log.engine.apply([]).applied
    assert applied == []
    entry = log.put("node-2", ("d", b"4"))
    engine = log.engine
    assert engine.applied_index == entry.index == 5
    assert [engine.tx_id(s) for s in range(1, 5)] == ["1.1", "1.2", "1.3", "2.4"]
    assert engine.tx_id(5) is None
    assert engine.last_seqno == 4


def test_status_moves_from_unknown_to_pending_to_committed(net: Net, log: LogBuilder) -> None:
    engine = net.engine()
    assert engine.status("1.1") is TxStatus.UNKNOWN
    first = engine.apply([log.put("node-1", ("a", b"1"), ("b", b"2"))])
    assert [(t.tx_id, t.status, t.submitter, t.batch_seq) for t in first.applied] == [
        ("1.1", TxStatus.PENDING, "node-1", 0),
        ("1.2", TxStatus.PENDING, "node-1", 0),
    ]
    assert engine.status("1.1") is TxStatus.PENDING
    assert engine.status("2.1") is TxStatus.UNKNOWN  # right seqno, other view
    assert engine.status("1.3") is TxStatus.UNKNOWN
    assert engine.get("t", "a") == b"1"
    assert engine.get_committed("t", "a") is None
    signed = engine.apply([log.signature()])
    assert signed.committed == ["1.1", "1.2"]
    assert signed.applied[0].kind is EntryKind.SIGNATURE
    assert engine.status("1.2") is TxStatus.COMMITTED
    assert engine.status("1.3") is TxStatus.PENDING  # the signature itself awaits the next
    assert engine.get_committed("t", "a") == b"1"
    later = engine.apply([log.put("node-1", ("a", b"9"), ("a2", None))])
    assert later.committed == []
    assert (engine.get("t", "a"), engine.get_committed("t", "a")) == (b"9", b"1")
    engine.apply([log.signature()])
    assert engine.get_committed("t", "a") == b"9"
    assert engine.get(SIGNATURES_TABLE, LATEST) is not None
    assert engine.root() == log.engine.root()


def test_forged_batch_is_invalid_on_every_node_and_changes_nothing(
    net: Net, log: LogBuilder
) -> None:
    log.put("node-1", ("a", b"1"))
    engines = [net.engine() for _ in range(3)]
    for engine in engines:
        engine.apply(log.entries)
    before = [e.state_digest() for e in engines]
    body_owner = net.batch("node-2", 0, [tx("a", b"stolen"), tx("b", b"x")])
    # node-3 re-signs node-2's batch body: a valid signature by the wrong node.
    parsed = parse_entry(body_owner)
    assert isinstance(parsed, BatchEntry)
    forged = seal_batch(parsed.body, net.members["node-3"].sign(parsed.body))
    entry = Entry(1, len(log.entries) + 1, data=forged)
    results = [e.apply([entry]) for e in engines]
    for engine, result, digest in zip(engines, results, before, strict=True):
        assert [t.status for t in result.applied] == [TxStatus.INVALID, TxStatus.INVALID]
        assert result.applied[0].reason == "the batch signature does not verify"
        assert engine.state_digest() == digest
        assert engine.get("t", "a") == b"1"
        assert engine.status("1.2") is TxStatus.INVALID
        assert engine.invalid_reason("1.2") == "the batch signature does not verify"
        assert engine.leaf_components(2).write_set_digest == EMPTY_WRITE_SET_DIGEST
    assert len({e.root() for e in engines}) == 1
    # The forgery did not use up node-2's batch number: its real batch 0 applies.
    real = engines[0].apply([Entry(1, entry.index + 1, data=body_owner)])
    assert [t.status for t in real.applied] == [TxStatus.PENDING, TxStatus.PENDING]
    assert engines[0].get("t", "a") == b"stolen"


def test_unknown_submitter_and_malformed_entries_are_invalid(net: Net) -> None:
    engine = net.engine()
    stranger = sign_batch(Ed25519PrivateKey.generate(), "node-9", 0, [tx("a", b"1")])
    result = engine.apply([Entry(1, 1, data=stranger), Entry(1, 2, data=b"\xffjunk")])
    assert [(t.seqno, t.kind, t.status) for t in result.applied] == [
        (1, EntryKind.TX, TxStatus.INVALID),
        (2, EntryKind.MALFORMED, TxStatus.INVALID),
    ]
    assert "unknown submitter" in (result.applied[0].reason or "")
    assert engine.get("t", "a") is None


def test_replayed_batch_is_invalid(net: Net, log: LogBuilder) -> None:
    batch = net.batch("node-1", 5, [tx("a", b"1")])
    log.add(batch)
    log.put("node-1", ("a", b"2"))  # batch 0
    replay = log.add(batch)
    engine = net.engine()
    result = engine.apply(log.entries)
    assert [t.status for t in result.applied] == [
        TxStatus.PENDING,
        TxStatus.PENDING,
        TxStatus.INVALID,
    ]
    assert "replayed" in (result.applied[2].reason or "")
    assert engine.get("t", "a") == b"2"
    assert replay.index == 3


def test_replay_window_expires_old_batch_numbers(net: Net) -> None:
    engine = net.engine(replay_window=4)
    entries = [Entry(1, 1, data=net.batch("node-1", 10, [tx("a", b"1")]))]
    entries.append(Entry(1, 2, data=net.batch("node-1", 7, [tx("b", b"1")])))  # within window
    entries.append(Entry(1, 3, data=net.batch("node-1", 6, [tx("c", b"1")])))  # expired
    result = engine.apply(entries)
    assert [t.status for t in result.applied] == [
        TxStatus.PENDING,
        TxStatus.PENDING,
        TxStatus.INVALID,
    ]


def test_reserved_table_in_a_signed_batch_invalidates_that_transaction_only(
    net: Net, log: LogBuilder
) -> None:
    governance = Transaction.of([("charter.members", "m", b"x")], reserved_ok=True)
    log.batch("node-1", [tx("a", b"1"), governance, tx("b", b"2")])
    engine = net.engine()
    result = engine.apply(log.entries)
    assert [t.status for t in result.applied] == [
        TxStatus.PENDING,
        TxStatus.INVALID,
        TxStatus.PENDING,
    ]
    assert "reserved" in (result.applied[1].reason or "")
    assert engine.get("charter.members", "m") is None
    assert engine.get("t", "b") == b"2"


def test_entries_must_follow_in_raft_order(net: Net, log: LogBuilder) -> None:
    log.put("node-1", ("a", b"1"))
    log.put("node-1", ("b", b"1"))
    engine = net.engine()
    with pytest.raises(EngineOrderError):
        engine.apply([log.entries[1]])
    engine.apply(log.entries[:1])
    with pytest.raises(EngineOrderError):
        engine.apply(log.entries[:1])


def test_receipts_verify_in_both_forms_and_fail_with_a_flipped_bit(
    net: Net, log: LogBuilder
) -> None:
    claims = bytes(range(32))
    log.batch("node-1", [Transaction.of([("t", "a", b"1")], claims_digest=claims)])
    log.put("node-2", ("b", b"2"), ("c", b"3"))
    engine = log.engine
    with pytest.raises(ReceiptUnavailableError):
        engine.receipt("1.1")
    log.signature()
    log.put("node-3", ("d", b"4"))
    log.signature()
    for tx_id in ("1.1", "1.2", "1.3", "1.4", "1.5"):
        for fmt in ("json", "cose"):
            data = engine.receipt(tx_id, fmt)  # type: ignore[arg-type]
            verified = verify_receipt(data, net.trusted)
            assert verified.tx_id == tx_id
            flipped = bytearray(data)
            if fmt == "json":
                doc = json.loads(data)
                doc["leaf_components"]["write_set_digest"] = _flip_hex(
                    doc["leaf_components"]["write_set_digest"]
                )
                flipped = bytearray(json.dumps(doc).encode())
            else:
                flipped[-40] ^= 0x01
            with pytest.raises(ReceiptError):
                verify_receipt(bytes(flipped), net.trusted)
    assert verify_receipt(engine.receipt("1.1"), net.trusted).claims_digest == claims
    # 1.1 is covered by the first signature (tree of 4 leaves), 1.5 by the second.
    assert load_receipt(engine.receipt("1.1", "cose")).root() == engine.tree.root_at(4)
    with pytest.raises(ReceiptUnavailableError):
        engine.receipt("1.6")


def _flip_hex(text: str) -> str:
    return format(int(text[0], 16) ^ 1, "x") + text[1:]


def test_a_divergent_signature_raises_the_alarm_with_both_roots_and_halts(
    net: Net, log: LogBuilder
) -> None:
    log.put("node-1", ("a", b"1"), ("b", b"2"))
    follower = net.engine()
    follower.apply(log.entries)
    computed = follower.root()
    lie = sign_signed_root(
        net.signer.key, net.signer.cert, view=1, seqno=3, root=bytes(32), iat=NOW_MS // 1000
    )
    after = Entry(1, 3, data=net.batch("node-2", 0, [tx("c", b"3")]))
    result = follower.apply([Entry(1, 2, data=signature_entry(lie)), after])
    assert result.halted and result.applied_index == 2
    assert [a.received for a in result.alarms] == [lie]
    alarm = result.alarms[0]
    assert alarm.computed_root == computed != alarm.received.root
    assert alarm.tx_id == "1.3"
    assert follower.alarms == [alarm]
    assert follower.status("1.1") is TxStatus.PENDING
    assert follower.status("1.3") is TxStatus.INVALID
    ours = alarm.countersign(net.signer.key, net.signer.cert, NOW_MS)
    assert (ours.tree_size, ours.root) == (lie.tree_size, computed)
    with pytest.raises(EngineHaltedError):
        follower.apply([after])
    with pytest.raises(EngineHaltedError):
        follower.snapshot()


def test_untrusted_or_premature_signatures_are_invalid_and_cover_nothing(
    net: Net, rogue: Signer, log: LogBuilder
) -> None:
    log.put("node-1", ("a", b"1"))
    engine = net.engine()
    engine.apply(log.entries)
    stranger = sign_signed_root(
        rogue.key, rogue.cert, view=1, seqno=2, root=engine.root(), iat=NOW_MS // 1000
    )
    ahead = sign_signed_root(
        net.signer.key, net.signer.cert, view=1, seqno=9, root=engine.root(), iat=0
    )
    future = sign_signed_root(
        net.signer.key, net.signer.cert, view=7, seqno=2, root=engine.root(), iat=0
    )
    result = engine.apply(
        [
            Entry(1, 2, data=signature_entry(stranger)),
            Entry(1, 3, data=signature_entry(ahead)),
            Entry(1, 4, data=signature_entry(future)),
        ]
    )
    assert [t.status for t in result.applied] == [TxStatus.INVALID] * 3
    assert "view 7" in (result.applied[2].reason or "")
    assert "trusted" in (result.applied[0].reason or "")
    assert result.committed == [] and not result.alarms
    assert engine.status("1.1") is TxStatus.PENDING


def test_a_stale_signature_covers_the_prefix_it_signed(net: Net, log: LogBuilder) -> None:
    log.put("node-1", ("a", b"1"))
    early = log.signature_data()  # signed over seqnos 0..1, meant for seqno 2
    log.put("node-2", ("b", b"2"))  # lands first, at seqno 2
    log.add(early)  # lands at seqno 3
    engine = log.engine
    assert engine.status("1.1") is TxStatus.COMMITTED
    assert engine.status("1.2") is TxStatus.PENDING
    assert not engine.alarms
    assert verify_receipt(engine.receipt("1.1"), net.trusted).tx_id == "1.1"
    log.signature()
    assert engine.status("1.2") is TxStatus.COMMITTED


def test_snapshot_evidence_is_recorded_and_checked(net: Net, log: LogBuilder) -> None:
    log.put("node-1", ("a", b"1"), ("b", b"2"))
    engine = log.engine
    data = engine.snapshot()
    evidence = engine.snapshot_evidence(data)
    entry = log.add(evidence)
    assert engine.get(SNAPSHOTS_TABLE, LATEST) == evidence
    SnapshotEvidence.decode(evidence).check_snapshot(data)
    log.signature()
    assert engine.status(f"1.{engine.last_seqno - 1}") is TxStatus.COMMITTED
    assert entry.index == 2
    wrong = SnapshotEvidence(2, bytes(32), (bytes(32), bytes(32)))
    result = engine.apply([Entry(1, len(log.entries) + 1, data=wrong.encode())])
    assert result.applied[0].status is TxStatus.INVALID
    assert "frontier" in (result.applied[0].reason or "")
    with pytest.raises(EngineOrderError):
        engine.snapshot_evidence(data)  # the state has moved on since


def test_snapshot_evidence_for_a_copy_of_the_snapshot_reads_it(net: Net, log: LogBuilder) -> None:
    log.put("node-1", ("a", b"1"))
    engine = log.engine
    data = engine.snapshot()
    copy = bytes(bytearray(data))  # equal bytes, not the object the engine remembers
    assert copy is not data
    first = engine.snapshot_evidence(copy)
    assert engine.snapshot_evidence(engine.snapshot()) == first
    remembered = engine.snapshot()
    log.put("node-1", ("b", b"2"))
    with pytest.raises(EngineOrderError):
        engine.snapshot_evidence(remembered)  # the state has moved on since


def test_signature_schedule_reports_when_the_leader_should_sign(net: Net, log: LogBuilder) -> None:
    engine = net.engine(signature_policy=SignaturePolicy(every_tx=3, every_ms=50))
    assert not engine.apply([log.put("node-1", ("a", b"1"))]).signature_due
    assert engine.signature_due(60)
    due = engine.apply([log.put("node-1", ("b", b"1"), ("c", b"1"))])
    assert due.signature_due
    engine.make_signature(1, net.signer.key, net.signer.cert, NOW_MS)
    assert not engine.signature_due(0)


def test_restored_engine_continues_identically(net: Net, log: LogBuilder) -> None:
    log.put("node-1", ("a", b"1"), ("b", b"2"))
    log.signature()
    log.put("node-2", ("a", b"3"), ("b", None))
    cut = len(log.entries)
    data = log.engine.snapshot()
    log.add(log.engine.snapshot_evidence(data))
    log.signature()
    log.put("node-1", ("c", b"4"))
    restored = net.engine()
    restored.restore(data)
    assert restored.applied_index == cut
    assert (restored.get("t", "a"), restored.get_committed("t", "a")) == (b"3", b"1")
    result = restored.apply(log.entries[cut:])
    assert result.committed == ["1.3", "1.4", "1.5", "1.6"]
    assert restored.root() == log.engine.root()
    assert restored.snapshot() == log.engine.snapshot()
    with pytest.raises(ReceiptUnavailableError):
        restored.receipt("1.1")  # before the snapshot: its leaf is not held
    assert verify_receipt(restored.receipt("1.6", "cose"), net.trusted).tx_id == "1.6"


def test_snapshots_grow_rarer_as_the_state_grows(net: Net) -> None:
    log = LogBuilder(net)
    engine = net.engine(snapshot_policy=SnapshotPolicy(every_tx=3))
    dues: list[int] = []
    for i in range(40):  # every transaction adds a row, as token history does
        result = engine.apply([log.put("node-1", (f"k{i:03d}", b"v"))])
        if result.snapshot_due:
            dues.append(engine.last_seqno)
            engine.snapshot_evidence(engine.snapshot())
            assert engine.snapshots.interval == max(3, engine.kv.row_count())
    gaps = [b - a for a, b in itertools.pairwise(dues)]
    assert dues[0] == 3 and gaps == sorted(gaps) and gaps[-1] > 3 * gaps[0]
    restored = net.engine(snapshot_policy=SnapshotPolicy(every_tx=3))
    restored.restore(engine.snapshot())
    assert restored.snapshots.interval == engine.kv.row_count()  # the restored state's size


def test_digests_of_a_signature_leaf(log: LogBuilder) -> None:
    log.put("node-1", ("a", b"1"))
    log.signature()
    components = log.engine.leaf_components(2)
    assert components.claims_digest == ZERO_DIGEST
    assert components.write_set_digest != EMPTY_WRITE_SET_DIGEST
    assert SignedRoot.decode(log.engine.get(SIGNATURES_TABLE, LATEST) or b"").seqno == 2


def test_forgetting_old_leaves_keeps_the_engine_going(net: Net, log: LogBuilder) -> None:
    for i in range(5):
        log.put("node-1", (f"k{i}", b"v"), (f"j{i}", b"w"))
    log.signature()  # seqno 11 covers 1..10
    log.put("node-2", ("z", b"1"))
    engine = log.engine
    with pytest.raises(EngineOrderError):
        engine.forget_before(12)
    before = engine.snapshot()
    engine.forget_before(6)
    assert engine.snapshot() == before  # the snapshot never held leaves
    with pytest.raises(ReceiptUnavailableError):
        engine.receipt("1.5")
    assert verify_receipt(engine.receipt("1.7"), net.trusted).tx_id == "1.7"
    log.signature()
    assert engine.status("1.12") is TxStatus.COMMITTED
    assert verify_receipt(engine.receipt("1.12", "cose"), net.trusted).tx_id == "1.12"
    fresh = net.engine()
    fresh.apply(log.entries)
    assert fresh.root() == engine.root()


def test_tx_ids_are_canonical(log: LogBuilder) -> None:
    log.put("node-1", ("a", b"1"))
    engine = log.engine
    assert engine.status("1.1") is TxStatus.PENDING
    for text in ("01.1", "1.01", "1.1 ", "1", "1.", ".1", "x.1", "1.1.1", "١.1"):
        assert engine.status(text) is TxStatus.UNKNOWN, text


def test_a_bad_run_of_entries_applies_nothing(net: Net, log: LogBuilder) -> None:
    log.put("node-1", ("a", b"1"))
    log.put("node-1", ("b", b"1"))
    engine = net.engine()
    with pytest.raises(EngineOrderError):
        engine.apply([log.entries[0], log.entries[0]])
    assert (engine.applied_index, engine.last_seqno) == (0, 0)


def test_waiters_learn_when_transactions_settle(net: Net, log: LogBuilder) -> None:
    waiters = Waiters()
    engine = net.engine()
    waiters.watch_batch("node-1", 0)
    governance = Transaction.of([("charter.x", "k", b"v")], reserved_ok=True)
    log.batch("node-1", [tx("a", b"1"), governance])  # seqnos 1 and 2
    log.put("node-2", ("b", b"2"))  # seqno 3, not watched yet
    first = waiters.feed(engine.apply(log.entries))
    assert [(s.tx_id, s.status) for s in first] == [("1.2", TxStatus.INVALID)]
    assert "reserved" in (first[0].reason or "")
    waiters.watch("1.3")  # learnt from the status, still Pending
    waiters.watch("1.9")  # not yet applied
    done = waiters.feed(engine.apply([log.signature()]))
    assert [(s.tx_id, s.status) for s in done] == [
        ("1.1", TxStatus.COMMITTED),
        ("1.3", TxStatus.COMMITTED),
    ]
    assert done[0].tx is not None and done[0].tx.batch_seq == 0
    assert len(waiters) == 1


def test_a_bad_snapshot_leaves_the_engine_as_it_was(net: Net, log: LogBuilder) -> None:
    log.put("node-1", ("a", b"1"))
    log.new_term()
    log.put("node-1", ("b", b"1"))
    good = log.engine.snapshot()
    fields = list(decode(good).fields)
    assert fields[5] == [[1, 1], [2, 2]]
    fields[5] = [[2, 2], [1, 1]]  # view runs out of order
    engine = net.engine()
    engine.apply(log.entries[:1])
    before = engine.snapshot()
    for bad in (b"junk", encode(Record(decode(good).label, *fields)), good[:-1]):
        with pytest.raises(EngineSnapshotError):
            engine.restore(bad)
        assert engine.snapshot() == before
    engine.restore(good)
    assert engine.snapshot() == good


def test_a_batch_given_up_on_can_be_unwatched(net: Net, log: LogBuilder) -> None:
    waiters = Waiters()
    engine = net.engine()
    waiters.watch_batch("node-1", 0)
    waiters.watch_batch("node-1", 1)
    assert len(waiters) == 2
    # its submitter gave up on batch 1 for good: nothing is left behind for it
    assert waiters.unwatch_batch("node-1", 1) is True
    assert waiters.unwatch_batch("node-1", 1) is False
    assert waiters.unwatch_batch("node-2", 0) is False
    assert len(waiters) == 1
    log.batch("node-1", [tx("a", b"1")])  # batch 0, seqno 1
    assert waiters.feed(engine.apply(log.entries)) == []
    assert len(waiters) == 1  # now its transaction is watched, no longer the batch
    done = waiters.feed(engine.apply([log.signature()]))
    assert [(s.tx_id, s.status) for s in done] == [("1.1", TxStatus.COMMITTED)]
    assert len(waiters) == 0


def test_a_batch_overtaken_by_later_ones_within_a_minute_still_applies(net: Net) -> None:
    # batch numbers are microseconds: a retry 0.5 s late is not a replay
    engine = net.engine()
    late, first = 1_700_000_000_000_000, 1_700_000_000_500_000
    entries = [
        Entry(1, 1, data=net.batch("node-1", first, [tx("b", b"1")])),
        Entry(1, 2, data=net.batch("node-1", late, [tx("a", b"1")])),
        Entry(1, 3, data=net.batch("node-1", late, [tx("a", b"2")])),  # the same number again
        Entry(1, 4, data=net.batch("node-1", first - 61_000_000, [tx("c", b"1")])),
    ]
    result = engine.apply(entries)
    assert [t.status for t in result.applied] == [
        TxStatus.PENDING,
        TxStatus.PENDING,
        TxStatus.INVALID,
        TxStatus.INVALID,
    ]


def test_replay_memory_stays_bounded(net: Net) -> None:
    engine = net.engine(replay_window=10)
    entries = [
        Entry(1, i + 1, data=net.batch("node-1", 1000 + 100 * i, [tx("k", b"%d" % i)]))
        for i in range(9000)
    ]
    for i in range(0, len(entries), 500):
        engine.apply(entries[i : i + 500])
    assert len(engine._replays.seen["node-1"][1]) < 9000
    later = engine.apply([Entry(1, 9001, data=net.batch("node-1", 1000, [tx("z", b"1")]))])
    assert later.applied[0].status is TxStatus.INVALID  # forgotten, but still refused


def test_own_signatures_apply_without_reverifying_but_others_are_verified(
    net: Net, log: LogBuilder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import charter.ledger.engine.engine as engine_module

    log.put("node-1", ("a", b"1"))
    log.signature()  # made by the log's engine, so applied there as its own
    assert log.engine.status("1.1") is TxStatus.COMMITTED
    follower = net.engine()
    calls: list[int] = []
    real = engine_module.verify_signed_root

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine_module, "verify_signed_root", counting)
    follower.apply(log.entries)
    assert calls == [1]  # a follower checks the leader's signatures in full
    assert follower.status("1.1") is TxStatus.COMMITTED
    assert follower.root() == log.engine.root()
    log.put("node-1", ("b", b"2"))
    log.signature()
    assert calls == [1]  # the leader's own signature: its signer only
    assert log.engine.status("1.3") is TxStatus.COMMITTED
    follower.apply(log.entries[len(log.entries) - 2 :])
    assert calls == [1, 1] and follower.root() == log.engine.root()


def test_own_signature_still_needs_a_trusted_signer(
    net: Net, log: LogBuilder, rogue: Signer
) -> None:
    log.put("node-1", ("a", b"1"))
    data = log.engine.make_signature(1, rogue.key, rogue.cert, NOW_MS)
    log.add(data)
    assert log.engine.status("1.2") is TxStatus.INVALID
    assert log.engine.status("1.1") is TxStatus.PENDING


def test_a_tampered_copy_of_an_own_signature_is_verified_in_full(net: Net, log: LogBuilder) -> None:
    log.put("node-1", ("a", b"1"))
    data = log.signature_data()
    parsed = parse_entry(data)
    assert isinstance(parsed, SignatureEntry)
    root = parsed.signed
    forged = SignedRoot(
        root.view,
        root.seqno,
        root.root,
        root.node_id,
        bytes(root.signature[:-1]) + bytes([root.signature[-1] ^ 1]),
        root.cose_signature,
        root.cert,
    )
    log.add(signature_entry(forged))
    assert log.engine.status("1.2") is TxStatus.INVALID
    assert log.engine.status("1.1") is TxStatus.PENDING
