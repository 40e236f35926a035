"""``charter tokens``: pools, mint, burn, transfer, approve, balances."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Tokens: fungible and non-fungible pools, transfers, balances.", no_args_is_help=True
)
