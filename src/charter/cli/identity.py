"""`charter identity` commands: issue and check attestation chains."""

from __future__ import annotations

import datetime as dt
import re
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from charter.cli.keys import PassphraseFileOpt, UsageError, load_passphrase
from charter.crypto.certs import certificate_from_pem
from charter.crypto.errors import PassphraseRequiredError
from charter.crypto.keyfile import (
    CERTIFICATE_PEM_MARKER,
    PUBLIC_PEM_MARKER,
    is_encrypted_pem,
    load_ed25519_private_key,
    private_key_from_pem,
    public_key_from_pem,
    read_key_file_bytes,
    write_bytes_secure,
)
from charter.crypto.keys import Ed25519PublicKey, PublicKey, require_ed25519_public
from charter.identity.attestation import (
    PURPOSES,
    AttestationChain,
    RevocationRegistry,
    VerifiedChain,
    attest,
    verify_chain,
)

app = typer.Typer(help="Issue and verify attestation chains.", no_args_is_help=True)
console = Console(highlight=False)
_HEX_KEY = re.compile(r"(0x)?[0-9a-fA-F]{64}")
CHAIN_FILE_MODE = 0o644


def resolve_public_key(value: str) -> Ed25519PublicKey:
    """A 64-hex-digit key, or a file: public key, certificate or (unencrypted) private key."""
    if _HEX_KEY.fullmatch(value.strip()):
        return Ed25519PublicKey.from_hex(value)
    data = read_key_file_bytes(Path(value))
    key: PublicKey
    if CERTIFICATE_PEM_MARKER in data:
        key = certificate_from_pem(data).public_key
    elif PUBLIC_PEM_MARKER in data:
        key = public_key_from_pem(data)
    else:
        if is_encrypted_pem(data):
            raise PassphraseRequiredError(
                f"{value} is an encrypted private key; pass its .pub or .crt file instead"
            )
        key = private_key_from_pem(data).public_key
    return require_ed25519_public(key)


def chain_table(result: VerifiedChain) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan")
    table.add_column(overflow="fold")
    table.add_row("root", f"{result.root.hex()}  ({result.root.designator})")
    table.add_row("leaf", f"{result.leaf.hex()}  ({result.leaf.designator})")
    table.add_row("purposes", " -> ".join(("root", *result.purposes)))
    table.add_row("epoch", str(result.epoch))
    table.add_row("valid from", _iso(result.not_before))
    table.add_row("valid until", _iso(result.not_after))
    return table


def _iso(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="seconds")


@app.command("attest")
def attest_command(
    root: Annotated[
        Path,
        typer.Option(
            "--root",
            help="Ed25519 private key file of the issuer (the root, or the --parent chain's leaf).",
        ),
    ],
    sub: Annotated[
        str,
        typer.Option("--sub", help="Key to vouch for: 64 hex digits, or a .pub/.crt/.key file."),
    ],
    purpose: Annotated[
        str, typer.Option("--purpose", help=f"One of: {', '.join(sorted(PURPOSES))}.")
    ],
    epoch: Annotated[
        int | None,
        typer.Option("--epoch", help="The root's current epoch (taken from --parent if given)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the chain here (Syrup bytes); default: text on stdout."),
    ] = None,
    parent: Annotated[
        Path | None,
        typer.Option("--parent", help="Extend this chain; --root must be its leaf key."),
    ] = None,
    valid_days: Annotated[
        int, typer.Option("--valid-days", help="Validity of the new link, in days.", min=1)
    ] = 365,
    text: Annotated[
        bool, typer.Option("--text", help="Write --out as armored text instead of bytes.")
    ] = False,
    passphrase_file: PassphraseFileOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite --out if it exists.")] = False,
) -> None:
    """Sign an attestation: ROOT vouches that SUB acts as PURPOSE in EPOCH."""
    issuer = load_ed25519_private_key(root, passphrase=load_passphrase(passphrase_file))
    subject = resolve_public_key(sub)
    validity = dt.timedelta(days=valid_days)
    if parent is not None:
        base = AttestationChain.load(read_key_file_bytes(parent))
        # The parent must itself be sound before anything is added to it.
        verify_chain(base)
        if epoch is not None and epoch != base.epoch:
            raise UsageError(f"--epoch {epoch} differs from the parent chain's epoch {base.epoch}")
        chain = base.extend(issuer, subject, purpose, validity=validity)
    else:
        if epoch is None:
            raise UsageError("--epoch is required when starting a chain")
        chain = attest(issuer, subject, purpose, epoch, validity=validity)
    result = verify_chain(chain)
    if out is None:
        sys.stdout.write(chain.to_text())
        return
    data = chain.to_text().encode() if text else chain.to_bytes()
    write_bytes_secure(out, data, mode=CHAIN_FILE_MODE, overwrite=force)
    console.print(chain_table(result))
    console.print(
        f"[bold cyan]chain[/]        {out} ({len(data)} bytes, {len(chain)} link{'s' if len(chain) > 1 else ''})"
    )


@app.command("verify")
def verify_command(
    chain_file: Annotated[Path, typer.Argument(help="Chain file (Syrup bytes or armored text).")],
    min_epoch: Annotated[
        int | None,
        typer.Option("--min-epoch", help="Refuse chains of an older epoch of this root.", min=0),
    ] = None,
    root: Annotated[
        str | None,
        typer.Option("--root", help="Require this root: 64 hex digits or a key/cert file."),
    ] = None,
    purpose: Annotated[
        str | None, typer.Option("--purpose", help="Require this purpose of the leaf key.")
    ] = None,
) -> None:
    """Verify a chain; print its root, leaf, purposes and epoch (exit 1 if refused)."""
    chain = AttestationChain.load(read_key_file_bytes(chain_file))
    expected_root = resolve_public_key(root) if root is not None else None
    registry = None
    if min_epoch is not None:
        registry = RevocationRegistry({expected_root or chain.root: min_epoch})
    result = verify_chain(
        chain, revocations=registry, expected_root=expected_root, expected_purpose=purpose
    )
    console.print("[bold green]valid[/] attestation chain")
    console.print(chain_table(result))
