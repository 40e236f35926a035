"""Attestation chains: a root identity vouches for the keys that act for it.

A root signs a sub-key with a purpose and an epoch (root -> device -> node, or
root -> node). Each link's signed payload is the canonical Syrup encoding of

    <charter-attestation root issuer subject purpose epoch not-before not-after>

and the chain stores exactly those bytes next to each signature, so a verifier
checks the signature over the stored bytes and only then decodes them (never
re-encoding). Every link names the root and the epoch; raising a root's epoch
in a verifier's revocation registry retires every chain issued under older ones.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import textwrap
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from charter.codec.syrup import Record, Symbol, decode, encode
from charter.crypto.keys import Ed25519PrivateKey, Ed25519PublicKey
from charter.errors import CharterError
from charter.identity.errors import (
    AttestationError,
    AttestationExpiredError,
    AttestationFormatError,
    AttestationLinkError,
    AttestationPurposeError,
    AttestationRevokedError,
    AttestationRootError,
    AttestationSignatureError,
)

ATTESTATION_LABEL: Final = Symbol("charter-attestation")
SIGNED_LABEL: Final = Symbol("charter-signed-attestation")
CHAIN_LABEL: Final = Symbol("charter-attestation-chain")
TEXT_BEGIN: Final = b"-----BEGIN CHARTER ATTESTATION CHAIN-----"
TEXT_END: Final = b"-----END CHARTER ATTESTATION CHAIN-----"

MEMBER: Final = "member"
DEVICE: Final = "device"
NODE: Final = "node"
PURPOSES: Final = frozenset({MEMBER, DEVICE, NODE})
ROOT_ISSUER: Final = "root"
# Which purposes a key may vouch for, by the issuer's own purpose. A node key acts
# only for itself: it may not extend the chain.
MAY_ATTEST: Final[Mapping[str, frozenset[str]]] = {
    ROOT_ISSUER: frozenset({MEMBER, DEVICE, NODE}),
    MEMBER: frozenset({DEVICE, NODE}),
    DEVICE: frozenset({NODE}),
    NODE: frozenset(),
}
MAX_CHAIN_LENGTH: Final = 8
MAX_EPOCH: Final = 2**63 - 1
DEFAULT_VALIDITY: Final = dt.timedelta(days=365)
# Issue with a small backdate so a verifier whose clock is a little behind accepts it.
BACKDATE_SECONDS: Final = 300
ED25519_SIGNATURE_SIZE: Final = 64


@dataclass(frozen=True, slots=True)
class Attestation:
    """One statement: ``issuer`` vouches that ``subject`` acts as ``purpose`` for ``root``."""

    root: Ed25519PublicKey
    issuer: Ed25519PublicKey
    subject: Ed25519PublicKey
    purpose: str
    epoch: int
    not_before: int
    not_after: int

    def __post_init__(self) -> None:
        if self.purpose not in PURPOSES:
            raise AttestationPurposeError(
                f"unknown purpose {self.purpose!r} (choose {', '.join(sorted(PURPOSES))})"
            )
        if type(self.epoch) is not int or not 0 <= self.epoch <= MAX_EPOCH:
            raise AttestationFormatError(f"epoch must be an integer in 0..2^63-1, got {self.epoch}")
        if type(self.not_before) is not int or type(self.not_after) is not int:
            raise AttestationFormatError("validity bounds must be integers (Unix seconds)")
        if self.not_after <= self.not_before:
            raise AttestationFormatError("not-after must be later than not-before")

    def to_record(self) -> Record:
        return Record(
            ATTESTATION_LABEL,
            self.root.raw,
            self.issuer.raw,
            self.subject.raw,
            Symbol(self.purpose),
            self.epoch,
            self.not_before,
            self.not_after,
        )

    def payload(self) -> bytes:
        """The canonical bytes the issuer signs."""
        return encode(self.to_record())

    @classmethod
    def from_payload(cls, payload: bytes) -> Attestation:
        value = _decode(payload, "attestation payload")
        if not isinstance(value, Record) or value.label != ATTESTATION_LABEL:
            raise AttestationFormatError("payload is not a charter-attestation record")
        if len(value.fields) != 7:
            raise AttestationFormatError(
                f"charter-attestation has 7 fields, got {len(value.fields)}"
            )
        root, issuer, subject, purpose, epoch, not_before, not_after = value.fields
        if not isinstance(purpose, Symbol):
            raise AttestationFormatError("purpose must be a symbol")
        for name, number in (
            ("epoch", epoch),
            ("not-before", not_before),
            ("not-after", not_after),
        ):
            if type(number) is not int:
                raise AttestationFormatError(f"{name} must be an integer")
        return cls(
            root=_public_key(root, "root"),
            issuer=_public_key(issuer, "issuer"),
            subject=_public_key(subject, "subject"),
            purpose=purpose.name,
            epoch=epoch,
            not_before=not_before,
            not_after=not_after,
        )


@dataclass(frozen=True, slots=True)
class SignedAttestation:
    """A link: the exact signed bytes, the signature, and what the bytes say."""

    payload: bytes
    signature: bytes
    attestation: Attestation = field(compare=False)

    @classmethod
    def sign(cls, issuer_key: Ed25519PrivateKey, attestation: Attestation) -> SignedAttestation:
        if issuer_key.public_key != attestation.issuer:
            raise AttestationLinkError("the signing key is not the attestation's issuer")
        payload = attestation.payload()
        return cls(payload, issuer_key.sign(payload), attestation)

    @classmethod
    def from_parts(cls, payload: bytes, signature: bytes) -> SignedAttestation:
        return cls(payload, signature, Attestation.from_payload(payload))

    def check_signature(self) -> None:
        if len(self.signature) != ED25519_SIGNATURE_SIZE:
            raise AttestationSignatureError(
                f"a signature is {ED25519_SIGNATURE_SIZE} bytes, got {len(self.signature)}"
            )
        if not self.attestation.issuer.is_valid(self.signature, self.payload):
            raise AttestationSignatureError(
                f"signature by {self.attestation.issuer.designator} does not verify"
            )

    def to_record(self) -> Record:
        return Record(SIGNED_LABEL, self.payload, self.signature)


@dataclass(frozen=True, slots=True)
class VerifiedChain:
    """What a verifier may rely on once a chain has been checked."""

    root: Ed25519PublicKey
    leaf: Ed25519PublicKey
    purposes: tuple[str, ...]
    epoch: int
    not_before: int
    not_after: int

    @property
    def leaf_purpose(self) -> str:
        return self.purposes[-1]


@dataclass(frozen=True, slots=True)
class AttestationChain:
    """Links from the root outward; the last link's subject is the leaf key."""

    links: tuple[SignedAttestation, ...]

    def __post_init__(self) -> None:
        if not self.links:
            raise AttestationFormatError("an attestation chain has at least one link")
        if len(self.links) > MAX_CHAIN_LENGTH:
            raise AttestationFormatError(
                f"an attestation chain has at most {MAX_CHAIN_LENGTH} links, got {len(self.links)}"
            )

    def __iter__(self) -> Iterator[SignedAttestation]:
        return iter(self.links)

    def __len__(self) -> int:
        return len(self.links)

    @property
    def root(self) -> Ed25519PublicKey:
        return self.links[0].attestation.root

    @property
    def leaf(self) -> Ed25519PublicKey:
        return self.links[-1].attestation.subject

    @property
    def epoch(self) -> int:
        return self.links[0].attestation.epoch

    def extend(
        self,
        issuer_key: Ed25519PrivateKey,
        subject: Ed25519PublicKey,
        purpose: str,
        *,
        now: int | None = None,
        validity: dt.timedelta = DEFAULT_VALIDITY,
    ) -> AttestationChain:
        """Append a link signed by the current leaf key (which must be ``issuer_key``)."""
        if issuer_key.public_key != self.leaf:
            raise AttestationLinkError("only the chain's leaf key may extend it")
        parent = self.links[-1].attestation
        _check_may_attest(parent.purpose, purpose)
        start, end = _window(now, validity)
        link = SignedAttestation.sign(
            issuer_key,
            Attestation(
                root=self.root,
                issuer=self.leaf,
                subject=subject,
                purpose=purpose,
                epoch=self.epoch,
                not_before=start,
                not_after=min(end, parent.not_after),
            ),
        )
        return AttestationChain((*self.links, link))

    def to_bytes(self) -> bytes:
        """Canonical Syrup: ``<charter-attestation-chain [<charter-signed-attestation p s> ...]>``."""
        return encode(Record(CHAIN_LABEL, [link.to_record() for link in self.links]))

    @classmethod
    def from_bytes(cls, data: bytes) -> AttestationChain:
        value = _decode(data, "attestation chain")
        if not isinstance(value, Record) or value.label != CHAIN_LABEL:
            raise AttestationFormatError("not a charter-attestation-chain record")
        if len(value.fields) != 1 or not isinstance(value.fields[0], list):
            raise AttestationFormatError("a chain record holds one list of links")
        links: list[SignedAttestation] = []
        for item in value.fields[0]:
            if not isinstance(item, Record) or item.label != SIGNED_LABEL or len(item.fields) != 2:
                raise AttestationFormatError("a link is <charter-signed-attestation payload sig>")
            payload, signature = item.fields
            if not isinstance(payload, bytes) or not isinstance(signature, bytes):
                raise AttestationFormatError("a link's payload and signature are bytestrings")
            links.append(SignedAttestation.from_parts(payload, signature))
        return cls(tuple(links))

    def to_text(self) -> str:
        """An armored base64 form for terminals, mail and copy-paste."""
        body = base64.b64encode(self.to_bytes()).decode("ascii")
        lines = [TEXT_BEGIN.decode(), *textwrap.wrap(body, 64), TEXT_END.decode()]
        return "\n".join(lines) + "\n"

    @classmethod
    def from_text(cls, text: str | bytes) -> AttestationChain:
        data = text.encode("ascii", "replace") if isinstance(text, str) else text
        stripped = data.strip()
        if not stripped.startswith(TEXT_BEGIN) or not stripped.endswith(TEXT_END):
            raise AttestationFormatError("not an armored CHARTER ATTESTATION CHAIN")
        body = stripped[len(TEXT_BEGIN) : -len(TEXT_END)]
        try:
            raw = base64.b64decode(b"".join(body.split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise AttestationFormatError("the armored chain is not valid base64") from exc
        return cls.from_bytes(raw)

    @classmethod
    def load(cls, data: bytes) -> AttestationChain:
        """Either form: armored text or raw Syrup bytes."""
        if data.lstrip().startswith(TEXT_BEGIN):
            return cls.from_text(data)
        return cls.from_bytes(data)


class RevocationRegistry:
    """Root public key -> minimum accepted epoch; minimums only ever rise."""

    def __init__(self, minimums: Mapping[Ed25519PublicKey, int] | None = None) -> None:
        self._min: dict[Ed25519PublicKey, int] = {}
        for root, epoch in (minimums or {}).items():
            self.raise_min_epoch(root, epoch)

    def min_epoch(self, root: Ed25519PublicKey) -> int:
        return self._min.get(root, 0)

    def raise_min_epoch(self, root: Ed25519PublicKey, epoch: int) -> None:
        """Retire every chain of ``root`` older than ``epoch``; lowering is refused."""
        if type(epoch) is not int or not 0 <= epoch <= MAX_EPOCH:
            raise AttestationFormatError(f"epoch must be an integer in 0..2^63-1, got {epoch}")
        current = self.min_epoch(root)
        if epoch < current:
            raise AttestationRevokedError(
                f"minimum epoch for {root.designator} is {current}; it cannot go back to {epoch}"
            )
        self._min[root] = epoch

    def check(self, root: Ed25519PublicKey, epoch: int) -> None:
        minimum = self.min_epoch(root)
        if epoch < minimum:
            raise AttestationRevokedError(
                f"chain epoch {epoch} is older than the minimum {minimum} for {root.designator}"
            )

    def __len__(self) -> int:
        return len(self._min)


def attest(
    root_key: Ed25519PrivateKey,
    subject: Ed25519PublicKey,
    purpose: str,
    epoch: int,
    *,
    now: int | None = None,
    validity: dt.timedelta = DEFAULT_VALIDITY,
) -> AttestationChain:
    """Start a chain: the root vouches for ``subject`` as ``purpose`` in ``epoch``."""
    _check_may_attest(ROOT_ISSUER, purpose)
    start, end = _window(now, validity)
    root = root_key.public_key
    link = SignedAttestation.sign(
        root_key,
        Attestation(
            root=root,
            issuer=root,
            subject=subject,
            purpose=purpose,
            epoch=epoch,
            not_before=start,
            not_after=end,
        ),
    )
    return AttestationChain((link,))


def verify_chain(
    chain: AttestationChain,
    *,
    now: int | None = None,
    revocations: RevocationRegistry | None = None,
    expected_root: Ed25519PublicKey | None = None,
    expected_purpose: str | None = None,
) -> VerifiedChain:
    """Check every link (signature, linkage, purpose, validity, epoch) or raise why not."""
    when = int(time.time()) if now is None else now
    root = chain.root
    epoch = chain.epoch
    issuer = root
    issuer_purpose = ROOT_ISSUER
    purposes: list[str] = []
    for position, link in enumerate(chain.links, start=1):
        statement = link.attestation
        # Signature first: nothing a link says counts before its issuer is proven.
        if statement.issuer != issuer:
            raise AttestationLinkError(
                f"link {position} is issued by {statement.issuer.designator}, "
                f"expected {issuer.designator}"
            )
        link.check_signature()
        if statement.root != root:
            raise AttestationLinkError(f"link {position} names another root")
        if statement.epoch != epoch:
            raise AttestationLinkError(
                f"link {position} has epoch {statement.epoch}, the chain {epoch}"
            )
        _check_may_attest(issuer_purpose, statement.purpose)
        if not statement.not_before <= when < statement.not_after:
            raise AttestationExpiredError(
                f"link {position} is valid from {_iso(statement.not_before)} to "
                f"{_iso(statement.not_after)}, not at {_iso(when)}"
            )
        purposes.append(statement.purpose)
        issuer = statement.subject
        issuer_purpose = statement.purpose
    if expected_root is not None and root != expected_root:
        raise AttestationRootError(
            f"chain is rooted at {root.designator}, expected {expected_root.designator}"
        )
    if revocations is not None:
        revocations.check(root, epoch)
    if expected_purpose is not None and purposes[-1] != expected_purpose:
        raise AttestationPurposeError(
            f"leaf key acts as {purposes[-1]!r}, expected {expected_purpose!r}"
        )
    return VerifiedChain(
        root=root,
        leaf=issuer,
        purposes=tuple(purposes),
        epoch=epoch,
        # The chain holds only while every link does.
        not_before=max(link.attestation.not_before for link in chain.links),
        not_after=min(link.attestation.not_after for link in chain.links),
    )


def _check_may_attest(issuer_purpose: str, purpose: str) -> None:
    if purpose not in PURPOSES:
        raise AttestationPurposeError(
            f"unknown purpose {purpose!r} (choose {', '.join(sorted(PURPOSES))})"
        )
    allowed = MAY_ATTEST.get(issuer_purpose, frozenset())
    if purpose not in allowed:
        raise AttestationPurposeError(f"a {issuer_purpose} key may not attest a {purpose} key")


def _window(now: int | None, validity: dt.timedelta) -> tuple[int, int]:
    seconds = int(validity.total_seconds())
    if seconds <= 0:
        raise AttestationFormatError("validity must be positive")
    start = (int(time.time()) if now is None else now) - BACKDATE_SECONDS
    return start, start + BACKDATE_SECONDS + seconds


def _decode(data: bytes, what: str) -> Any:
    try:
        return decode(data)
    except CharterError as exc:
        raise AttestationFormatError(f"{what} is not canonical Syrup: {exc.message}") from exc


def _public_key(value: object, name: str) -> Ed25519PublicKey:
    if not isinstance(value, bytes):
        raise AttestationFormatError(f"{name} key must be a bytestring")
    try:
        return Ed25519PublicKey.from_raw(value)
    except CharterError as exc:
        raise AttestationFormatError(f"{name} key: {exc.message}") from exc


def _iso(seconds: int) -> str:
    try:
        return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="seconds")
    except (OverflowError, OSError, ValueError):
        return str(seconds)


__all__ = [
    "DEVICE",
    "MAY_ATTEST",
    "MEMBER",
    "NODE",
    "PURPOSES",
    "Attestation",
    "AttestationChain",
    "AttestationError",
    "RevocationRegistry",
    "SignedAttestation",
    "VerifiedChain",
    "attest",
    "verify_chain",
]
