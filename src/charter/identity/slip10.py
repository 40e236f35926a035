"""SLIP-10 hardened derivation of Ed25519 keys from a BIP39 seed.

One mnemonic yields a tree of independent keys (root identity, devices, nodes);
knowing a child key reveals nothing about its parent or siblings. Ed25519 admits
only hardened steps, so a path such as ``m/0'/1'`` must mark every step.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field

from charter.crypto.keys import Ed25519PrivateKey
from charter.identity.errors import DerivationPathError, NonHardenedPathError, SeedLengthError

HARDENED_OFFSET = 0x80000000
ED25519_CURVE_KEY = b"ed25519 seed"
MIN_SEED_BYTES = 16
MAX_SEED_BYTES = 64
MAX_DEPTH = 255
_STEP = re.compile(r"(0|[1-9][0-9]*)(['hH]?)")


@dataclass(frozen=True, slots=True)
class ExtendedKey:
    """A node of the derivation tree: private key and the chain code for its children."""

    private_key: bytes = field(repr=False)
    chain_code: bytes = field(repr=False)

    def public_key(self) -> bytes:
        """The raw 32-byte Ed25519 public key of this node."""
        return Ed25519PrivateKey.from_raw(self.private_key).public_key.raw

    def public_key_slip10(self) -> bytes:
        """SLIP-10's 33-byte public form: 0x00 followed by the raw key."""
        return b"\x00" + self.public_key()


def parse_path(path: str) -> tuple[int, ...]:
    """Parse ``m/0'/1'`` into child indices (hardened offset included)."""
    parts = path.strip().split("/")
    if not parts or parts[0] != "m":
        raise DerivationPathError(f"a derivation path starts with 'm', got {path!r}")
    indices: list[int] = []
    for step in parts[1:]:
        match = _STEP.fullmatch(step)
        if match is None:
            raise DerivationPathError(f"malformed step {step!r} in path {path!r}")
        number = int(match.group(1))
        if number >= HARDENED_OFFSET:
            raise DerivationPathError(f"index {number} in {path!r} is not below 2^31")
        if not match.group(2):
            raise NonHardenedPathError(
                f"step {step!r} in {path!r} is not hardened; Ed25519 derives only "
                f"hardened steps (write {step}')"
            )
        indices.append(number + HARDENED_OFFSET)
    if len(indices) > MAX_DEPTH:
        raise DerivationPathError(f"path {path!r} is deeper than {MAX_DEPTH}")
    return tuple(indices)


def format_path(indices: tuple[int, ...]) -> str:
    steps = [f"{i - HARDENED_OFFSET}'" if i >= HARDENED_OFFSET else str(i) for i in indices]
    return "/".join(["m", *steps])


def master_key(seed: bytes) -> ExtendedKey:
    if not MIN_SEED_BYTES <= len(seed) <= MAX_SEED_BYTES:
        raise SeedLengthError(
            f"a seed is {MIN_SEED_BYTES} to {MAX_SEED_BYTES} bytes, got {len(seed)}"
        )
    digest = hmac.digest(ED25519_CURVE_KEY, seed, hashlib.sha512)
    return ExtendedKey(private_key=digest[:32], chain_code=digest[32:])


def child_key(parent: ExtendedKey, index: int) -> ExtendedKey:
    if not HARDENED_OFFSET <= index <= 0xFFFFFFFF:
        raise NonHardenedPathError(f"index {index} is not hardened")
    data = b"\x00" + parent.private_key + index.to_bytes(4, "big")
    digest = hmac.digest(parent.chain_code, data, hashlib.sha512)
    return ExtendedKey(private_key=digest[:32], chain_code=digest[32:])


def derive_ed25519_node(seed: bytes, path: str) -> ExtendedKey:
    node = master_key(seed)
    for index in parse_path(path):
        node = child_key(node, index)
    return node


def derive_ed25519(seed: bytes, path: str) -> bytes:
    """The 32-byte Ed25519 private key at ``path`` (all steps hardened) below ``seed``."""
    return derive_ed25519_node(seed, path).private_key
