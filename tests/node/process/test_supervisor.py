"""The supervisor's process and log helpers, without a network."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from charter.node.supervisor import alive, read_pid, stop_pid, tail


def test_tail_reads_the_last_lines_of_a_long_file(tmp_path: Path) -> None:
    log = tmp_path / "node.log"
    log.write_text("".join(f"line {i} " + "x" * 100 + "\n" for i in range(500)))
    last = tail(log, 3)
    assert [line.split()[1] for line in last] == ["497", "498", "499"]
    assert tail(log, 0) == []
    assert tail(tmp_path / "absent.log", 5) == []
    assert len(tail(log, 10_000)) == 500


def test_an_exited_child_is_not_alive_even_before_it_is_reaped(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    pid_file = tmp_path / "node.pid"
    pid_file.write_text(f"{proc.pid}\n")
    # Wait for the exit without reaping it (waitid with WNOWAIT leaves the zombie).
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
    assert not alive(proc.pid)  # a zombie is gone (and alive() reaps our own child)
    assert read_pid(pid_file) is None
    (tmp_path / "junk.pid").write_text("not a pid")
    assert read_pid(tmp_path / "junk.pid") is None


def test_stop_pid_sigterm_then_sigkill(tmp_path: Path) -> None:
    polite = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    assert stop_pid(polite.pid, timeout=5.0) is True
    stubborn = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(60)",
        ],
        start_new_session=True,
        stdout=subprocess.PIPE,
    )
    assert stubborn.stdout is not None and stubborn.stdout.readline() == b"ready\n"
    assert stop_pid(stubborn.pid, timeout=0.5) is False  # needed SIGKILL
    assert not alive(stubborn.pid)
    stubborn.stdout.close()
