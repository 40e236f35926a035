"""`charter ocapn` commands: the conformance test peer and locator tools."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from charter.ocapn.framing import FRAMINGS, UNFRAMED
from charter.ocapn.locator import PeerLocation, SturdyRef, parse_uri

app = typer.Typer(help="OCapN: conformance test peer and locators.", no_args_is_help=True)


@app.command("test-peer")
def test_peer(
    listen: Annotated[
        str, typer.Option("--listen", help="HOST:PORT to listen on (port 0: any free port).")
    ] = "127.0.0.1:0",
    framing: Annotated[
        str, typer.Option("--framing", help=f"Message framing: {' or '.join(FRAMINGS)}.")
    ] = UNFRAMED,
    netlayer: Annotated[
        str,
        typer.Option(
            "--netlayer",
            help="tcp-testing-only (what the OCapN suite dials), unix or tls.",
        ),
    ] = "tcp-testing-only",
    socket: Annotated[
        str | None, typer.Option("--socket", help="Socket path for the unix netlayer.")
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Allow tcp-testing-only on a non-loopback address."),
    ] = False,
) -> None:
    """Serve the OCapN conformance test objects; prints the peer's ocapn:// URI, stops on SIGINT/SIGTERM."""
    from charter.ocapn.testpeer import serve_test_peer

    serve_test_peer(
        netlayer,
        listen,
        framing=framing,
        socket_path=socket,
        force=force,
        announce=lambda uri: print(uri, flush=True),
    )


@app.command("parse-uri")
def parse_uri_command(
    uri: Annotated[str, typer.Argument(help="An ocapn:// peer or sturdyref URI.")],
) -> None:
    """Print the parts of an ocapn:// URI as JSON (swiss numbers in base64url)."""
    parsed = parse_uri(uri)
    peer = parsed.peer if isinstance(parsed, SturdyRef) else parsed
    assert isinstance(peer, PeerLocation)
    out: dict[str, object] = {
        "designator": peer.designator,
        "transport": peer.transport,
        "hints": peer.hints_dict(),
    }
    if isinstance(parsed, SturdyRef):
        out["swiss_num"] = parsed.to_uri().split("/s/", 1)[1].split("?", 1)[0]
    print(json.dumps(out, sort_keys=True))
