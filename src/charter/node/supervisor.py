"""Starting, watching and stopping node processes on this machine (``charter stack``).

A node runs detached (its own session and process group, output appended to
``data_dir/node.log``), so it outlives the command that started it; everything here
finds it again by its pid file. Every wait is bounded and polls a condition (a process
gone, an HTTP answer), never a fixed sleep standing in for one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx

from charter.errors import CharterError

__all__ = [
    "LOG_FILE",
    "PID_FILE",
    "NodeProbe",
    "NodeTarget",
    "StartFailed",
    "alive",
    "node_command",
    "probe",
    "read_pid",
    "start_node",
    "stop_pid",
    "tail",
    "wait_ready",
]

PID_FILE: Final = "node.pid"
LOG_FILE: Final = "node.log"
POLL_INTERVAL: Final = 0.05
PROBE_TIMEOUT: Final = 1.0


class SupervisorError(CharterError):
    code = "node.supervisor"


class StartFailed(SupervisorError):
    """A node did not come up: which one, and why."""

    code = "node.supervisor.start"

    def __init__(self, node: str, reason: str) -> None:
        super().__init__(f"node {node}: {reason}")
        self.node = node
        self.reason = reason


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, exited but not reaped, counts as gone)."""
    if pid <= 0:
        return False
    with contextlib.suppress(ChildProcessError, OSError):
        # Reap it if it is our own child; otherwise this is a no-op.
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return True  # no procfs: trust kill(0)
    # The state follows the parenthesised command name, which may itself hold ')'.
    state = stat[stat.rfind(")") + 2 : stat.rfind(")") + 3]
    return state not in ("Z", "X")


def read_pid(path: Path) -> int | None:
    """The pid in ``path`` if that process is alive; None otherwise."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not text.isdigit():
        return None
    pid = int(text)
    return pid if alive(pid) else None


def node_command(config_path: Path) -> list[str]:
    """The command line of one node process (this interpreter, so the same install)."""
    return [
        sys.executable,
        "-c",
        "from charter.cli.main import main; main()",
        "node",
        "run",
        "--config",
        str(config_path),
    ]


def start_node(config_path: Path, data_dir: Path) -> subprocess.Popen[bytes]:
    """Start one node detached; its output is appended to ``data_dir/node.log``."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(data_dir / LOG_FILE, "ab") as log_file:
        return subprocess.Popen(
            node_command(config_path),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            close_fds=True,
        )


def stop_pid(pid: int, *, timeout: float = 10.0, kill_after: bool = True) -> bool:
    """SIGTERM ``pid``, wait for it to go; then SIGKILL its process group. True if it
    ended on SIGTERM."""
    if not alive(pid):
        return True
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(POLL_INTERVAL)
    if kill_after:
        kill_group(pid)
        deadline = time.monotonic() + timeout
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL)
    return False


def kill_group(pid: int) -> None:
    """SIGKILL the process group a node leads (it was started in its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


def tail(path: Path, lines: int) -> list[str]:
    """The last ``lines`` lines of a text file (read from the end, bounded)."""
    if lines <= 0:
        return []
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            block = 8192
            data = b""
            pos = size
            while pos > 0 and data.count(b"\n") <= lines:
                step = min(block, pos)
                pos -= step
                f.seek(pos)
                data = f.read(step) + data
    except OSError:
        return []
    text = data.decode("utf-8", "replace").splitlines()
    return text[-lines:]


@dataclass(frozen=True, slots=True)
class NodeTarget:
    """A node as the supervisor watches it."""

    name: str
    api_url: str
    log_path: Path
    pid: int | None = None


@dataclass(frozen=True, slots=True)
class NodeProbe:
    """One look at a node over its REST API."""

    name: str
    reachable: bool
    ready: bool = False
    role: str | None = None
    term: int | None = None
    commit: int | None = None
    applied: int | None = None
    leader: Any = None
    status: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "reachable": self.reachable,
            "ready": self.ready,
            "role": self.role,
            "term": self.term,
            "commit": self.commit,
            "applied": self.applied,
            "leader": self.leader,
        }


def _field(doc: Mapping[str, Any], *names: str) -> Any:
    for n in names:
        if n in doc:
            return doc[n]
    return None


def _int(value: Any) -> int | None:
    return value if type(value) is int else None


async def probe(client: httpx.AsyncClient, target: NodeTarget) -> NodeProbe:
    """GET ``/api/v1/status`` and ``/readyz`` of one node; unreachable is not an error."""
    try:
        r = await client.get(f"{target.api_url}/api/v1/status", timeout=PROBE_TIMEOUT)
        ready = await client.get(f"{target.api_url}/readyz", timeout=PROBE_TIMEOUT)
    except httpx.HTTPError:
        return NodeProbe(target.name, reachable=False)
    try:
        doc = r.json() if r.status_code == 200 else {}
    except ValueError:
        doc = {}
    if not isinstance(doc, dict):
        doc = {}
    leader = _field(doc, "leader", "leader_id")
    if isinstance(leader, dict):
        leader = _field(leader, "raft_id", "name", "node_id")
    return NodeProbe(
        target.name,
        reachable=True,
        ready=ready.status_code == 200,
        role=_field(doc, "role"),
        term=_int(_field(doc, "term")),
        commit=_int(_field(doc, "commit_index", "commit")),
        applied=_int(_field(doc, "applied_index", "applied")),
        leader=leader,
        status=doc,
    )


Phase = str
"""``started``, ``api up`` or ``ready``: what ``wait_ready`` reports per node."""


async def wait_ready(
    targets: Sequence[NodeTarget],
    *,
    within: float,
    exited: Callable[[str], int | None] | None = None,
    on_phase: Callable[[str, Phase], None] | None = None,
) -> list[NodeProbe]:
    """Poll until every node is ready and all agree on one leader; ``StartFailed`` names
    the first node that exited (``exited(name)`` gives its exit status) or, at the
    timeout, the first node that was not ready."""
    phases: dict[str, Phase] = {t.name: "started" for t in targets}
    last: dict[str, NodeProbe] = {t.name: NodeProbe(t.name, reachable=False) for t in targets}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    async with httpx.AsyncClient() as client:
        while True:
            probes = await asyncio.gather(*(probe(client, t) for t in targets))
            for t, p in zip(targets, probes, strict=True):
                last[t.name] = p
                phase = "ready" if p.ready else "api up" if p.reachable else "started"
                if phase != phases[t.name]:
                    phases[t.name] = phase
                    if on_phase is not None:
                        on_phase(t.name, phase)
                if exited is not None and not p.reachable:
                    code = exited(t.name)
                    if code is not None:
                        raise StartFailed(t.name, f"exited with status {code}")
            leaders = {p.leader for p in probes}
            if all(p.ready for p in probes) and len(leaders) == 1 and None not in leaders:
                return list(probes)
            if loop.time() >= deadline:
                for t in targets:
                    p = last[t.name]
                    if not p.ready:
                        why = "REST API not answering" if not p.reachable else "not ready"
                        raise StartFailed(t.name, f"{why} within {within:g} s")
                raise StartFailed(targets[0].name, f"no agreed leader within {within:g} s")
            await asyncio.sleep(POLL_INTERVAL)
