"""Segment append throughput with group commit at batch sizes 1, 10, 100, 1000.

Run: ``python bench/bench_segments.py`` (about ten seconds). Prints one JSON object.
Each batch size appends 256-byte records into a fresh temporary directory for a
bounded time and count (one write and one fsync per batch), then times reopening
the log, which checks every frame's CRC.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time

from charter.ledger.segments import SegmentLog

RECORD_SIZE = 256
SECONDS_PER_SIZE = 2.0
MAX_RECORDS = 400_000


def run(batch_size: int, directory: str) -> dict[str, object]:
    batch = [os.urandom(RECORD_SIZE) for _ in range(batch_size)]
    with SegmentLog(directory, max_segment_bytes=16 * 1024 * 1024) as log:
        batches = 0
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < SECONDS_PER_SIZE and (
            batches * batch_size < MAX_RECORDS
        ):
            log.append_batch(batch)
            batches += 1
        records = batches * batch_size
    t0 = time.perf_counter()
    with SegmentLog(directory, max_segment_bytes=16 * 1024 * 1024) as log:
        assert log.last_index == records
    reopen_s = time.perf_counter() - t0
    return {
        "batch_size": batch_size,
        "records": records,
        "records_per_s": round(records / elapsed),
        "batches_per_s": round(batches / elapsed),
        "mb_per_s": round(records * RECORD_SIZE / elapsed / 1e6, 2),
        "reopen_records_per_s": round(records / reopen_s),
    }


def main() -> None:
    rows = []
    for batch_size in (1, 10, 100, 1000):
        with tempfile.TemporaryDirectory(prefix="charter-bench-seg-") as directory:
            rows.append(run(batch_size, directory))
    print(
        json.dumps(
            {
                "benchmark": "segments",
                "python": platform.python_version(),
                "machine": platform.machine(),
                "record_bytes": RECORD_SIZE,
                "fsync_per_batch": 1,
                "results": rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
