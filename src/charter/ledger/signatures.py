"""Signature transactions: when one is due, and the signed-root record it carries.

``SignatureSchedule`` is sans-I/O: the node feeds it "transaction appended",
"time passed" and "signature appended" events and asks whether a signature is
due (every ``every_tx`` transactions, or after ``every_ms`` with anything
unsigned) and how long its timer should sleep. There is no clock inside.

``SignedRoot`` is what a signature transaction at sequence number ``seqno``
writes: the root of the Merkle tree over leaves ``0 .. seqno - 1`` (leaf 0 being
the zero hash, leaf ``i`` transaction ``i``), signed by the leader's P-256 ledger
key twice: once as CCF signs for JSON receipts (ECDSA over the root as digest),
once as a COSE_Sign1 with the root as detached payload for COSE receipts. It is
a Syrup record, so its bytes are canonical; application transactions become
visible as committed once a later signature commits.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography import x509

from charter.codec.syrup import Record, Symbol, SyrupDecodeError, decode, encode
from charter.crypto.certs import Certificate
from charter.crypto.keys import P256PrivateKey, PublicKey
from charter.ledger.cose_receipts import (
    CCF_HEADERS,
    CCF_TXID,
    HDR_KID,
    loads_strict,
    sign1_parts,
    sign_root_cose,
    verify_cose_root_signature,
)
from charter.ledger.errors import LedgerStateError, ReceiptError, SignedRootError
from charter.ledger.merkle import HASH_SIZE
from charter.ledger.receipts import sign_root, verify_root_signature
from charter.ledger.trust import NodeCert, TrustedNodes

SIGNED_ROOT_LABEL = Symbol("charter-signed-root")


@dataclass(frozen=True, slots=True)
class SignaturePolicy:
    """Sign every ``every_tx`` transactions or every ``every_ms`` (CCF's defaults)."""

    every_tx: int = 5000
    every_ms: int = 1000

    def __post_init__(self) -> None:
        if self.every_tx < 1 or self.every_ms < 1:
            raise ValueError("signature intervals must be positive")


class SignatureSchedule:
    """Decides when the leader's next signature transaction is due."""

    __slots__ = ("_elapsed_ms", "_last_seqno", "_last_signed", "policy")

    def __init__(self, policy: SignaturePolicy, *, last_signed_seqno: int = 0) -> None:
        self.policy = policy
        self._last_signed = last_signed_seqno
        self._last_seqno = last_signed_seqno
        self._elapsed_ms = 0

    @property
    def unsigned(self) -> int:
        """Transactions appended since the last signature."""
        return self._last_seqno - self._last_signed

    @property
    def due(self) -> bool:
        pending = self.unsigned
        return pending >= self.policy.every_tx or (
            pending > 0 and self._elapsed_ms >= self.policy.every_ms
        )

    def appended(self, seqno: int) -> bool:
        """A transaction was appended at ``seqno``; returns whether a signature is now due."""
        if seqno <= self._last_seqno:
            raise LedgerStateError(f"seqno {seqno} does not follow {self._last_seqno}")
        self._last_seqno = seqno
        return self.due

    def elapsed(self, ms: int) -> bool:
        """``ms`` milliseconds passed; returns whether a signature is now due."""
        if ms < 0:
            raise ValueError("time does not run backwards")
        self._elapsed_ms += ms
        return self.due

    def signed(self, seqno: int) -> None:
        """A signature transaction was appended at ``seqno``."""
        if seqno < self._last_signed:
            raise LedgerStateError(f"signature at {seqno} precedes the one at {self._last_signed}")
        self._last_signed = seqno
        self._last_seqno = max(self._last_seqno, seqno)
        self._elapsed_ms = 0

    def truncated(self, seqno: int) -> None:
        """Raft dropped everything after ``seqno``."""
        self._last_seqno = min(self._last_seqno, seqno)
        self._last_signed = min(self._last_signed, seqno)

    def ms_until_due(self) -> int | None:
        """How long the driver's timer should wait; None when nothing is unsigned."""
        if self.unsigned == 0:
            return None
        if self.due:
            return 0
        return self.policy.every_ms - self._elapsed_ms


@dataclass(frozen=True, slots=True)
class SignedRoot:
    """The content of a signature transaction."""

    view: int
    seqno: int
    root: bytes
    node_id: str
    signature: bytes
    cose_signature: bytes
    cert: bytes

    @property
    def tx_id(self) -> str:
        return f"{self.view}.{self.seqno}"

    @property
    def tree_size(self) -> int:
        """Leaves the signed root covers: every transaction before this one, and leaf 0."""
        return self.seqno

    def node_cert(self) -> NodeCert:
        return _node_cert_of(self.cert)

    def to_record(self) -> Record:
        return Record(
            SIGNED_ROOT_LABEL,
            self.view,
            self.seqno,
            self.root,
            self.node_id,
            self.signature,
            self.cose_signature,
            self.cert,
        )

    def encode(self) -> bytes:
        return encode(self.to_record())

    @classmethod
    def from_record(cls, record: object) -> SignedRoot:
        if (
            not isinstance(record, Record)
            or record.label != SIGNED_ROOT_LABEL
            or len(record.fields) != 7
        ):
            raise SignedRootError("not a charter-signed-root record")
        view, seqno, root, node_id, signature, cose_signature, cert = record.fields
        if type(view) is not int or type(seqno) is not int or view < 0 or seqno < 1:
            raise SignedRootError("view and seqno must be integers (seqno >= 1)")
        if not isinstance(root, bytes) or len(root) != HASH_SIZE:
            raise SignedRootError("root must be 32 bytes")
        if not isinstance(node_id, str):
            raise SignedRootError("node id must be a string")
        for value in (signature, cose_signature, cert):
            if not isinstance(value, bytes):
                raise SignedRootError("signatures and certificate must be bytes")
        return cls(view, seqno, root, node_id, signature, cose_signature, cert)

    @classmethod
    def decode(cls, data: bytes) -> SignedRoot:
        try:
            record = decode(data)
        except SyrupDecodeError as exc:
            raise SignedRootError(f"signed root is not canonical Syrup: {exc.message}") from None
        return cls.from_record(record)


@functools.lru_cache(maxsize=64)
def _node_cert_of(der: bytes) -> NodeCert:
    """Parse a signer's certificate once: every signature of a node carries the same one."""
    try:
        return NodeCert.from_x509(x509.load_der_x509_certificate(der))
    except ValueError as exc:
        raise SignedRootError(f"signed root carries a bad certificate: {exc}") from None
    except ReceiptError as exc:
        raise SignedRootError(exc.message) from None


def sign_signed_root(
    key: P256PrivateKey,
    cert: Certificate,
    *,
    view: int,
    seqno: int,
    root: bytes,
    iat: int,
) -> SignedRoot:
    """Sign ``root`` both ways; ``iat`` is the wall-clock second the caller passes in."""
    node = _signer_cert(cert, key.public_key)
    return SignedRoot(
        view=view,
        seqno=seqno,
        root=root,
        node_id=node.node_id,
        signature=sign_root(key, root),
        cose_signature=sign_root_cose(key, root, txid=f"{view}.{seqno}", iat=iat),
        cert=node.der,
    )


@functools.lru_cache(maxsize=16)
def _signer_cert(cert: Certificate, key: PublicKey) -> NodeCert:
    """A leader signs with one certificate and key: check and parse them once."""
    if cert.public_key != key:
        raise SignedRootError("the certificate does not carry the signing key")
    return _node_cert_of(cert.to_der())


def check_signer(signed: SignedRoot, trusted: TrustedNodes | None = None) -> NodeCert:
    """The signer's id and (if given) trust, without the signatures: enough for a
    signed root this node made itself (``verify_signed_root`` checks everything)."""
    node = signed.node_cert()
    if node.node_id != signed.node_id:
        raise SignedRootError("node id is not the digest of the certificate's key")
    if trusted is not None:
        node = trusted.require(node)
    return node


def verify_signed_root(signed: SignedRoot, trusted: TrustedNodes | None = None) -> NodeCert:
    """Check both signatures over the root, the signer's id and (if given) trust."""
    node = check_signer(signed, trusted)
    try:
        verify_root_signature(node.key, signed.root, signed.signature)
        verify_cose_root_signature(signed.cose_signature, signed.root, node.key)
        protected = loads_strict(sign1_parts(signed.cose_signature)[0], "protected header")
    except ReceiptError as exc:
        raise SignedRootError(exc.message) from None
    if not isinstance(protected, Mapping):
        raise SignedRootError("the COSE signature's protected header is not a map")
    ccf = protected.get(CCF_HEADERS)
    if not isinstance(ccf, Mapping) or ccf.get(CCF_TXID) != signed.tx_id:
        raise SignedRootError("the COSE signature names another transaction")
    if protected.get(HDR_KID) != signed.node_id.encode("ascii"):
        raise SignedRootError("the COSE signature's kid is not the signer's node id")
    return node
