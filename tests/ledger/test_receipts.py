"""JSON and COSE receipts: issue, verify, CCF's published vector, and tampering."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

from charter.crypto import P256PrivateKey, self_signed_certificate
from charter.ledger.cose_receipts import (
    CCF_HEADERS,
    HDR_KID,
    HDR_VDP,
    HDR_VDS,
    parse_cose_receipt,
)
from charter.ledger.errors import (
    LedgerStateError,
    ReceiptError,
    ReceiptFormatError,
    ReceiptSignatureError,
    UntrustedSignerError,
)
from charter.ledger.issue import issue_cose_receipt, issue_json_receipt
from charter.ledger.receipts import (
    JsonReceipt,
    build_signature_receipt,
    parse_json_receipt,
    receipt_from_json,
)
from charter.ledger.trust import NodeCert, TrustedNodes, load_network, network_document
from charter.ledger.verify import load_receipt, verify_receipt

from .conftest import IAT, Node, SignedLedger

# CCF's documentation (doc/use_apps/verify_tx.rst) publishes this receipt for 2.500
# together with the certificate of the node that signed it (a P-384 key).
CCF_DOC_RECEIPT: dict[str, Any] = {
    "cert": "-----BEGIN CERTIFICATE-----\n"
    "MIIBzzCCAVWgAwIBAgIRANoNTgf6hwugwIZgb/vrSXcwCgYIKoZIzj0EAwMwFjEU\n"
    "MBIGA1UEAwwLQ0NGIE5ldHdvcmswHhcNMjIwNDI1MTUwMTMzWhcNMjIwNDI2MTUw\n"
    "MTMyWjATMREwDwYDVQQDDAhDQ0YgTm9kZTB2MBAGByqGSM49AgEGBSuBBAAiA2IA\n"
    "BCbH0j1tcyHeyBVxThuzwyk6IesLFe6CXBqOYBbEvrLCrdR+wj400UR0xWBcVroY\n"
    "8GqF+tLS8YQPt+kepG82lZuRjAbaBn2BL8g6cdKGOew5fo9LCL9+NlH+W6bz83E/\n"
    "Z6NqMGgwCQYDVR0TBAIwADAdBgNVHQ4EFgQUlMCr5/1LIzGegZPJfHwzFl5GCwUw\n"
    "HwYDVR0jBBgwFoAUuzKYZ+UZum8NaytcWRfirw8TA+MwGwYDVR0RBBQwEocEfwAA\n"
    "AYcEf7i1MYcEfwAAAjAKBggqhkjOPQQDAwNoADBlAjEAyLPRWCR4Nn0Z3q/1rKCc\n"
    "ppiSwPrMQ/asHoUAUgmnAGkxgJ6A8iGJXa/WFal/PDtdAjBfp+AIkuVcBjmWfLxF\n"
    "MKN7njz6Q9m10APn+KigsvS4aIRbHZHbYTkAOyFEdipm5gA=\n"
    "-----END CERTIFICATE-----\n",
    "leaf_components": {
        "claims_digest": "0000000000000000000000000000000000000000000000000000000000000000",
        "commit_evidence": "ce:2.500:a4e526cef8d1155e8a8c5f4c0dd8d1220c924cea620e1cc737c4039c8abc8d6b",
        "write_set_digest": "56f1f53e61a80606fec984cbfadaf833b3bb2e68f464f3b7c641e163fcb1f647",
    },
    "node_id": "c0718b67b986748d074a293201fa2f9bc3a29e07d204ccc24167afdc59bdf0c3",
    "proof": [
        {"left": "26e7edf1065e23a387b8d6fd3743b4885aae1919c4c347d73b792e3e77b57695"},
        {"left": "76c79df9146479c0aebdd51f228e1d304d60f382f61571a729f2fba7d93ce2a7"},
        {"left": "6b54d109e3f474f9f546d5d462de40440ca335b133d3899c228532fcc535e732"},
        {"left": "bf3e529174209df204342224fc39ffee68189c30db03e53ba1d4baa053e02471"},
        {"left": "740dcdb82afe5f2b311056c96bd6afcc1b571e1cdb8e918bfe24eda48213eb1a"},
        {"left": "05efd90dfd3bf86a3efa185c6a869342cb0d9af4dd92256d37dc826b86e99684"},
    ],
    "signature": "MGYCMQCI1yY5xhGNFXyKjO6mFhxZCjAsuTsquO1agIzKkxh/Uf9Em+P7AwnxuQ2uC7WU++QCMQCSzpE9k8xkSku5BlkUelDPBHxLuokLIpKAyn73HXtXiz+zXOVWIZkYftUEoQ31pG0=",
}


def test_ccf_published_receipt_verifies() -> None:
    receipt = receipt_from_json(CCF_DOC_RECEIPT)
    trusted = TrustedNodes([NodeCert.from_pem(CCF_DOC_RECEIPT["cert"])])
    result = receipt.verify(trusted)
    assert result.tx_id == "2.500"
    assert result.signer == CCF_DOC_RECEIPT["node_id"]
    assert result.root.hex() == "15f24788c7ec4ce792deccf4fcd7e28992e154f37ecdd96ea1ecd16199f32ae0"
    assert receipt.to_json() == CCF_DOC_RECEIPT


def test_ccf_published_receipt_with_another_write_set_fails() -> None:
    doc = json.loads(json.dumps(CCF_DOC_RECEIPT))
    doc["leaf_components"]["write_set_digest"] = "00" * 32
    trusted = TrustedNodes([NodeCert.from_pem(CCF_DOC_RECEIPT["cert"])])
    with pytest.raises(ReceiptSignatureError):
        receipt_from_json(doc).verify(trusted)


def test_json_receipts_for_every_transaction_verify(node: Node, ledger: SignedLedger) -> None:
    for seqno, lc in ledger.components.items():
        receipt = issue_json_receipt(ledger.tree, seqno, lc, ledger.signed)
        text = receipt.dumps()
        parsed = parse_json_receipt(text)
        assert parsed == receipt
        result = parsed.verify(node.trusted)
        assert result.form == "json"
        assert result.tx_id == f"2.{seqno}"
        assert result.root == ledger.signed.root
        assert result.signer == node.node_cert.node_id
        assert result.claims_digest == lc.claims_digest


def test_json_receipt_fields_are_ccfs(ledger: SignedLedger) -> None:
    doc = issue_json_receipt(ledger.tree, 5, ledger.components[5], ledger.signed).to_json()
    assert set(doc) == {"cert", "leaf_components", "node_id", "proof", "signature"}
    assert set(doc["leaf_components"]) == {"claims_digest", "commit_evidence", "write_set_digest"}
    assert doc["cert"].startswith("-----BEGIN CERTIFICATE-----")
    assert all(set(e) <= {"left", "right"} and len(e) == 1 for e in doc["proof"])
    base64.b64decode(doc["signature"], validate=True)


def test_json_receipt_verifies_with_ccfs_algorithm(ledger: SignedLedger) -> None:
    """Recompute the receipt the way CCF's Python verifier does, independently of ours."""
    doc = issue_json_receipt(ledger.tree, 9, ledger.components[9], ledger.signed).to_json()
    lc = doc["leaf_components"]
    current = hashlib.sha256(
        bytes.fromhex(lc["write_set_digest"])
        + hashlib.sha256(lc["commit_evidence"].encode()).digest()
        + bytes.fromhex(lc["claims_digest"])
    ).digest()
    for element in doc["proof"]:
        if "left" in element:
            current = hashlib.sha256(bytes.fromhex(element["left"]) + current).digest()
        else:
            current = hashlib.sha256(current + bytes.fromhex(element["right"])).digest()
    key = x509.load_pem_x509_certificate(doc["cert"].encode()).public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(
        base64.b64decode(doc["signature"]), current, ec.ECDSA(utils.Prehashed(hashes.SHA256()))
    )


def test_every_flipped_bit_in_a_json_receipt_fails(node: Node, ledger: SignedLedger) -> None:
    data = issue_json_receipt(ledger.tree, 13, ledger.components[13], ledger.signed).dumps()
    raw = data.encode()
    verify_receipt(raw, node.trusted)
    for i in range(len(raw)):
        for bit in range(8):
            tampered = bytearray(raw)
            tampered[i] ^= 1 << bit
            with pytest.raises(ReceiptError):
                verify_receipt(bytes(tampered), node.trusted)


def test_every_flipped_bit_in_a_cose_receipt_fails(node: Node, ledger: SignedLedger) -> None:
    raw = issue_cose_receipt(ledger.tree, 13, ledger.components[13], ledger.signed)
    verify_receipt(raw, node.trusted)
    for i in range(len(raw)):
        for bit in range(8):
            tampered = bytearray(raw)
            tampered[i] ^= 1 << bit
            with pytest.raises(ReceiptError):
                verify_receipt(bytes(tampered), node.trusted)


def test_cose_receipts_round_trip(node: Node, ledger: SignedLedger) -> None:
    for seqno in (1, 2, 17, 40):
        lc = ledger.components[seqno]
        raw = issue_cose_receipt(ledger.tree, seqno, lc, ledger.signed)
        receipt = parse_cose_receipt(raw)
        assert receipt.txid == "2.41" and receipt.iat == IAT and receipt.alg == -7
        assert receipt.kid == node.node_cert.node_id.encode()
        assert receipt.proofs[0][0] == lc
        result = receipt.verify(node.trusted)
        assert result.form == "cose" and result.tx_id == f"2.{seqno}"
        assert result.root == ledger.signed.root


def test_cose_receipt_layout_is_ccfs(ledger: SignedLedger) -> None:
    """Decode with plain cbor2 and fold as CCF's verifier does."""
    raw = issue_cose_receipt(ledger.tree, 6, ledger.components[6], ledger.signed)
    msg = cbor2.loads(raw)
    assert msg.tag == 18
    phdr_bytes, uhdr, payload, sig = msg.value
    phdr = cbor2.loads(phdr_bytes)
    assert phdr[1] == -7 and phdr[HDR_VDS] == 2 and phdr[CCF_HEADERS] == {"txid": "2.41"}
    assert phdr[15][6] == IAT
    assert isinstance(phdr[HDR_KID], bytes) and payload is None and len(sig) == 64
    (proof_bytes,) = uhdr[HDR_VDP][-1]
    proof = cbor2.loads(proof_bytes)
    leaf = proof[1]
    acc = hashlib.sha256(leaf[0] + hashlib.sha256(leaf[1].encode()).digest() + leaf[2]).digest()
    for left, digest in proof[2]:
        acc = hashlib.sha256(digest + acc if left else acc + digest).digest()
    assert acc == ledger.signed.root


def test_untrusted_or_mismatched_signers_fail(
    node: Node, other_node: Node, ledger: SignedLedger
) -> None:
    json_raw = issue_json_receipt(ledger.tree, 3, ledger.components[3], ledger.signed).dumps()
    cose_raw = issue_cose_receipt(ledger.tree, 3, ledger.components[3], ledger.signed)
    for raw in (json_raw.encode(), cose_raw):
        with pytest.raises(UntrustedSignerError):
            verify_receipt(raw, other_node.trusted)
        assert verify_receipt(raw, TrustedNodes([other_node.node_cert, node.node_cert]))
    # A receipt re-signed by another key under the right certificate fails.
    forged = parse_json_receipt(json_raw)
    bad = JsonReceipt(
        forged.cert,
        forged.node_id,
        other_node.key.to_cryptography().sign(b"x" * 32, ec.ECDSA(hashes.SHA256())),
        forged.proof,
        forged.leaf_components,
    )
    with pytest.raises(ReceiptSignatureError):
        bad.verify(node.trusted)


def test_signature_transaction_receipt(node: Node, ledger: SignedLedger) -> None:
    receipt = build_signature_receipt(
        cert=node.node_cert, signature=ledger.signed.signature, root=ledger.signed.root
    )
    doc = receipt.to_json()
    assert doc["proof"] == [] and doc["leaf"] == ledger.signed.root.hex()
    result = parse_json_receipt(json.dumps(doc)).verify(node.trusted)
    assert result.tx_id is None and result.root == ledger.signed.root


def test_strict_json_parsing(ledger: SignedLedger) -> None:
    doc = issue_json_receipt(ledger.tree, 4, ledger.components[4], ledger.signed).to_json()
    cases = []
    upper = json.loads(json.dumps(doc))
    upper["node_id"] = upper["node_id"].upper()
    cases.append(upper)
    extra = dict(doc, extra=1)
    cases.append(extra)
    missing = {k: v for k, v in doc.items() if k != "signature"}
    cases.append(missing)
    both = dict(doc, leaf="00" * 32)
    cases.append(both)
    for case in cases:
        with pytest.raises(ReceiptFormatError):
            receipt_from_json(case)
    dup = json.dumps(doc)[:-1] + ', "node_id": "' + doc["node_id"] + '"}'
    with pytest.raises(ReceiptFormatError):
        parse_json_receipt(dup)
    with pytest.raises(ReceiptFormatError):
        load_receipt(b"\x00not a receipt")


def test_issuing_checks_the_tree(ledger: SignedLedger) -> None:
    with pytest.raises(LedgerStateError):
        issue_json_receipt(ledger.tree, 3, ledger.components[4], ledger.signed)
    with pytest.raises(LedgerStateError):
        issue_json_receipt(ledger.tree, 41, ledger.components[4], ledger.signed)


def test_network_file(tmp_path: Path, node: Node, other_node: Node) -> None:
    path = tmp_path / "network.json"
    path.write_text(json.dumps(network_document([node.node_cert, other_node.node_cert])))
    trusted = load_network(path)
    assert len(trusted) == 2
    doc = network_document([node.node_cert])
    doc["nodes"][0]["node_id"] = "00" * 32
    path.write_text(json.dumps(doc))
    with pytest.raises(ReceiptFormatError):
        load_network(path)
    path.write_text("{}")
    with pytest.raises(ReceiptFormatError):
        load_network(path)


def test_a_renewed_certificate_for_the_same_key_still_verifies(
    node: Node, ledger: SignedLedger
) -> None:
    renewed = self_signed_certificate(node.key, common_name="charter node renewed")
    assert renewed.to_der() != node.cert.to_der()
    receipt = issue_json_receipt(ledger.tree, 8, ledger.components[8], ledger.signed)
    trusted_renewed = TrustedNodes([NodeCert.from_x509(renewed.x509)])
    assert receipt.verify(trusted_renewed).tx_id == "2.8"
    # A certificate for the key that is not self-signed by it is refused.
    issuer = P256PrivateKey.generate()
    builder = (
        x509.CertificateBuilder()
        .subject_name(renewed.x509.subject)
        .issuer_name(renewed.x509.subject)
        .public_key(node.key.public_key.to_cryptography())
        .serial_number(x509.random_serial_number())
        .not_valid_before(renewed.not_before)
        .not_valid_after(renewed.not_after)
    )
    foreign = NodeCert.from_x509(builder.sign(issuer.to_cryptography(), hashes.SHA256()))
    forged = JsonReceipt(
        foreign, foreign.node_id, receipt.signature, receipt.proof, receipt.leaf_components
    )
    with pytest.raises(UntrustedSignerError):
        forged.verify(trusted_renewed)


def test_a_certificate_altered_in_its_signature_unused_bits_is_refused(
    node: Node, ledger: SignedLedger
) -> None:
    # The self-signature check reads the signature's bytes and ignores the BIT STRING's
    # unused-bits count, so only a strict DER check catches a change there. DER wants the
    # declared unused bits to be zero, so use a renewed certificate whose last byte is even.
    for _ in range(64):
        renewed = self_signed_certificate(node.key, common_name="charter node renewed")
        der = bytearray(renewed.to_der())
        if der[-1] % 2 == 0:
            break
    else:  # pragma: no cover - 2**-64
        pytest.fail("no even-ending signature in 64 tries")
    sig_len = der[-len(renewed.x509.signature) - 2]
    assert sig_len == len(renewed.x509.signature) + 1 and der[-sig_len] == 0
    der[-sig_len] = 1  # one unused bit declared
    altered = NodeCert.from_x509(x509.load_der_x509_certificate(bytes(der)))
    altered.cert.verify_directly_issued_by(altered.cert)  # still valid to the library
    receipt = issue_json_receipt(ledger.tree, 8, ledger.components[8], ledger.signed)
    forged = JsonReceipt(
        altered, altered.node_id, receipt.signature, receipt.proof, receipt.leaf_components
    )
    with pytest.raises(UntrustedSignerError):
        forged.verify(node.trusted)
