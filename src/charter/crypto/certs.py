"""Self-signed X.509 certificates for Ed25519 and P-256 keys.

Charter needs no certificate authority: the constitution lists member and node
keys, and TLS peers are pinned by public key. Certificates are only the envelope
TLS and receipts expect, so what matters is extracting and comparing their keys.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from charter.crypto.errors import CertificateError, KeyFileCorruptError
from charter.crypto.keyfile import (
    CERTIFICATE_PEM_MARKER,
    PUBLIC_FILE_MODE,
    read_key_file_bytes,
    write_bytes_secure,
)
from charter.crypto.keys import Ed25519PrivateKey, PrivateKey, PublicKey, wrap_public_key

DEFAULT_VALIDITY = dt.timedelta(days=365)
# Tolerate modest clock skew between nodes when a certificate is made and used at once.
BACKDATE = dt.timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Certificate:
    """A parsed certificate and the facts Charter reads from it."""

    x509: x509.Certificate

    @property
    def public_key(self) -> PublicKey:
        return wrap_public_key(self.x509.public_key())

    @property
    def common_name(self) -> str | None:
        names = self.x509.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if not names:
            return None
        value = names[0].value
        return value if isinstance(value, str) else value.decode("utf-8", "replace")

    @property
    def not_before(self) -> dt.datetime:
        return self.x509.not_valid_before_utc

    @property
    def not_after(self) -> dt.datetime:
        return self.x509.not_valid_after_utc

    @property
    def serial_number(self) -> int:
        return self.x509.serial_number

    @property
    def subject_alt_names(self) -> list[str]:
        try:
            ext = self.x509.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except x509.ExtensionNotFound:
            return []
        names: list[str] = []
        for entry in ext.value:
            if isinstance(entry, x509.DNSName | x509.UniformResourceIdentifier):
                names.append(entry.value)
            elif isinstance(entry, x509.IPAddress):
                names.append(str(entry.value))
        return names

    def fingerprint(self) -> str:
        """SHA-256 of the DER certificate, hex."""
        return self.x509.fingerprint(hashes.SHA256()).hex()

    def to_pem(self) -> bytes:
        return self.x509.public_bytes(serialization.Encoding.PEM)

    def to_der(self) -> bytes:
        return self.x509.public_bytes(serialization.Encoding.DER)

    def matches(self, key: PublicKey) -> bool:
        """True when the certificate carries exactly ``key`` (the pinning check)."""
        return self.public_key == key

    def is_valid_at(self, when: dt.datetime) -> bool:
        return self.not_before <= when <= self.not_after

    def verify_self_signed(self) -> None:
        """Raise CertificateError unless the certificate is signed by its own key."""
        try:
            self.x509.verify_directly_issued_by(self.x509)
        except (InvalidSignature, ValueError, TypeError) as exc:
            raise CertificateError("certificate is not validly self-signed") from exc


def self_signed_certificate(
    key: PrivateKey,
    *,
    common_name: str | None = None,
    validity: dt.timedelta = DEFAULT_VALIDITY,
    not_before: dt.datetime | None = None,
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
    uris: Sequence[str] = (),
) -> Certificate:
    """Issue a certificate for ``key`` signed by itself; CN defaults to the key's designator."""
    if validity <= dt.timedelta(0):
        raise CertificateError("certificate validity must be positive")
    start = (not_before or dt.datetime.now(dt.UTC) - BACKDATE).astimezone(dt.UTC)
    cn = common_name if common_name is not None else key.public_key.designator
    if not cn or len(cn) > 64:
        raise CertificateError("a certificate common name must be 1 to 64 characters")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key.to_cryptography())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    try:
        alt_names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    except ValueError as exc:
        raise CertificateError(f"not an IP address: {exc}") from exc
    alt_names += [x509.UniformResourceIdentifier(u) for u in uris]
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    # Ed25519 signs the message itself (no separate digest); ECDSA uses SHA-256.
    algorithm = None if isinstance(key, Ed25519PrivateKey) else hashes.SHA256()
    return Certificate(builder.sign(key.to_cryptography(), algorithm))


def certificate_from_pem(data: bytes) -> Certificate:
    if CERTIFICATE_PEM_MARKER not in data:
        raise KeyFileCorruptError("not a PEM certificate")
    try:
        cert = x509.load_pem_x509_certificate(data)
        # Parse the key now so an unsupported algorithm fails here, not later.
        wrap_public_key(cert.public_key())
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CertificateError(f"cannot parse certificate: {exc}") from exc
    return Certificate(cert)


def certificate_from_der(data: bytes) -> Certificate:
    try:
        cert = x509.load_der_x509_certificate(data)
        wrap_public_key(cert.public_key())
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CertificateError(f"cannot parse certificate: {exc}") from exc
    return Certificate(cert)


def write_certificate(path: Path | str, cert: Certificate, *, overwrite: bool = False) -> Path:
    return write_bytes_secure(path, cert.to_pem(), mode=PUBLIC_FILE_MODE, overwrite=overwrite)


def load_certificate(path: Path | str) -> Certificate:
    return certificate_from_pem(read_key_file_bytes(path))
