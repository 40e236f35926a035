"""Key wrappers: sign/verify, text forms, fingerprints and typed errors."""

from __future__ import annotations

import hashlib

import pytest

from charter.crypto import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
    InvalidKeyError,
    KeyAlgorithm,
    P256PrivateKey,
    P256PublicKey,
    SignatureError,
    WrongKeyTypeError,
    generate_private_key,
    public_key_from_hex,
)
from charter.crypto.keys import (
    b64url,
    b64url_decode,
    ecdsa_der_to_raw,
    ecdsa_raw_to_der,
    parse_algorithm,
    public_key_from_spki_der,
    require_ed25519_private,
    require_ed25519_public,
    require_p256_private,
)

# RFC 8032 section 7.1, test 1: a fixed secret gives a fixed public key and signature.
RFC8032_SECRET = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
RFC8032_PUBLIC = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
RFC8032_SIG = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"


def test_ed25519_rfc8032_vector() -> None:
    key = Ed25519PrivateKey.from_raw(bytes.fromhex(RFC8032_SECRET))
    assert key.public_key.hex() == RFC8032_PUBLIC
    assert key.sign(b"").hex() == RFC8032_SIG
    assert key.private_bytes_raw().hex() == RFC8032_SECRET
    key.public_key.verify(bytes.fromhex(RFC8032_SIG), b"")


@pytest.mark.parametrize("algorithm", list(KeyAlgorithm))
def test_sign_verify_and_reject(algorithm: KeyAlgorithm) -> None:
    key = generate_private_key(algorithm)
    sig = key.sign(b"charter")
    key.public_key.verify(sig, b"charter")
    assert key.public_key.is_valid(sig, b"charter")
    assert not key.public_key.is_valid(sig, b"charteR")
    tampered = bytearray(sig)
    tampered[len(tampered) // 2] ^= 0x01
    with pytest.raises(SignatureError) as info:
        key.public_key.verify(bytes(tampered), b"charter")
    assert info.value.code == "crypto.signature.invalid"
    other = generate_private_key(algorithm)
    assert not other.public_key.is_valid(sig, b"charter")


def test_ed25519_signature_of_wrong_length_is_refused() -> None:
    key = Ed25519PrivateKey.generate()
    with pytest.raises(SignatureError):
        key.public_key.verify(key.sign(b"x")[:-1], b"x")


def test_p256_signature_is_der() -> None:
    key = P256PrivateKey.generate()
    sig = key.sign(b"root")
    assert sig[0] == 0x30  # DER SEQUENCE
    assert len(key.public_key.raw) == 65
    assert len(key.public_key.compact) == 33
    assert P256PublicKey.from_raw(key.public_key.compact) == key.public_key


@pytest.mark.parametrize("algorithm", list(KeyAlgorithm))
def test_text_forms_round_trip(algorithm: KeyAlgorithm) -> None:
    pub = generate_private_key(algorithm).public_key
    assert public_key_from_hex(pub.hex()) == pub
    assert public_key_from_hex("0x" + pub.hex().upper()) == pub
    assert b64url_decode(pub.b64()) == pub.raw
    assert "=" not in pub.b64()
    assert public_key_from_spki_der(pub.spki_der()) == pub
    assert pub.fingerprint() == hashlib.sha256(pub.spki_der()).hexdigest()
    assert pub.designator.startswith(f"{algorithm.value}:")
    assert len(pub.designator) <= 64
    assert pub.designator in repr(pub)
    assert hash(public_key_from_hex(pub.hex())) == hash(pub)


def test_private_key_repr_hides_secret() -> None:
    key = Ed25519PrivateKey.generate()
    assert key.private_bytes_raw().hex() not in repr(key)
    assert key.public_key.designator in repr(key)


def test_p256_private_raw_round_trip() -> None:
    key = P256PrivateKey.generate()
    again = P256PrivateKey.from_raw(key.private_bytes_raw())
    assert again.public_key == key.public_key


def test_equality_is_by_algorithm_and_bytes() -> None:
    a = Ed25519PrivateKey.generate().public_key
    assert a == Ed25519PublicKey.from_raw(a.raw)
    assert a != Ed25519PrivateKey.generate().public_key
    assert a != P256PrivateKey.generate().public_key
    assert a.__eq__("x") is NotImplemented


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("zz", "not a hex string"),
        ("00" * 31, "31 bytes"),
        ("00" * 40, "40 bytes"),
    ],
)
def test_public_key_from_hex_errors(text: str, fragment: str) -> None:
    with pytest.raises(InvalidKeyError, match=fragment) as info:
        public_key_from_hex(text)
    assert info.value.code == "crypto.key.invalid"


def test_invalid_raw_material() -> None:
    with pytest.raises(InvalidKeyError):
        Ed25519PublicKey.from_raw(b"\x00" * 31)
    with pytest.raises(InvalidKeyError):
        Ed25519PrivateKey.from_raw(b"\x00" * 33)
    with pytest.raises(InvalidKeyError):
        P256PublicKey.from_raw(b"\x04" + b"\x00" * 64)  # not on the curve
    with pytest.raises(InvalidKeyError):
        P256PublicKey.from_raw(b"\x04" * 10)
    with pytest.raises(InvalidKeyError):
        P256PrivateKey.from_raw(b"\x00" * 32)  # zero scalar
    with pytest.raises(InvalidKeyError):
        P256PrivateKey.from_raw(b"\x01" * 31)
    with pytest.raises(InvalidKeyError):
        public_key_from_spki_der(b"not der")
    with pytest.raises(InvalidKeyError):
        b64url_decode("a")


def test_wrong_key_type_errors() -> None:
    p256 = P256PrivateKey.generate()
    ed = Ed25519PrivateKey.generate()
    with pytest.raises(WrongKeyTypeError) as info:
        require_ed25519_private(p256)
    assert info.value.code == "crypto.key.wrong_type"
    with pytest.raises(WrongKeyTypeError):
        require_ed25519_public(p256.public_key)
    with pytest.raises(WrongKeyTypeError):
        require_p256_private(ed)
    assert require_ed25519_private(ed) is ed


def test_parse_algorithm() -> None:
    assert parse_algorithm("Ed25519") is KeyAlgorithm.ED25519
    assert parse_algorithm("P-256") is KeyAlgorithm.P256
    with pytest.raises(InvalidKeyError, match="unknown key type"):
        parse_algorithm("rsa")


def test_b64url_has_no_padding() -> None:
    assert b64url(b"\xff") == "_w"
    assert b64url_decode("_w") == b"\xff"


def test_p256_raw_signature_form() -> None:
    key = P256PrivateKey.generate()
    raw = key.sign_raw(b"root")
    assert len(raw) == 64
    key.public_key.verify_raw(raw, b"root")
    der = ecdsa_raw_to_der(raw)
    key.public_key.verify(der, b"root")
    assert ecdsa_der_to_raw(der) == raw
    tampered = bytearray(raw)
    tampered[5] ^= 0x10
    with pytest.raises(SignatureError):
        key.public_key.verify_raw(bytes(tampered), b"root")
    with pytest.raises(SignatureError):
        key.public_key.verify_raw(raw[:-1], b"root")
    with pytest.raises(SignatureError):
        ecdsa_der_to_raw(b"\x30\x00junk")


def test_p256_raw_signature_keeps_leading_zeros() -> None:
    der = ecdsa_raw_to_der(b"\x00" * 31 + b"\x01" + b"\x00" * 31 + b"\x02")
    assert ecdsa_der_to_raw(der) == b"\x00" * 31 + b"\x01" + b"\x00" * 31 + b"\x02"
