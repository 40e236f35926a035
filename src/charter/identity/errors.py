"""Typed errors of the identity layer; each carries a stable ``code``."""

from __future__ import annotations

from charter.errors import CharterError


class IdentityError(CharterError):
    code = "identity.error"


class MnemonicError(IdentityError):
    code = "identity.mnemonic.invalid"


class MnemonicLengthError(MnemonicError):
    code = "identity.mnemonic.length"


class MnemonicWordError(MnemonicError):
    code = "identity.mnemonic.word"


class MnemonicChecksumError(MnemonicError):
    code = "identity.mnemonic.checksum"


class DerivationError(IdentityError):
    code = "identity.derive.invalid"


class DerivationPathError(DerivationError):
    code = "identity.derive.path"


class NonHardenedPathError(DerivationError):
    """Ed25519 (SLIP-10) defines only hardened child derivation."""

    code = "identity.derive.non_hardened"


class SeedLengthError(DerivationError):
    code = "identity.derive.seed_length"


class AttestationError(IdentityError):
    """Base of every reason an attestation chain is refused."""

    code = "identity.attestation.invalid"


class AttestationFormatError(AttestationError):
    """Bytes that are not a well-formed attestation chain."""

    code = "identity.attestation.format"


class AttestationSignatureError(AttestationError):
    code = "identity.attestation.signature"


class AttestationLinkError(AttestationError):
    """A link not issued by the previous link's subject, or naming another root."""

    code = "identity.attestation.link"


class AttestationPurposeError(AttestationError):
    code = "identity.attestation.purpose"


class AttestationRootError(AttestationError):
    code = "identity.attestation.root"


class AttestationExpiredError(AttestationError):
    """Outside a link's validity window (not yet valid or expired)."""

    code = "identity.attestation.validity"


class AttestationRevokedError(AttestationError):
    """The root has moved to a newer epoch than the chain's."""

    code = "identity.attestation.revoked"
