"""Root identities from mnemonics, derived keys and attestation chains."""

from charter.identity.errors import (
    DerivationError,
    DerivationPathError,
    IdentityError,
    MnemonicChecksumError,
    MnemonicError,
    MnemonicLengthError,
    MnemonicWordError,
    NonHardenedPathError,
    SeedLengthError,
)
from charter.identity.mnemonic import (
    generate_mnemonic,
    mnemonic_to_seed,
    validate_mnemonic,
)
from charter.identity.root import ROOT_PATH, RootIdentity, device_path, node_path
from charter.identity.slip10 import derive_ed25519, derive_ed25519_node, parse_path

__all__ = [
    "ROOT_PATH",
    "DerivationError",
    "DerivationPathError",
    "IdentityError",
    "MnemonicChecksumError",
    "MnemonicError",
    "MnemonicLengthError",
    "MnemonicWordError",
    "NonHardenedPathError",
    "RootIdentity",
    "SeedLengthError",
    "derive_ed25519",
    "derive_ed25519_node",
    "device_path",
    "generate_mnemonic",
    "mnemonic_to_seed",
    "node_path",
    "parse_path",
    "validate_mnemonic",
]
