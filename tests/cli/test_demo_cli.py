"""`charter demo` runs the three-member scenario on real node processes and cleans up.

Each test runs the command in-process (its nodes are real child processes) in a
CHARTER_HOME under ``tmp_path``, and checks afterwards that no process whose command
line mentions that directory is left running.
"""

from __future__ import annotations

import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from charter.cli import demo
from charter.cli.demo_net import free_base_port
from charter.node.supervisor import kill_group

from ..conftest import CliRunner

ENTRY = "from charter.cli.main import main; main()"


def _processes_under(directory: Path) -> list[int]:
    """Live processes whose command line mentions ``directory`` (node configs live there)."""
    needle = str(directory).encode()
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in cmdline and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "home"
    yield directory
    # Whatever a test saw, nothing it started outlives it.
    for pid in _processes_under(directory):
        kill_group(pid)


def test_demo_runs_the_scenario_and_leaves_nothing_running(cli: CliRunner, home: Path) -> None:
    result = cli("demo", "--home", str(home))
    assert result.code == 0, result.out + result.err
    out = result.out
    for number, (title, _) in enumerate(demo.STEPS, start=1):
        assert f"{number}. {title}" in out
    # identities: each member's node key derived from its words and attested by its root
    for member in demo.MEMBERS:
        assert re.search(rf"ok +{member} +24 words -> m/2'/0' ed25519:", out), out
    assert out.count("attested by member root") == 3
    # status and writes through each member's own node, read back everywhere
    assert re.search(r"one leader: \S+-node \(term \d+\)", out)
    for member in demo.MEMBERS:
        assert re.search(rf"{member} +PUT greetings/hello-{member}: tx \d+\.\d+ Committed", out)
    assert out.count("forwarded to the leader") >= 2
    assert out.count("GET returns all 3 values") == 3
    # failover
    killed = re.search(r"kill -9 (\d+): (\S+), the leader, is gone \(applied index \d+\)", out)
    assert killed, out
    new = re.search(r"new leader: (\S+) \(term (\d+)\), elected [\d.]+ s after the kill", out)
    assert new and new.group(1) != killed.group(2), out
    assert out.count("GET returns all 2 values") == 2
    assert len(re.findall(r"PUT greetings/\S+: tx \d+\.\d+ Committed", out)) == 5
    # receipts: both forms verified offline, both tampered copies refused
    for form, suffix in (("json", "receipt"), ("cose", "receipt.cose")):
        assert re.search(rf"GET /api/v1/tx/\d+\.\d+/{suffix} from \S+: \d+ bytes", out)
        assert re.search(rf"OK {form} receipt  tx \d+\.\d+  root [0-9a-f]{{64}}  signer", out)
        assert f"receipt.{form} verified offline against the members' ledger certificates" in out
        assert f"refused  tampered-receipt.{form}, one bit flipped: [ledger.receipt" in out
    # restart and catch-up
    assert f"{killed.group(2)} restarted (pid " in out
    caught = re.search(r"applied index (\d+) when killed -> (\d+): reached the leader's (\d+)", out)
    assert caught, out
    before, after, leader = (int(g) for g in caught.groups())
    assert after >= leader > before > 0, out
    assert f"{killed.group(2)} returns the 2 writes made while it was down" in out
    assert "every node process has exited" in out
    assert "demo complete" in out
    assert re.search(rf"leader killed +{killed.group(2)}; {new.group(1)} elected in", out)
    assert not _processes_under(home)
    assert not (home / "stacks" / demo.STACK_NAME).exists()  # removed without --keep


def test_a_taken_base_port_fails_in_one_line(cli: CliRunner, home: Path) -> None:
    base = free_base_port(len(demo.MEMBERS))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", base + 10))
        taken.listen()
        result = cli("demo", "--home", str(home), "--base-port", str(base))
    line = result.error_line()
    assert line == (f"error [demo.step] port {base + 10} (of --base-port {base}) is already in use")
    assert not _processes_under(home)
    assert not (home / "stacks" / demo.STACK_NAME).exists()


def _kill_acme(d: demo.Demo) -> None:
    node = d.api.nodes[0]
    pid = node.pid()
    assert pid is not None
    kill_group(pid)


def test_a_failing_step_names_itself_shows_the_log_and_stops_every_node(
    cli: CliRunner, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real fault: the first member's node dies just before everyone writes.
    steps = [demo.STEPS[1], ("Lose a node", _kill_acme), demo.STEPS[3], demo.STEPS[9]]
    monkeypatch.setattr(demo, "STEPS", steps)
    result = cli("demo", "--home", str(home), "--keep")
    line = result.error_line()
    assert line.startswith("error [demo.step] step 3 (Each member writes through its own node)")
    assert "step 3 failed" in result.out
    assert re.search(r"last lines of \S+/acme-bank/acme-bank-node/data/node\.log:", result.out)
    assert '"node": "acme-bank-node"' in result.out.split("last lines of", 1)[1]
    assert not _processes_under(home)
    assert (home / "stacks" / demo.STACK_NAME / "network.json").is_file()  # --keep


def test_a_node_that_cannot_start_fails_the_start_step(
    cli: CliRunner, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held: list[socket.socket] = []

    def take_a_node_port(d: demo.Demo) -> None:
        api = d.api.nodes[2].config.api
        s = socket.socket()
        held.append(s)
        s.bind((api.host, api.port))
        s.listen()

    monkeypatch.setattr(demo, "STEPS", [("Take a port", take_a_node_port), demo.STEPS[1]])
    try:
        result = cli("demo", "--home", str(home))
    finally:
        for s in held:
            s.close()
    assert result.code == 1
    last = result.err.splitlines()[-1]
    assert last == f"error [demo.step] step 2 ({demo.STEPS[1][0]}) failed", result.err
    assert "Address already in use" in result.err  # the tail of the node's log
    assert "step 2 failed" in result.out
    assert not _processes_under(home)
    assert not (home / "stacks" / demo.STACK_NAME).exists()


def test_a_kept_stack_is_not_overwritten(cli: CliRunner, home: Path) -> None:
    kept = home / "stacks" / demo.STACK_NAME
    kept.mkdir(parents=True)
    (kept / "network.json").write_text("{}")
    line = cli("demo", "--home", str(home)).error_line()
    assert line.startswith(f"error [demo.step] {kept} exists")
    assert (kept / "network.json").read_text() == "{}"


def test_ctrl_c_stops_every_node_and_exits_1(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc = subprocess.Popen(
        [sys.executable, "-c", ENTRY, "demo", "--home", str(home)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60.0
        seen = ""
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            while "stack demo is up" not in seen:
                left = deadline - time.monotonic()
                assert left > 0 and sel.select(timeout=left), f"never up: {seen}"
                line = proc.stdout.readline()
                assert line, f"demo ended early: {seen}"
                seen += line
        assert _processes_under(home)  # the nodes run
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        for pid in _processes_under(home):
            kill_group(pid)
    assert proc.returncode == 1, seen + out + err
    assert err.startswith("error [demo.step] interrupted during step ")
    assert err.count("\n") == 1, err
    assert not _processes_under(home)
    assert not (home / "stacks" / demo.STACK_NAME).exists()


def test_entry_point_error_is_one_line_without_traceback(tmp_path: Path) -> None:
    code = ENTRY
    missing = str(tmp_path / "missing.key")
    proc = subprocess.run(
        [sys.executable, "-c", code, "keys", "show", missing],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr == f"error [crypto.keyfile.missing] {missing} does not exist\n"
