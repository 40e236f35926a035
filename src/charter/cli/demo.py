"""``charter demo``: a three-member network of real node processes, scripted.

``make demo`` runs this. It creates a stack in a scratch ``CHARTER_HOME``, starts
three ``charter node run`` processes and walks through what a multi-party network
promises: every member writes through its own node, the leader is killed with
SIGKILL and the others elect a new one and keep committing, a receipt verifies
offline while a tampered copy does not, and the killed node restarts and catches up.
Then the layers above the ledger: a broadcast and a private exchange with a blob whose
outsider sees only a pin, with events streamed live; a token payment on delivery whose
supplier data goes privately to its financier; the members voting a fourth member in;
and that member's node joining the running network, catching up and becoming a voter.

Every step checks what it shows and every wait is bounded, so the demo is also an
end-to-end test of the node. On any failure it names the step, prints the tail of
the relevant node's log and stops every node it started; Ctrl-C does the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Final

import httpx
import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from charter.cli import receipt as receipt_cli
from charter.cli import stack
from charter.cli.demo_gov import gov_act
from charter.cli.demo_join import join_act
from charter.cli.demo_messages import messages_act
from charter.cli.demo_net import (
    DemoError,
    StackClient,
    busy_port,
    free_base_port,
    until,
)
from charter.cli.demo_tokens import tokens_act
from charter.errors import CharterError
from charter.identity.attestation import NODE, AttestationChain, verify_chain
from charter.identity.root import RootIdentity, node_path
from charter.ledger.trust import TrustedNodes, load_network
from charter.ledger.verify import verify_receipt
from charter.node.supervisor import LOG_FILE, NodeTarget, kill_group, start_node, tail, wait_ready

__all__ = ["MEMBERS", "STACK_NAME", "STEPS", "DemoError", "demo"]

STACK_NAME: Final = "demo"
MEMBERS: Final = ("acme-bank", "globex-shipping", "initech-insurance")
NEW_MEMBER: Final = "umbrella-labs"
"""Voted in and joined during the demo: its ports follow the three founders'."""
UP_TIMEOUT: Final = 30.0
ELECTION_TIMEOUT: Final = 20.0
CATCH_UP_TIMEOUT: Final = 20.0
READ_TIMEOUT: Final = 10.0
STOP_TIMEOUT: Final = 10.0
LOG_TAIL: Final = 15


@dataclass
class Demo:
    """What the steps share: the stack, its nodes' APIs and what earlier steps did."""

    console: Console
    directory: Path
    api: StackClient
    leader: str = ""
    first_leader: str = ""
    killed: str = ""
    election_s: float = 0.0
    catch_up_s: float = 0.0
    applied_at_kill: int = 0
    writes: dict[str, object] = field(default_factory=dict)
    """What was written while the killed node was down: key -> value."""
    tx_ids: list[str] = field(default_factory=list)
    acts: dict[str, object] = field(default_factory=dict)
    restarted: subprocess.Popen[bytes] | None = None
    suspect: str | None = None
    """The node whose log explains a failure of the current step."""

    def ok(self, text: str) -> None:
        self.console.print(f"  [green]ok[/]       {text}")

    def info(self, text: str) -> None:
        self.console.print(f"  [dim]..[/]       {text}")

    def node(self, name: str) -> stack.StackNode:
        return self.api.node(name)

    def live(self) -> list[stack.StackNode]:
        return [n for n in self.api.nodes if n.entry.name != self.killed]

    def trusted(self) -> TrustedNodes:
        # What `charter receipt verify --network` reads: the public network file.
        return load_network(self.directory / stack.NETWORK_FILE)


def step_identities(d: Demo) -> None:
    network, _ = stack.open_stack(STACK_NAME)
    roots = {m.name: m.public_key for m in network.members}
    for entry in network.nodes:
        words_file = d.directory / entry.member / stack.WORDS_FILE
        lines = words_file.read_text(encoding="utf-8").splitlines()
        words = " ".join(line for line in lines if line and not line.startswith("#"))
        identity = RootIdentity.from_mnemonic(words)
        if identity.root_key().public_key != roots[entry.member]:
            raise DemoError(f"{entry.member}'s words do not give its member key")
        derived = identity.derive(node_path(0)).public_key
        if derived != entry.identity:
            raise DemoError(f"{entry.name}'s key is not derived from {entry.member}'s words")
        chain_file = d.node(entry.name).config.keys.attestation
        chain = verify_chain(
            AttestationChain.load(chain_file.read_bytes()),
            expected_root=roots[entry.member],
            expected_purpose=NODE,
        )
        if chain.leaf != derived:
            raise DemoError(f"{entry.name}'s attestation names another key")
        d.ok(
            f"{entry.member:<18} 24 words -> {node_path(0)} {derived.designator[:24]}..., "
            f"attested by member root {chain.root.designator[:20]}..."
        )
    d.info("the network file lists each node key with its chain; peers pin these keys in TLS")


def step_up(d: Demo) -> None:
    stack.up(STACK_NAME, timeout=UP_TIMEOUT)


def step_status(d: Demo) -> None:
    stack.status(STACK_NAME, as_json=False)
    leader = until(lambda: d.api.agreed_leader(d.api.nodes), READ_TIMEOUT, "an agreed leader")
    d.leader = leader.entry.name
    term = d.api.status(leader)["term"]
    d.ok(f"one leader: {d.leader} (term {term}); the other two follow")


def _write_each(d: Demo, table: str, tag: str) -> dict[str, object]:
    """One committed write through each live member's own API; key -> value."""
    written: dict[str, object] = {}
    for n in d.live():
        d.suspect = n.entry.name
        key = f"{tag}-{n.entry.member}"
        began = time.monotonic()
        value = {"from": n.entry.member, "tag": tag}
        doc = d.api.put(n, table, key, value)
        ms = (time.monotonic() - began) * 1000
        via = " (forwarded to the leader)" if n.entry.name != d.leader else ""
        d.ok(
            f"{n.entry.member:<18} PUT {table}/{key}: tx {doc['tx_id']} {doc['status']} "
            f"in {ms:.0f} ms{via}"
        )
        d.tx_ids.append(str(doc["tx_id"]))
        written[key] = value
    d.suspect = None
    return written


def _read_all(d: Demo, reader: stack.StackNode, table: str, written: dict[str, object]) -> None:
    """Wait until ``reader`` returns every value of ``written`` (bounded)."""
    for key, value in written.items():
        until(
            functools.partial(_returns, d.api, reader, table, key, value),
            READ_TIMEOUT,
            f"{table}/{key} on {reader.entry.name}",
        )


def _returns(api: StackClient, node: stack.StackNode, table: str, key: str, value: object) -> bool:
    return bool(api.get(node, table, key) == value)


def _read_back(
    d: Demo, table: str, written: dict[str, object], readers: list[stack.StackNode]
) -> None:
    for reader in readers:
        d.suspect = reader.entry.name
        _read_all(d, reader, table, written)
        d.ok(f"{reader.entry.name:<27} GET returns all {len(written)} values")
    d.suspect = None


def step_writes(d: Demo) -> None:
    written = _write_each(d, "greetings", "hello")
    _read_back(d, "greetings", written, d.api.nodes)


def step_kill_leader(d: Demo) -> None:
    victim = d.node(d.leader)
    pid = victim.pid()
    if pid is None:
        raise DemoError(f"{d.leader} has no running process")
    d.applied_at_kill = int(d.api.status(victim)["applied_index"])
    kill_group(pid)
    d.killed = d.first_leader = d.leader
    until(lambda: victim.pid() is None, STOP_TIMEOUT, f"{d.leader} gone after SIGKILL")
    d.ok(f"kill -9 {pid}: {d.leader}, the leader, is gone (applied index {d.applied_at_kill})")


def step_new_leader(d: Demo) -> None:
    began = time.monotonic()
    rest = d.live()
    leader = until(lambda: d.api.agreed_leader(rest), ELECTION_TIMEOUT, "a new leader")
    d.election_s = time.monotonic() - began
    d.leader = leader.entry.name
    term = d.api.status(leader)["term"]
    d.ok(f"new leader: {d.leader} (term {term}), elected {d.election_s:.2f} s after the kill")


def step_writes_continue(d: Demo) -> None:
    d.writes = _write_each(d, "greetings", "again")
    _read_back(d, "greetings", d.writes, d.live())
    d.info(f"{d.killed} is down: two of three members are a quorum")


def step_receipt(d: Demo) -> None:
    tx_id = d.tx_ids[-1]
    source = d.live()[0]
    d.suspect = source.entry.name
    network = d.directory / stack.NETWORK_FILE
    for suffix, filename in (("receipt", "receipt.json"), ("receipt.cose", "receipt.cose")):
        data = until(
            functools.partial(d.api.receipt, source, tx_id, suffix),
            READ_TIMEOUT,
            f"{suffix} of {tx_id}",
        )
        path = d.directory / filename
        path.write_bytes(data)
        d.ok(f"GET /api/v1/tx/{tx_id}/{suffix} from {source.entry.name}: {len(data)} bytes")
        # Offline: only the file and the network's public certificates, no node asked.
        d.info(f"$ charter receipt verify {filename} --network {stack.NETWORK_FILE}")
        receipt_cli.verify(path, cert=None, network=network)
        verified = verify_receipt(path.read_bytes(), d.trusted())
        if verified.tx_id not in (None, tx_id):
            raise DemoError(f"{filename} proves {verified.tx_id}, not {tx_id}")
        d.ok(f"{filename} verified offline against the members' ledger certificates")
        forged = bytearray(data)
        forged[len(forged) // 2] ^= 0x01
        tampered = d.directory / f"tampered-{filename}"
        tampered.write_bytes(bytes(forged))
        try:
            receipt_cli.verify(tampered, cert=None, network=network)
        except CharterError as exc:
            d.console.print(
                f"  [yellow]refused[/]  {tampered.name}, one bit flipped: "
                f"[dim]\\[{escape(exc.code)}][/] {escape(exc.message)}"
            )
        else:
            raise DemoError(f"{tampered.name} with a flipped bit was accepted")
    d.suspect = None


def step_restart(d: Demo) -> None:
    node = d.node(d.killed)
    d.suspect = node.entry.name
    d.restarted = start_node(node.config_path, node.config.data_dir)
    began = time.monotonic()
    targets = [
        NodeTarget(n.entry.name, n.entry.api_url, n.config.data_dir / LOG_FILE) for n in d.api.nodes
    ]
    restarted = d.restarted

    def exited(name: str) -> int | None:
        return restarted.poll() if name == node.entry.name else None

    probes = asyncio.run(wait_ready(targets, within=UP_TIMEOUT, exited=exited))
    at_ready = next(p.applied for p in probes if p.name == node.entry.name)
    d.ok(
        f"{node.entry.name} restarted (pid {restarted.pid}) on its data directory: ready "
        f"{time.monotonic() - began:.2f} s later, applied index {at_ready}"
    )
    leader = d.node(d.leader)
    target = int(d.api.status(leader)["applied_index"])

    def caught_up() -> int | None:
        applied = int(d.api.status(node)["applied_index"])
        return applied if applied >= target else None

    applied = until(caught_up, CATCH_UP_TIMEOUT, f"{node.entry.name} catching up")
    d.catch_up_s = time.monotonic() - began
    d.ok(
        f"applied index {d.applied_at_kill} when killed -> {applied}: reached the leader's "
        f"{target} {d.catch_up_s:.2f} s after the restart"
    )
    _read_all(d, node, "greetings", d.writes)
    d.ok(f"{node.entry.name} returns the {len(d.writes)} writes made while it was down")
    d.killed = ""
    d.suspect = None


def _member_urls(d: Demo) -> dict[str, str]:
    """Each genesis member's own node, by member name."""
    return {n.entry.member: n.entry.api_url for n in d.api.nodes}


def step_messages(d: Demo) -> None:
    messages_act(d.console, _member_urls(d))


def step_tokens(d: Demo) -> None:
    done = tokens_act(d.console, _member_urls(d), d.api.client)
    d.acts["tokens"] = done


def step_governance(d: Demo) -> None:
    new = gov_act(d.directory, _member_urls(d), d.console, new_member=NEW_MEMBER)
    d.acts["governance"] = new.proposal_id


def step_join(d: Demo) -> None:
    config = join_act(d.directory, _member_urls(d), d.console, new_member=NEW_MEMBER)
    d.acts["join"] = str(config)


def step_down(d: Demo) -> None:
    stack.down(STACK_NAME, timeout=STOP_TIMEOUT)
    left = [n.entry.name for n in d.api.nodes if n.pid() is not None]
    if left:
        raise DemoError(f"still running after stack down: {', '.join(left)}")
    d.ok("every node process has exited")


Step = tuple[str, Callable[[Demo], None]]

STEPS: list[Step] = [
    ("Three members, each node key derived from its member's 24 words", step_identities),
    ("Start the network: one `charter node run` process per member", step_up),
    ("Status of every node", step_status),
    ("Each member writes through its own node", step_writes),
    ("Kill the leader's process with SIGKILL", step_kill_leader),
    ("The others elect a new leader", step_new_leader),
    ("Writes continue", step_writes_continue),
    ("A receipt, verified offline", step_receipt),
    ("Restart the killed node: it catches up", step_restart),
    ("Messages: a broadcast, a private exchange with a blob, events live", step_messages),
    ("Tokens: pay a supplier on delivery, its data shared with its financier", step_tokens),
    ("Governance: the members vote a fourth member in", step_governance),
    ("The fourth member's node joins, catches up and votes", step_join),
    ("Stop the network", step_down),
]


@contextlib.contextmanager
def _charter_home(home: Path) -> Iterator[None]:
    old = os.environ.get("CHARTER_HOME")
    os.environ["CHARTER_HOME"] = str(home)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("CHARTER_HOME", None)
        else:
            os.environ["CHARTER_HOME"] = old


def _stop_everything(
    nodes: list[stack.StackNode], restarted: subprocess.Popen[bytes] | None
) -> None:
    with contextlib.suppress(CharterError, OSError):
        _, nodes = stack.open_stack(STACK_NAME)  # includes a node that joined meanwhile
    for n in nodes:
        pid = n.pid()
        if pid is not None:
            kill_group(pid)
    if restarted is not None:
        kill_group(restarted.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            restarted.wait(timeout=STOP_TIMEOUT)
    for n in nodes:
        until(functools.partial(_stopped, n), STOP_TIMEOUT, f"{n.entry.name} stopped")


def _stopped(node: stack.StackNode) -> bool:
    return node.pid() is None


def _quiet_after_interrupt() -> None:
    """Keep Ctrl-C's answer one line.

    The interrupt may land inside an event loop that a step was creating or running; its
    half-built loop and unawaited coroutines are collected later and would print noise
    ("Exception ignored in ...", "coroutine ... was never awaited") on stderr.
    """
    sys.unraisablehook = lambda _unraisable: None
    warnings.simplefilter("ignore", RuntimeWarning)


def _report_failure(console: Console, number: int, title: str, d: Demo | None) -> None:
    console.print(f"[bold red]step {number} failed[/]: {escape(title)}")
    if d is None:
        return
    names = [d.suspect] if d.suspect else [n.entry.name for n in d.api.nodes]
    for name in names:
        log = d.node(name).config.data_dir / LOG_FILE
        console.print(f"last lines of {log}:", markup=False)
        for line in tail(log, LOG_TAIL):
            console.print(f"  {line}", markup=False)


def run_demo(console: Console, home: Path, base_port: int) -> None:
    """The scenario in ``home`` (a ``CHARTER_HOME``); every node is stopped on return."""
    began = time.monotonic()
    nodes: list[stack.StackNode] = []
    d: Demo | None = None
    number, title = 0, "Create the stack"
    with _charter_home(home), httpx.Client() as client:
        try:
            console.rule(f"[bold]0. {title}", align="left")
            stack.init(
                STACK_NAME,
                members=len(MEMBERS),
                base_port=base_port,
                names=",".join(MEMBERS),
                force=False,
            )
            directory = stack.stack_dir(STACK_NAME)
            _, nodes = stack.open_stack(STACK_NAME)
            d = Demo(console, directory, StackClient(nodes, client))
            for number, (title, step) in enumerate(STEPS, start=1):
                console.rule(f"[bold]{number}. {escape(title)}", align="left")
                step(d)
        except typer.Exit as exc:
            if exc.exit_code == 0:
                raise
            _report_failure(console, number, title, None)
            raise DemoError(f"step {number} ({title}) failed") from None
        except KeyboardInterrupt:
            _quiet_after_interrupt()
            console.print("[bold red]interrupted[/]: stopping every node")
            raise DemoError(f"interrupted during step {number} ({title})") from None
        except Exception as exc:
            _report_failure(console, number, title, d)
            if isinstance(exc, CharterError):
                raise DemoError(f"step {number} ({title}): {exc.message}") from None
            raise DemoError(f"step {number} ({title}): {exc}") from None
        finally:
            _stop_everything(nodes, None if d is None else d.restarted)
    console.rule("[bold green]demo complete", align="left")
    summary = Table(box=box.SIMPLE, show_header=False, pad_edge=False)
    summary.add_column(style="bold", no_wrap=True)
    summary.add_column()
    for label, value in (
        ("members", ", ".join(MEMBERS)),
        ("committed writes", f"{len(d.tx_ids)}, each through the writer's own node"),
        ("leader killed", f"{d.first_leader}; {d.leader} elected in {d.election_s:.2f} s"),
        ("receipt", "JSON and COSE verified offline; tampered copies refused"),
        ("restarted node", f"{d.first_leader} caught up in {d.catch_up_s:.2f} s"),
        ("multi-party", "broadcast to all; private with a blob to two, the third saw a pin"),
        ("tokens", "payment minted, paid on delivery, financed; every node agrees"),
        ("governance", f"{NEW_MEMBER} voted in (proposal {d.acts.get('governance', '?')})"),
        ("joined node", f"{NEW_MEMBER}'s node joined, caught up and votes"),
        ("total", f"{time.monotonic() - began:.1f} s; every node stopped"),
    ):
        summary.add_row(label, value)
    console.print(summary)


def demo(
    home: Annotated[
        Path | None,
        typer.Option("--home", help="CHARTER_HOME to use (default: a fresh temporary one)."),
    ] = None,
    base_port: Annotated[
        int | None,
        typer.Option("--base-port", help="First port (default: a free range is found)."),
    ] = None,
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the stack's files afterwards.")
    ] = False,
) -> None:
    """Start a local three-member network and run a scripted multi-party scenario."""
    # soft_wrap: a line stays one line in a pipe or log, whatever the width.
    console = Console(highlight=False, soft_wrap=True)
    if base_port is None:
        base_port = free_base_port(len(MEMBERS) + 1)
    else:
        port = busy_port(base_port, len(MEMBERS) + 1)
        if port is not None:
            raise DemoError(f"port {port} (of --base-port {base_port}) is already in use")
    scratch = home is None
    root = Path(tempfile.mkdtemp(prefix="charter-demo-")) if home is None else home
    root.mkdir(parents=True, exist_ok=True)
    with _charter_home(root):
        existing = stack.stack_dir(STACK_NAME)
    if existing.exists():
        raise DemoError(f"{existing} exists (an earlier --keep?): remove it or use another --home")
    console.print(
        f"[dim]CHARTER_HOME={root}, ports {base_port}..{base_port + stack.PORT_STRIDE * len(MEMBERS) + 2}[/]"
    )
    try:
        run_demo(console, root, base_port)
    finally:
        if keep:
            console.print(f"[dim]kept {root / 'stacks' / STACK_NAME}[/]")
        elif scratch:
            shutil.rmtree(root, ignore_errors=True)
        else:
            shutil.rmtree(root / "stacks" / STACK_NAME, ignore_errors=True)
