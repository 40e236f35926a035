"""Self-signed certificates: keys extracted from them match the keys that made them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from charter.crypto import (
    CertificateError,
    Ed25519PrivateKey,
    KeyAlgorithm,
    KeyFileCorruptError,
    certificate_from_der,
    certificate_from_pem,
    generate_private_key,
    load_certificate,
    self_signed_certificate,
    write_certificate,
)


@pytest.mark.parametrize("algorithm", list(KeyAlgorithm))
def test_certificate_round_trip(tmp_path: Path, algorithm: KeyAlgorithm) -> None:
    key = generate_private_key(algorithm)
    cert = self_signed_certificate(key, dns_names=["node1.local"], ip_addresses=["127.0.0.1"])
    cert.verify_self_signed()
    path = write_certificate(tmp_path / "c.crt", cert)
    loaded = load_certificate(path)
    assert loaded.public_key == key.public_key
    assert loaded.matches(key.public_key)
    assert not loaded.matches(generate_private_key(algorithm).public_key)
    assert loaded.common_name == key.public_key.designator
    assert loaded.subject_alt_names == ["node1.local", "127.0.0.1"]
    assert loaded.fingerprint() == cert.fingerprint()
    assert loaded.serial_number == cert.serial_number
    assert certificate_from_der(cert.to_der()).public_key == key.public_key
    now = dt.datetime.now(dt.UTC)
    assert loaded.is_valid_at(now)
    assert not loaded.is_valid_at(now + dt.timedelta(days=400))


def test_explicit_name_and_window() -> None:
    key = Ed25519PrivateKey.generate()
    start = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    cert = self_signed_certificate(
        key, common_name="node-1", not_before=start, validity=dt.timedelta(days=2)
    )
    assert cert.common_name == "node-1"
    assert cert.not_before == start
    assert cert.not_after == start + dt.timedelta(days=2)
    assert cert.subject_alt_names == []


@pytest.mark.parametrize("algorithm", list(KeyAlgorithm))
def test_damaged_signature_is_detected(algorithm: KeyAlgorithm) -> None:
    cert = self_signed_certificate(generate_private_key(algorithm))
    der = bytearray(cert.to_der())
    der[-3] ^= 0x01  # inside the signature value, which closes the DER
    with pytest.raises(CertificateError) as info:
        certificate_from_der(bytes(der)).verify_self_signed()
    assert info.value.code == "crypto.cert.invalid"


def test_bad_inputs() -> None:
    key = Ed25519PrivateKey.generate()
    with pytest.raises(CertificateError):
        self_signed_certificate(key, validity=dt.timedelta(0))
    with pytest.raises(CertificateError):
        self_signed_certificate(key, common_name="x" * 65)
    with pytest.raises(CertificateError):
        self_signed_certificate(key, ip_addresses=["not-an-ip"])
    with pytest.raises(KeyFileCorruptError):
        certificate_from_pem(b"not pem")
    with pytest.raises(CertificateError):
        certificate_from_pem(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(CertificateError):
        certificate_from_der(b"\x30\x00")
