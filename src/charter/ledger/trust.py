"""The signers a receipt verifier trusts: node certificates, by id and by exact bytes.

Verification needs nothing of the node: a verifier holds the certificate of one
node, or the network's list of node certificates (``load_network``; the node
exports it, format in docs/receipts.md), and checks that a receipt was signed by
one of them. A node's id is the hex SHA-256 of its key's DER SubjectPublicKeyInfo,
as in CCF; COSE receipts carry the same id as their ``kid``.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from charter.ledger.errors import ReceiptFormatError, UntrustedSignerError

SUPPORTED_CURVES = (ec.SECP256R1, ec.SECP384R1)


def node_id_of_key(key: ec.EllipticCurvePublicKey) -> str:
    spki = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


@dataclass(frozen=True, slots=True)
class NodeCert:
    """A node certificate with the facts a verifier reads from it."""

    cert: x509.Certificate
    der: bytes
    node_id: str
    key: ec.EllipticCurvePublicKey

    @classmethod
    def from_x509(cls, cert: x509.Certificate) -> NodeCert:
        # cryptography parses lazily: read every field now, with its warnings as
        # errors, so that a damaged certificate fails here with a typed error.
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                key = cert.public_key()
                cert.subject.rfc4514_string()
                cert.serial_number  # noqa: B018
                cert.not_valid_after_utc  # noqa: B018
                der = cert.public_bytes(serialization.Encoding.DER)
        except Exception as exc:  # any parse failure of untrusted input
            raise ReceiptFormatError(f"not a usable certificate: {exc}") from None
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(
            key.curve, SUPPORTED_CURVES
        ):
            raise ReceiptFormatError("a node certificate must carry an ECDSA P-256 or P-384 key")
        return cls(cert, der, node_id_of_key(key), key)

    @classmethod
    def from_pem(cls, pem: str | bytes, *, canonical: bool = False) -> NodeCert:
        """Parse a PEM certificate; ``canonical`` also demands its one standard text form."""
        data = pem.encode("ascii", "replace") if isinstance(pem, str) else pem
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                cert = x509.load_pem_x509_certificate(data)
        except Exception as exc:  # any parse failure of untrusted input
            raise ReceiptFormatError(f"not a PEM certificate: {exc}") from None
        node = cls.from_x509(cert)
        if canonical and node.pem().encode("ascii") != data:
            raise ReceiptFormatError("the certificate is not in canonical PEM form")
        return node

    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


class TrustedNodes:
    """A set of node certificates a receipt must have been signed by."""

    def __init__(self, certs: Iterable[NodeCert]) -> None:
        self._by_id: dict[str, NodeCert] = {}
        for cert in certs:
            self._by_id[cert.node_id] = cert
        if not self._by_id:
            raise ReceiptFormatError("no trusted node certificates given")

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[NodeCert]:
        return iter(self._by_id.values())

    def by_node_id(self, node_id: str) -> NodeCert:
        try:
            return self._by_id[node_id]
        except KeyError:
            raise UntrustedSignerError(f"node {node_id[:16]}... is not a trusted signer") from None

    def require(self, cert: NodeCert) -> NodeCert:
        """The trusted certificate for ``cert``'s key.

        ``cert`` must be that certificate byte for byte, or (a node that renewed its
        certificate keeps its key) a validly self-signed certificate for the same key,
        so that no altered certificate passes either way.
        """
        trusted = self.by_node_id(cert.node_id)
        if trusted.der == cert.der:
            return trusted
        try:
            _check_signature_bit_string(cert.der)
            cert.cert.verify_directly_issued_by(cert.cert)
        except Exception:  # any failure: wrong issuer, bad signature, unsupported
            raise UntrustedSignerError(
                f"the receipt's certificate for node {cert.node_id[:16]}... is neither the "
                "trusted one nor validly self-signed"
            ) from None
        return trusted


def _der_header(data: bytes, pos: int) -> tuple[int, int, int]:
    """Tag, content start and content end of the DER element at ``pos`` (minimal lengths only)."""
    tag = data[pos]
    first = data[pos + 1]
    if first < 0x80:
        return tag, pos + 2, pos + 2 + first
    n = first & 0x7F
    if n == 0 or n > 4 or data[pos + 2] == 0:
        raise ValueError("non-minimal DER length")
    length = int.from_bytes(data[pos + 2 : pos + 2 + n], "big")
    if length < 0x80:
        raise ValueError("non-minimal DER length")
    return tag, pos + 2 + n, pos + 2 + n + length


def _check_signature_bit_string(der: bytes) -> None:
    """Refuse a certificate whose signature BIT STRING declares unused bits.

    The self-signature check reads the signature's bytes and ignores that count, so a
    certificate altered only there would still verify; an ECDSA signature is whole bytes.
    """
    tag, start, end = _der_header(der, 0)
    if tag != 0x30 or end != len(der):
        raise ValueError("not one DER SEQUENCE")
    pos = start
    elements = []
    while pos < end:
        el_tag, el_start, el_end = _der_header(der, pos)
        elements.append((el_tag, el_start, el_end))
        pos = el_end
    if pos != end or len(elements) != 3:
        raise ValueError("a certificate has exactly three parts")
    bit_tag, bit_start, bit_end = elements[2]
    if bit_tag != 0x03 or bit_end <= bit_start or der[bit_start] != 0:
        raise ValueError("the signature must be a BIT STRING with no unused bits")


def load_network(path: Path | str) -> TrustedNodes:
    """Read a network file: ``{"nodes": [{"node_id": hex, "cert": PEM}, ...]}``."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReceiptFormatError(f"cannot read network file {path}: {exc}") from None
    nodes = doc.get("nodes") if isinstance(doc, dict) else None
    if not isinstance(nodes, list) or not nodes:
        raise ReceiptFormatError(f'network file {path} has no "nodes" list')
    certs: list[NodeCert] = []
    for entry in nodes:
        if not isinstance(entry, dict) or not isinstance(entry.get("cert"), str):
            raise ReceiptFormatError(f'network file {path}: each node needs a "cert" PEM')
        cert = NodeCert.from_pem(entry["cert"])
        claimed = entry.get("node_id")
        if claimed is not None and claimed != cert.node_id:
            raise ReceiptFormatError(
                f"network file {path}: node_id {str(claimed)[:16]}... does not match its cert"
            )
        certs.append(cert)
    return TrustedNodes(certs)


def network_document(certs: Iterable[NodeCert]) -> dict[str, list[dict[str, str]]]:
    """The network file's JSON document for ``certs`` (what the node exports)."""
    return {"nodes": [{"node_id": c.node_id, "cert": c.pem()} for c in certs]}
