"""Prometheus metrics of one node, in a registry of its own.

Gauges and counters that mirror the service's state are read at scrape time by a
custom collector (nothing is pushed on the hot path); histograms are observed by hooks
the node process and the REST API call (``observe_*``, ``durable_storage``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from charter.consensus.types import ConfState
from charter.node.ledger_service import LedgerService
from charter.ops.health import STALL_REASONS, Health, Readiness
from charter.ops.probe import peer_ids, probe_service
from charter.ops.storage import TimedRaftStorage

__all__ = ["CONTENT_TYPE", "ROLES", "NodeMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
ROLES = ("leader", "follower", "candidate", "learner")

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_FSYNC_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0)
_BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


class NodeMetrics:
    """One node's metrics; ``bind`` the service once it exists, ``render`` for /metrics."""

    def __init__(
        self, service: LedgerService | None = None, *, health: Health | None = None
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.health = health or Health()
        self._service = service
        self.commit_latency = Histogram(
            "charter_commit_latency_seconds",
            "Time from a write's submission to its Committed (signed) status.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.fsync_duration = Histogram(
            "charter_fsync_duration_seconds",
            "Time to make one Raft Ready durable (write and fsync of entries and state).",
            buckets=_FSYNC_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "charter_batch_size",
            "Transactions per batch this node signed and proposed.",
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_ServiceCollector(self))

    def bind(self, service: LedgerService) -> None:
        self._service = service

    @property
    def service(self) -> LedgerService | None:
        return self._service

    # -- hooks ------------------------------------------------------------------------

    def observe_commit_latency(self, seconds: float) -> None:
        self.commit_latency.observe(seconds)

    def observe_fsync(self, seconds: float) -> None:
        self.fsync_duration.observe(seconds)

    def observe_batch_size(self, size: int) -> None:
        self.batch_size.observe(size)

    def durable_storage(
        self, directory: Path | str, *, bootstrap: ConfState | None = None, **options: Any
    ) -> TimedRaftStorage:
        """A ``DurableRaftStorage`` whose every ``persist`` is observed as fsync duration."""
        return TimedRaftStorage(
            directory, observe=self.fsync_duration.observe, bootstrap=bootstrap, **options
        )

    # -- reading ----------------------------------------------------------------------

    def readiness(self, now: float | None = None) -> Readiness:
        """Readiness now (``time.monotonic()`` unless given); feeds the stall detector."""
        service = self._service
        if service is None:
            return Readiness(False, ["not_bound: the node has no ledger service yet"])
        at = time.monotonic() if now is None else now
        return self.health.update(service.summary(), probe_service(service), at)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _ServiceCollector(Collector):
    """Reads the service at scrape time."""

    def __init__(self, metrics: NodeMetrics) -> None:
        self._metrics = metrics

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        metrics = self._metrics
        readiness = metrics.readiness()
        yield _gauge("charter_ready", "1 when /readyz would answer 200.", float(readiness.ready))
        stall = GaugeMetricFamily(
            "charter_stall", "1 while the stall of this kind is in effect.", labels=["reason"]
        )
        for reason in STALL_REASONS:
            stall.add_metric([reason], float(reason in readiness.stalls))
        yield stall
        service = metrics.service
        if service is None:
            return
        s = service.summary()
        probe = probe_service(service)
        yield _gauge("charter_raft_term", "Current Raft term.", s.term)
        role = GaugeMetricFamily(
            "charter_raft_role", "1 for this node's Raft role, 0 for the others.", labels=["role"]
        )
        current = "learner" if probe.learner and s.role == "follower" else s.role
        for name in ROLES:
            role.add_metric([name], float(name == current))
        yield role
        yield _gauge(
            "charter_raft_leader", "Raft id of the known leader, 0 if none.", s.leader or 0
        )
        yield _gauge("charter_raft_commit_index", "Raft commit index.", s.commit_index)
        yield _gauge(
            "charter_raft_applied_index", "Raft index applied to the ledger.", s.applied_index
        )
        yield _gauge(
            "charter_raft_last_index", "Last index in this node's Raft log.", probe.last_index
        )
        yield _gauge(
            "charter_peers_connected", "Peers with a live Raft link.", probe.peers_connected
        )
        yield _gauge("charter_peers", "Peers in the consensus group.", probe.peers_total)
        lag = GaugeMetricFamily(
            "charter_replication_lag_entries",
            "Entries each follower trails the leader's log by (reported by the leader only).",
            labels=["peer"],
        )
        for peer in peer_ids(service):
            if peer in probe.follower_lag:
                lag.add_metric([str(peer)], float(probe.follower_lag[peer]))
        yield lag
        yield _gauge(
            "charter_ledger_last_seqno", "Last ledger sequence number applied.", s.last_seqno
        )
        yield _gauge(
            "charter_ledger_signed_upto", "Sequence numbers below this are signed.", s.signed_upto
        )
        yield _gauge("charter_ledger_halted", "1 if the ledger halted on divergence.", s.halted)
        proposals = CounterMetricFamily(
            "charter_proposals",
            "Entries this node put forward for the log: signed batches and signatures.",
            labels=["kind"],
        )
        proposals.add_metric(["batch"], float(service.batches_sent))
        proposals.add_metric(["signature"], float(service.signatures_proposed))
        yield proposals
        yield _counter(
            "charter_forwarded_batches",
            "Batches this node forwarded to the leader.",
            service.forwarded,
        )
        yield _counter(
            "charter_signature_transactions",
            "Signature transactions applied by this node (whichever leader proposed them).",
            service.signatures_applied,
        )
        yield _counter(
            "charter_divergence_alarms",
            "Signed roots that differed from this node's.",
            s.alarms,
        )


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=float(value))


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=float(value))
