"""`charter ocapn` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="ocapn commands.", no_args_is_help=True)
