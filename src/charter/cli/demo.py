"""``charter demo``: the scripted walk-through behind ``make demo``."""

from __future__ import annotations


def demo() -> None:
    """Run the scripted scenario, printing what happens."""
    raise NotImplementedError
