"""A real stack of node processes on loopback, for the multi-process tests.

Every process a test starts is killed at teardown (its whole process group), whatever
the outcome; every wait is bounded.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from charter.cli.demo_net import free_base_port, until
from charter.cli.stack import StackNode, open_stack
from charter.node.supervisor import kill_group, read_pid, start_node

MEMBERS = 3
UP_TIMEOUT = 30.0


def charter(home: Path, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run the charter command as its own process, as a user would."""
    env = dict(os.environ, CHARTER_HOME=str(home))
    return subprocess.run(
        [sys.executable, "-c", "from charter.cli.main import main; main()", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class Stack:
    home: Path
    name: str
    nodes: list[StackNode]
    client: httpx.Client
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def node(self, name: str) -> StackNode:
        return next(n for n in self.nodes if n.entry.name == name)

    def url(self, name: str, path: str) -> str:
        return f"{self.node(name).entry.api_url}{path}"

    def names(self) -> list[str]:
        return [n.entry.name for n in self.nodes]

    def pid(self, name: str) -> int | None:
        return read_pid(self.node(name).config.data_dir / "node.pid")

    def status(self, name: str) -> dict[str, Any]:
        r = self.client.get(self.url(name, "/api/v1/status"), timeout=2.0)
        r.raise_for_status()
        doc: dict[str, Any] = r.json()
        return doc

    def leader(self, among: list[str] | None = None, within: float = 15.0) -> str:
        """The node every live node in ``among`` names as leader, once they agree."""
        names = among or [n for n in self.names() if self.pid(n) is not None]
        by_raft = {n.entry.raft_id: n.entry.name for n in self.nodes}

        def agreed() -> str | None:
            leaders = set()
            for n in names:
                doc = self.status(n)
                leaders.add(doc.get("leader"))
            if len(leaders) != 1:
                return None
            (leader,) = leaders
            if leader is None:
                return None
            name = by_raft.get(leader, leader if leader in self.names() else None)
            return name if name is not None and self.status(name).get("role") == "leader" else None

        return until(agreed, within, "an agreed leader")

    def put(self, name: str, table: str, key: str, value: Any, timeout: float = 15.0) -> str:
        r = self.client.put(
            self.url(name, f"/api/v1/tables/{table}/{key}"),
            params={"wait": "committed"},
            json=value,
            timeout=timeout,
        )
        assert r.status_code in (200, 201), (r.status_code, r.text)
        doc = r.json()
        assert doc["status"] == "Committed", doc
        tx_id: str = doc["tx_id"]
        return tx_id

    def get(self, name: str, table: str, key: str) -> Any:
        r = self.client.get(self.url(name, f"/api/v1/tables/{table}/{key}"), timeout=5.0)
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return r.json()

    def kill9(self, name: str) -> None:
        pid = self.pid(name)
        assert pid is not None, f"{name} is not running"
        kill_group(pid)
        until(lambda: self.pid(name) is None, 10.0, f"{name} gone after SIGKILL")

    def start(self, name: str) -> subprocess.Popen[bytes]:
        n = self.node(name)
        proc = start_node(n.config_path, n.config.data_dir)
        self.procs.append(proc)
        return proc

    def wait_ready(self, name: str, within: float = 20.0) -> None:
        def ready() -> bool:
            return self.client.get(self.url(name, "/readyz"), timeout=2.0).status_code == 200

        until(ready, within, f"{name} ready")

    def log(self, name: str) -> str:
        return (self.node(name).config.data_dir / "node.log").read_text(errors="replace")

    def kill_all(self) -> None:
        for n in self.nodes:
            pid = read_pid(n.config.data_dir / "node.pid")
            if pid is not None:
                kill_group(pid)
        for proc in self.procs:
            kill_group(proc.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("charter-home")
    name = "proc"
    base = free_base_port(MEMBERS)
    init = charter(home, "stack", "init", name, "--members", str(MEMBERS), "--base-port", str(base))
    assert init.returncode == 0, init.stderr
    old = os.environ.get("CHARTER_HOME")
    os.environ["CHARTER_HOME"] = str(home)
    try:
        _, nodes = open_stack(name)
    finally:
        if old is None:
            del os.environ["CHARTER_HOME"]
        else:
            os.environ["CHARTER_HOME"] = old
    s = Stack(home, name, nodes, httpx.Client())
    try:
        up = charter(
            home, "stack", "up", name, "--timeout", str(UP_TIMEOUT), timeout=UP_TIMEOUT + 30
        )
        assert up.returncode == 0, up.stdout + up.stderr
        yield s
    finally:
        s.kill_all()
        s.client.close()
