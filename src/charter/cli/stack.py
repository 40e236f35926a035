"""`charter stack` commands: a local network of member nodes on one machine.

A stack lives in ``$CHARTER_HOME/stacks/NAME`` (``CHARTER_HOME`` defaults to
``~/.charter``)::

    network.json                      the shared network file (public material only)
    <member>/member.words             24-word root mnemonic, 0600, development secret
    <member>/member.pem               member root private key (m/0'), 0600
    <member>/member.pub.pem           member root public key
    <member>/<node>/node.toml         the node's configuration
    <member>/<node>/keys/identity.pem Ed25519 node identity key (m/2'/0'), 0600
    <member>/<node>/keys/ledger.pem   P-256 ledger signing key, 0600
    <member>/<node>/keys/ledger.crt   its self-signed certificate
    <member>/<node>/keys/node.chain   attestation chain member root -> node identity
    <member>/<node>/data/             the node's data directory (0700)

``up`` starts every node as a detached ``charter node run`` process (output appended to
``data/node.log``, pid in ``data/node.pid``) and returns once all are ready under one
leader; ``down`` stops them (SIGTERM, then SIGKILL of the process group after a bound);
``status`` asks each node's REST API; ``logs`` prints or follows the node logs.

Ports of the i-th node (from 0): API ``base + 10*i``, OCapN TLS ``base + 10*i + 1``,
metrics ``base + 10*i + 2``. A stack is built in a hidden temporary directory and
renamed into place, so a failed ``init`` leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final

import httpx
import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from charter.crypto.certs import self_signed_certificate, write_certificate
from charter.crypto.keyfile import write_bytes_secure, write_private_key, write_public_key
from charter.crypto.keys import P256PrivateKey
from charter.governance.genesis import constitution_section
from charter.identity.attestation import NODE, attest
from charter.identity.root import RootIdentity, node_path
from charter.ledger.trust import NodeCert
from charter.node.config import (
    ConfigError,
    ConfigFieldError,
    KeyPaths,
    Listen,
    NodeConfig,
    StackError,
    Tuning,
    check_name,
    load_node_config,
)
from charter.node.measurement import measure
from charter.node.network import (
    NETWORK_ID_BYTES,
    Member,
    Network,
    NodeEntry,
    build_network,
    load_network,
)
from charter.node.supervisor import (
    LOG_FILE,
    NodeProbe,
    NodeTarget,
    StartFailed,
    probe,
    read_pid,
    start_node,
    stop_pid,
    tail,
    wait_ready,
)

app = typer.Typer(help="Local networks of member nodes.", no_args_is_help=True)
console = Console(highlight=False)
progress_console = Console(stderr=True, highlight=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

DEFAULT_BASE_PORT: Final = 5100
PORT_STRIDE: Final = 10
MAX_MEMBERS: Final = 64
LOCAL_HOST: Final = "127.0.0.1"
NETWORK_FILE: Final = "network.json"
NODE_CONFIG_FILE: Final = "node.toml"
WORDS_FILE: Final = "member.words"
PID_FILE: Final = "node.pid"
LOCAL_SIGNATURE_INTERVAL_MS: Final = 100

WORDS_HEADER: Final = (
    "# CHARTER LOCAL DEVELOPMENT SECRET - do not use for anything of value.\n"
    "# The 24 words below are the root identity of member {member} of stack {stack}:\n"
    "# they recover the member key and every node key derived from it.\n"
)


def charter_home() -> Path:
    configured = os.environ.get("CHARTER_HOME")
    return Path(configured) if configured else Path.home() / ".charter"


def stacks_dir() -> Path:
    return charter_home() / "stacks"


def stack_dir(name: str) -> Path:
    return stacks_dir() / check_name(name, "stack name")


def port_layout(base_port: int, members: int) -> list[tuple[int, int, int]]:
    """(api, ocapn, metrics) ports of each node; refuses a range outside 1024..65535."""
    if not 1 <= members <= MAX_MEMBERS:
        raise ConfigFieldError(f"--members must be between 1 and {MAX_MEMBERS}, got {members}")
    last = base_port + PORT_STRIDE * (members - 1) + 2
    if base_port < 1024 or last > 65535:
        raise ConfigFieldError(
            f"--base-port {base_port} with {members} members needs ports {base_port}..{last}; "
            "they must lie within 1024..65535"
        )
    return [
        (
            base_port + PORT_STRIDE * i,
            base_port + PORT_STRIDE * i + 1,
            base_port + PORT_STRIDE * i + 2,
        )
        for i in range(members)
    ]


def member_names(members: int, names: str | None) -> list[str]:
    if names is None:
        return [f"member{i}" for i in range(1, members + 1)]
    chosen = [n.strip() for n in names.split(",")]
    if len(chosen) != members:
        raise ConfigFieldError(f"--names lists {len(chosen)} names for {members} members")
    for n in chosen:
        check_name(n, "member name")
        # The member's node is named after it and must be a valid name too.
        if len(node_name_for(n)) > 63:
            raise ConfigFieldError(f"member name {n!r} is too long (at most 58 characters)")
    if len(set(chosen)) != len(chosen):
        raise ConfigFieldError("--names lists a name twice")
    return chosen


def refuse_existing(target: Path, force: bool) -> None:
    if target.exists() and not force:
        raise StackError(
            f"stack {target.name!r} already exists at {target} (use --force to replace it)"
        )


def node_name_for(member: str) -> str:
    return f"{member}-node"


@dataclass(frozen=True, slots=True)
class _Built:
    member: Member
    node: NodeEntry


def _create_member(root_dir: Path, stack: str, member: str, ports: tuple[int, int, int]) -> _Built:
    api_port, ocapn_port, metrics_port = ports
    member_dir = root_dir / member
    member_dir.mkdir(mode=0o700)
    identity, words = RootIdentity.generate()
    header = WORDS_HEADER.format(member=member, stack=stack)
    write_bytes_secure(member_dir / WORDS_FILE, (header + words + "\n").encode("utf-8"))
    root_key = identity.root_key()
    write_private_key(member_dir / "member.pem", root_key)
    write_public_key(member_dir / "member.pub.pem", root_key.public_key)

    node_name = check_name(node_name_for(member), "node name")
    node_dir = member_dir / node_name
    keys_dir = node_dir / "keys"
    node_dir.mkdir(mode=0o700)
    keys_dir.mkdir(mode=0o700)
    data_dir = node_dir / "data"
    data_dir.mkdir(mode=0o700)
    node_key = identity.derive(node_path(0))
    chain = attest(root_key, node_key.public_key, NODE, epoch=0)
    ledger_key = P256PrivateKey.generate()
    cert = self_signed_certificate(ledger_key, common_name=f"{stack}/{node_name}")
    keys = KeyPaths(
        identity=keys_dir / "identity.pem",
        ledger=keys_dir / "ledger.pem",
        ledger_cert=keys_dir / "ledger.crt",
        attestation=keys_dir / "node.chain",
    )
    write_private_key(keys.identity, node_key)
    write_private_key(keys.ledger, ledger_key)
    write_certificate(keys.ledger_cert, cert)
    keys.attestation.write_text(chain.to_text(), encoding="ascii")
    config = NodeConfig(
        name=node_name,
        member=member,
        network_file=root_dir / NETWORK_FILE,
        data_dir=data_dir,
        keys=keys,
        ocapn=Listen(LOCAL_HOST, ocapn_port),
        api=Listen(LOCAL_HOST, api_port),
        metrics=Listen(LOCAL_HOST, metrics_port),
        # A local stack answers wait=committed writes within ~0.1 s rather than 1 s.
        tuning=Tuning(signature_interval_ms=LOCAL_SIGNATURE_INTERVAL_MS),
    )
    config.save(node_dir / NODE_CONFIG_FILE)
    entry = NodeEntry(
        name=node_name,
        member=member,
        identity=node_key.public_key,
        host=LOCAL_HOST,
        port=ocapn_port,
        api_url=f"http://{LOCAL_HOST}:{api_port}",
        cert=NodeCert.from_pem(cert.to_pem()),
        attestation=chain,
    )
    return _Built(Member(member, root_key.public_key), entry)


def create_stack(
    name: str,
    members: int,
    *,
    base_port: int = DEFAULT_BASE_PORT,
    names: str | None = None,
    force: bool = False,
    on_member: Callable[[str], None] | None = None,
) -> Path:
    """Create the stack's keys, configs and network file; returns the stack directory."""
    target = stack_dir(name)
    ports = port_layout(base_port, members)
    chosen = member_names(members, names)
    refuse_existing(target, force)
    parent = stacks_dir()
    try:
        parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        staging = parent / f".{name}.{secrets.token_hex(4)}.tmp"
        staging.mkdir(mode=0o700)
    except OSError as exc:
        raise StackError(f"cannot create a stack in {parent}: {exc.strerror or exc}") from None
    retired = parent / f".{name}.{secrets.token_hex(4)}.old"
    try:
        built: list[_Built] = []
        for member, member_ports in zip(chosen, ports, strict=True):
            built.append(_create_member(staging, name, member, member_ports))
            if on_member is not None:
                on_member(member)
        network = build_network(
            name,
            secrets.token_bytes(NETWORK_ID_BYTES),
            [b.member for b in built],
            [b.node for b in built],
            # Genesis governance: default thresholds, this installation's code allowed.
            constitution=constitution_section([measure()]),
        )
        network.save(staging / NETWORK_FILE)
        # Node configs hold paths relative to their own directory, so the staging
        # directory can take its final name; an old stack steps aside first.
        if target.exists():
            target.rename(retired)
        staging.rename(target)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if retired.exists() and not target.exists():
            retired.rename(target)
        if isinstance(exc, OSError):
            raise StackError(f"cannot create stack {name!r}: {exc.strerror or exc}") from None
        raise
    shutil.rmtree(retired, ignore_errors=True)
    return target


@dataclass(frozen=True, slots=True)
class StackNode:
    entry: NodeEntry
    config: NodeConfig
    config_path: Path

    def pid(self) -> int | None:
        return read_pid(self.config.data_dir / PID_FILE)

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.entry.name,
            "member": self.entry.member,
            "node_id": self.entry.node_id,
            "raft_id": self.entry.raft_id,
            "api_url": self.entry.api_url,
            "designator": self.entry.designator,
            "location": {
                "transport": "tls",
                "host": self.entry.host,
                "port": self.entry.port,
            },
            "pid": self.pid(),
            "data_dir": str(self.config.data_dir),
            "config": str(self.config_path),
        }


def open_stack(name: str) -> tuple[Network, list[StackNode]]:
    directory = stack_dir(name)
    network_path = directory / NETWORK_FILE
    if not network_path.is_file():
        raise StackError(f"no stack named {name!r} (looked in {directory})")
    network = load_network(network_path)
    nodes: list[StackNode] = []
    for entry in network.nodes:
        config_path = directory / entry.member / entry.name / NODE_CONFIG_FILE
        config = load_node_config(config_path)
        if config.name != entry.name or config.member != entry.member:
            raise StackError(
                f"{config_path} is for node {config.name!r} of {config.member!r}, "
                f"not {entry.name!r} of {entry.member!r}"
            )
        nodes.append(StackNode(entry, config, config_path))
    nodes.extend(_joined_nodes(directory, network, {n.entry.name for n in nodes}))
    return network, nodes


def _joined_nodes(directory: Path, network: Network, genesis: set[str]) -> list[StackNode]:
    """Nodes that joined the running network (``charter node join --stack``): a node
    directory under a member's whose data holds the join record."""
    from charter.node.join import JOIN_FILE, load_keys

    joined: list[StackNode] = []
    for config_path in sorted(directory.glob(f"*/*/{NODE_CONFIG_FILE}")):
        config = load_node_config(config_path)
        if config.name in genesis or not (config.data_dir / JOIN_FILE).is_file():
            continue
        joined.append(StackNode(load_keys(config, network).entry, config, config_path))
    return joined


Name = Annotated[str, typer.Argument(help="Stack name (lowercase letters, digits, '-').")]


@app.command("init")
def init(
    name: Name,
    members: Annotated[int, typer.Option("--members", "-m", help="Number of members.")] = 3,
    base_port: Annotated[
        int, typer.Option("--base-port", help="First port; node i uses base+10*i .. base+10*i+2.")
    ] = DEFAULT_BASE_PORT,
    names: Annotated[
        str | None, typer.Option("--names", help="Comma-separated member names.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing stack.")] = False,
) -> None:
    """Create keys, certificates and configuration for a local network of N members."""
    # Validate everything cheap before generating any key.
    target = stack_dir(name)
    port_layout(base_port, members)
    member_names(members, names)
    refuse_existing(target, force)
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        console=progress_console,
        transient=True,
        # Only on a terminal: a pipe or log gets the summary lines alone.
        disable=not progress_console.is_terminal,
    ) as progress:
        task = progress.add_task("generating member keys", total=members)
        target = create_stack(
            name,
            members,
            base_port=base_port,
            names=names,
            force=force,
            on_member=lambda m: progress.update(task, advance=1, description=f"created {m}"),
        )
    console.print(f"created stack [bold]{name}[/] with {members} members in {target}")
    console.print(f"network file: {target / NETWORK_FILE}")
    console.print("member words are local development secrets (mode 0600, member.words)")


@app.command("info")
def info(
    name: Name,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The stack's nodes: names, members, ids, addresses, data directories and pids."""
    network, nodes = open_stack(name)
    if as_json:
        doc = {
            "name": network.name,
            "network_id": network.network_id.hex(),
            "directory": str(stack_dir(name)),
            "nodes": [n.to_json() for n in nodes],
        }
        typer.echo(json.dumps(doc, indent=2))
        return
    table = Table(
        title=f"stack {network.name} ({network.network_id.hex()})",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    for column in ("node", "member", "api", "ocapn", "pid"):
        table.add_column(column, no_wrap=True)
    for n in nodes:
        pid = n.pid()
        table.add_row(
            n.entry.name,
            n.entry.member,
            n.entry.api_url,
            f"{n.entry.host}:{n.entry.port}",
            "-" if pid is None else str(pid),
        )
    console.print(table)
    console.print(f"ids, keys and data directories: charter stack info {name} --json")


@app.command("list")
def list_stacks(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The stacks under $CHARTER_HOME/stacks."""
    found: list[dict[str, object]] = []
    root = stacks_dir()
    try:
        entries = sorted(root.iterdir()) if root.is_dir() else []
    except OSError as exc:
        raise StackError(f"cannot list {root}: {exc.strerror or exc}") from None
    for directory in entries:
        if directory.name.startswith(".") or not (directory / NETWORK_FILE).is_file():
            continue
        try:
            network = load_network(directory / NETWORK_FILE)
        except ConfigError as exc:
            found.append({"name": directory.name, "error": f"[{exc.code}] {exc.message}"})
            continue
        found.append(
            {"name": network.name, "members": len(network.members), "nodes": len(network.nodes)}
        )
    if as_json:
        typer.echo(json.dumps({"stacks": found}, indent=2))
        return
    if not found:
        console.print(f"no stacks in {root}")
        return
    for item in found:
        if "error" in item:
            console.print(f"{item['name']}: unreadable: {item['error']}", markup=False)
        else:
            console.print(f"{item['name']}: {item['members']} members, {item['nodes']} nodes")


@app.command("export-network")
def export_network(
    name: Name,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")
    ] = None,
) -> None:
    """The stack's network file: public keys, certificates, locations, attestations."""
    network, _ = open_stack(name)
    text = network.to_text()
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise StackError(f"cannot write {out}: {exc.strerror}") from None
    console.print(f"wrote network file of {network.name} to {out}")


# -- running a stack ----------------------------------------------------------------------

UP_TIMEOUT: Final = 30.0
STOP_TIMEOUT: Final = 10.0
LOG_TAIL_ON_FAILURE: Final = 20


def _targets(nodes: list[StackNode]) -> list[NodeTarget]:
    return [
        NodeTarget(n.entry.name, n.entry.api_url, n.config.data_dir / LOG_FILE, n.pid())
        for n in nodes
    ]


def _stop_started(started: dict[str, subprocess.Popen[bytes]]) -> None:
    for proc in started.values():
        stop_pid(proc.pid, timeout=STOP_TIMEOUT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=STOP_TIMEOUT)


@app.command("up")
def up(
    name: Name,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for a leader and readiness.")
    ] = UP_TIMEOUT,
) -> None:
    """Start every node of the stack in the background; return once all are ready."""
    network, nodes = open_stack(name)
    began = time.monotonic()
    started: dict[str, subprocess.Popen[bytes]] = {}
    running = {n.entry.name: pid for n in nodes if (pid := n.pid()) is not None}
    with Progress(
        TextColumn("{task.fields[node]:<24}"),
        TextColumn("{task.description}"),
        console=progress_console,
        transient=True,
        disable=not progress_console.is_terminal,
    ) as progress:
        tasks = {
            n.entry.name: progress.add_task("starting", node=n.entry.name, total=3) for n in nodes
        }
        try:
            for n in nodes:
                if n.entry.name in running:
                    progress.update(tasks[n.entry.name], description="already running")
                    continue
                with contextlib.suppress(FileNotFoundError):
                    (n.config.data_dir / PID_FILE).unlink()  # stale: its process is gone
                started[n.entry.name] = start_node(n.config_path, n.config.data_dir)
                progress.update(tasks[n.entry.name], description="started", completed=1)

            def exited(node: str) -> int | None:
                proc = started.get(node)
                return None if proc is None else proc.poll()

            def on_phase(node: str, phase: str) -> None:
                done = {"started": 1, "api up": 2, "ready": 3}[phase]
                progress.update(tasks[node], description=phase, completed=done)

            probes = asyncio.run(
                wait_ready(_targets(nodes), within=timeout, exited=exited, on_phase=on_phase)
            )
        except StartFailed as exc:
            progress.stop()
            failed = next(n for n in nodes if n.entry.name == exc.node)
            log_path = failed.config.data_dir / LOG_FILE
            err_console.print(f"[bold red]error[/] node {exc.node} failed: {escape(exc.reason)}")
            err_console.print(f"last lines of {log_path}:", markup=False)
            for line in tail(log_path, LOG_TAIL_ON_FAILURE):
                err_console.print(f"  {line}", markup=False)
            _stop_started(started)
            raise typer.Exit(1) from None
        except BaseException:
            _stop_started(started)
            raise
    elapsed = time.monotonic() - began
    leader = probes[0].leader
    leader_name = next(
        (n.entry.name for n in nodes if leader in (n.entry.raft_id, n.entry.name)), str(leader)
    )
    console.print(
        f"stack [bold]{network.name}[/] is up: {len(nodes)} nodes ready, "
        f"leader {leader_name}, in {elapsed:.1f} s"
    )
    for n in nodes:
        console.print(f"  {n.entry.name}: {n.entry.api_url}")


@app.command("down")
def down(
    name: Name,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait after SIGTERM before SIGKILL.")
    ] = STOP_TIMEOUT,
) -> None:
    """Stop every node of the stack (SIGTERM; SIGKILL after the timeout)."""
    _, nodes = open_stack(name)
    for n in nodes:
        pid_path = n.config.data_dir / PID_FILE
        pid = n.pid()
        if pid is None:
            if pid_path.exists():
                pid_path.unlink(missing_ok=True)
                console.print(f"{n.entry.name}: not running (removed a stale pid file)")
            else:
                console.print(f"{n.entry.name}: not running")
            continue
        clean = stop_pid(pid, timeout=timeout)
        pid_path.unlink(missing_ok=True)
        how = "stopped" if clean else f"killed (no exit within {timeout:g} s of SIGTERM)"
        console.print(f"{n.entry.name}: {how} (pid {pid})")


async def _probe_all(targets: list[NodeTarget]) -> list[NodeProbe]:
    async with httpx.AsyncClient() as client:
        return list(await asyncio.gather(*(probe(client, t) for t in targets)))


@app.command("status")
def status(
    name: Name,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Each node's process and consensus state, asked of its REST API."""
    network, nodes = open_stack(name)
    targets = _targets(nodes)
    probes = asyncio.run(_probe_all(targets))
    by_raft_id = {n.entry.raft_id: n.entry.name for n in nodes}
    rows: list[dict[str, Any]] = []
    for t, p in zip(targets, probes, strict=True):
        row = {"node": t.name, "pid": t.pid, "alive": t.pid is not None, **p.to_json()}
        row["leader_id"] = p.leader
        row["leader"] = by_raft_id.get(p.leader, p.leader) if p.leader is not None else None
        rows.append(row)
    if as_json:
        typer.echo(json.dumps({"name": network.name, "nodes": rows}, indent=2))
        return
    table = Table(
        title=f"stack {network.name}", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False
    )
    columns = ("node", "pid", "alive", "role", "term", "commit", "applied", "leader", "ready")
    for column in columns:
        table.add_column(column, no_wrap=True)
    for row in rows:
        table.add_row(*(_cell(row[c]) for c in columns))
    # Wide enough for the table even in a pipe, where rich assumes 80 columns.
    Console(highlight=False, width=max(console.width, 120)).print(table)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


@app.command("logs")
def logs(
    name: Name,
    node: Annotated[
        str | None, typer.Option("--node", "-n", help="Only this node (node or member name).")
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines.")
    ] = False,
    lines: Annotated[int, typer.Option("--lines", "-l", help="Lines of history per node.")] = 50,
) -> None:
    """Print the nodes' logs (JSON lines), each line prefixed by its node."""
    _, nodes = open_stack(name)
    if node is not None:
        nodes = [n for n in nodes if node in (n.entry.name, n.entry.member)]
        if not nodes:
            raise StackError(f"stack {name!r} has no node or member named {node!r}")
    if lines < 0:
        raise ConfigFieldError("--lines must not be negative")
    paths = {n.entry.name: n.config.data_dir / LOG_FILE for n in nodes}
    width = max(len(k) for k in paths)
    for node_name, path in paths.items():
        for line in tail(path, lines):
            typer.echo(f"{node_name:<{width}} | {line}")
    if follow:
        _follow(paths, width)


def _follow(paths: dict[str, Path], width: int) -> None:
    """Print lines appended to the logs until interrupted."""
    offsets = {k: (p.stat().st_size if p.exists() else 0) for k, p in paths.items()}
    partial = dict.fromkeys(paths, b"")
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            moved = False
            for node_name, path in paths.items():
                try:
                    with open(path, "rb") as f:
                        size = os.fstat(f.fileno()).st_size
                        if size < offsets[node_name]:
                            offsets[node_name] = 0  # truncated or replaced
                        f.seek(offsets[node_name])
                        data = f.read(1 << 20)
                except OSError:
                    continue
                if not data:
                    continue
                moved = True
                offsets[node_name] += len(data)
                chunks = (partial[node_name] + data).split(b"\n")
                partial[node_name] = chunks.pop()
                for chunk in chunks:
                    text = chunk.decode("utf-8", "replace")
                    typer.echo(f"{node_name:<{width}} | {text}")
            if not moved:
                time.sleep(0.2)
