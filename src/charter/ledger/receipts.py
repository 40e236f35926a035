"""JSON receipts in CCF's format, and the root signature they carry.

A receipt proves that a committed transaction is in the ledger: its leaf (from
``leaf_components``) folded with ``proof`` gives the Merkle root that a signature
transaction signed. Field names and encodings are CCF's, so CCF's verifiers
accept Charter receipts:

- ``cert``: PEM certificate of the signing node's ECDSA key,
- ``node_id``: hex SHA-256 of that key's DER SubjectPublicKeyInfo,
- ``leaf_components``: ``write_set_digest`` and ``claims_digest`` (lowercase hex)
  and ``commit_evidence`` (``ce:{view}.{seqno}:{hex nonce}``),
- ``proof``: list of ``{"left": hex}`` / ``{"right": hex}``, leaf to root,
- ``signature``: base64 DER ECDSA over the root, which is used directly as the
  SHA-256 digest (CCF's ``sign_hash``; ``Prehashed(SHA256)`` in ``cryptography``).

A receipt for a signature transaction carries ``leaf`` (the signed root) and an
empty proof instead of ``leaf_components``, as CCF's do.

Parsing is strict (known fields only, lowercase hex, canonical base64) so that a
receipt has exactly one text form and no altered bit goes unnoticed.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

from charter.crypto.keys import P256PrivateKey
from charter.ledger.errors import ReceiptFormatError, ReceiptSignatureError
from charter.ledger.merkle import (
    HASH_SIZE,
    MerkleError,
    PathStep,
    fold_path,
    leaf_hash,
    parse_commit_evidence,
)
from charter.ledger.trust import NodeCert, TrustedNodes

ZERO_DIGEST = bytes(HASH_SIZE)
_PREHASHED = ec.ECDSA(utils.Prehashed(hashes.SHA256()))
_RECEIPT_FIELDS = frozenset({"cert", "node_id", "signature", "proof", "leaf_components", "leaf"})
_COMPONENT_FIELDS = frozenset({"write_set_digest", "commit_evidence", "claims_digest"})


def sign_root(key: P256PrivateKey, root: bytes) -> bytes:
    """DER ECDSA signature over ``root`` taken as the SHA-256 digest (as CCF signs)."""
    _check_digest(root, "root")
    return key.to_cryptography().sign(root, _PREHASHED)


def verify_root_signature(key: ec.EllipticCurvePublicKey, root: bytes, signature: bytes) -> None:
    try:
        key.verify(signature, root, _PREHASHED)
    except (InvalidSignature, ValueError):
        raise ReceiptSignatureError("the signature does not cover the receipt's root") from None


@dataclass(frozen=True, slots=True)
class LeafComponents:
    """What a transaction's leaf is made of."""

    write_set_digest: bytes
    commit_evidence: str
    claims_digest: bytes = ZERO_DIGEST

    def __post_init__(self) -> None:
        _check_digest(self.write_set_digest, "write_set_digest")
        _check_digest(self.claims_digest, "claims_digest")
        try:
            parse_commit_evidence(self.commit_evidence)
        except MerkleError as exc:
            raise ReceiptFormatError(exc.message) from None

    def leaf(self) -> bytes:
        return leaf_hash(self.write_set_digest, self.commit_evidence, self.claims_digest)

    @property
    def view(self) -> int:
        return parse_commit_evidence(self.commit_evidence)[0]

    @property
    def seqno(self) -> int:
        return parse_commit_evidence(self.commit_evidence)[1]

    @property
    def tx_id(self) -> str:
        return f"{self.view}.{self.seqno}"

    def to_json(self) -> dict[str, str]:
        return {
            "claims_digest": self.claims_digest.hex(),
            "commit_evidence": self.commit_evidence,
            "write_set_digest": self.write_set_digest.hex(),
        }


@dataclass(frozen=True, slots=True)
class VerifiedReceipt:
    """What a successful verification established."""

    form: str
    tx_id: str | None
    root: bytes
    leaf: bytes
    signer: str
    claims_digest: bytes | None


@dataclass(frozen=True, slots=True)
class JsonReceipt:
    cert: NodeCert
    node_id: str
    signature: bytes
    proof: tuple[PathStep, ...]
    leaf_components: LeafComponents | None = None
    signed_root: bytes | None = None

    def __post_init__(self) -> None:
        if (self.leaf_components is None) == (self.signed_root is None):
            raise ReceiptFormatError("a receipt has either leaf_components or leaf, not both")
        if self.signed_root is not None and self.proof:
            raise ReceiptFormatError("a signature transaction's receipt has an empty proof")

    def leaf(self) -> bytes:
        if self.leaf_components is not None:
            return self.leaf_components.leaf()
        assert self.signed_root is not None
        return self.signed_root

    def root(self) -> bytes:
        return fold_path(self.leaf(), self.proof)

    @property
    def tx_id(self) -> str | None:
        return self.leaf_components.tx_id if self.leaf_components else None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"cert": self.cert.pem()}
        if self.leaf_components is not None:
            doc["leaf_components"] = self.leaf_components.to_json()
        else:
            assert self.signed_root is not None
            doc["leaf"] = self.signed_root.hex()
        doc["node_id"] = self.node_id
        doc["proof"] = [
            {"left": s.digest.hex()} if s.left else {"right": s.digest.hex()} for s in self.proof
        ]
        doc["signature"] = base64.b64encode(self.signature).decode("ascii")
        return doc

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2) + "\n"

    def verify(self, trusted: TrustedNodes) -> VerifiedReceipt:
        """Check signer, node id and signature; return what the receipt proves."""
        if self.node_id != self.cert.node_id:
            raise ReceiptSignatureError("node_id is not the digest of the certificate's key")
        signer = trusted.require(self.cert)
        root = self.root()
        verify_root_signature(signer.key, root, self.signature)
        lc = self.leaf_components
        return VerifiedReceipt(
            form="json",
            tx_id=self.tx_id,
            root=root,
            leaf=self.leaf(),
            signer=signer.node_id,
            claims_digest=lc.claims_digest if lc else None,
        )


def build_json_receipt(
    *,
    cert: NodeCert,
    signature: bytes,
    proof: Sequence[PathStep],
    components: LeafComponents,
) -> JsonReceipt:
    return JsonReceipt(cert, cert.node_id, signature, tuple(proof), leaf_components=components)


def build_signature_receipt(*, cert: NodeCert, signature: bytes, root: bytes) -> JsonReceipt:
    """A receipt for a signature transaction itself: ``leaf`` is the root it signed."""
    return JsonReceipt(cert, cert.node_id, signature, (), signed_root=root)


# -- parsing ------------------------------------------------------------------------------


def parse_json_receipt(text: str | bytes) -> JsonReceipt:
    try:
        doc = json.loads(text, object_pairs_hook=_no_duplicates)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ReceiptFormatError(f"not a JSON receipt: {exc}") from None
    return receipt_from_json(doc)


def receipt_from_json(doc: object) -> JsonReceipt:
    obj = _object(doc, "receipt", _RECEIPT_FIELDS)
    cert = _node_cert(_str(obj, "cert"))
    node_id = _hex_text(_str(obj, "node_id"), "node_id", HASH_SIZE)
    signature = _b64(_str(obj, "signature"), "signature")
    proof_doc = obj.get("proof")
    if not isinstance(proof_doc, list):
        raise ReceiptFormatError('"proof" must be a list')
    proof: list[PathStep] = []
    for element in proof_doc:
        if not isinstance(element, dict) or len(element) != 1:
            raise ReceiptFormatError('each proof element is {"left": hex} or {"right": hex}')
        ((side, value),) = element.items()
        if side not in ("left", "right") or not isinstance(value, str):
            raise ReceiptFormatError('each proof element is {"left": hex} or {"right": hex}')
        proof.append(PathStep(side == "left", _hex(value, f"proof {side}", HASH_SIZE)))
    components: LeafComponents | None = None
    signed_root: bytes | None = None
    if "leaf_components" in obj:
        lc = _object(obj["leaf_components"], "leaf_components", _COMPONENT_FIELDS)
        for field in _COMPONENT_FIELDS:
            if field not in lc:
                raise ReceiptFormatError(f'leaf_components lacks "{field}"')
        components = LeafComponents(
            write_set_digest=_hex(_str(lc, "write_set_digest"), "write_set_digest", HASH_SIZE),
            commit_evidence=_str(lc, "commit_evidence"),
            claims_digest=_hex(_str(lc, "claims_digest"), "claims_digest", HASH_SIZE),
        )
    if "leaf" in obj:
        signed_root = _hex(_str(obj, "leaf"), "leaf", HASH_SIZE)
    return JsonReceipt(cert, node_id, signature, tuple(proof), components, signed_root)


@functools.lru_cache(maxsize=64)
def _node_cert(pem: str) -> NodeCert:
    # A verifier sees the same few node certificates again and again; parsing one
    # costs more than the signature check, and NodeCert is immutable.
    return NodeCert.from_pem(pem, canonical=True)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ReceiptFormatError(f'duplicate field "{key}"')
        out[key] = value
    return out


def _object(doc: object, what: str, allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise ReceiptFormatError(f"{what} must be a JSON object")
    unknown = set(doc) - allowed
    if unknown:
        raise ReceiptFormatError(f"{what} has unknown field(s): {', '.join(sorted(unknown))}")
    return doc


def _str(obj: dict[str, Any], field: str) -> str:
    value = obj.get(field)
    if not isinstance(value, str):
        raise ReceiptFormatError(f'"{field}" must be a string')
    return value


def _hex_text(text: str, what: str, size: int) -> str:
    if len(text) != 2 * size or any(c not in "0123456789abcdef" for c in text):
        raise ReceiptFormatError(f"{what} must be {2 * size} lowercase hex digits")
    return text


def _hex(text: str, what: str, size: int) -> bytes:
    return bytes.fromhex(_hex_text(text, what, size))


def _b64(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ReceiptFormatError(f"{what} is not base64") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise ReceiptFormatError(f"{what} is not canonical base64")
    return raw


def _check_digest(value: bytes, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise ReceiptFormatError(f"{what} must be {HASH_SIZE} bytes")
