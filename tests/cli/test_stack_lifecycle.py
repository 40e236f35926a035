"""`charter stack up / status / info / logs / down` and `charter node run` as a user runs them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from charter.cli.demo_net import free_base_port
from charter.node.supervisor import alive, kill_group, read_pid


def charter(home: Path, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, CHARTER_HOME=str(home))
    return subprocess.run(
        [sys.executable, "-c", "from charter.cli.main import main; main()", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _pids(home: Path) -> list[int]:
    pids = []
    for pid_file in home.glob("stacks/*/*/*/data/node.pid"):
        pid = read_pid(pid_file)
        if pid is not None:
            pids.append(pid)
    return pids


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    for pid in _pids(tmp_path):
        kill_group(pid)


def test_up_status_info_logs_down(home: Path) -> None:
    base = free_base_port(3)
    assert charter(home, "stack", "init", "life", "--base-port", str(base)).returncode == 0
    up = charter(home, "stack", "up", "life", "--timeout", "30")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "is up: 3 nodes ready, leader" in up.stdout

    info = json.loads(charter(home, "stack", "info", "life", "--json").stdout)
    pids = [n["pid"] for n in info["nodes"]]
    assert all(isinstance(p, int) and alive(p) for p in pids), pids

    st = charter(home, "stack", "status", "life", "--json")
    assert st.returncode == 0, st.stderr
    rows = json.loads(st.stdout)["nodes"]
    assert [r["pid"] for r in rows] == pids
    assert all(r["alive"] and r["ready"] for r in rows), rows
    assert sorted(r["role"] for r in rows) == ["follower", "follower", "leader"]
    assert len({r["leader"] for r in rows}) == 1
    table = charter(home, "stack", "status", "life")
    assert "leader" in table.stdout and "follower" in table.stdout and "member1" in table.stdout

    logs = charter(home, "stack", "logs", "life", "--node", "member2", "--lines", "5")
    assert logs.returncode == 0, logs.stderr
    lines = logs.stdout.splitlines()
    assert 1 <= len(lines) <= 5 and all(line.startswith("member2-node | ") for line in lines)
    bad = charter(home, "stack", "logs", "life", "--node", "nobody")
    assert bad.returncode == 1 and "no node or member named" in bad.stderr

    again = charter(home, "stack", "up", "life", "--timeout", "30")
    assert again.returncode == 0, again.stderr  # already running nodes are left alone
    assert (
        json.loads(charter(home, "stack", "info", "life", "--json").stdout)["nodes"][0]["pid"]
        == pids[0]
    )

    down = charter(home, "stack", "down", "life")
    assert down.returncode == 0, down.stderr
    assert down.stdout.count(": stopped (pid") == 3, down.stdout
    assert not any(alive(p) for p in pids)
    assert not list(home.glob("stacks/life/*/*/data/node.pid"))
    st = json.loads(charter(home, "stack", "status", "life", "--json").stdout)
    assert not any(r["alive"] or r["reachable"] for r in st["nodes"])
    down2 = charter(home, "stack", "down", "life")
    assert down2.returncode == 0 and down2.stdout.count("not running") == 3


def test_up_names_the_failing_node_shows_its_log_and_stops_the_others(home: Path) -> None:
    base = free_base_port(3)
    assert charter(home, "stack", "init", "bad", "--base-port", str(base)).returncode == 0
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", base + 10))  # member2-node's API port
    blocker.listen()
    try:
        up = charter(home, "stack", "up", "bad", "--timeout", "20")
    finally:
        blocker.close()
    assert up.returncode == 1, up.stdout + up.stderr
    assert "node member2-node failed" in up.stderr, up.stderr
    assert "node.process.bind" in up.stderr  # the tail of its log
    assert _pids(home) == []


def test_node_run_refuses_a_bad_config_with_exit_2(home: Path) -> None:
    bad = home / "node.toml"
    bad.write_text('charter_node = 1\nname = "x"\n', encoding="utf-8")
    r = charter(home, "node", "run", "--config", str(bad))
    assert r.returncode == 2, r.stdout + r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "[node.config." in r.stderr, r.stderr
    missing = charter(home, "node", "run", "--config", str(home / "absent.toml"))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    level = charter(home, "node", "run", "--config", str(bad), "--log-level", "loud")
    assert level.returncode == 2 and "--log-level" in level.stderr, level.stderr
