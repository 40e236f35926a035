"""`charter node` commands: run one node process."""

from __future__ import annotations

import typer

app = typer.Typer(help="Run a Charter node.", no_args_is_help=True)
