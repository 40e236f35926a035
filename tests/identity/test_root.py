"""Root identities: the words recover the same keys; paths separate roles."""

from __future__ import annotations

from charter.identity.root import ROOT_PATH, RootIdentity, device_path, node_path
from charter.identity.slip10 import derive_ed25519

WORDS = (
    "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon "
    "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon "
    "abandon art"
)


def test_generate_and_recover() -> None:
    identity, words = RootIdentity.generate()
    recovered = RootIdentity.from_mnemonic(words)
    assert recovered.seed == identity.seed
    assert recovered.root_key().public_key == identity.root_key().public_key


def test_root_key_is_at_root_path() -> None:
    identity = RootIdentity.from_mnemonic(WORDS)
    assert identity.root_key().private_bytes_raw() == derive_ed25519(identity.seed, ROOT_PATH)


def test_roles_get_distinct_keys() -> None:
    identity = RootIdentity.from_mnemonic(WORDS)
    keys = {
        identity.root_key().public_key,
        identity.derive(device_path(0)).public_key,
        identity.derive(device_path(1)).public_key,
        identity.derive(node_path(0)).public_key,
    }
    assert len(keys) == 4


def test_passphrase_gives_another_identity() -> None:
    plain = RootIdentity.from_mnemonic(WORDS)
    hidden = RootIdentity.from_mnemonic(WORDS, passphrase="extra")
    assert plain.root_key().public_key != hidden.root_key().public_key


def test_repr_hides_seed() -> None:
    identity = RootIdentity.from_mnemonic(WORDS)
    assert identity.seed.hex() not in repr(identity)
    assert identity.root_key().public_key.designator in repr(identity)
