"""BIP39 mnemonics: the 24 words a person writes down to hold a root identity.

Generation uses 256 bits of entropy; validation tells apart a wrong word count,
an unknown word and a bad checksum, because each asks the user for a different fix.
"""

from __future__ import annotations

import unicodedata

from mnemonic import Mnemonic

from charter.identity.errors import (
    MnemonicChecksumError,
    MnemonicLengthError,
    MnemonicWordError,
)

ROOT_ENTROPY_BITS = 256
VALID_WORD_COUNTS = (12, 15, 18, 21, 24)
_ENGLISH = Mnemonic("english")
_WORDS = frozenset(_ENGLISH.wordlist)


def generate_mnemonic() -> str:
    """A fresh 24-word English mnemonic from 256 bits of OS entropy."""
    return str(_ENGLISH.generate(strength=ROOT_ENTROPY_BITS))


def entropy_to_mnemonic(entropy: bytes) -> str:
    if len(entropy) * 8 not in (128, 160, 192, 224, 256):
        raise MnemonicLengthError(f"entropy must be 16, 20, 24, 28 or 32 bytes, got {len(entropy)}")
    return str(_ENGLISH.to_mnemonic(entropy))


def normalize_mnemonic(words: str) -> str:
    """NFKD, lower case, single spaces: the form BIP39 hashes."""
    return " ".join(unicodedata.normalize("NFKD", words).lower().split())


def validate_mnemonic(words: str) -> str:
    """Return the normalized mnemonic or raise a typed error saying what is wrong."""
    normalized = normalize_mnemonic(words)
    word_list = normalized.split(" ") if normalized else []
    if len(word_list) not in VALID_WORD_COUNTS:
        counts = ", ".join(str(n) for n in VALID_WORD_COUNTS)
        raise MnemonicLengthError(f"a mnemonic has {counts} words, got {len(word_list)}")
    unknown = [(i + 1, w) for i, w in enumerate(word_list) if w not in _WORDS]
    if unknown:
        where = ", ".join(f"#{pos} {word!r}" for pos, word in unknown[:3])
        raise MnemonicWordError(f"not in the BIP39 English word list: {where}")
    if not _ENGLISH.check(normalized):
        raise MnemonicChecksumError(
            "mnemonic checksum does not match: a word is wrong or the order is off"
        )
    return normalized


def mnemonic_to_entropy(words: str) -> bytes:
    return bytes(_ENGLISH.to_entropy(validate_mnemonic(words)))


def mnemonic_to_seed(words: str, passphrase: str = "") -> bytes:
    """The 64-byte BIP39 seed (PBKDF2-HMAC-SHA512, 2048 rounds) of a validated mnemonic."""
    return bytes(Mnemonic.to_seed(validate_mnemonic(words), passphrase))
