"""Session keys and the gcrypt-style s-expression forms CapTP puts on the wire.

Public keys travel as ``['public-key ['ecc ['curve 'Ed25519] ['flags 'eddsa] ['q Q]]]``
and signatures as ``['sig-val ['eddsa ['r R] ['s S]]]``; public IDs and session IDs are
double SHA-256 hashes of those encodings, as the specification defines them.
"""

from __future__ import annotations

import hashlib
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from charter.codec.syrup import Symbol, encode
from charter.ocapn.captp.errors import ProtocolError

_PUBLIC_KEY = Symbol("public-key")
_ECC = Symbol("ecc")
_CURVE = Symbol("curve")
_ED25519 = Symbol("Ed25519")
_FLAGS = Symbol("flags")
_EDDSA = Symbol("eddsa")
_Q = Symbol("q")
_SIG_VAL = Symbol("sig-val")
_R = Symbol("r")
_S = Symbol("s")


def public_key_value(raw: bytes) -> list[Any]:
    """The wire form of a raw 32-byte Ed25519 public key."""
    return [_PUBLIC_KEY, [_ECC, [_CURVE, _ED25519], [_FLAGS, _EDDSA], [_Q, raw]]]


def parse_public_key(value: Any) -> bytes:
    """The raw 32-byte key of a wire public key; ``ProtocolError`` if malformed."""
    try:
        head, body = value
        ecc, curve, flags, q = body
        ok = (
            head == _PUBLIC_KEY
            and ecc == _ECC
            and curve == [_CURVE, _ED25519]
            and flags == [_FLAGS, _EDDSA]
            and isinstance(q, list)
            and len(q) == 2
            and q[0] == _Q
        )
    except (TypeError, ValueError):
        ok = False
    if not ok or not isinstance(q[1], bytes) or len(q[1]) != 32:
        raise ProtocolError("malformed public key")
    raw: bytes = q[1]
    return raw


def signature_value(sig: bytes) -> list[Any]:
    """The wire form of a 64-byte Ed25519 signature."""
    return [_SIG_VAL, [_EDDSA, [_R, sig[:32]], [_S, sig[32:]]]]


def parse_signature(value: Any) -> bytes:
    """The 64 raw signature bytes of a wire signature; ``ProtocolError`` if malformed."""
    try:
        head, body = value
        eddsa, r, s = body
        ok = (
            head == _SIG_VAL
            and eddsa == _EDDSA
            and isinstance(r, list)
            and isinstance(s, list)
            and len(r) == 2
            and len(s) == 2
            and r[0] == _R
            and s[0] == _S
            and isinstance(r[1], bytes)
            and isinstance(s[1], bytes)
            and len(r[1]) == 32
            and len(s[1]) == 32
        )
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ProtocolError("malformed signature")
    return bytes(r[1] + s[1])


def public_id(raw_key: bytes) -> bytes:
    """A side's Public ID: sha256(sha256(encoded public key))."""
    return hashlib.sha256(hashlib.sha256(encode(public_key_value(raw_key))).digest()).digest()


def session_id(key_a: bytes, key_b: bytes) -> bytes:
    """The Session ID both sides compute from their two raw public keys."""
    ids = sorted((public_id(key_a), public_id(key_b)))
    return hashlib.sha256(hashlib.sha256(b"prot0" + ids[0] + ids[1]).digest()).digest()


def verify(raw_key: bytes, signature: bytes, data: bytes) -> bool:
    """True when ``signature`` by ``raw_key`` over ``data`` is valid."""
    try:
        Ed25519PublicKey.from_public_bytes(raw_key).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


class SessionKey:
    """A per-session Ed25519 key pair (fresh for each session, as the spec requires)."""

    __slots__ = ("_private", "public")

    def __init__(self, private: Ed25519PrivateKey | None = None) -> None:
        self._private = private if private is not None else Ed25519PrivateKey.generate()
        self.public: bytes = self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)

    @property
    def public_id(self) -> bytes:
        return public_id(self.public)
