"""The explorer's files, read once from the package and served from memory.

The set of servable files is fixed when the bundle is built: a request names a key of
that set or gets a 404, so no request path ever reaches the file system (no traversal,
no symlink surprises, no blocking reads on the event loop).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Final

__all__ = ["CONTENT_TYPES", "StaticBundle", "StaticFile"]

CONTENT_TYPES: Final[dict[str, str]] = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".ico": "image/x-icon",
    ".png": "image/png",
}
"""Only these suffixes are shipped; module scripts need an exact JavaScript type."""

MAX_FILES: Final = 256
MAX_FILE_BYTES: Final = 1 << 20


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str


class StaticBundle:
    """The files under one package directory, by their path relative to it."""

    def __init__(self, files: dict[str, StaticFile]) -> None:
        self._files = dict(files)

    @classmethod
    def from_package(cls, package: str = "charter.ui", folder: str = "static") -> StaticBundle:
        root = resources.files(package).joinpath(folder)
        files: dict[str, StaticFile] = {}
        _collect(root, "", files)
        if "index.html" not in files:
            raise FileNotFoundError(f"{package}/{folder}/index.html is not installed")
        return cls(files)

    def get(self, path: str) -> StaticFile | None:
        return self._files.get(path)

    def paths(self) -> list[str]:
        return sorted(self._files)


def _collect(folder: Traversable, prefix: str, out: dict[str, StaticFile]) -> None:
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        rel = f"{prefix}{entry.name}"
        if entry.is_dir():
            _collect(entry, f"{rel}/", out)
            continue
        suffix = entry.name[entry.name.rfind(".") :] if "." in entry.name else ""
        content_type = CONTENT_TYPES.get(suffix)
        if content_type is None:
            continue
        body = entry.read_bytes()
        if len(body) > MAX_FILE_BYTES or len(out) >= MAX_FILES:
            raise ValueError(f"explorer file {rel} is too large or one too many")
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        out[rel] = StaticFile(body, content_type, etag)
