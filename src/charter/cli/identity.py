"""`charter identity` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="identity commands.", no_args_is_help=True)
