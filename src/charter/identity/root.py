"""Root identities: a 24-word mnemonic and the tree of Ed25519 keys it derives.

The root key signs attestations for the device, node and member keys below it;
those are derived at their own hardened paths, so losing a device key never
exposes the root, and the words alone recover every key.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from charter.crypto.keys import Ed25519PrivateKey
from charter.identity.mnemonic import generate_mnemonic, mnemonic_to_seed, validate_mnemonic
from charter.identity.slip10 import derive_ed25519

ROOT_PATH = "m/0'"
"""Where a mnemonic's root identity key lives."""


def device_path(index: int) -> str:
    """Conventional path of the ``index``-th device key."""
    return f"m/1'/{index}'"


def node_path(index: int) -> str:
    """Conventional path of the ``index``-th node key."""
    return f"m/2'/{index}'"


@dataclass(frozen=True, slots=True)
class RootIdentity:
    """A BIP39 mnemonic's seed; repr shows only the root public key."""

    seed: bytes = field(repr=False)

    @classmethod
    def generate(cls) -> tuple[RootIdentity, str]:
        """A new identity and its 24 words (show them once; they are the only backup)."""
        words = generate_mnemonic()
        return cls.from_mnemonic(words), words

    @classmethod
    def from_mnemonic(cls, words: str, passphrase: str = "") -> RootIdentity:
        return cls(seed=mnemonic_to_seed(validate_mnemonic(words), passphrase))

    def derive(self, path: str) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_raw(derive_ed25519(self.seed, path))

    def root_key(self) -> Ed25519PrivateKey:
        return self.derive(ROOT_PATH)

    def __repr__(self) -> str:
        return f"RootIdentity(root={self.root_key().public_key.designator})"
