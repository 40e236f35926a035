"""Ed25519 and ECDSA P-256 keys behind one small typed surface.

Ed25519 names members, nodes, devices and OCapN sessions; P-256 (SHA-256, DER
signatures) signs ledger roots so that receipts are standard COSE receipts. Both
share the same text forms so that logs, files and the CLI print keys one way.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from abc import ABC, abstractmethod
from enum import StrEnum
from typing import ClassVar

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, utils

from charter.crypto.errors import InvalidKeyError, SignatureError, WrongKeyTypeError

ED25519_PUBLIC_KEY_SIZE = 32
ED25519_PRIVATE_KEY_SIZE = 32
ED25519_SIGNATURE_SIZE = 64
P256_PUBLIC_KEY_SIZE = 65  # uncompressed SEC1 point: 0x04 || x || y
P256_COMPRESSED_SIZE = 33
P256_PRIVATE_KEY_SIZE = 32
P256_RAW_SIGNATURE_SIZE = 64


class KeyAlgorithm(StrEnum):
    ED25519 = "ed25519"
    P256 = "p256"


def b64url(data: bytes) -> str:
    """URL-safe base64 without padding: the one base64 form Charter prints."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.urlsafe_b64decode(padded.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise InvalidKeyError(f"not valid base64url: {text[:16]!r}") from exc


class PublicKey(ABC):
    """A verifying key; equal when algorithm and raw bytes are equal."""

    algorithm: ClassVar[KeyAlgorithm]

    @property
    @abstractmethod
    def raw(self) -> bytes:
        """Raw encoding: 32 bytes for Ed25519, the 65-byte uncompressed point for P-256."""

    @property
    @abstractmethod
    def compact(self) -> bytes:
        """Shortest encoding: raw for Ed25519, the 33-byte compressed point for P-256."""

    @abstractmethod
    def verify(self, signature: bytes, message: bytes) -> None:
        """Raise SignatureError unless ``signature`` is this key's signature of ``message``."""

    @abstractmethod
    def to_cryptography(self) -> ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey: ...

    def is_valid(self, signature: bytes, message: bytes) -> bool:
        try:
            self.verify(signature, message)
        except SignatureError:
            return False
        return True

    def spki_der(self) -> bytes:
        """DER SubjectPublicKeyInfo: what X.509 and TLS carry, hence what we fingerprint."""
        return self.to_cryptography().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def to_pem(self) -> bytes:
        return self.to_cryptography().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def hex(self) -> str:
        return self.raw.hex()

    def b64(self) -> str:
        return b64url(self.raw)

    def fingerprint(self) -> str:
        """SHA-256 of the SubjectPublicKeyInfo, hex: matches what TLS key pinning compares."""
        return hashlib.sha256(self.spki_der()).hexdigest()

    @property
    def designator(self) -> str:
        """Self-certifying short name, e.g. ``ed25519:<base64url key>``; fits an X.509 CN."""
        return f"{self.algorithm.value}:{b64url(self.compact)}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PublicKey):
            return NotImplemented
        return self.algorithm == other.algorithm and self.raw == other.raw

    def __hash__(self) -> int:
        return hash((self.algorithm, self.raw))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.designator})"


class PrivateKey(ABC):
    """A signing key. Its repr never shows secret material."""

    algorithm: ClassVar[KeyAlgorithm]

    @property
    @abstractmethod
    def public_key(self) -> PublicKey: ...

    @abstractmethod
    def sign(self, message: bytes) -> bytes: ...

    @abstractmethod
    def private_bytes_raw(self) -> bytes:
        """The 32-byte secret (Ed25519 seed or P-256 scalar). Handle with care."""

    @abstractmethod
    def to_cryptography(self) -> ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey: ...

    def to_pem(self, passphrase: bytes | None = None) -> bytes:
        """PKCS#8 PEM, encrypted with the best available scheme when a passphrase is given."""
        if passphrase is not None and len(passphrase) == 0:
            raise InvalidKeyError("an empty passphrase would not protect the key")
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase)
            if passphrase is not None
            else serialization.NoEncryption()
        )
        return self.to_cryptography().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(public={self.public_key.designator})"


class Ed25519PublicKey(PublicKey):
    algorithm = KeyAlgorithm.ED25519
    __slots__ = ("_key", "_raw")

    def __init__(self, key: ed25519.Ed25519PublicKey) -> None:
        self._key = key
        self._raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @classmethod
    def from_raw(cls, raw: bytes) -> Ed25519PublicKey:
        if len(raw) != ED25519_PUBLIC_KEY_SIZE:
            raise InvalidKeyError(
                f"an Ed25519 public key is {ED25519_PUBLIC_KEY_SIZE} bytes, got {len(raw)}"
            )
        try:
            return cls(ed25519.Ed25519PublicKey.from_public_bytes(raw))
        except ValueError as exc:
            raise InvalidKeyError("not a valid Ed25519 public key") from exc

    @classmethod
    def from_hex(cls, text: str) -> Ed25519PublicKey:
        return cls.from_raw(_unhex(text))

    @property
    def raw(self) -> bytes:
        return self._raw

    @property
    def compact(self) -> bytes:
        return self._raw

    def verify(self, signature: bytes, message: bytes) -> None:
        if len(signature) != ED25519_SIGNATURE_SIZE:
            raise SignatureError(
                f"an Ed25519 signature is {ED25519_SIGNATURE_SIZE} bytes, got {len(signature)}"
            )
        try:
            self._key.verify(signature, message)
        except InvalidSignature as exc:
            raise SignatureError(f"signature does not verify for {self.designator}") from exc

    def to_cryptography(self) -> ed25519.Ed25519PublicKey:
        return self._key


class Ed25519PrivateKey(PrivateKey):
    algorithm = KeyAlgorithm.ED25519
    __slots__ = ("_key", "_public")

    def __init__(self, key: ed25519.Ed25519PrivateKey) -> None:
        self._key = key
        self._public = Ed25519PublicKey(key.public_key())

    @classmethod
    def generate(cls) -> Ed25519PrivateKey:
        return cls(ed25519.Ed25519PrivateKey.generate())

    @classmethod
    def from_raw(cls, raw: bytes) -> Ed25519PrivateKey:
        """From the 32-byte RFC 8032 secret, e.g. a SLIP-10 derived key."""
        if len(raw) != ED25519_PRIVATE_KEY_SIZE:
            raise InvalidKeyError(
                f"an Ed25519 private key is {ED25519_PRIVATE_KEY_SIZE} bytes, got {len(raw)}"
            )
        return cls(ed25519.Ed25519PrivateKey.from_private_bytes(raw))

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._public

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def private_bytes_raw(self) -> bytes:
        return self._key.private_bytes_raw()

    def to_cryptography(self) -> ed25519.Ed25519PrivateKey:
        return self._key


class P256PublicKey(PublicKey):
    algorithm = KeyAlgorithm.P256
    __slots__ = ("_key", "_raw")

    def __init__(self, key: ec.EllipticCurvePublicKey) -> None:
        if not isinstance(key.curve, ec.SECP256R1):
            raise WrongKeyTypeError(f"expected a P-256 key, got curve {key.curve.name}")
        self._key = key
        self._raw = key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )

    @classmethod
    def from_raw(cls, raw: bytes) -> P256PublicKey:
        """From a SEC1 point, uncompressed (65 bytes) or compressed (33 bytes)."""
        if len(raw) not in (P256_PUBLIC_KEY_SIZE, P256_COMPRESSED_SIZE):
            raise InvalidKeyError(
                f"a P-256 public key is {P256_PUBLIC_KEY_SIZE} or {P256_COMPRESSED_SIZE} bytes, "
                f"got {len(raw)}"
            )
        try:
            return cls(ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw))
        except ValueError as exc:
            raise InvalidKeyError("not a valid P-256 point") from exc

    @classmethod
    def from_hex(cls, text: str) -> P256PublicKey:
        return cls.from_raw(_unhex(text))

    @property
    def raw(self) -> bytes:
        return self._raw

    @property
    def compact(self) -> bytes:
        return self._key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
        )

    def verify(self, signature: bytes, message: bytes) -> None:
        try:
            self._key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError) as exc:
            raise SignatureError(f"signature does not verify for {self.designator}") from exc

    def verify_raw(self, signature: bytes, message: bytes) -> None:
        """Verify a fixed-size ``r || s`` signature (COSE ES256 form)."""
        self.verify(ecdsa_raw_to_der(signature), message)

    def to_cryptography(self) -> ec.EllipticCurvePublicKey:
        return self._key


class P256PrivateKey(PrivateKey):
    algorithm = KeyAlgorithm.P256
    __slots__ = ("_key", "_public")

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(key.curve, ec.SECP256R1):
            raise WrongKeyTypeError(f"expected a P-256 key, got curve {key.curve.name}")
        self._key = key
        self._public = P256PublicKey(key.public_key())

    @classmethod
    def generate(cls) -> P256PrivateKey:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_raw(cls, raw: bytes) -> P256PrivateKey:
        """From the 32-byte big-endian scalar."""
        if len(raw) != P256_PRIVATE_KEY_SIZE:
            raise InvalidKeyError(
                f"a P-256 private key is {P256_PRIVATE_KEY_SIZE} bytes, got {len(raw)}"
            )
        try:
            return cls(ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1()))
        except ValueError as exc:
            raise InvalidKeyError("scalar out of range for P-256") from exc

    @property
    def public_key(self) -> P256PublicKey:
        return self._public

    def sign(self, message: bytes) -> bytes:
        """DER-encoded ECDSA signature over SHA-256 of ``message``."""
        return self._key.sign(message, ec.ECDSA(hashes.SHA256()))

    def sign_raw(self, message: bytes) -> bytes:
        """The same signature as fixed-size ``r || s`` (64 bytes), as COSE ES256 carries it."""
        return ecdsa_der_to_raw(self.sign(message))

    def private_bytes_raw(self) -> bytes:
        return self._key.private_numbers().private_value.to_bytes(P256_PRIVATE_KEY_SIZE, "big")

    def to_cryptography(self) -> ec.EllipticCurvePrivateKey:
        return self._key


def ecdsa_der_to_raw(signature: bytes) -> bytes:
    """DER ECDSA signature -> 64-byte ``r || s`` (big-endian, zero-padded)."""
    try:
        r, s = utils.decode_dss_signature(signature)
    except ValueError as exc:
        raise SignatureError("not a DER ECDSA signature") from exc
    if r >= 1 << 256 or s >= 1 << 256:
        raise SignatureError("ECDSA signature values out of range for P-256")
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def ecdsa_raw_to_der(signature: bytes) -> bytes:
    """64-byte ``r || s`` -> DER ECDSA signature."""
    if len(signature) != P256_RAW_SIGNATURE_SIZE:
        raise SignatureError(
            f"a raw P-256 signature is {P256_RAW_SIGNATURE_SIZE} bytes, got {len(signature)}"
        )
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    return utils.encode_dss_signature(r, s)


def generate_private_key(algorithm: KeyAlgorithm | str) -> PrivateKey:
    alg = parse_algorithm(algorithm)
    if alg is KeyAlgorithm.ED25519:
        return Ed25519PrivateKey.generate()
    return P256PrivateKey.generate()


def parse_algorithm(name: KeyAlgorithm | str) -> KeyAlgorithm:
    try:
        return KeyAlgorithm(str(name).lower().replace("-", ""))
    except ValueError as exc:
        choices = ", ".join(a.value for a in KeyAlgorithm)
        raise InvalidKeyError(f"unknown key type {name!r} (choose {choices})") from exc


def wrap_public_key(key: object) -> PublicKey:
    """Wrap a ``cryptography`` public key object; other algorithms are a typed error."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        return Ed25519PublicKey(key)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return P256PublicKey(key)
    raise WrongKeyTypeError(f"unsupported public key type {type(key).__name__}")


def wrap_private_key(key: object) -> PrivateKey:
    """Wrap a ``cryptography`` private key object; other algorithms are a typed error."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return Ed25519PrivateKey(key)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return P256PrivateKey(key)
    raise WrongKeyTypeError(f"unsupported private key type {type(key).__name__}")


def public_key_from_hex(text: str) -> PublicKey:
    """Parse a printed public key: 32 bytes is Ed25519, a 33/65-byte SEC1 point is P-256."""
    raw = _unhex(text)
    if len(raw) == ED25519_PUBLIC_KEY_SIZE:
        return Ed25519PublicKey.from_raw(raw)
    if len(raw) in (P256_PUBLIC_KEY_SIZE, P256_COMPRESSED_SIZE):
        return P256PublicKey.from_raw(raw)
    raise InvalidKeyError(f"no supported public key is {len(raw)} bytes long")


def public_key_from_spki_der(der: bytes) -> PublicKey:
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidKeyError("not a DER SubjectPublicKeyInfo") from exc
    return wrap_public_key(key)


def require_ed25519_public(key: PublicKey) -> Ed25519PublicKey:
    if not isinstance(key, Ed25519PublicKey):
        raise WrongKeyTypeError(f"expected an Ed25519 key, got {key.algorithm.value}")
    return key


def require_ed25519_private(key: PrivateKey) -> Ed25519PrivateKey:
    if not isinstance(key, Ed25519PrivateKey):
        raise WrongKeyTypeError(f"expected an Ed25519 key, got {key.algorithm.value}")
    return key


def require_p256_private(key: PrivateKey) -> P256PrivateKey:
    if not isinstance(key, P256PrivateKey):
        raise WrongKeyTypeError(f"expected a P-256 key, got {key.algorithm.value}")
    return key


def _unhex(text: str) -> bytes:
    cleaned = text.strip().lower()
    cleaned = cleaned.removeprefix("0x")
    try:
        return bytes.fromhex(cleaned)
    except ValueError as exc:
        raise InvalidKeyError(f"not a hex string: {text[:16]!r}") from exc
