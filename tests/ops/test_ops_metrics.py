"""The node registry without a service, and the timed durable storage."""

from __future__ import annotations

import asyncio
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from charter.consensus.types import ConfState, Entry, HardState, Ready
from charter.ledger.raft_storage import DurableRaftStorage
from charter.ledger.signatures import SignaturePolicy
from charter.node.ledger_local import LocalLedgerNetwork
from charter.node.ledger_service import LedgerSettings
from charter.node.raft_transport import Backoff
from charter.ops import NodeMetrics, TimedRaftStorage


def families(metrics: NodeMetrics) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def test_unbound_metrics_say_not_ready() -> None:
    metrics = NodeMetrics()
    found = families(metrics)
    assert found["charter_ready"] == {(): 0.0}
    assert set(found["charter_stall"]) == {
        (("reason", r),)
        for r in ("commit_stalled", "apply_stalled", "follower_lagging", "no_peers")
    }
    assert "charter_raft_term" not in found
    readiness = metrics.readiness()
    assert not readiness.ready and readiness.reasons[0].startswith("not_bound")


def test_registries_are_per_node() -> None:
    a, b = NodeMetrics(), NodeMetrics()
    a.observe_commit_latency(0.02)
    a.observe_batch_size(7)
    assert families(a)["charter_commit_latency_seconds_count"] == {(): 1.0}
    assert families(a)["charter_batch_size_sum"] == {(): 7.0}
    assert families(b)["charter_commit_latency_seconds_count"] == {(): 0.0}


def test_timed_storage_observes_each_persist(tmp_path: Path) -> None:
    metrics = NodeMetrics()
    storage = metrics.durable_storage(tmp_path / "raft", bootstrap=ConfState(frozenset({1})))
    assert isinstance(storage, TimedRaftStorage)
    assert isinstance(storage, DurableRaftStorage)
    try:
        first = storage.last_index() + 1
        term = storage.hard_state.term + 1
        for i in range(3):
            storage.persist(
                Ready(
                    hard_state=HardState(term=term, vote=1, commit=first + i - 1),
                    entries=[Entry(term, first + i, data=b"x" * 10)],
                )
            )
        assert storage.last_index() == first + 2
    finally:
        storage.close()
    found = families(metrics)
    assert found["charter_fsync_duration_seconds_count"] == {(): 3.0}
    assert found["charter_fsync_duration_seconds_sum"][()] > 0
    reopened = DurableRaftStorage(tmp_path / "raft")
    try:
        assert reopened.last_index() == first + 2
    finally:
        reopened.close()


def test_timed_storage_is_persisted_off_the_event_loop(tmp_path: Path) -> None:
    metrics = NodeMetrics()
    storage = metrics.durable_storage(tmp_path / "raft", bootstrap=ConfState(frozenset({1})))
    try:
        assert storage.blocking_io is True
    finally:
        storage.close()


async def test_signature_counter_counts_every_applied_signature() -> None:
    metrics = NodeMetrics()
    settings = LedgerSettings(
        signature_policy=SignaturePolicy(every_tx=1, every_ms=50),
        observe_batch_size=metrics.observe_batch_size,
        backoff=Backoff(base=0.01, cap=0.2),
    )
    async with LocalLedgerNetwork("memory", settings=settings) as net:
        leader = await net.elect()
        follower = net.service(next(n for n in net.ids if n != leader))
        metrics.bind(follower)
        async with asyncio.timeout(15.0):
            await follower.submit([("t", "k", b"v")], wait="committed")
        await net.until(lambda: follower.signatures_applied >= 1)
        found = families(metrics)
        # a follower proposes no signature, yet applies (and counts) the leader's
        counted = found["charter_signature_transactions_total"][()]
        assert counted >= 1
        assert counted <= follower.signatures_applied
        assert found["charter_batch_size_count"][()] >= 1
