"""When to try a webhook delivery again, and when to give up (pure: no clock inside)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RetryPolicy"]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: ``initial_delay * factor**(n-1)`` after the n-th failure, capped."""

    max_attempts: int = 5
    initial_delay: float = 1.0
    factor: float = 2.0
    max_delay: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.initial_delay < 0 or self.factor < 1:
            raise ValueError("max_attempts >= 1, initial_delay >= 0 and factor >= 1")

    def delay_after(self, failures: int) -> float | None:
        """Seconds to wait after ``failures`` failed attempts; None: give up (dead letter)."""
        if failures >= self.max_attempts:
            return None
        return float(min(self.max_delay, self.initial_delay * self.factor ** (failures - 1)))
