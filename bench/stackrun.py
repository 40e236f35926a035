"""Shared by the stack benchmarks: run ``charter`` in a child, a stack's lifetime, CPU of pids."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from charter.cli.demo_net import free_base_port
from charter.cli.stack import open_stack  # reads CHARTER_HOME when called
from charter.node.supervisor import kill_group

CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    pass


def log(tag: str, message: str) -> None:
    print(f"[{tag}] {message}", file=sys.stderr, flush=True)


def charter_cli(args: Sequence[str], home: Path, timeout: float) -> None:
    command = [sys.executable, "-c", "from charter.cli.main import main; main()", *args]
    env = dict(os.environ, CHARTER_HOME=str(home))
    done = subprocess.run(
        command,
        env=env,
        stdout=sys.stderr,
        stderr=sys.stderr,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"charter {' '.join(args)} failed (status {done.returncode})")


def cpu_ms(pids: Sequence[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total * 1000.0 / CLK_TCK


@contextlib.contextmanager
def stack(
    work: Path,
    name: str,
    tag: str,
    *,
    members: int = 3,
    ready_timeout: float = 60.0,
    configure: Callable[[str, Path], None] | None = None,
) -> Iterator[tuple[list[tuple[str, str]], list[int]]]:
    """[(member, api_url)] and the node pids of a running stack; ``configure(member,
    node.toml)`` may edit each node's configuration before the nodes start."""
    home = work / "charter-home"
    base = free_base_port(members)
    log(tag, f"stack init ({members} members, base port {base})")
    charter_cli(
        ["stack", "init", name, "--members", str(members), "--base-port", str(base)], home, 60
    )
    os.environ["CHARTER_HOME"] = str(home)
    _, nodes = open_stack(name)
    if configure is not None:
        for n in nodes:
            configure(n.entry.member, n.config_path)
    try:
        log(tag, "stack up")
        charter_cli(
            ["stack", "up", name, "--timeout", str(ready_timeout)], home, ready_timeout + 30
        )
        pids = [p for n in nodes if (p := n.pid()) is not None]
        if len(pids) != len(nodes):
            raise BenchError("a node wrote no pid file")
        yield [(n.entry.member, n.entry.api_url) for n in nodes], pids
    finally:
        log(tag, "stack down")
        left = [p for n in nodes if (p := n.pid()) is not None]
        with contextlib.suppress(Exception):
            charter_cli(["stack", "down", name, "--timeout", "5"], home, 30)
        for pid in left:
            kill_group(pid)
