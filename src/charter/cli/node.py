"""`charter node` commands: run one node process; join a running network."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from charter.node.config import ConfigError, ConfigFieldError
from charter.node.join import CatchUp, NodePlan

NODE_CONFIG = "node.toml"

app = typer.Typer(help="Run a Charter node.", no_args_is_help=True)
err_console = Console(stderr=True, highlight=False)

CONFIG_EXIT = 2
"""Exit status of a node whose configuration (node.toml, network file, keys) is refused."""


@app.command("run")
def run(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="The node's node.toml.", dir_okay=False)
    ],
    log_level: Annotated[
        str, typer.Option("--log-level", help="debug, info, warning or error.")
    ] = "info",
) -> None:
    """Run the node (consensus, ledger, REST API, metrics) until SIGTERM or SIGINT."""
    from charter.node.process import load_setup, run_node
    from charter.ops.logging import LOG_LEVELS

    try:
        if log_level.lower() not in LOG_LEVELS:
            raise ConfigFieldError(
                f"--log-level {log_level!r} is not one of {', '.join(LOG_LEVELS)}"
            )
        load_setup(config)
    except ConfigError as exc:
        err_console.print(
            f"[bold red]error[/] {escape(f'[{exc.code}]')} {escape(exc.message)}", soft_wrap=True
        )
        raise typer.Exit(CONFIG_EXIT) from None
    # Other typed errors (data directory in use, a port taken, a corrupt ledger) reach
    # the CLI's handler: one line, exit status 1. uvloop: the same asyncio semantics with
    # a loop, transports and TLS written in C, roughly a tenth less CPU per message.
    import uvloop

    uvloop.run(run_node(config, log_level=log_level))


JOIN_TIMEOUT = 300.0
START_TIMEOUT = 120.0


@app.command("join")
def join(
    network: Annotated[
        Path | None,
        typer.Option(
            "--network", help="The network file (charter stack export-network).", dir_okay=False
        ),
    ] = None,
    member: Annotated[
        str | None, typer.Option("--member", help="The member this node acts for.")
    ] = None,
    words_file: Annotated[
        Path | None,
        typer.Option("--words-file", help="The member's 24-word root mnemonic.", dir_okay=False),
    ] = None,
    node_dir: Annotated[
        Path | None, typer.Option("--dir", help="Where the node's keys, config and data go.")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="An existing node.toml (keys already made).", dir_okay=False
        ),
    ] = None,
    stack: Annotated[
        str | None,
        typer.Option("--stack", help="Join the local stack NAME (files under its directory)."),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Node name.")] = None,
    host: Annotated[str, typer.Option("--host", help="Address the node listens on.")] = "127.0.0.1",
    api_port: Annotated[
        int | None, typer.Option("--api-port", help="REST port (OCapN +1, metrics +2).")
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for the members' trust.")
    ] = JOIN_TIMEOUT,
    start_timeout: Annotated[
        float, typer.Option("--start-timeout", help="Seconds to wait until the node votes.")
    ] = START_TIMEOUT,
) -> None:
    """Ask a running network to admit this node; once trusted, start it and catch up.

    The node presents its identity, TLS key, ledger certificate, attestation by its
    member's root key and code measurement to a member node, waits as Pending until the
    members trust it (a trust_node proposal), then starts in the background, installs
    the ledger, catches up as a learner and becomes a voter.
    """
    try:
        plan = plan_join(
            network=network,
            member=member,
            words_file=words_file,
            node_dir=node_dir,
            config=config,
            stack=stack,
            name=name,
            host=host,
            api_port=api_port,
        )
    except ConfigError as exc:
        err_console.print(
            f"[bold red]error[/] {escape(f'[{exc.code}]')} {escape(exc.message)}", soft_wrap=True
        )
        raise typer.Exit(CONFIG_EXIT) from None
    asyncio.run(
        join_network(
            plan, Console(highlight=False), trust_within=timeout, start_within=start_timeout
        )
    )


@dataclass(frozen=True, slots=True)
class JoinPlan:
    """What ``charter node join`` was asked to do, with every default resolved."""

    config_path: Path | None
    """An existing node.toml, or None to create one from ``node``."""
    network_file: Path
    words: str | None = None
    node: NodePlan | None = None


def _stack_ports(stack: str) -> int:
    """The API port after every node of the stack (genesis and joined) in its layout."""
    from charter.cli.stack import PORT_STRIDE, open_stack

    _, nodes = open_stack(stack)
    return max(n.config.api.port for n in nodes) + PORT_STRIDE


def plan_join(
    *,
    network: Path | None,
    member: str | None,
    words_file: Path | None,
    node_dir: Path | None,
    config: Path | None,
    stack: str | None,
    name: str | None,
    host: str,
    api_port: int | None,
) -> JoinPlan:
    """Resolve the options (``--stack`` fills in the stack's files and ports)."""
    from charter.cli.stack import NETWORK_FILE, WORDS_FILE, node_name_for, stack_dir
    from charter.node.config import check_host, check_name, check_port, load_node_config

    if config is not None:
        loaded = load_node_config(config)
        return JoinPlan(config.absolute(), network or loaded.network_file)
    if stack is not None:
        root = stack_dir(stack)
        if not (root / NETWORK_FILE).is_file():
            raise ConfigFieldError(f"no stack named {stack!r} (looked in {root})")
        network = network or root / NETWORK_FILE
        if member is not None:
            words_file = words_file or root / member / WORDS_FILE
            name = name or node_name_for(member)
            node_dir = node_dir or root / member / name
            if (node_dir / NODE_CONFIG).exists():
                return JoinPlan(node_dir / NODE_CONFIG, network)
            api_port = api_port or _stack_ports(stack)
    if network is None:
        raise ConfigFieldError("--network FILE (or --stack NAME, or --config) is required")
    if member is None or words_file is None or node_dir is None:
        raise ConfigFieldError("--member, --words-file and --dir are required without --config")
    member = check_name(member, "--member")
    name = check_name(name or f"{member}-node", "--name")
    check_host(host, "--host")
    if api_port is None:
        raise ConfigFieldError(
            "--api-port is required (OCapN uses the next port, metrics the one after)"
        )
    check_port(api_port, "--api-port")
    check_port(api_port + 2, "--api-port + 2")
    if (node_dir / NODE_CONFIG).exists():
        return JoinPlan(node_dir / NODE_CONFIG, network)
    from charter.node.join import read_words

    return JoinPlan(
        None,
        network,
        read_words(words_file),
        NodePlan(node_dir.absolute(), name, member, host, api_port, api_port + 1, api_port + 2),
    )


async def join_network(
    plan: JoinPlan, console: Console, *, trust_within: float, start_within: float
) -> Path:
    """Request, wait for trust, start, follow the catch-up; returns the node's config."""
    import httpx
    from rich.progress import BarColumn, Progress, TextColumn

    from charter.crypto.keyfile import load_ed25519_private_key
    from charter.node.config import load_node_config
    from charter.node.join import (
        JoinRecord,
        build_join_request,
        peers_of,
        send_join_request,
        wait_trusted,
        wait_voter,
    )
    from charter.node.measurement import measure
    from charter.node.network import load_network
    from charter.node.supervisor import read_pid, start_node

    if plan.config_path is None:
        assert plan.node is not None and plan.words is not None
        from charter.node.join import prepare_node

        config_path = prepare_node(plan.node, plan.network_file, plan.words)
    else:
        config_path = plan.config_path
    config = load_node_config(config_path)
    network = load_network(config.network_file)
    identity = load_ed25519_private_key(config.keys.identity)
    urls = [n.api_url for n in network.nodes]
    measurement = measure()
    console.print(f"node {config.name} of {config.member} joins network {network.name}")
    console.print(f"  code measurement {measurement}")
    async with httpx.AsyncClient() as client:
        record = JoinRecord.load(config.data_dir)
        if record is None:
            signed = build_join_request(network, config, identity, measurement)
            url, answer = await send_join_request(client, urls, signed)
            console.print(f"ok join request taken by {url}: {answer.get('status')}")
            trusted = await wait_trusted(
                client,
                urls,
                config.name,
                within=trust_within,
                on_state=lambda s: console.print(f"  state: {s}"),
            )
            record = JoinRecord(network.network_id, config.name, config.member, peers_of(trusted))
            record.save(config.data_dir)
            console.print(f"ok trusted; {len(record.peers)} peers known")
        else:
            console.print("ok already trusted (join.json present)")
        member_urls = urls + [
            p.api_url for p in record.peers if p.api_url and p.api_url not in urls
        ]
        proc = None
        if read_pid(config.data_dir / "node.pid") is None:
            proc = start_node(config_path, config.data_dir)
            console.print(f"ok node process started (pid {proc.pid})")
        api_url = f"http://{config.api.host}:{config.api.port}"
        with Progress(
            TextColumn("{task.description:<14}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} {task.fields[unit]}"),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        ) as progress:
            task = progress.add_task("starting", total=None, unit="entries")

            def show(state: CatchUp) -> None:
                progress.update(
                    task,
                    description=state.phase,
                    completed=state.applied,
                    total=max(state.target, 1),
                    unit=state.unit,
                )

            final = await wait_voter(
                client,
                config.name,
                api_url,
                member_urls,
                within=start_within,
                on_progress=show,
                exited=None if proc is None else proc.poll,
            )
    console.print(f"ok {config.name} is a voter (applied {final.applied} of {final.target})")
    return config_path
