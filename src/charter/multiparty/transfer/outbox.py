"""Batches this node has sent and not every recipient has acknowledged yet.

Each entry is two files under the outbox directory: ``<hash>.batch`` (the signed batch,
written once) and ``<hash>.to`` (the recipients still owed it). A new entry writes
``.to`` then ``.batch``, each fsynced and renamed into place, before ``send_batch``
returns; an acknowledgement rewrites ``.to`` (renamed, not fsynced: losing it only
means one more delivery, which receivers ignore by hash) and the last one deletes both.
At start a ``.batch`` without ``.to`` is finished and a ``.to`` without ``.batch`` was
never sent: both are removed.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from charter.codec.syrup import Record, Symbol, SyrupError, decode, encode
from charter.multiparty.transfer.errors import OutboxFull, TransferError
from charter.multiparty.transfer.wire import BlobRef, parse_blob_refs

__all__ = ["Outbox", "OutboxEntry"]

_LABEL = Symbol("charter-mp-outbox-v1")


@dataclass(slots=True)
class OutboxEntry:
    hash: bytes
    data: bytes
    signature: bytes
    blobs: tuple[BlobRef, ...]
    remaining: set[str] = field(default_factory=set)

    def wire_blobs(self) -> list[Any]:
        return [b.to_wire() for b in self.blobs]


def _write(path: Path, data: bytes, *, sync: bool) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        if sync:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Outbox:
    """Entries in the order they were added; kept on disk when ``directory`` is given."""

    def __init__(self, directory: Path | None, *, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.entries: dict[bytes, OutboxEntry] = {}
        self._owed: dict[str, dict[bytes, None]] = {}
        """Per recipient, the hashes it is owed in the order they were added."""
        self.bytes = 0
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            self._load(directory)

    def _load(self, directory: Path) -> None:
        found: list[tuple[float, OutboxEntry]] = []
        for p in directory.iterdir():
            if p.name.endswith(".tmp"):
                p.unlink(missing_ok=True)
        for p in directory.glob("*.batch"):
            to = p.with_suffix(".to")
            if not to.exists():
                p.unlink(missing_ok=True)
                continue
            try:
                rec = decode(p.read_bytes())
                remaining = decode(to.read_bytes())
                if (
                    type(rec) is not Record
                    or rec.label != _LABEL
                    or len(rec.fields) != 4
                    or type(remaining) is not list
                    or not all(type(n) is str for n in remaining)
                ):
                    raise TransferError("not an outbox entry")
                h, data, sig, blobs = rec.fields
                entry = OutboxEntry(h, data, sig, parse_blob_refs(blobs), set(remaining))
            except (SyrupError, TransferError) as exc:
                raise TransferError(f"outbox entry {p} is damaged: {exc}") from exc
            found.append((p.stat().st_mtime, entry))
        for p in directory.glob("*.to"):
            if not p.with_suffix(".batch").exists():
                p.unlink(missing_ok=True)
        for _, entry in sorted(found, key=lambda t: t[0]):
            self.entries[entry.hash] = entry
            self.bytes += len(entry.data)
            for node in entry.remaining:
                self._owed.setdefault(node, {})[entry.hash] = None

    def _paths(self, h: bytes) -> tuple[Path, Path]:
        assert self.directory is not None
        return self.directory / f"{h.hex()}.batch", self.directory / f"{h.hex()}.to"

    async def add(self, entry: OutboxEntry) -> OutboxEntry:
        """Keep ``entry`` until every recipient acknowledged it (merging a resend)."""
        existing = self.entries.get(entry.hash)
        if existing is not None:
            entry = OutboxEntry(
                existing.hash,
                existing.data,
                existing.signature,
                existing.blobs,
                existing.remaining | entry.remaining,
            )
        elif self.bytes + len(entry.data) > self.max_bytes:
            raise OutboxFull(
                f"{self.bytes} bytes of batches await delivery (limit {self.max_bytes})"
            )
        if self.directory is not None:
            batch_path, to_path = self._paths(entry.hash)
            record = encode(
                Record(_LABEL, entry.hash, entry.data, entry.signature, entry.wire_blobs())
            )
            remaining = encode(sorted(entry.remaining))
            directory = self.directory

            def persist() -> None:
                _write(to_path, remaining, sync=True)
                if existing is None:
                    _write(batch_path, record, sync=True)
                _sync_dir(directory)

            await asyncio.to_thread(persist)
        if existing is None:
            self.bytes += len(entry.data)
        self.entries[entry.hash] = entry
        for node in entry.remaining:
            self._owed.setdefault(node, {})[entry.hash] = None
        return entry

    def acked(self, h: bytes, node: str) -> None:
        """``node`` has the batch (or refused it for good): owe it no more."""
        entry = self.entries.get(h)
        if entry is None or node not in entry.remaining:
            return
        entry.remaining.discard(node)
        owed = self._owed.get(node)
        if owed is not None:
            owed.pop(h, None)
            if not owed:
                del self._owed[node]
        if entry.remaining:
            if self.directory is not None:
                _write(self._paths(h)[1], encode(sorted(entry.remaining)), sync=False)
            return
        del self.entries[h]
        self.bytes -= len(entry.data)
        if self.directory is not None:
            batch_path, to_path = self._paths(h)
            to_path.unlink(missing_ok=True)
            batch_path.unlink(missing_ok=True)

    def owed_to(self, node: str) -> dict[bytes, None]:
        """The hashes ``node`` is owed, oldest first (a live view: do not mutate)."""
        return self._owed.get(node, {})

    def nodes(self) -> list[str]:
        """Recipients still owed something."""
        return list(self._owed)
