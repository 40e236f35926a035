"""`charter stack` commands: a local network of member nodes on one machine."""

from __future__ import annotations

import typer

app = typer.Typer(help="Local networks of member nodes.", no_args_is_help=True)
