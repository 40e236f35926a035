"""`charter receipt` commands: verify and show ledger receipts offline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from charter.errors import CharterError
from charter.ledger.cose_receipts import CoseReceipt
from charter.ledger.receipts import JsonReceipt
from charter.ledger.trust import NodeCert, TrustedNodes, load_network
from charter.ledger.verify import load_receipt, verify_receipt

app = typer.Typer(help="Ledger receipts.", no_args_is_help=True)
console = Console(highlight=False, soft_wrap=True)


class ReceiptUsageError(CharterError):
    code = "cli.receipt.usage"


class ReceiptFileError(CharterError):
    code = "cli.receipt.file"


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ReceiptFileError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def _trusted(cert: Path | None, network: Path | None) -> TrustedNodes:
    if cert is None and network is None:
        raise ReceiptUsageError("give the signer's certificate (--cert) or the network (--network)")
    certs: list[NodeCert] = []
    if cert is not None:
        certs.append(NodeCert.from_pem(_read(cert, "certificate")))
    if network is not None:
        _read(network, "network file")
        certs.extend(load_network(network))
    return TrustedNodes(certs)


@app.command("verify")
def verify(
    file: Annotated[Path, typer.Argument(help="Receipt file, JSON or COSE (detected).")],
    cert: Annotated[
        Path | None, typer.Option("--cert", help="PEM certificate of the signing node.")
    ] = None,
    network: Annotated[
        Path | None,
        typer.Option("--network", help="JSON file listing the network's node certificates."),
    ] = None,
) -> None:
    """Verify a receipt offline against a node certificate or the network's nodes."""
    trusted = _trusted(cert, network)
    result = verify_receipt(_read(file, "receipt"), trusted)
    tx = result.tx_id or "signature transaction"
    console.print(
        f"OK {result.form} receipt  tx {tx}  root {result.root.hex()}  signer {result.signer}"
    )


@app.command("show")
def show(file: Annotated[Path, typer.Argument(help="Receipt file, JSON or COSE.")]) -> None:
    """Print a receipt's fields without verifying it."""
    receipt = load_receipt(_read(file, "receipt"))
    lines: list[tuple[str, str]] = []
    if isinstance(receipt, JsonReceipt):
        lines.append(("form", "json"))
        lines.append(("node_id", receipt.node_id))
        subject = receipt.cert.cert.subject.rfc4514_string()
        lines.append(("cert", subject))
        if receipt.leaf_components is not None:
            lc = receipt.leaf_components
            lines += [
                ("tx", lc.tx_id),
                ("write_set_digest", lc.write_set_digest.hex()),
                ("commit_evidence", lc.commit_evidence),
                ("claims_digest", lc.claims_digest.hex()),
            ]
        else:
            lines.append(("leaf (signed root)", receipt.leaf().hex()))
        lines.append(("proof", f"{len(receipt.proof)} elements"))
        lines += [(f"  {'left' if s.left else 'right'}", s.digest.hex()) for s in receipt.proof]
        lines.append(("root (computed)", receipt.root().hex()))
    else:
        assert isinstance(receipt, CoseReceipt)
        lines += [
            ("form", "cose"),
            ("alg", str(receipt.alg)),
            ("kid", receipt.kid.decode("ascii", "replace")),
            ("signature tx", receipt.txid),
            ("iat", str(receipt.iat)),
        ]
        for n, (lc, path) in enumerate(receipt.proofs):
            lines += [
                (f"proof {n} tx", lc.tx_id),
                ("write_set_digest", lc.write_set_digest.hex()),
                ("commit_evidence", lc.commit_evidence),
                ("claims_digest", lc.claims_digest.hex()),
                ("path", f"{len(path)} elements"),
            ]
            lines += [(f"  {'left' if s.left else 'right'}", s.digest.hex()) for s in path]
        lines.append(("root (computed)", receipt.root().hex()))
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        console.print(f"{escape(key.ljust(width))}  {escape(value)}")
