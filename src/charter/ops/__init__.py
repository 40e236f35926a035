"""Operations: metrics, structured logs, health and readiness."""

from charter.ops.health import STALL_REASONS, Health, HealthPolicy, Probe, Readiness
from charter.ops.logging import configure_logging
from charter.ops.metrics import NodeMetrics
from charter.ops.probe import probe_service

__all__ = [
    "STALL_REASONS",
    "Health",
    "HealthPolicy",
    "NodeMetrics",
    "Probe",
    "Readiness",
    "configure_logging",
    "probe_service",
]
