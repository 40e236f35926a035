"""``charter gov``: propose, vote, withdraw, list, show and audit governance."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Governance: proposals, ballots, the constitution, audit.", no_args_is_help=True
)
