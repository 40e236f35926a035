"""Durable Raft storage: persists per second at 1, 16 and 256 entries of 100 bytes per Ready.

Run: ``python bench/bench_raft_storage.py`` (about fifteen seconds). Prints one JSON object.
Each size persists Readies into a fresh temporary directory for a bounded time and count,
in two shapes: entries with a new hard state (the steady state of a follower or leader:
one group commit, one atomic state-file replacement) and entries alone. It then times
reopening the directory (every frame checked, every term loaded).
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time

from charter.consensus.types import ConfState, Entry, HardState, Ready
from charter.ledger.raft_storage import DurableRaftStorage

ENTRY_BYTES = 100
SECONDS_PER_RUN = 1.5
MAX_ENTRIES = 300_000
VOTERS = ConfState(voters=frozenset({1, 2, 3}))


def run(per_ready: int, with_hard_state: bool, directory: str) -> dict[str, object]:
    payload = os.urandom(ENTRY_BYTES)
    persists = 0
    with DurableRaftStorage(directory, bootstrap=VOTERS) as s:
        nxt = s.last_index() + 1
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < SECONDS_PER_RUN and (
            persists * per_ready < MAX_ENTRIES
        ):
            ents = [Entry(2, i, data=payload) for i in range(nxt, nxt + per_ready)]
            hs = HardState(2, 1, nxt - 1) if with_hard_state else None
            s.persist(Ready(entries=ents, hard_state=hs))
            nxt += per_ready
            persists += 1
        entries = persists * per_ready
    t0 = time.perf_counter()
    with DurableRaftStorage(directory) as s:
        assert s.last_index() == entries + 1
    reopen_s = time.perf_counter() - t0
    return {
        "entries_per_ready": per_ready,
        "hard_state_each_ready": with_hard_state,
        "persists": persists,
        "persists_per_s": round(persists / elapsed),
        "entries_per_s": round(entries / elapsed),
        "mean_persist_ms": round(elapsed / persists * 1e3, 3),
        "reopen_entries_per_s": round(entries / reopen_s),
    }


def main() -> None:
    rows = []
    for with_hard_state in (True, False):
        for per_ready in (1, 16, 256):
            with tempfile.TemporaryDirectory(prefix="charter-bench-raftstore-") as directory:
                rows.append(run(per_ready, with_hard_state, os.path.join(directory, "raft")))
    print(
        json.dumps(
            {
                "benchmark": "raft_storage",
                "python": platform.python_version(),
                "machine": platform.machine(),
                "entry_bytes": ENTRY_BYTES,
                "seconds_per_run": SECONDS_PER_RUN,
                "results": rows,
            }
        )
    )


if __name__ == "__main__":
    main()
