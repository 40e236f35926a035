"""Batches this node has sent and not every recipient has acknowledged yet.

On disk the outbox is one append-only log, ``outbox/outbox.log``, of CRC-checked frames
(``u32 length, u32 crc32, syrup record``): ``<add hash batch signature blobs [node ...]>``
when a batch is sent and ``<ack hash node>`` when a recipient acknowledged it (or
refused it for good). Replaying the log gives the entries still owed; a torn or
damaged tail (a crash mid-append) is cut off at the last whole frame.

``add`` returns once its frame is durable (fdatasync). Adds that arrive while a sync is
in progress are written together by the next one: a group commit, so many batches sent
at once cost one sync, not one each. Acknowledgements are not waited for (losing one
only means one more delivery, which receivers drop by hash): they go out with the next
sync or at ``close``. When the log has grown past ``compact_bytes`` and holds mostly
finished entries, it is rewritten with only the live ones (written aside, synced,
renamed into place). Blocking file work runs in a worker thread, one job at a time.
"""

from __future__ import annotations

import asyncio
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from charter.codec.syrup import Record, Symbol, SyrupError, decode, encode
from charter.multiparty.transfer.errors import OutboxFull, TransferError
from charter.multiparty.transfer.wire import BlobRef, parse_blob_refs

__all__ = ["Outbox", "OutboxEntry"]

_ADD = Symbol("add")
_ACK = Symbol("ack")
_FRAME = struct.Struct(">II")
_LOG = "outbox.log"
DEFAULT_COMPACT_BYTES = 16 << 20


@dataclass(slots=True)
class OutboxEntry:
    hash: bytes
    data: bytes
    signature: bytes
    blobs: tuple[BlobRef, ...]
    remaining: set[str] = field(default_factory=set)

    def wire_blobs(self) -> list[Any]:
        return [b.to_wire() for b in self.blobs]

    def add_record(self) -> bytes:
        return _frame(
            Record(
                _ADD,
                self.hash,
                self.data,
                self.signature,
                self.wire_blobs(),
                sorted(self.remaining),
            )
        )


def _frame(rec: Record) -> bytes:
    body = encode(rec)
    return _FRAME.pack(len(body), zlib.crc32(body)) + body


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Outbox:
    """Entries in the order they were added; kept on disk when ``directory`` is given."""

    def __init__(
        self,
        directory: Path | None,
        *,
        max_bytes: int,
        compact_bytes: int = DEFAULT_COMPACT_BYTES,
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.compact_bytes = compact_bytes
        self.entries: dict[bytes, OutboxEntry] = {}
        self._owed: dict[str, dict[bytes, None]] = {}
        """Per recipient, the hashes it is owed in the order they were added."""
        self.bytes = 0
        self.syncs = 0
        self._buffer = bytearray()
        self._waiters: list[asyncio.Future[None]] = []
        self._syncer: asyncio.Task[None] | None = None
        self._log_size = 0
        self._f: BinaryIO | None = None
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            self._load(directory / _LOG)
            self._f = open(directory / _LOG, "ab")  # noqa: SIM115 (closed by close())
            _sync_dir(directory)

    # --- replay ---------------------------------------------------------------------------

    def _load(self, path: Path) -> None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return
        pos = 0
        while pos + _FRAME.size <= len(data):
            length, crc = _FRAME.unpack_from(data, pos)
            body = data[pos + _FRAME.size : pos + _FRAME.size + length]
            if len(body) != length or zlib.crc32(body) != crc:
                break
            try:
                self._replay(decode(body))
            except (SyrupError, TransferError) as exc:
                raise TransferError(f"outbox log {path} is damaged at {pos}: {exc}") from exc
            pos += _FRAME.size + length
        if pos != len(data):  # a torn append: keep what was whole
            with open(path, "r+b") as f:
                f.truncate(pos)
                f.flush()
                os.fsync(f.fileno())
        self._log_size = pos

    def _replay(self, rec: Any) -> None:
        if type(rec) is not Record:
            raise TransferError("not an outbox record")
        if rec.label == _ADD and len(rec.fields) == 5:
            h, data, sig, blobs, nodes = rec.fields
            if (
                type(h) is not bytes
                or type(data) is not bytes
                or type(sig) is not bytes
                or type(nodes) is not list
                or not all(type(n) is str for n in nodes)
            ):
                raise TransferError("a malformed add record")
            self._apply_add(OutboxEntry(h, data, sig, parse_blob_refs(blobs), set(nodes)))
        elif rec.label == _ACK and len(rec.fields) == 2:
            h, node = rec.fields
            if type(h) is not bytes or type(node) is not str:
                raise TransferError("a malformed ack record")
            self._apply_ack(h, node)
        else:
            raise TransferError(f"an unknown outbox record {rec.label!r}")

    # --- the in-memory state --------------------------------------------------------------

    def _apply_add(self, entry: OutboxEntry) -> OutboxEntry:
        existing = self.entries.get(entry.hash)
        if existing is not None:
            existing.remaining |= entry.remaining
            entry = existing
        else:
            self.entries[entry.hash] = entry
            self.bytes += len(entry.data)
        for node in entry.remaining:
            self._owed.setdefault(node, {})[entry.hash] = None
        return entry

    def _apply_ack(self, h: bytes, node: str) -> bool:
        entry = self.entries.get(h)
        if entry is None or node not in entry.remaining:
            return False
        entry.remaining.discard(node)
        owed = self._owed.get(node)
        if owed is not None:
            owed.pop(h, None)
            if not owed:
                del self._owed[node]
        if not entry.remaining:
            del self.entries[h]
            self.bytes -= len(entry.data)
        return True

    # --- the API --------------------------------------------------------------------------

    async def add(self, entry: OutboxEntry) -> OutboxEntry:
        """Keep ``entry`` until every recipient acknowledged it; returns once durable."""
        if entry.hash not in self.entries and self.bytes + len(entry.data) > self.max_bytes:
            raise OutboxFull(
                f"{self.bytes} bytes of batches await delivery (limit {self.max_bytes})"
            )
        if self.directory is not None and self._f is None:
            raise TransferError("the outbox is closed")
        kept = self._apply_add(
            OutboxEntry(entry.hash, entry.data, entry.signature, entry.blobs, set(entry.remaining))
        )
        if self._f is not None:
            self._buffer += entry.add_record()
            await self._sync()
        return kept

    def acked(self, h: bytes, node: str) -> None:
        """``node`` has the batch (or refused it for good): owe it no more."""
        if self._apply_ack(h, node) and self._f is not None:
            self._buffer += _frame(Record(_ACK, h, node))

    def owed_to(self, node: str) -> dict[bytes, None]:
        """The hashes ``node`` is owed, oldest first (a live view: do not mutate)."""
        return self._owed.get(node, {})

    def nodes(self) -> list[str]:
        """Recipients still owed something."""
        return list(self._owed)

    async def close(self) -> None:
        """Write what is buffered (acknowledgements) and close the log."""
        if self._f is None:
            return
        if self._syncer is not None and not self._syncer.done():
            await asyncio.shield(self._syncer)
        if self._buffer:
            await self._sync()
        f, self._f = self._f, None
        f.close()

    # --- group commit ---------------------------------------------------------------------

    async def _sync(self) -> None:
        """Make everything buffered so far durable. Callers arriving while a write is in
        progress share the next one; the writes run in their own task, so a caller that
        is cancelled never leaves a write half-accounted."""
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        if self._syncer is None or self._syncer.done():
            self._syncer = asyncio.get_running_loop().create_task(self._run_syncs())
        await fut

    async def _run_syncs(self) -> None:
        try:
            while self._waiters:
                waiters, self._waiters = self._waiters, []
                data, self._buffer = bytes(self._buffer), bytearray()
                snapshot = None
                size = self._log_size + len(data)
                if size > self.compact_bytes and size > 2 * self.bytes:
                    snapshot = b"".join(e.add_record() for e in self.entries.values())
                try:
                    self._log_size = await asyncio.to_thread(self._write, data, snapshot)
                except OSError as exc:
                    self._buffer[:0] = data  # retried with the next sync; replay is idempotent
                    for w in waiters:
                        if not w.done():
                            w.set_exception(
                                TransferError(f"the outbox could not be written: {exc}")
                            )
                    continue
                self.syncs += 1
                for w in waiters:
                    if not w.done():
                        w.set_result(None)
        finally:
            for w in self._waiters:
                if not w.done():
                    w.set_exception(TransferError("the outbox stopped before this batch was kept"))
            self._waiters = []

    def _write(self, data: bytes, snapshot: bytes | None) -> int:
        """Append ``data`` (or replace the log by ``snapshot``) and sync; the new size."""
        f = self._f
        assert f is not None and self.directory is not None
        if snapshot is None:
            f.write(data)
            f.flush()
            os.fdatasync(f.fileno())
            return self._log_size + len(data)
        path = self.directory / _LOG
        tmp = path.with_name(_LOG + ".tmp")
        with open(tmp, "wb") as out:
            out.write(snapshot)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        _sync_dir(self.directory)
        f.close()
        self._f = open(path, "ab")  # noqa: SIM115 (closed by close())
        return len(snapshot)
