"""Entry point of the ``charter`` command: one typer app, one sub-app per area."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from charter.errors import CharterError

app = typer.Typer(
    name="charter",
    help="Charter: a node of a governed multi-party network.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    # Sub-apps live in their own modules so each area owns its commands.
    from charter.cli import demo, gov, identity, keys, node, ocapn, receipt, stack, tokens

    app.add_typer(keys.app, name="keys")
    app.add_typer(identity.app, name="identity")
    app.add_typer(ocapn.app, name="ocapn")
    app.add_typer(receipt.app, name="receipt")
    app.add_typer(stack.app, name="stack")
    app.add_typer(node.app, name="node")
    app.add_typer(gov.app, name="gov")
    app.add_typer(tokens.app, name="tokens")
    app.command("demo")(demo.demo)


_register()

err_console = Console(stderr=True)


def main() -> None:
    """Run the CLI; typed Charter errors become one line on stderr and exit status 1."""
    try:
        app()
    except CharterError as exc:
        # Escape: codes and messages contain brackets that rich would read as markup.
        line = f"[bold red]error[/] {escape(f'[{exc.code}]')} {escape(exc.message)}"
        err_console.print(line, highlight=False, soft_wrap=True)
        sys.exit(1)
