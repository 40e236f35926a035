"""The node's blob store: content-addressed files under ``<data_dir>/blobs/``.

Layout::

    objects/<first two hex digits>/<sha256 hex>   complete, verified blobs (never rewritten)
    uploads/<random>.part                          an upload in progress (hash not known yet)
    partial/<sha256 hex>.part                      a transfer in progress (hash known: resumable)

A blob becomes visible only by an atomic rename into ``objects/`` after its bytes were
hashed while written and (for transfers) matched the expected hash, and after an fsync,
so a crash leaves either nothing or the whole blob. Chunks are written to the page cache
from the event loop (small, bounded writes); the fsync and the rehash of a partial file
left by an earlier run happen in a worker thread, as the ledger does for its segments.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from charter.multiparty.transfer.errors import BlobError, BlobNotFound, BlobTooLarge
from charter.multiparty.transfer.wire import HASH_BYTES

__all__ = [
    "DEFAULT_MAX_BLOB_BYTES",
    "BlobInfo",
    "BlobStore",
    "BlobWriter",
    "PartialBlob",
    "parse_hash",
]

DEFAULT_MAX_BLOB_BYTES = 1 << 30
"""1 GiB unless configured otherwise."""
_READ_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """A stored blob: its SHA-256 and size in bytes."""

    hash: bytes
    size: int

    @property
    def hex(self) -> str:
        return self.hash.hex()


def parse_hash(text: str) -> bytes:
    """A blob hash from 64 hex digits; ``BlobNotFound`` for anything else."""
    if len(text) != 2 * HASH_BYTES:
        raise BlobNotFound(f"{text!r} is not a blob hash (64 hex digits)")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise BlobNotFound(f"{text!r} is not a blob hash (64 hex digits)") from None


def _fsync_and_rename(f: BinaryIO, src: Path, dst: Path) -> None:
    f.flush()
    os.fsync(f.fileno())
    f.close()
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dst)
    dir_fd = os.open(dst.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class BlobWriter:
    """Streams one upload to disk, hashing as it writes; at most ``max_size`` bytes."""

    def __init__(self, store: BlobStore, max_size: int) -> None:
        self._store = store
        self.max_size = max_size
        self.path = store.root / "uploads" / f"{secrets.token_hex(16)}.part"
        self._f: BinaryIO | None = open(self.path, "xb")  # noqa: SIM115 (closed by commit/abort)
        self._sha = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        """Append ``chunk``; ``BlobTooLarge`` (and nothing kept) past the limit."""
        f = self._f
        if f is None:
            raise BlobError("this upload is already finished")
        if self.size + len(chunk) > self.max_size:
            self.abort()
            raise BlobTooLarge(f"a blob may hold at most {self.max_size} bytes")
        f.write(chunk)
        self._sha.update(chunk)
        self.size += len(chunk)

    async def commit(self) -> BlobInfo:
        """Make the blob durable and visible under its hash (a second copy is dropped)."""
        f = self._f
        if f is None:
            raise BlobError("this upload is already finished")
        self._f = None
        info = BlobInfo(self._sha.digest(), self.size)
        dst = self._store.object_path(info.hash)
        try:
            if dst.exists():
                f.close()
                self.path.unlink(missing_ok=True)
            else:
                await asyncio.to_thread(_fsync_and_rename, f, self.path, dst)
        except BaseException:
            f.close()
            self.path.unlink(missing_ok=True)
            raise
        return info

    def abort(self) -> None:
        f, self._f = self._f, None
        if f is not None:
            f.close()
        self.path.unlink(missing_ok=True)


class PartialBlob:
    """A blob being received whose hash and size are known: append, then verify.

    Its bytes survive a broken connection and a restart of the node (``partial/``), so a
    transfer continues from ``received``.
    """

    def __init__(self, store: BlobStore, hash_: bytes, size: int) -> None:
        self._store = store
        self.hash = hash_
        self.size = size
        self.path = store.root / "partial" / f"{hash_.hex()}.part"
        self._f: BinaryIO | None = None
        self._sha = hashlib.sha256()
        self.received = 0

    async def open(self) -> None:
        """Open for appending, rehashing what an earlier run left (in a worker thread)."""
        if self._f is not None:
            return

        def rehash() -> tuple[BinaryIO, int, hashlib._Hash]:
            sha = hashlib.sha256()
            f = open(self.path, "a+b")  # noqa: SIM115 (closed by close/complete/discard)
            f.seek(0)
            n = 0
            while n < self.size and (block := f.read(min(_READ_CHUNK, self.size - n))):
                sha.update(block)
                n += len(block)
            if n != f.seek(0, os.SEEK_END):  # longer than the blob: keep only what fits
                f.truncate(n)
            return f, n, sha

        self._f, self.received, self._sha = await asyncio.to_thread(rehash)

    def append(self, offset: int, chunk: bytes) -> None:
        f = self._f
        if f is None:
            raise BlobError("the partial blob is not open")
        if offset != self.received:
            raise BlobError(f"chunk at {offset}, expected {self.received}")
        if self.received + len(chunk) > self.size:
            raise BlobError("the chunk runs past the blob's size")
        f.write(chunk)
        self._sha.update(chunk)
        self.received += len(chunk)

    async def complete(self) -> bool:
        """Verify and publish; False (and the bytes discarded) if the hash does not match."""
        f = self._f
        if f is None or self.received != self.size:
            raise BlobError("the partial blob is not complete")
        self._f = None
        if self._sha.digest() != self.hash:
            f.close()
            self.path.unlink(missing_ok=True)
            return False
        await asyncio.to_thread(_fsync_and_rename, f, self.path, self._store.object_path(self.hash))
        return True

    def close(self) -> None:
        """Stop for now; the bytes stay for a later resume."""
        f, self._f = self._f, None
        if f is not None:
            f.close()

    def discard(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


class BlobStore:
    """Complete blobs by SHA-256, plus uploads and transfers in progress."""

    def __init__(self, root: Path, *, max_size: int = DEFAULT_MAX_BLOB_BYTES) -> None:
        if max_size < 0:
            raise BlobError("the blob size limit is not negative")
        self.root = root
        self.max_size = max_size
        for sub in ("objects", "uploads", "partial"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        for stale in (root / "uploads").iterdir():  # uploads do not survive a restart
            stale.unlink(missing_ok=True)

    def object_path(self, hash_: bytes) -> Path:
        if len(hash_) != HASH_BYTES:
            raise BlobNotFound("a blob hash is 32 bytes")
        h = hash_.hex()
        return self.root / "objects" / h[:2] / h

    def has(self, hash_: bytes) -> bool:
        return len(hash_) == HASH_BYTES and self.object_path(hash_).is_file()

    def path(self, hash_: bytes) -> Path:
        """The file of a complete blob; ``BlobNotFound`` if there is none."""
        p = self.object_path(hash_)
        if not p.is_file():
            raise BlobNotFound(f"no blob {hash_.hex()} here")
        return p

    def size(self, hash_: bytes) -> int:
        return self.path(hash_).stat().st_size

    def open(self, hash_: bytes) -> BinaryIO:
        return open(self.path(hash_), "rb")

    def read_chunk(self, hash_: bytes, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``offset`` (empty at or past the end)."""
        if offset < 0 or length < 0:
            raise BlobError("offset and length are not negative")
        with self.open(hash_) as f:
            f.seek(offset)
            return f.read(length)

    def writer(self, *, max_size: int | None = None) -> BlobWriter:
        """A new upload (``max_size``: a tighter limit than the store's, if given)."""
        limit = self.max_size if max_size is None else min(max_size, self.max_size)
        return BlobWriter(self, limit)

    async def put_stream(
        self, chunks: AsyncIterable[bytes], *, max_size: int | None = None
    ) -> BlobInfo:
        """Store a stream of chunks as a blob, never holding more than one chunk."""
        w = self.writer(max_size=max_size)
        try:
            async for chunk in chunks:
                w.write(chunk)
        except BaseException:
            w.abort()
            raise
        return await w.commit()

    async def put_bytes(self, data: bytes) -> BlobInfo:
        w = self.writer()
        try:
            w.write(data)
        except BaseException:
            w.abort()
            raise
        return await w.commit()

    def partial(self, hash_: bytes, size: int) -> PartialBlob:
        if size > self.max_size:
            raise BlobTooLarge(f"a blob may hold at most {self.max_size} bytes")
        return PartialBlob(self, hash_, size)

    def partial_size(self, hash_: bytes) -> int:
        """Bytes already received of a transfer in progress (0 if none)."""
        p = self.root / "partial" / f"{hash_.hex()}.part"
        try:
            return p.stat().st_size
        except FileNotFoundError:
            return 0
