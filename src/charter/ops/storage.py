"""Durable Raft storage whose ``persist`` is timed for ``charter_fsync_duration_seconds``.

The storages use ``__slots__``, so the timing is a subclass the node process constructs
instead of ``DurableRaftStorage`` (``NodeMetrics.durable_storage``), not a patch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from charter.consensus.types import Ready
from charter.ledger.raft_storage import DurableRaftStorage

__all__ = ["TimedRaftStorage"]


class TimedRaftStorage(DurableRaftStorage):
    """``DurableRaftStorage`` reporting how long each Ready took to make durable."""

    __slots__ = ("_observe",)

    def __init__(
        self, directory: Path | str, *, observe: Callable[[float], None], **options: Any
    ) -> None:
        self._observe = observe
        super().__init__(directory, **options)

    def persist(self, rd: Ready) -> None:
        start = time.perf_counter()
        try:
            super().persist(rd)
        finally:
            self._observe(time.perf_counter() - start)
