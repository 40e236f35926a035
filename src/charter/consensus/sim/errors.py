"""Typed errors of the simulator: a violated invariant, a stalled cluster, a bad scenario."""

from __future__ import annotations

from charter.errors import CharterError


class SimError(CharterError):
    """Base of every simulator error."""

    code = "consensus.sim.error"


class InvariantViolation(SimError):
    """A safety property of Raft was observed to fail; ``invariant`` names which one."""

    code = "consensus.sim.invariant"

    def __init__(self, invariant: str, detail: str) -> None:
        super().__init__(f"{invariant}: {detail}", code=f"consensus.sim.invariant.{invariant}")
        self.invariant = invariant
        self.detail = detail


class LivenessViolation(SimError):
    """After every fault was healed, the cluster failed to elect and commit within the bound."""

    code = "consensus.sim.liveness"

    def __init__(self, detail: str) -> None:
        super().__init__(f"liveness: {detail}")
        self.invariant = "liveness"
        self.detail = detail


class ScenarioError(SimError):
    """A scenario file is malformed, or one of its assertions did not hold."""

    code = "consensus.sim.scenario"

    def __init__(self, message: str, *, line: int | None = None) -> None:
        where = f"line {line}: " if line is not None else ""
        super().__init__(f"{where}{message}")
        self.line = line
