"""Typed errors of the crypto layer; each carries a stable ``code``."""

from __future__ import annotations

from charter.errors import CharterError


class CryptoError(CharterError):
    """Base of every key, signature and certificate error."""

    code = "crypto.error"


class InvalidKeyError(CryptoError):
    """Key material that is not a well-formed key of the expected algorithm."""

    code = "crypto.key.invalid"


class WrongKeyTypeError(CryptoError):
    """A valid key of another algorithm than the caller needs (e.g. P-256 for Ed25519)."""

    code = "crypto.key.wrong_type"


class SignatureError(CryptoError):
    """A signature that does not verify for the given key and message."""

    code = "crypto.signature.invalid"


class KeyFileError(CryptoError):
    """Base of errors reading or writing key and certificate files."""

    code = "crypto.keyfile.error"


class KeyFileMissingError(KeyFileError):
    code = "crypto.keyfile.missing"


class KeyFileExistsError(KeyFileError):
    code = "crypto.keyfile.exists"


class KeyFileCorruptError(KeyFileError):
    """Not PEM, truncated, or PEM of something that is not a key."""

    code = "crypto.keyfile.corrupt"


class PassphraseRequiredError(KeyFileError):
    code = "crypto.keyfile.passphrase_required"


class WrongPassphraseError(KeyFileError):
    code = "crypto.keyfile.passphrase_wrong"


class NotEncryptedError(KeyFileError):
    """A passphrase was given for a key file that is stored unencrypted."""

    code = "crypto.keyfile.not_encrypted"


class UnsafePermissionsError(KeyFileError):
    """A private key file readable or writable by group or others."""

    code = "crypto.keyfile.unsafe_permissions"


class CertificateError(CryptoError):
    """A certificate that cannot be parsed, is not self-signed as claimed, or mismatches."""

    code = "crypto.cert.invalid"
