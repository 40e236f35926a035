"""Key files: PEM round trips, 0600 from creation, and every typed failure."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from charter.crypto import (
    Ed25519PrivateKey,
    InvalidKeyError,
    KeyAlgorithm,
    KeyFileCorruptError,
    KeyFileExistsError,
    KeyFileMissingError,
    NotEncryptedError,
    P256PrivateKey,
    PassphraseRequiredError,
    UnsafePermissionsError,
    WrongKeyTypeError,
    WrongPassphraseError,
    generate_private_key,
    load_ed25519_private_key,
    load_p256_private_key,
    load_private_key,
    load_public_key,
    read_passphrase_file,
    write_private_key,
    write_public_key,
)
from charter.crypto.keyfile import (
    is_encrypted_pem,
    private_key_from_pem,
    public_key_from_pem,
    write_bytes_secure,
)

PASS = b"correct horse battery staple"


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("algorithm", list(KeyAlgorithm))
@pytest.mark.parametrize("passphrase", [None, PASS])
def test_round_trip(tmp_path: Path, algorithm: KeyAlgorithm, passphrase: bytes | None) -> None:
    key = generate_private_key(algorithm)
    path = write_private_key(tmp_path / "k.pem", key, passphrase=passphrase)
    assert mode_of(path) == 0o600
    data = path.read_bytes()
    assert data.startswith(b"-----BEGIN ")
    assert is_encrypted_pem(data) == (passphrase is not None)
    loaded = load_private_key(path, passphrase=passphrase)
    assert loaded.public_key == key.public_key
    assert loaded.private_bytes_raw() == key.private_bytes_raw()


def test_mode_is_0600_even_with_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = write_private_key(tmp_path / "k.pem", Ed25519PrivateKey.generate())
    finally:
        os.umask(old)
    assert mode_of(path) == 0o600


def test_file_is_created_with_0600(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The mode is given to open() itself, so the file is never wider, not even briefly."""
    created: list[tuple[int, int]] = []
    real_open = os.open

    def spy(path: str, flags: int, mode: int = 0o777) -> int:
        if flags & os.O_CREAT:
            created.append((flags & os.O_EXCL, mode))
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", spy)
    write_private_key(tmp_path / "k.pem", Ed25519PrivateKey.generate())
    assert created == [(os.O_EXCL, 0o600)]


def test_no_clobber_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file that appears between the first check and the final step is not replaced."""
    target = tmp_path / "k.pem"
    real_link = os.link

    def racing_link(src: str, dst: str) -> None:
        Path(dst).write_bytes(b"someone else")
        real_link(src, dst)

    monkeypatch.setattr(os, "link", racing_link)
    with pytest.raises(KeyFileExistsError):
        write_private_key(target, Ed25519PrivateKey.generate())
    assert target.read_bytes() == b"someone else"
    assert [p.name for p in tmp_path.iterdir()] == ["k.pem"]


def test_file_system_without_hard_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_link(src: str, dst: str) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_link)
    key = Ed25519PrivateKey.generate()
    path = write_private_key(tmp_path / "k.pem", key)
    assert load_private_key(path).public_key == key.public_key
    assert mode_of(path) == 0o600
    with pytest.raises(KeyFileExistsError):
        write_private_key(path, key)


def test_no_temporary_file_left_behind(tmp_path: Path) -> None:
    write_private_key(tmp_path / "k.pem", Ed25519PrivateKey.generate())
    assert [p.name for p in tmp_path.iterdir()] == ["k.pem"]


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    path = write_private_key(tmp_path / "k.pem", Ed25519PrivateKey.generate())
    before = path.read_bytes()
    with pytest.raises(KeyFileExistsError) as info:
        write_private_key(path, Ed25519PrivateKey.generate())
    assert info.value.code == "crypto.keyfile.exists"
    assert path.read_bytes() == before
    replacement = Ed25519PrivateKey.generate()
    write_private_key(path, replacement, overwrite=True)
    assert load_private_key(path).public_key == replacement.public_key


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(KeyFileMissingError):
        write_private_key(tmp_path / "no" / "k.pem", Ed25519PrivateKey.generate())


def test_wrong_passphrase(tmp_path: Path) -> None:
    path = write_private_key(tmp_path / "k.pem", Ed25519PrivateKey.generate(), passphrase=PASS)
    with pytest.raises(WrongPassphraseError) as info:
        load_private_key(path, passphrase=b"wrong")
    assert info.value.code == "crypto.keyfile.passphrase_wrong"


def test_passphrase_missing(tmp_path: Path) -> None:
    path = write_private_key(tmp_path / "k.pem", Ed25519PrivateKey.generate(), passphrase=PASS)
    with pytest.raises(PassphraseRequiredError) as info:
        load_private_key(path)
    assert info.value.code == "crypto.keyfile.passphrase_required"


def test_passphrase_for_unencrypted_key(tmp_path: Path) -> None:
    path = write_private_key(tmp_path / "k.pem", Ed25519PrivateKey.generate())
    with pytest.raises(NotEncryptedError):
        load_private_key(path, passphrase=PASS)


def test_empty_passphrase_refused() -> None:
    with pytest.raises(InvalidKeyError):
        Ed25519PrivateKey.generate().to_pem(b"")


def test_wrong_key_type(tmp_path: Path) -> None:
    p256 = write_private_key(tmp_path / "p.pem", P256PrivateKey.generate())
    ed = write_private_key(tmp_path / "e.pem", Ed25519PrivateKey.generate())
    with pytest.raises(WrongKeyTypeError) as info:
        load_ed25519_private_key(p256)
    assert info.value.code == "crypto.key.wrong_type"
    with pytest.raises(WrongKeyTypeError):
        load_p256_private_key(ed)
    assert isinstance(load_ed25519_private_key(ed), Ed25519PrivateKey)
    assert isinstance(load_p256_private_key(p256), P256PrivateKey)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileMissingError) as info:
        load_private_key(tmp_path / "absent.pem")
    assert info.value.code == "crypto.keyfile.missing"


def test_directory_is_not_a_key(tmp_path: Path) -> None:
    with pytest.raises(KeyFileCorruptError):
        load_private_key(tmp_path)


def test_legacy_encrypted_pem_needs_passphrase(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    pem = (
        P256PrivateKey.generate()
        .to_cryptography()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.BestAvailableEncryption(PASS),
        )
    )
    assert b"Proc-Type: 4,ENCRYPTED" in pem
    with pytest.raises(PassphraseRequiredError):
        private_key_from_pem(pem)
    with pytest.raises(WrongPassphraseError):
        private_key_from_pem(pem, b"wrong")
    assert isinstance(private_key_from_pem(pem, PASS), P256PrivateKey)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"hello world",
        b"\x00\xff" * 50,
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    ],
)
def test_corrupted_or_non_pem(tmp_path: Path, content: bytes) -> None:
    path = write_bytes_secure(tmp_path / "bad.pem", content)
    with pytest.raises(KeyFileCorruptError) as info:
        load_private_key(path)
    assert info.value.code == "crypto.keyfile.corrupt"


def test_truncated_pem(tmp_path: Path) -> None:
    pem = Ed25519PrivateKey.generate().to_pem()
    lines = pem.splitlines(keepends=True)
    broken = lines[0] + lines[1][:10] + b"\n" + lines[-1]
    with pytest.raises(KeyFileCorruptError):
        private_key_from_pem(broken)


def test_damaged_encrypted_key_is_reported(tmp_path: Path) -> None:
    pem = bytearray(Ed25519PrivateKey.generate().to_pem(PASS))
    # Flip a base64 character well inside the body: decryption or parsing must fail.
    pos = len(pem) // 2
    pem[pos] = ord("A") if pem[pos] != ord("A") else ord("B")
    with pytest.raises((WrongPassphraseError, KeyFileCorruptError)):
        private_key_from_pem(bytes(pem), PASS)


def test_public_key_is_not_a_private_key(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    path = write_public_key(tmp_path / "k.pub", key.public_key)
    with pytest.raises(KeyFileCorruptError, match="public key or certificate"):
        load_private_key(path, check_permissions=False)
    assert load_public_key(path) == key.public_key
    assert mode_of(path) == 0o644
    with pytest.raises(KeyFileCorruptError):
        public_key_from_pem(b"junk")
    with pytest.raises(KeyFileCorruptError):
        public_key_from_pem(b"-----BEGIN PUBLIC KEY-----\nAA\n-----END PUBLIC KEY-----\n")


def test_unsafe_permissions(tmp_path: Path) -> None:
    path = write_private_key(tmp_path / "k.pem", Ed25519PrivateKey.generate())
    path.chmod(0o644)
    with pytest.raises(UnsafePermissionsError) as info:
        load_private_key(path)
    assert info.value.code == "crypto.keyfile.unsafe_permissions"
    assert load_private_key(path, check_permissions=False) is not None


def test_passphrase_file(tmp_path: Path) -> None:
    path = tmp_path / "pass"
    path.write_bytes(b"s3cret\r\nignored\n")
    assert read_passphrase_file(path) == b"s3cret"
    path.write_bytes(b"\n")
    with pytest.raises(InvalidKeyError):
        read_passphrase_file(path)
    with pytest.raises(KeyFileMissingError):
        read_passphrase_file(tmp_path / "none")
