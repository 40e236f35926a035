"""`charter receipt` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="Ledger receipts.", no_args_is_help=True)
