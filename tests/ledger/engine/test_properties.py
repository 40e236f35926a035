"""Determinism and snapshot equivalence over random logs."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charter.consensus.types import Entry, EntryKind
from charter.ledger.engine import Engine, Transaction, TxStatus, Write, seal_batch
from charter.ledger.engine.entries import BatchEntry, parse_entry

from .conftest import LogBuilder, Net  # type: ignore[import-not-found]

MEMBERS = ["node-1", "node-2", "node-3"]
KEYS = ["a", "b", "c", "d"]

write = st.tuples(
    st.sampled_from(["t", "u"]), st.sampled_from(KEYS), st.none() | st.binary(max_size=8)
)
transaction = st.lists(write, min_size=1, max_size=3, unique_by=lambda w: (w[0], w[1])).map(
    lambda ws: ("tx", ws)
)
op = st.one_of(
    st.tuples(
        st.just("batch"), st.sampled_from(MEMBERS), st.lists(transaction, min_size=1, max_size=4)
    ),
    st.tuples(st.just("forge"), st.sampled_from(MEMBERS)),
    st.just(("replay",)),
    st.just(("noop",)),
    st.just(("conf",)),
    st.just(("term",)),
    st.just(("sig",)),
    st.just(("stale-sig",)),
    st.just(("garbage",)),
    st.tuples(st.just("claims"), st.binary(min_size=32, max_size=32)),
)
SETTINGS = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def build(net: Net, ops: list[Any]) -> LogBuilder:
    log = LogBuilder(net)
    batches: list[bytes] = []
    held: bytes | None = None
    for o in ops:
        kind = o[0]
        if kind == "batch":
            txs = [Transaction.of(ws) for _, ws in o[2]]
            batches.append(log.batch(o[1], txs).data)
        elif kind == "forge":
            data = net.batch(o[1], 1000 + len(log.entries), [Transaction.of([("t", "a", b"f")])])
            parsed = parse_entry(data)
            assert isinstance(parsed, BatchEntry)
            thief = MEMBERS[(MEMBERS.index(o[1]) + 1) % 3]
            log.add(seal_batch(parsed.body, net.members[thief].sign(parsed.body)))
        elif kind == "replay" and batches:
            log.add(batches[len(log.entries) % len(batches)])
        elif kind == "noop":
            log.noop()
        elif kind == "conf":
            log.conf_change()
        elif kind == "term":
            log.new_term()
        elif kind == "sig":
            log.signature()
        elif kind == "stale-sig":
            held = log.signature_data()
            continue
        elif kind == "garbage":
            log.add(b"<garbage")
        elif kind == "claims":
            log.batch("node-1", [Transaction.of([("t", "a", b"c")], claims_digest=o[1])])
        if held is not None:
            log.add(held)
            held = None
    return log


def fingerprint(engine: Engine) -> tuple[Any, ...]:
    statuses = [
        (engine.tx_id(s), engine.status(engine.tx_id(s) or ""))
        for s in range(1, engine.last_seqno + 1)
    ]
    reads = [(t, k, engine.get(t, k), engine.get_committed(t, k)) for t in ("t", "u") for k in KEYS]
    return (
        engine.root(),
        engine.state_digest(),
        engine.applied_index,
        engine.signed_upto,
        statuses,
        reads,
        None if engine.halted else engine.snapshot(),
    )


def check_reads_against_a_model(net: Net, entries: list[Entry]) -> None:
    """Applied and committed reads equal replaying the valid writes below each bound."""
    engine = net.engine()
    writes_at: dict[int, tuple[Write, ...]] = {}
    for entry in entries:
        result = engine.apply([entry])
        parsed = parse_entry(entry.data) if entry.kind is EntryKind.NORMAL and entry.data else None
        if isinstance(parsed, BatchEntry):
            for raw, applied in zip(parsed.txs, result.applied, strict=True):
                if applied.status is TxStatus.PENDING:
                    writes_at[applied.seqno] = Transaction.from_record(raw).writes
    applied_state: dict[tuple[str, str], bytes] = {}
    committed_state: dict[tuple[str, str], bytes] = {}
    for seqno in sorted(writes_at):
        states = [applied_state] + ([committed_state] if seqno < engine.signed_upto else [])
        for table, key, value in writes_at[seqno]:
            for state in states:
                if value is None:
                    state.pop((table, key), None)
                else:
                    state[(table, key)] = value
    for table in ("t", "u"):
        for key in KEYS:
            assert engine.get(table, key) == applied_state.get((table, key))
            assert engine.get_committed(table, key) == committed_state.get((table, key))


@SETTINGS
@given(ops=st.lists(op, max_size=30), cuts=st.lists(st.integers(0, 40), max_size=5))
def test_engines_fed_the_same_entries_agree(net: Net, ops: list[Any], cuts: list[int]) -> None:
    log = build(net, ops)
    entries = log.entries
    whole = net.engine()
    whole.apply(entries)
    chunked = net.engine()
    bounds = sorted({min(c, len(entries)) for c in cuts} | {0, len(entries)})
    for lo, hi in pairwise(bounds):
        chunked.apply(entries[lo:hi])
    assert fingerprint(whole) == fingerprint(chunked) == fingerprint(log.engine)
    assert not whole.alarms
    check_reads_against_a_model(net, entries)


@SETTINGS
@given(ops=st.lists(op, max_size=30), cut=st.integers(0, 40))
def test_restored_engine_equals_one_fed_everything(net: Net, ops: list[Any], cut: int) -> None:
    log = build(net, ops)
    entries = log.entries
    cut = min(cut, len(entries))
    first = net.engine()
    first.apply(entries[:cut])
    restored = net.engine()
    restored.restore(first.snapshot())
    assert fingerprint(restored) == fingerprint(first)
    restored.apply(entries[cut:])
    assert fingerprint(restored) == fingerprint(log.engine)


def test_entries_are_plain_raft_entries(net: Net) -> None:
    log = build(net, [("batch", "node-1", [("tx", [("t", "a", b"1")])]), ("sig",)])
    assert all(isinstance(e, Entry) for e in log.entries)
    assert log.engine.status("1.1").value == "Committed"


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ops=st.lists(op, min_size=1, max_size=12),
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 7)), min_size=1, max_size=4),
    data=st.data(),
)
def test_damaged_entries_never_break_apply(
    net: Net, ops: list[Any], flips: list[tuple[int, int]], data: st.DataObject
) -> None:
    """A flipped bit anywhere in an entry never breaks apply and every node agrees."""
    entries = [e for e in build(net, ops).entries if e.data]
    if not entries:
        return
    damaged = []
    for i, entry in enumerate(entries):
        raw = bytearray(entry.data)
        if data.draw(st.booleans()):
            for at, bit in flips:
                raw[at % len(raw)] ^= 1 << bit
        damaged.append(Entry(entry.term, i + 1, data=bytes(raw)))
    one, two = net.engine(), net.engine()
    one.apply(damaged)
    for entry in damaged:
        if two.halted:
            break
        two.apply([entry])
    # Damage before a signature makes that (honest) signature disagree with the tree
    # every node built: all of them raise the same alarm and stop at the same place.
    assert [(a.seqno, a.computed_root) for a in one.alarms] == [
        (a.seqno, a.computed_root) for a in two.alarms
    ]
    assert one.halted == two.halted
    assert fingerprint(one) == fingerprint(two)
