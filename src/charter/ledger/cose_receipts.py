"""COSE Sign1 receipts: the IETF COSE Receipts draft with CCF's ledger profile.

A signature transaction carries a COSE_Sign1 over the Merkle root with the
payload detached (CBOR tag 18, ``[phdr, {}, nil, signature]``). Its protected
header holds, as CCF's do:

- ``1`` (alg): ``-7`` (ES256),
- ``4`` (kid): the signer's node id (hex SHA-256 of its key's SPKI) as bytes,
- ``395`` (vds): ``2``, CCF_LEDGER_SHA256,
- ``15`` (CWT claims): ``{6: iat}`` plus optional ``1`` (iss) and ``2`` (sub),
- ``"ccf.v1"``: ``{"txid": "view.seqno"}`` of the signature transaction.

A receipt is that same signature with the unprotected header
``{396: {-1: [bstr .cbor proof, ...]}}``, each proof being CCF's inclusion proof
``{1: [write_set_digest, commit_evidence, claims_digest], 2: [[left, hash], ...]}``.
The verifier folds the proof to the root, uses the root as the detached payload
and checks the ES256 signature (raw ``r || s``) over the COSE Sig_structure.
Verification needs only this module and the trusted node certificates.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from charter.crypto.errors import SignatureError
from charter.crypto.keys import P256PrivateKey, ecdsa_der_to_raw, ecdsa_raw_to_der
from charter.ledger.errors import ReceiptFormatError, ReceiptSignatureError
from charter.ledger.merkle import HASH_SIZE, PathStep, fold_path
from charter.ledger.receipts import LeafComponents, VerifiedReceipt
from charter.ledger.trust import TrustedNodes, node_id_of_key

COSE_SIGN1_TAG = 18
HDR_ALG = 1
HDR_KID = 4
HDR_CWT = 15
HDR_VDS = 395
HDR_VDP = 396
VDS_CCF_LEDGER_SHA256 = 2
VDP_INCLUSION_PROOFS = -1
CWT_ISS = 1
CWT_SUB = 2
CWT_IAT = 6
CCF_HEADERS = "ccf.v1"
CCF_TXID = "txid"
PROOF_LEAF = 1
PROOF_PATH = 2
ALG_ES256 = -7
ALG_ES384 = -35
_ALGORITHMS: dict[int, tuple[type[ec.EllipticCurve], hashes.HashAlgorithm, int]] = {
    ALG_ES256: (ec.SECP256R1, hashes.SHA256(), 32),
    ALG_ES384: (ec.SECP384R1, hashes.SHA384(), 48),
}


def sig_structure(protected: bytes, payload: bytes) -> bytes:
    """COSE's Sig_structure for Sign1 with empty external AAD."""
    return cbor2.dumps(["Signature1", protected, b"", payload])


def sign_root_cose(
    key: P256PrivateKey,
    root: bytes,
    *,
    txid: str,
    iat: int,
    issuer: str | None = None,
    subject: str | None = None,
) -> bytes:
    """The COSE_Sign1 root signature a signature transaction records (payload detached)."""
    if len(root) != HASH_SIZE:
        raise ReceiptFormatError("a root is 32 bytes")
    cwt: dict[int, Any] = {CWT_IAT: iat}
    if issuer is not None:
        cwt[CWT_ISS] = issuer
    if subject is not None:
        cwt[CWT_SUB] = subject
    header = {
        HDR_ALG: ALG_ES256,
        HDR_KID: node_id_of_key(key.public_key.to_cryptography()).encode("ascii"),
        HDR_CWT: cwt,
        HDR_VDS: VDS_CCF_LEDGER_SHA256,
        CCF_HEADERS: {CCF_TXID: txid},
    }
    protected = cbor2.dumps(header, canonical=True)
    signature = ecdsa_der_to_raw(key.sign(sig_structure(protected, root)))
    return cbor2.dumps(cbor2.CBORTag(COSE_SIGN1_TAG, [protected, {}, None, signature]))


def encode_inclusion_proof(components: LeafComponents, path: Sequence[PathStep]) -> bytes:
    leaf = [components.write_set_digest, components.commit_evidence, components.claims_digest]
    return cbor2.dumps(
        {PROOF_LEAF: leaf, PROOF_PATH: [[s.left, s.digest] for s in path]}, canonical=True
    )


def build_cose_receipt(
    signature: bytes, components: LeafComponents, path: Sequence[PathStep]
) -> bytes:
    """Attach an inclusion proof to a COSE root signature, making it a receipt."""
    protected, _, payload, sig = sign1_parts(signature)
    if payload is not None:
        raise ReceiptFormatError("a root signature's payload must be detached")
    proof = encode_inclusion_proof(components, path)
    uhdr = {HDR_VDP: {VDP_INCLUSION_PROOFS: [proof]}}
    return cbor2.dumps(cbor2.CBORTag(COSE_SIGN1_TAG, [protected, uhdr, None, sig]))


@dataclass(frozen=True, slots=True)
class CoseReceipt:
    """A parsed COSE receipt; nothing in it is trusted until ``verify``."""

    protected: bytes
    alg: int
    kid: bytes
    txid: str
    iat: int
    issuer: str | None
    subject: str | None
    proofs: tuple[tuple[LeafComponents, tuple[PathStep, ...]], ...]
    signature: bytes

    def root(self) -> bytes:
        roots = {fold_path(c.leaf(), path) for c, path in self.proofs}
        if len(roots) != 1:
            raise ReceiptSignatureError("the receipt's inclusion proofs lead to different roots")
        return roots.pop()

    def verify(self, trusted: TrustedNodes) -> VerifiedReceipt:
        try:
            node_id = self.kid.decode("ascii")
        except UnicodeDecodeError:
            raise ReceiptFormatError("kid is not a node id") from None
        signer = trusted.by_node_id(node_id)
        curve, digest, size = _ALGORITHMS[self.alg]
        if not isinstance(signer.key.curve, curve):
            raise ReceiptSignatureError("the signer's key does not match the receipt's alg")
        if len(self.signature) != 2 * size:
            raise ReceiptSignatureError(f"an alg {self.alg} signature is {2 * size} bytes")
        root = self.root()
        r = int.from_bytes(self.signature[:size], "big")
        s = int.from_bytes(self.signature[size:], "big")
        try:
            signer.key.verify(
                encode_dss_signature(r, s),
                sig_structure(self.protected, root),
                ec.ECDSA(digest),
            )
        except (InvalidSignature, ValueError):
            raise ReceiptSignatureError("the signature does not cover the receipt's root") from None
        first = self.proofs[0][0]
        return VerifiedReceipt(
            form="cose",
            tx_id=first.tx_id,
            root=root,
            leaf=first.leaf(),
            signer=signer.node_id,
            claims_digest=first.claims_digest,
        )


def parse_cose_receipt(data: bytes) -> CoseReceipt:
    protected, uhdr, payload, signature = sign1_parts(data)
    if payload is not None:
        raise ReceiptFormatError("a receipt's payload (the root) must be detached")
    header = loads_strict(protected, "protected header")
    if not isinstance(header, Mapping):
        raise ReceiptFormatError("the protected header must be a map")
    alg = header.get(HDR_ALG)
    if alg not in _ALGORITHMS:
        raise ReceiptFormatError(f"unsupported alg {alg!r}")
    kid = header.get(HDR_KID)
    if not isinstance(kid, bytes):
        raise ReceiptFormatError("kid (4) must be a byte string")
    if header.get(HDR_VDS) != VDS_CCF_LEDGER_SHA256 or type(header.get(HDR_VDS)) is not int:
        raise ReceiptFormatError("vds (395) must be 2 (CCF_LEDGER_SHA256)")
    cwt = header.get(HDR_CWT)
    if not isinstance(cwt, Mapping) or type(cwt.get(CWT_IAT)) is not int:
        raise ReceiptFormatError("CWT claims (15) must hold an integer iat (6)")
    issuer = cwt.get(CWT_ISS)
    subject = cwt.get(CWT_SUB)
    if (issuer is not None and not isinstance(issuer, str)) or (
        subject is not None and not isinstance(subject, str)
    ):
        raise ReceiptFormatError("CWT iss and sub must be text")
    ccf = header.get(CCF_HEADERS)
    if not isinstance(ccf, Mapping) or not isinstance(ccf.get(CCF_TXID), str):
        raise ReceiptFormatError('"ccf.v1" must hold a text "txid"')
    if not isinstance(uhdr, Mapping) or set(uhdr) != {HDR_VDP}:
        raise ReceiptFormatError("the unprotected header must hold only the proofs (396)")
    vdp = uhdr[HDR_VDP]
    if not isinstance(vdp, Mapping) or set(vdp) != {VDP_INCLUSION_PROOFS}:
        raise ReceiptFormatError("the proofs (396) must hold only inclusion proofs (-1)")
    raw_proofs = vdp[VDP_INCLUSION_PROOFS]
    if (
        not isinstance(raw_proofs, Sequence)
        or isinstance(raw_proofs, bytes | str)
        or not raw_proofs
    ):
        raise ReceiptFormatError("inclusion proofs (-1) must be a non-empty array")
    proofs = tuple(_parse_inclusion_proof(p) for p in raw_proofs)
    if not isinstance(signature, bytes):
        raise ReceiptFormatError("the signature must be a byte string")
    return CoseReceipt(
        protected=protected,
        alg=alg,
        kid=kid,
        txid=ccf[CCF_TXID],
        iat=cwt[CWT_IAT],
        issuer=issuer,
        subject=subject,
        proofs=proofs,
        signature=signature,
    )


def verify_cose_root_signature(
    signature: bytes, root: bytes, key: ec.EllipticCurvePublicKey
) -> None:
    """Check a COSE root signature (no proof) against ``root``."""
    protected, _, payload, sig = sign1_parts(signature)
    if payload is not None:
        raise ReceiptFormatError("a root signature's payload must be detached")
    if not isinstance(sig, bytes):
        raise ReceiptFormatError("the signature must be a byte string")
    try:
        key.verify(ecdsa_raw_to_der(sig), sig_structure(protected, root), ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, SignatureError):
        raise ReceiptSignatureError("the COSE signature does not cover the root") from None


def _parse_inclusion_proof(raw: object) -> tuple[LeafComponents, tuple[PathStep, ...]]:
    if not isinstance(raw, bytes):
        raise ReceiptFormatError("each inclusion proof must be a byte string")
    proof = loads_strict(raw, "inclusion proof")
    if not isinstance(proof, Mapping) or set(proof) != {PROOF_LEAF, PROOF_PATH}:
        raise ReceiptFormatError("an inclusion proof is {1: leaf, 2: path}")
    leaf = proof[PROOF_LEAF]
    if (
        not isinstance(leaf, Sequence)
        or len(leaf) != 3
        or not isinstance(leaf[0], bytes)
        or not isinstance(leaf[1], str)
        or not isinstance(leaf[2], bytes)
    ):
        raise ReceiptFormatError("a leaf is [bstr, tstr, bstr]")
    components = LeafComponents(leaf[0], leaf[1], leaf[2])
    path_doc = proof[PROOF_PATH]
    if not isinstance(path_doc, Sequence) or isinstance(path_doc, bytes | str):
        raise ReceiptFormatError("a path is an array of [bool, bstr]")
    path: list[PathStep] = []
    for element in path_doc:
        if (
            not isinstance(element, Sequence)
            or len(element) != 2
            or not isinstance(element[0], bool)
            or not isinstance(element[1], bytes)
            or len(element[1]) != HASH_SIZE
        ):
            raise ReceiptFormatError("a path element is [bool, 32-byte bstr]")
        path.append(PathStep(element[0], element[1]))
    return components, tuple(path)


def sign1_parts(data: bytes) -> tuple[bytes, Any, Any, Any]:
    msg = loads_strict(data, "COSE_Sign1")
    if not isinstance(msg, cbor2.CBORTag) or msg.tag != COSE_SIGN1_TAG:
        raise ReceiptFormatError("not a tagged COSE_Sign1 (tag 18)")
    body = msg.value
    if not isinstance(body, Sequence) or isinstance(body, bytes | str) or len(body) != 4:
        raise ReceiptFormatError("a COSE_Sign1 is a 4-element array")
    protected, uhdr, payload, signature = body
    if not isinstance(protected, bytes):
        raise ReceiptFormatError("the protected header must be a byte string")
    return protected, uhdr, payload, signature


def loads_strict(data: bytes, what: str) -> Any:
    fp = io.BytesIO(data)
    try:
        value = cbor2.CBORDecoder(fp).decode()
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise ReceiptFormatError(f"{what} is not valid CBOR: {exc}") from None
    if fp.tell() != len(data):
        raise ReceiptFormatError(f"{what} has trailing bytes")
    return value
