"""`charter keys` commands: create, inspect and derive keys."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from charter.crypto.certs import (
    Certificate,
    certificate_from_pem,
    self_signed_certificate,
    write_certificate,
)
from charter.crypto.keyfile import (
    CERTIFICATE_PEM_MARKER,
    PUBLIC_PEM_MARKER,
    check_private_permissions,
    is_encrypted_pem,
    private_key_from_pem,
    public_key_from_pem,
    read_key_file_bytes,
    read_passphrase_file,
    write_private_key,
    write_public_key,
)
from charter.crypto.keys import (
    Ed25519PrivateKey,
    KeyAlgorithm,
    PrivateKey,
    PublicKey,
    generate_private_key,
    parse_algorithm,
)
from charter.errors import CharterError
from charter.identity.mnemonic import mnemonic_to_seed, validate_mnemonic
from charter.identity.root import ROOT_PATH, RootIdentity
from charter.identity.slip10 import derive_ed25519, parse_path

app = typer.Typer(help="Create, inspect and derive keys.", no_args_is_help=True)
console = Console(highlight=False)


class UsageError(CharterError):
    """Options that make sense alone but not together."""

    code = "cli.usage"


PassphraseFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        help="Encrypt or decrypt the key file with the passphrase on this file's first line.",
    ),
]


def load_passphrase(path: Path | None) -> bytes | None:
    return None if path is None else read_passphrase_file(path)


def key_summary(key: PublicKey, title: str) -> Table:
    table = Table.grid(padding=(0, 2))
    table.title = title
    table.title_justify = "left"
    table.add_column(style="bold cyan")
    table.add_column(overflow="fold")
    table.add_row("type", key.algorithm.value)
    table.add_row("public key", key.hex())
    table.add_row("designator", key.designator)
    table.add_row("fingerprint", f"sha256:{key.fingerprint()}")
    return table


def mnemonic_panel(words: str) -> Panel:
    """The recovery words, numbered, in a panel that says what they are worth."""
    word_list = words.split()
    rows = (len(word_list) + 3) // 4
    grid = Table.grid(padding=(0, 3))
    for _ in range(4):
        grid.add_column()
    for row in range(rows):
        cells = []
        for col in range(4):
            index = col * rows + row
            if index < len(word_list):
                cells.append(
                    Text.assemble((f"{index + 1:>2}. ", "dim"), (word_list[index], "bold"))
                )
            else:
                cells.append(Text(""))
        grid.add_row(*cells)
    body = Table.grid()
    body.add_row(grid)
    body.add_row(Text(""))
    body.add_row(Text("Shown once, never stored.", style="bold red"))
    body.add_row(Text("Whoever holds these words holds this identity.", style="bold red"))
    return Panel(
        body,
        title="[bold]Recovery words: write them down now[/]",
        border_style="yellow",
        padding=(1, 2),
        expand=False,
    )


@app.command("new")
def new(
    mnemonic: Annotated[
        bool,
        typer.Option(
            "--mnemonic",
            help="Create a root identity from a fresh 24-word mnemonic (Ed25519 only).",
        ),
    ] = False,
    out: Annotated[Path, typer.Option("--out", help="Directory to write the files to.")] = Path(
        "."
    ),
    name: Annotated[
        str | None,
        typer.Option(
            "--name", help="File name stem (default: 'root' with --mnemonic, else 'key')."
        ),
    ] = None,
    passphrase_file: PassphraseFileOpt = None,
    key_type: Annotated[
        str, typer.Option("--type", help="Key algorithm: ed25519 or p256.")
    ] = KeyAlgorithm.ED25519.value,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
) -> None:
    """Create a key: NAME.key (PKCS#8, mode 0600), NAME.pub and a self-signed NAME.crt."""
    algorithm = parse_algorithm(key_type)
    if mnemonic and algorithm is not KeyAlgorithm.ED25519:
        raise UsageError("--mnemonic creates Ed25519 root identities; drop --type p256")
    if not out.is_dir():
        raise UsageError(f"output directory {out} does not exist")
    passphrase = load_passphrase(passphrase_file)
    stem = name or ("root" if mnemonic else "key")
    key_path, pub_path, cert_path = (out / f"{stem}{ext}" for ext in (".key", ".pub", ".crt"))
    if not force:
        for path in (key_path, pub_path, cert_path):
            if path.exists():
                raise UsageError(f"{path} already exists (use --force to replace it)")
    key: PrivateKey
    words: str | None = None
    if mnemonic:
        identity, words = RootIdentity.generate()
        key = identity.root_key()
    else:
        key = generate_private_key(algorithm)
    cert = self_signed_certificate(key)
    write_private_key(key_path, key, passphrase=passphrase, overwrite=force)
    write_public_key(pub_path, key.public_key, overwrite=force)
    write_certificate(cert_path, cert, overwrite=force)
    if words is not None:
        console.print(mnemonic_panel(words))
        console.print(f"root key derived at SLIP-10 path [bold]{ROOT_PATH}[/]")
    console.print(key_summary(key.public_key, "new key"))
    files = Table.grid(padding=(0, 2))
    files.add_column(style="bold cyan")
    files.add_column()
    protection = "encrypted" if passphrase is not None else "unencrypted"
    files.add_row("private key", f"{key_path} (0600, {protection})")
    files.add_row("public key", str(pub_path))
    files.add_row("certificate", str(cert_path))
    console.print(files)


def _certificate_table(cert: Certificate) -> Table:
    table = Table.grid(padding=(0, 2))
    table.title = "certificate"
    table.title_justify = "left"
    table.add_column(style="bold cyan")
    table.add_column(overflow="fold")
    table.add_row("subject CN", cert.common_name or "-")
    table.add_row("not before", cert.not_before.isoformat())
    table.add_row("not after", cert.not_after.isoformat())
    if cert.subject_alt_names:
        table.add_row("alt names", ", ".join(cert.subject_alt_names))
    table.add_row("serial", f"{cert.serial_number:x}")
    table.add_row("sha256", cert.fingerprint())
    try:
        cert.verify_self_signed()
        table.add_row("self-signed", "yes, signature valid")
    except CharterError:
        table.add_row("self-signed", "no (issued by another key)")
    return table


@app.command("show")
def show(
    path: Annotated[Path, typer.Argument(help="A private key, public key or certificate file.")],
    passphrase_file: PassphraseFileOpt = None,
) -> None:
    """Show a key or certificate: type, public key, fingerprint, certificate details."""
    data = read_key_file_bytes(path)
    if CERTIFICATE_PEM_MARKER in data:
        cert = certificate_from_pem(data)
        console.print(key_summary(cert.public_key, f"{path}: certificate key"))
        console.print(_certificate_table(cert))
        return
    if PUBLIC_PEM_MARKER in data:
        console.print(key_summary(public_key_from_pem(data), f"{path}: public key"))
        return
    check_private_permissions(path)
    key = private_key_from_pem(data, load_passphrase(passphrase_file))
    console.print(key_summary(key.public_key, f"{path}: private key"))
    encrypted = "yes" if is_encrypted_pem(data) else "no"
    console.print(f"[bold cyan]encrypted[/]    {encrypted}")


def read_mnemonic(mnemonic_file: Path | None) -> str:
    """Words from a file, from piped stdin, or typed at a hidden prompt."""
    if mnemonic_file is not None:
        text = read_key_file_bytes(mnemonic_file).decode("utf-8", "replace")
    elif sys.stdin is not None and not sys.stdin.isatty():
        text = sys.stdin.read()
    else:
        text = typer.prompt("Mnemonic words", hide_input=True)
    return validate_mnemonic(text)


@app.command("derive")
def derive(
    path: Annotated[
        str, typer.Option("--path", help="SLIP-10 path, every step hardened, e.g. m/0'/1'.")
    ],
    mnemonic_file: Annotated[
        Path | None,
        typer.Option("--mnemonic-file", help="File holding the words (default: read stdin)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the derived private key here (0600).")
    ] = None,
    passphrase_file: PassphraseFileOpt = None,
    bip39_passphrase_file: Annotated[
        Path | None,
        typer.Option(
            "--bip39-passphrase-file",
            help="Optional BIP39 passphrase (the '25th word') on this file's first line.",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite --out if it exists.")] = False,
) -> None:
    """Derive the Ed25519 key at a SLIP-10 path from a BIP39 mnemonic."""
    parse_path(path)  # fail on a bad path before asking for the words
    if out is not None and out.exists() and not force:
        raise UsageError(f"{out} already exists (use --force to replace it)")
    passphrase = load_passphrase(passphrase_file)
    bip39 = b"" if bip39_passphrase_file is None else read_passphrase_file(bip39_passphrase_file)
    words = read_mnemonic(mnemonic_file)
    seed = mnemonic_to_seed(words, bip39.decode("utf-8", "replace"))
    key = Ed25519PrivateKey.from_raw(derive_ed25519(seed, path))
    console.print(key_summary(key.public_key, f"key at {path}"))
    if out is not None:
        write_private_key(out, key, passphrase=passphrase, overwrite=force)
        protection = "encrypted" if passphrase is not None else "unencrypted"
        console.print(f"[bold cyan]private key[/]  {out} (0600, {protection})")
