"""`charter receipt verify` and `show`: success and error paths through the entry point."""

from __future__ import annotations

import json
from pathlib import Path

from charter.ledger.issue import issue_cose_receipt, issue_json_receipt
from charter.ledger.trust import network_document

from ..conftest import CliRunner
from .conftest import Node, SignedLedger


def _files(tmp_path: Path, node: Node, ledger: SignedLedger) -> tuple[Path, Path, Path]:
    json_path = tmp_path / "receipt.json"
    json_path.write_text(
        issue_json_receipt(ledger.tree, 7, ledger.components[7], ledger.signed).dumps()
    )
    cose_path = tmp_path / "receipt.cose"
    cose_path.write_bytes(issue_cose_receipt(ledger.tree, 7, ledger.components[7], ledger.signed))
    cert_path = tmp_path / "node.pem"
    cert_path.write_bytes(node.cert.to_pem())
    return json_path, cose_path, cert_path


def test_verify_both_forms_with_a_cert(
    cli: CliRunner, tmp_path: Path, node: Node, ledger: SignedLedger
) -> None:
    json_path, cose_path, cert_path = _files(tmp_path, node, ledger)
    for path, form in ((json_path, "json"), (cose_path, "cose")):
        result = cli("receipt", "verify", str(path), "--cert", str(cert_path))
        assert result.code == 0, result.err
        assert result.out.startswith(f"OK {form} receipt")
        assert "tx 2.7" in result.out
        assert ledger.signed.root.hex() in result.out
        assert node.node_cert.node_id in result.out


def test_verify_with_a_network_file(
    cli: CliRunner, tmp_path: Path, node: Node, other_node: Node, ledger: SignedLedger
) -> None:
    json_path, cose_path, _ = _files(tmp_path, node, ledger)
    network = tmp_path / "network.json"
    network.write_text(json.dumps(network_document([other_node.node_cert, node.node_cert])))
    for path in (json_path, cose_path):
        result = cli("receipt", "verify", str(path), "--network", str(network))
        assert result.code == 0, result.err
    network.write_text(json.dumps(network_document([other_node.node_cert])))
    result = cli("receipt", "verify", str(cose_path), "--network", str(network))
    assert "ledger.receipt.untrusted" in result.error_line()


def test_verify_errors_are_one_line(
    cli: CliRunner, tmp_path: Path, node: Node, ledger: SignedLedger
) -> None:
    json_path, cose_path, cert_path = _files(tmp_path, node, ledger)
    doc = json.loads(json_path.read_text())
    doc["leaf_components"]["claims_digest"] = "11" * 32
    json_path.write_text(json.dumps(doc))
    result = cli("receipt", "verify", str(json_path), "--cert", str(cert_path))
    assert "ledger.receipt.signature" in result.error_line()
    raw = bytearray(cose_path.read_bytes())
    raw[-1] ^= 0x01
    cose_path.write_bytes(bytes(raw))
    result = cli("receipt", "verify", str(cose_path), "--cert", str(cert_path))
    assert "ledger.receipt.signature" in result.error_line()
    result = cli("receipt", "verify", str(tmp_path / "missing.json"), "--cert", str(cert_path))
    assert "cli.receipt.file" in result.error_line()
    result = cli("receipt", "verify", str(json_path))
    assert "cli.receipt.usage" in result.error_line()
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"\x01\x02")
    result = cli("receipt", "verify", str(garbage), "--cert", str(cert_path))
    assert "ledger.receipt.format" in result.error_line()
    result = cli("receipt", "verify", str(json_path), "--cert", str(garbage))
    assert "ledger.receipt.format" in result.error_line()


def test_show_both_forms(cli: CliRunner, tmp_path: Path, node: Node, ledger: SignedLedger) -> None:
    json_path, cose_path, _ = _files(tmp_path, node, ledger)
    result = cli("receipt", "show", str(json_path))
    assert result.code == 0, result.err
    assert "2.7" in result.out and ledger.components[7].commit_evidence in result.out
    assert ledger.signed.root.hex() in result.out
    result = cli("receipt", "show", str(cose_path))
    assert result.code == 0, result.err
    assert "2.41" in result.out and node.node_cert.node_id in result.out
    assert ledger.signed.root.hex() in result.out
