"""The node process tunes the garbage collector once its start-up objects exist."""

from __future__ import annotations

import subprocess
import sys

from charter.node.process import GC_THRESHOLDS

PROGRAM = """
import gc
from charter.node.process import GC_THRESHOLDS, _tune_gc
assert gc.get_freeze_count() == 0
_tune_gc()
assert gc.get_threshold() == GC_THRESHOLDS, gc.get_threshold()
assert gc.get_freeze_count() > 10_000, gc.get_freeze_count()
print("ok")
"""


def test_start_up_objects_are_frozen_and_collections_are_rarer() -> None:
    # in a child process: freezing the test process's heap would change other tests
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
    assert GC_THRESHOLDS[0] > 700 and all(t > 0 for t in GC_THRESHOLDS)  # 700: the default
