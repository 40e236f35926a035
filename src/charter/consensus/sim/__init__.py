"""Deterministic simulation of ``charter.consensus``: faults, invariants, scenarios, shrinking.

A seed fixes a whole run (network randomness, election timers, the schedule of injected
faults and proposals); invariants are checked after every step; a failing seed re-runs
identically and shrinks to the events that matter.
"""

from charter.consensus.sim.errors import (
    InvariantViolation,
    LivenessViolation,
    ScenarioError,
    SimError,
)
from charter.consensus.sim.faults import Fault, FaultKind, NetProfile, SimConfig, generate
from charter.consensus.sim.invariants import Checker

__all__ = [
    "Checker",
    "Fault",
    "FaultKind",
    "InvariantViolation",
    "LivenessViolation",
    "NetProfile",
    "ScenarioError",
    "SimConfig",
    "SimError",
    "generate",
]
