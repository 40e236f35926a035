"""`charter node` commands: run one node process."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from charter.node.config import ConfigError, ConfigFieldError

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
    # the CLI's handler: one line, exit status 1.
    asyncio.run(run_node(config, log_level=log_level))
