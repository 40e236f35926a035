"""Operations: metrics, structured logs, health and readiness."""

from charter.ops.events import StateEvents, watch_ledger
from charter.ops.health import STALL_REASONS, Health, HealthPolicy, Probe, Readiness
from charter.ops.logging import configure_logging, log_event
from charter.ops.metrics import NodeMetrics
from charter.ops.probe import probe_service
from charter.ops.storage import TimedRaftStorage

__all__ = [
    "STALL_REASONS",
    "Health",
    "HealthPolicy",
    "NodeMetrics",
    "Probe",
    "Readiness",
    "StateEvents",
    "TimedRaftStorage",
    "configure_logging",
    "log_event",
    "probe_service",
    "watch_ledger",
]
