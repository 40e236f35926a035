"""Which nodes a blob held here may be served to, kept under ``blobs/grants/``.

A grant is written (fsynced, renamed into place) before the batch that references the
blob leaves this node, so a recipient that got the batch can always pull the blob, also
after a restart of this node. One small file per blob: the sorted node names.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from pathlib import Path

from charter.codec.syrup import SyrupError, decode, encode
from charter.multiparty.transfer.errors import TransferError

__all__ = ["Grants", "write_files"]


def write_files(files: list[tuple[Path, bytes]]) -> None:
    """Write each file aside, fsync it, rename it into place, then fsync the directory."""
    for path, data in files:
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    if files:
        fd = os.open(files[0][0].parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class Grants:
    """Blob hash -> the nodes this node may serve it to."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._by_blob: dict[bytes, set[str]] = {}
        for p in directory.iterdir():
            if p.name.endswith(".tmp"):
                p.unlink(missing_ok=True)
                continue
            try:
                nodes = decode(p.read_bytes())
                if type(nodes) is not list:
                    raise TypeError("not a list of node names")
                self._by_blob[bytes.fromhex(p.name)] = {n for n in nodes if type(n) is str}
            except (SyrupError, ValueError, TypeError) as exc:
                raise TransferError(f"blob grant {p} is damaged: {exc}") from exc

    def allows(self, node: str, blob_hash: bytes) -> bool:
        return node in self._by_blob.get(blob_hash, ())

    async def grant(self, blob_hashes: Iterable[bytes], nodes: set[str]) -> None:
        """Let ``nodes`` pull each blob; returns once that is durable."""
        changed: list[tuple[Path, bytes]] = []
        for h in blob_hashes:
            have = self._by_blob.setdefault(h, set())
            if not nodes <= have:
                have |= nodes
                changed.append((self.directory / h.hex(), encode(sorted(have))))
        if changed:
            await asyncio.to_thread(write_files, changed)
