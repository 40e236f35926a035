"""Key files: PKCS#8 PEM, optionally passphrase-encrypted, never readable by others.

A private key file is created with mode 0600 from the start (``os.open`` with
``O_EXCL``), written under a temporary name and renamed into place, so no other
user can read it even for an instant and a crash never leaves half a key behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from charter.crypto.errors import (
    InvalidKeyError,
    KeyFileCorruptError,
    KeyFileError,
    KeyFileExistsError,
    KeyFileMissingError,
    NotEncryptedError,
    PassphraseRequiredError,
    UnsafePermissionsError,
    WrongPassphraseError,
)
from charter.crypto.keys import (
    Ed25519PrivateKey,
    P256PrivateKey,
    PrivateKey,
    PublicKey,
    require_ed25519_private,
    require_p256_private,
    wrap_private_key,
    wrap_public_key,
)

PRIVATE_FILE_MODE = 0o600
PUBLIC_FILE_MODE = 0o644
ENCRYPTED_PEM_MARKER = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"
PRIVATE_PEM_MARKERS = (
    ENCRYPTED_PEM_MARKER,
    b"-----BEGIN PRIVATE KEY-----",
    b"-----BEGIN EC PRIVATE KEY-----",
)
# Traditional (pre-PKCS#8) OpenSSL PEM marks encryption in a header instead.
LEGACY_ENCRYPTED_MARKER = b"Proc-Type: 4,ENCRYPTED"
PUBLIC_PEM_MARKER = b"-----BEGIN PUBLIC KEY-----"
CERTIFICATE_PEM_MARKER = b"-----BEGIN CERTIFICATE-----"
MAX_KEY_FILE_SIZE = 1 << 20
_NO_HARD_LINKS = frozenset(
    {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK}
)


def write_bytes_secure(
    path: Path | str, data: bytes, *, mode: int = PRIVATE_FILE_MODE, overwrite: bool = False
) -> Path:
    """Write ``data`` atomically to a file created with ``mode`` (never wider, even briefly).

    Without ``overwrite`` the final step is a hard link, which fails if the target
    appeared meanwhile, so an existing file is never clobbered.
    """
    target = Path(path)
    if target.exists() and not overwrite:
        raise KeyFileExistsError(f"{target} already exists; refusing to overwrite it")
    if not target.parent.is_dir():
        raise KeyFileMissingError(f"directory {target.parent} does not exist")
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except OSError as exc:
        raise KeyFileError(f"cannot create a file in {target.parent}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            # Exactly the requested mode, whatever the umask says.
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)
            except FileExistsError as exc:
                raise KeyFileExistsError(
                    f"{target} already exists; refusing to overwrite it"
                ) from exc
            except OSError as exc:
                if exc.errno not in _NO_HARD_LINKS:
                    raise
                # A file system without hard links: the best remaining check is a
                # last look just before the rename.
                if target.exists():
                    raise KeyFileExistsError(
                        f"{target} already exists; refusing to overwrite it"
                    ) from exc
                os.replace(tmp, target)
    except OSError as exc:
        raise KeyFileError(f"cannot write {target}: {exc.strerror}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    _fsync_directory(target.parent)
    return target


def _fsync_directory(directory: Path) -> None:
    """Make the new directory entry durable, so a crash cannot lose a fresh key."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_key_file_bytes(path: Path | str) -> bytes:
    source = Path(path)
    try:
        size = source.stat().st_size
        if size > MAX_KEY_FILE_SIZE:
            raise KeyFileCorruptError(f"{source} is too large to be a key file ({size} bytes)")
        return source.read_bytes()
    except FileNotFoundError as exc:
        raise KeyFileMissingError(f"{source} does not exist") from exc
    except IsADirectoryError as exc:
        raise KeyFileCorruptError(f"{source} is a directory, not a key file") from exc
    except PermissionError as exc:
        raise KeyFileError(f"cannot read {source}: permission denied") from exc


def check_private_permissions(path: Path | str) -> None:
    """Refuse a private key file that group or others may read or write (as ssh does)."""
    mode = stat.S_IMODE(Path(path).stat().st_mode)
    if mode & 0o077:
        raise UnsafePermissionsError(
            f"{path} has mode {mode:04o}; a private key file must be 0600 (chmod 600 {path})"
        )


def is_encrypted_pem(data: bytes) -> bool:
    return ENCRYPTED_PEM_MARKER in data or LEGACY_ENCRYPTED_MARKER in data


def private_key_from_pem(data: bytes, passphrase: bytes | None = None) -> PrivateKey:
    """Parse PKCS#8 PEM; each way it can fail is its own typed error."""
    if not any(marker in data for marker in PRIVATE_PEM_MARKERS):
        if PUBLIC_PEM_MARKER in data or CERTIFICATE_PEM_MARKER in data:
            raise KeyFileCorruptError("this holds a public key or certificate, not a private key")
        raise KeyFileCorruptError("not a PEM private key")
    encrypted = is_encrypted_pem(data)
    if encrypted and passphrase is None:
        raise PassphraseRequiredError("the key is encrypted; a passphrase is required")
    if not encrypted and passphrase is not None:
        raise NotEncryptedError("a passphrase was given but the key is not encrypted")
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except ValueError as exc:
        if encrypted:
            raise WrongPassphraseError("wrong passphrase (or a corrupted key file)") from exc
        raise KeyFileCorruptError("corrupted PEM private key") from exc
    except UnsupportedAlgorithm as exc:
        raise KeyFileCorruptError(f"unsupported key algorithm: {exc}") from exc
    except TypeError as exc:
        # The markers said otherwise, but the library disagrees about encryption.
        raise KeyFileCorruptError(f"inconsistent PEM encryption headers: {exc}") from exc
    return wrap_private_key(key)


def public_key_from_pem(data: bytes) -> PublicKey:
    if PUBLIC_PEM_MARKER not in data:
        raise KeyFileCorruptError("not a PEM public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyFileCorruptError("corrupted PEM public key") from exc
    return wrap_public_key(key)


def write_private_key(
    path: Path | str,
    key: PrivateKey,
    *,
    passphrase: bytes | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``key`` as PKCS#8 PEM with mode 0600, encrypted when a passphrase is given."""
    return write_bytes_secure(path, key.to_pem(passphrase), overwrite=overwrite)


def load_private_key(
    path: Path | str, *, passphrase: bytes | None = None, check_permissions: bool = True
) -> PrivateKey:
    data = read_key_file_bytes(path)
    if check_permissions:
        check_private_permissions(path)
    return private_key_from_pem(data, passphrase)


def load_ed25519_private_key(
    path: Path | str, *, passphrase: bytes | None = None, check_permissions: bool = True
) -> Ed25519PrivateKey:
    key = load_private_key(path, passphrase=passphrase, check_permissions=check_permissions)
    return require_ed25519_private(key)


def load_p256_private_key(
    path: Path | str, *, passphrase: bytes | None = None, check_permissions: bool = True
) -> P256PrivateKey:
    key = load_private_key(path, passphrase=passphrase, check_permissions=check_permissions)
    return require_p256_private(key)


def write_public_key(path: Path | str, key: PublicKey, *, overwrite: bool = False) -> Path:
    return write_bytes_secure(path, key.to_pem(), mode=PUBLIC_FILE_MODE, overwrite=overwrite)


def load_public_key(path: Path | str) -> PublicKey:
    return public_key_from_pem(read_key_file_bytes(path))


def read_passphrase_file(path: Path | str) -> bytes:
    """A passphrase file's first line, without its line ending; empty is an error."""
    data = read_key_file_bytes(path)
    line = data.split(b"\n", 1)[0].rstrip(b"\r")
    if not line:
        raise InvalidKeyError(f"passphrase file {path} is empty")
    return line
