"""The code measurement a node presents when it joins: a digest of installed Charter.

It is the SHA-256 over the installed ``charter`` package's files (every file under the
package directory except byte-code caches), each contributing its path relative to
the package, its size and its content, in sorted path order. Two installations of the
same Charter version measure the same; any edited, added or removed file changes it.

This is an integrity check of what is installed, stated plainly: a node operator can
lie about it, because nothing here is hardware attestation. It lets members agree on
which releases may run and refuse a node that reports anything else.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import charter

_SKIP_DIRS = frozenset({"__pycache__"})
_SKIP_SUFFIXES = (".pyc", ".pyo")
_TAG = b"charter-measurement-v1\x00"


def package_root() -> Path:
    return Path(charter.__file__).resolve().parent


def measure(root: Path | None = None) -> str:
    """The hex SHA-256 measurement of the package under ``root`` (default: installed)."""
    base = (root or package_root()).resolve()
    digest = hashlib.sha256(_TAG)
    files = sorted(
        p
        for p in base.rglob("*")
        if p.is_file()
        and not _SKIP_DIRS.intersection(p.relative_to(base).parts)
        and not p.name.endswith(_SKIP_SUFFIXES)
    )
    for path in files:
        rel = path.relative_to(base).as_posix().encode("utf-8")
        data = path.read_bytes()
        digest.update(struct.pack(">I", len(rel)) + rel + struct.pack(">Q", len(data)))
        digest.update(data)
    return digest.hexdigest()


__all__ = ["measure", "package_root"]
