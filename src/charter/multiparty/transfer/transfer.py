"""Point-to-point delivery of signed batches, and blob pulls, between member nodes.

Sending (at least once): ``send_batch`` signs the batch, records it in the persisted
``Outbox`` and returns; one worker per recipient node delivers what that node is owed,
oldest first, up to ``window`` batches in flight, until the recipient's reply
acknowledges each one. A broken session, an unreachable node or a recipient whose
``on_batch`` failed means: back off (bounded, jittered), reconnect, resend. A restart
reloads the outbox and resends. Receivers ignore a batch they already handed up (by
hash), so duplicates are harmless. A recipient that *refuses* a batch (it cannot verify
it) is not asked again: that is a fault to log, not a condition to retry.

Receiving: the inbox facet of an authenticated member node (``gate``) passes the batch
here; it is checked (sizes, SHA-256 of the exact bytes against the hash, the sending
node's signature over the claim) before ``on_batch`` sees it, and acknowledged only
once ``on_batch`` returned, so a batch the application could not keep comes again.

Blobs are **pulled** by the recipient from the node that sent the batch referencing
them: the recipient knows what it has (``partial/<hash>.part``), so after a broken
connection or a restart it simply asks for the next offset; no sender-side state per
transfer is needed, and the source serves chunks only to the nodes it sent a batch
referencing that blob to (its persisted **grants**). ``read-blob`` requests are
pipelined (``fetch_window`` chunks in flight); the SHA-256 is checked before the blob
is renamed into the store, then ``on_blob`` is told (state ``ready`` or ``failed``).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import itertools
import logging
import random
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter.codec.syrup import SyrupError, decode, encode
from charter.crypto.keys import Ed25519PrivateKey
from charter.errors import CharterError
from charter.multiparty.transfer.blobs import BlobStore, PartialBlob
from charter.multiparty.transfer.errors import (
    BlobNotFound,
    BlobTooLarge,
    TransferError,
    TransferRefused,
)
from charter.multiparty.transfer.gate import InboxGate
from charter.multiparty.transfer.grants import Grants, write_files
from charter.multiparty.transfer.model import (
    BlobProgress,
    BlobState,
    InboundBatch,
    OnBatch,
    OnBlob,
    TransferSettings,
    TransferStats,
)
from charter.multiparty.transfer.outbox import Outbox, OutboxEntry
from charter.multiparty.transfer.peers import LedgerPeers, PeerDirectory
from charter.multiparty.transfer.wire import (
    DELIVER,
    HASH_BYTES,
    INTRODUCE,
    MAX_BLOBS_PER_BATCH,
    MAX_CHUNK_BYTES,
    OK,
    READ_BLOB,
    REFUSED,
    BlobRef,
    inbox_swiss,
    parse_blob_refs,
    sign_batch,
    verify_batch,
)
from charter.ocapn.locator import SturdyRef
from charter.ocapn.runtime import RemoteRef, Runtime

if TYPE_CHECKING:
    from fastapi import APIRouter

    from charter.api.blobs import BlobRecords
    from charter.node.components import NodeContext
    from charter.node.ledger_service import LedgerService

__all__ = ["Transfer"]

log = logging.getLogger(__name__)

_RETRYABLE = (CharterError, OSError, TimeoutError, LookupError)


class _SourceRefused(TransferError):
    code = "mp.transfer.source_refused"


@dataclass
class _Fetch:
    hash: bytes
    size: int
    sources: list[str]
    received: int = 0
    state: BlobState = BlobState.WAITING
    reason: str | None = None
    task: asyncio.Task[None] | None = None

    def snapshot(self) -> BlobProgress:
        return BlobProgress(
            self.hash, self.size, self.received, self.state, tuple(self.sources), self.reason
        )


class _Link:
    __slots__ = ("node", "task", "wake")

    def __init__(self, node: str) -> None:
        self.node = node
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None


class Transfer:
    """One node's batch inbox and outbox, and its blob store and fetches.

    ``data_dir`` holds ``outbox/`` and ``blobs/`` (``objects``, ``partial``, ``uploads``,
    ``grants``, ``wants``). ``run()`` exports the inbox gate and drives deliveries and
    fetches until cancelled; ``close()`` releases files afterwards.
    """

    def __init__(
        self,
        runtime: Runtime,
        identity: Ed25519PrivateKey,
        peers: PeerDirectory,
        *,
        name: str,
        data_dir: Path,
        settings: TransferSettings | None = None,
        on_batch: OnBatch | None = None,
        on_blob: OnBlob | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.runtime = runtime
        self.identity = identity
        self.peers = peers
        self.name = name
        self.settings = s = settings or TransferSettings()
        if s.max_batch_bytes > runtime.max_message_size - (64 << 10):
            raise TransferError("max_batch_bytes must fit in one CapTP message")
        if not 0 < s.chunk_bytes <= MAX_CHUNK_BYTES:
            raise TransferError(f"chunk_bytes is 1 to {MAX_CHUNK_BYTES}")
        if min(s.window, s.fetch_window, s.max_fetches, s.max_inflight_per_sender) < 1:
            raise TransferError("windows and concurrency limits are at least 1")
        self.on_batch = on_batch
        self.on_blob = on_blob
        self.stats = TransferStats()
        self.blobs = BlobStore(data_dir / "blobs", max_size=s.max_blob_bytes)
        self._wants_dir = data_dir / "blobs" / "wants"
        self._wants_dir.mkdir(exist_ok=True)
        self._outbox = Outbox(data_dir / "outbox", max_bytes=s.max_outbox_bytes)
        self._rng = rng or random.Random()
        self._gate = InboxGate(self, peers, name)
        self._swiss = inbox_swiss(peers.network_id, name)
        self._links: dict[str, _Link] = {}
        self._facets: dict[str, RemoteRef] = {}
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._inflight: dict[bytes, asyncio.Event] = {}
        self._busy_from: dict[str, int] = {}
        self._fetches: dict[bytes, _Fetch] = {}
        self._finished: OrderedDict[bytes, None] = OrderedDict()
        self._fetch_slots = asyncio.Semaphore(s.max_fetches)
        self._grants = Grants(data_dir / "blobs" / "grants")
        self._changed = asyncio.Event()
        self._tg: asyncio.TaskGroup | None = None
        self._running = False
        for node in self._outbox.nodes():
            self._link(node)
        self._load_wants()

    @classmethod
    def for_node(
        cls,
        ctx: NodeContext,
        service: LedgerService,
        *,
        on_batch: OnBatch | None = None,
        on_blob: OnBlob | None = None,
    ) -> Transfer:
        """The transfer of a node component: peers as the ledger knows them
        (``LedgerPeers``), files under ``<data_dir>/``, settings from
        ``ctx.settings["transfer"]`` (a mapping or ``TransferSettings``)."""
        if ctx.data_dir is None:
            raise TransferError("a transfer keeps its outbox and blobs in a data directory")
        raw = ctx.settings.get("transfer")
        settings = raw if isinstance(raw, TransferSettings) else TransferSettings.from_mapping(raw)
        return cls(
            ctx.runtime,
            ctx.identity,
            LedgerPeers(service),
            name=service.name,
            data_dir=ctx.data_dir,
            settings=settings,
            on_batch=on_batch,
            on_blob=on_blob,
        )

    # --- lifecycle ------------------------------------------------------------------------

    async def run(self) -> None:
        """Export the inbox gate; deliver and fetch until cancelled."""
        if self._running:
            raise TransferError("the transfer is already running")
        self._running = True
        self.runtime.register(self._gate, self._swiss)
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                for link in self._links.values():
                    self._start_link(link)
                for f in self._fetches.values():
                    if f.state in (BlobState.WAITING, BlobState.FETCHING):
                        self._start_fetch(f)
                await asyncio.Future()  # until cancelled
        finally:
            self._tg = None
            self._running = False
            self.runtime.unregister(self._swiss)
            self._facets.clear()
            for link in self._links.values():
                link.task = None
            for f in self._fetches.values():
                f.task = None

    async def close(self) -> None:
        """Write the outbox's last acknowledgements and close it (after ``run`` ended)."""
        self.runtime.unregister(self._swiss)
        await self._outbox.close()

    def routers(self, records: BlobRecords | None = None) -> list[APIRouter]:
        """The blob endpoints (``charter.api.blobs``) over this node's store."""
        from charter.api.blobs import FileBlobRecords, blob_router

        recs = records or FileBlobRecords(self.blobs.root / "records")
        return [blob_router(self.blobs, recs, progress=self.transfers)]

    # --- observing ------------------------------------------------------------------------

    def _notify(self) -> None:
        ev, self._changed = self._changed, asyncio.Event()
        ev.set()

    async def until(self, predicate: Callable[[], bool], within: float = 10.0) -> None:
        """Wait until ``predicate()`` holds, re-checked whenever delivery or a fetch moves."""
        async with asyncio.timeout(within):
            while not predicate():
                await self._changed.wait()

    def owed(self, node: str | None = None) -> int:
        """Batches not yet acknowledged (by ``node``, or by anyone)."""
        if node is None:
            return len(self._outbox.entries)
        return len(self._outbox.owed_to(node))

    def progress(self, blob_hash: bytes) -> BlobProgress | None:
        f = self._fetches.get(blob_hash)
        return None if f is None else f.snapshot()

    def transfers(self) -> list[BlobProgress]:
        """Every fetch this node knows of, in progress or finished since it started."""
        return [f.snapshot() for f in self._fetches.values()]

    async def blob_ready(self, blob_hash: bytes, within: float = 60.0) -> BlobProgress:
        """The fetch's final state (``ready`` or ``failed``), waiting up to ``within``."""

        def done() -> bool:
            f = self._fetches.get(blob_hash)
            if f is None:
                return self.blobs.has(blob_hash)
            return f.state in (BlobState.READY, BlobState.FAILED)

        await self.until(done, within)
        f = self._fetches.get(blob_hash)
        if f is not None:
            return f.snapshot()
        size = self.blobs.size(blob_hash)
        return BlobProgress(blob_hash, size, size, BlobState.READY, ())

    # --- sending --------------------------------------------------------------------------

    async def send_batch(
        self,
        recipients: Iterable[str],
        batch: bytes,
        batch_hash: bytes | None = None,
        *,
        blobs: Sequence[BlobRef] = (),
    ) -> bytes:
        """Sign ``batch``, persist it, and deliver it to each recipient node (at least once).

        Returns the batch hash (SHA-256 of ``batch``) once the batch is durable here;
        delivery continues in the background. ``blobs`` are blobs held here that the
        batch references: each recipient may then pull them from this node, and will.
        Raises ``OutboxFull`` when too much is undelivered, ``BlobNotFound`` for a blob
        not held here, ``TransferError`` for an unknown recipient or a batch too large.
        """
        if type(batch) is not bytes or not 0 < len(batch) <= self.settings.max_batch_bytes:
            raise TransferError(f"a batch is 1 to {self.settings.max_batch_bytes} bytes")
        digest = hashlib.sha256(batch).digest()
        if batch_hash is not None and batch_hash != digest:
            raise TransferError("batch_hash is not the SHA-256 of the batch")
        nodes = {n for n in recipients if n != self.name}
        for n in nodes:
            if self.peers.get(n) is None:
                raise TransferError(f"{n!r} is not a member node", code="mp.transfer.unknown_node")
        refs = tuple(dict.fromkeys(blobs))  # the same blob in two messages: once
        if len(refs) > MAX_BLOBS_PER_BATCH:
            raise TransferError(f"a batch references at most {MAX_BLOBS_PER_BATCH} blobs")
        for ref in refs:
            if not self.blobs.has(ref.hash) or self.blobs.size(ref.hash) != ref.size:
                raise BlobNotFound(f"no blob {ref.hex} of {ref.size} bytes here")
        if refs and nodes:
            await self._grants.grant((r.hash for r in refs), nodes)
        if not nodes:
            return digest
        signature = sign_batch(self.identity, self.peers.network_id, digest, refs)
        await self._outbox.add(OutboxEntry(digest, batch, signature, refs, set(nodes)))
        for n in nodes:
            link = self._link(n)
            link.wake.set()
            self._start_link(link)
        self._notify()
        return digest

    def _link(self, node: str) -> _Link:
        link = self._links.get(node)
        if link is None:
            link = self._links[node] = _Link(node)
            link.wake.set()
        return link

    def _start_link(self, link: _Link) -> None:
        if self._tg is not None and (link.task is None or link.task.done()):
            link.task = self._tg.create_task(self._drive(link))

    async def _facet(self, node: str) -> RemoteRef:
        facet = self._facets.get(node)
        if facet is not None and facet.peer.usable:
            return facet
        peer = self.peers.get(node)
        if peer is None:
            raise TransferError(f"{node!r} is not a member node", code="mp.transfer.unknown_node")
        async with asyncio.timeout(self.settings.connect_timeout):
            sturdy = SturdyRef(peer.location, inbox_swiss(self.peers.network_id, node))
            gate = await self.runtime.enliven(sturdy)
            if type(gate) is not RemoteRef:
                raise TransferError(f"{node}'s inbox gate is not a remote object")
            facet = await gate.send(INTRODUCE, self._gate)
        if type(facet) is not RemoteRef:
            raise TransferError(f"{node}'s inbox gate returned no facet")
        self._facets[node] = facet
        return facet

    def _forget_facet(self, node: str) -> None:
        facet = self._facets.get(node)
        if facet is not None and not facet.peer.usable:
            del self._facets[node]

    async def _drive(self, link: _Link) -> None:
        """Deliver what ``link.node`` is owed, oldest first, until acknowledged."""
        attempt = 0
        while True:
            if not self._outbox.owed_to(link.node):
                link.wake.clear()
                await link.wake.wait()
                continue
            try:
                facet = await self._facet(link.node)
                await self._pump(link, facet)
                attempt = 0
                continue
            except _RETRYABLE as exc:
                self._forget_facet(link.node)
                log.debug("%s: delivery to %s failed, retrying: %s", self.name, link.node, exc)
            except Exception:  # a bug must not stop deliveries to every other node
                log.exception("%s: delivery to %s failed unexpectedly", self.name, link.node)
            self.stats.delivery_retries += 1
            self._notify()
            # A pause before retrying is the point here, not a stand-in for a condition.
            await asyncio.sleep(self.settings.backoff.delay(attempt, self._rng))
            attempt += 1

    async def _pump(self, link: _Link, facet: RemoteRef) -> None:
        """A sliding window over one session: up to ``window`` deliveries in flight, a new
        one sent as soon as one is answered; returns when nothing is owed, raises when a
        delivery fails or no answer comes for ``call_timeout``."""
        s = self.settings
        loop = asyncio.get_running_loop()
        inflight: set[bytes] = set()
        failed: list[BaseException] = []
        progress_at = [loop.time()]

        def answered(entry: OutboxEntry, ok: bool, value: Any) -> None:
            inflight.discard(entry.hash)
            progress_at[0] = loop.time()
            link.wake.set()
            try:
                if not ok:
                    raise TransferError(f"delivery to {link.node} failed: {value!r}")
                self._settle(link.node, entry, value)
            except TransferError as exc:
                failed.append(exc)

        while True:
            if failed:
                raise failed[0]
            if not facet.peer.usable:
                raise TransferError(f"the session with {link.node} ended")
            owed = self._outbox.owed_to(link.node)
            for h in list(itertools.islice(owed, s.window + len(inflight))):
                if len(inflight) >= s.window:
                    break
                if h in inflight:
                    continue
                e = self._outbox.entries[h]
                if not inflight:
                    progress_at[0] = loop.time()
                inflight.add(h)
                self.stats.batches_sent += 1
                facet.send(DELIVER, e.hash, e.data, e.signature, e.wire_blobs()).on_settle(
                    functools.partial(answered, e)
                )
            if not inflight:
                if not owed:
                    return
                continue
            link.wake.clear()
            # no answer at all for call_timeout (new batches arriving do not extend it)
            async with asyncio.timeout_at(progress_at[0] + s.call_timeout):
                await link.wake.wait()

    def _settle(self, node: str, entry: OutboxEntry, answer: Any) -> None:
        if answer == [OK]:
            self.stats.batches_acked += 1
        elif type(answer) is list and len(answer) == 2 and answer[0] == REFUSED:
            self.stats.batches_refused_by_peer += 1
            log.error(
                "%s: %s refused batch %s for good: %s", self.name, node, entry.hash.hex(), answer[1]
            )
        else:
            raise TransferError(f"{node} answered a delivery with {answer!r}")
        self._outbox.acked(entry.hash, node)
        self._notify()

    # --- receiving ------------------------------------------------------------------------

    async def receive_batch(
        self, sender: str, batch_hash: Any, batch: Any, signature: Any, blobs: Any
    ) -> list[Any]:
        """A member node's delivery (called by its inbox facet): verify, hand up, ack."""
        if not self._running:
            raise TransferError(f"{self.name} is not taking batches now; send it later")
        s = self.stats
        try:
            if type(batch_hash) is not bytes or len(batch_hash) != HASH_BYTES:
                raise TransferRefused("a batch hash is 32 bytes")
            if type(batch) is not bytes or not 0 < len(batch) <= self.settings.max_batch_bytes:
                raise TransferRefused(f"a batch is 1 to {self.settings.max_batch_bytes} bytes")
            refs = parse_blob_refs(blobs)
            peer = self.peers.get(sender)
            if peer is None:
                raise TransferRefused(f"{sender} is no longer a member node")
            verify_batch(peer.key, self.peers.network_id, batch, batch_hash, signature, refs)
        except TransferRefused as exc:
            if exc.code.endswith(".hash"):
                s.refused_hash += 1
            elif exc.code.endswith(".signature"):
                s.refused_signature += 1
            else:
                s.refused_malformed += 1
            log.warning("%s: refused a batch from %s: %s", self.name, sender, exc.message)
            self._notify()
            return [REFUSED, f"{exc.code}: {exc.message}"]
        if batch_hash in self._seen:
            s.duplicates += 1
            return [OK]
        busy = self._inflight.get(batch_hash)
        if busy is not None:  # the same batch over another session: wait for the first
            s.duplicates += 1
            await busy.wait()
            if batch_hash in self._seen:
                return [OK]
            raise TransferError("the batch could not be kept; send it again")
        busy_from = self._busy_from.get(sender, 0)
        if busy_from >= self.settings.max_inflight_per_sender:
            s.turned_away += 1
            self._notify()
            raise TransferError(f"too many batches from {sender} in progress; send it later")
        self._busy_from[sender] = busy_from + 1
        done = self._inflight[batch_hash] = asyncio.Event()
        try:
            fetches = [await self._want(sender, ref) for ref in refs]
            wanted = True
            if self.on_batch is not None:
                kept = await self.on_batch(InboundBatch(sender, batch_hash, batch, signature, refs))
                wanted = kept is not False
            s.batches_received += 1
            self._seen[batch_hash] = None
            while len(self._seen) > self.settings.remember_batches:
                self._seen.popitem(last=False)
        finally:
            del self._inflight[batch_hash]
            self._busy_from[sender] -= 1
            done.set()
        for f in fetches:
            if f is None:
                continue
            if wanted:
                self._start_fetch(f)
            else:
                await self._unwant(sender, f)
        self._notify()
        return [OK]

    async def _unwant(self, source: str, f: _Fetch) -> None:
        """The application refused the batch naming this blob: do not pull it for it."""
        if source in f.sources and (f.task is None or f.task.done()):
            f.sources.remove(source)
            path = self._wants_dir / f.hash.hex()
            if f.sources:
                await asyncio.to_thread(write_files, [(path, encode([f.size, list(f.sources)]))])
            elif f.state is not BlobState.READY:
                del self._fetches[f.hash]
                path.unlink(missing_ok=True)

    # --- blobs: the source's side ---------------------------------------------------------

    async def allow_blob(self, blob_hash: bytes, nodes: Iterable[str]) -> None:
        """Let ``nodes`` pull a blob held here (``send_batch(blobs=...)`` does this itself)."""
        if not self.blobs.has(blob_hash):
            raise BlobNotFound(f"no blob {blob_hash.hex()} here")
        await self._grants.grant([blob_hash], set(nodes))

    def serve_blob(self, node: str, blob_hash: Any, offset: Any, length: Any) -> list[Any]:
        """A chunk for ``node`` if this node sent it a batch referencing the blob."""
        if not self._running:
            raise TransferError(f"{self.name} is not serving blobs now; ask later")
        if (
            type(blob_hash) is not bytes
            or type(offset) is not int
            or type(length) is not int
            or offset < 0
            or not 0 < length <= MAX_CHUNK_BYTES
        ):
            self.stats.chunks_refused += 1
            return [REFUSED, f"read-blob takes a 32-byte hash, an offset and 1..{MAX_CHUNK_BYTES}"]
        # the same answer whether the blob is missing or not granted: learn nothing
        if not self._grants.allows(node, blob_hash) or not self.blobs.has(blob_hash):
            self.stats.chunks_refused += 1
            return [REFUSED, "no such blob for this node"]
        self.stats.chunks_served += 1
        return [OK, self.blobs.read_chunk(blob_hash, offset, length)]

    # --- blobs: the recipient's side ------------------------------------------------------

    def _load_wants(self) -> None:
        for p in self._wants_dir.iterdir():
            if p.name.endswith(".tmp"):
                p.unlink(missing_ok=True)
                continue
            try:
                size, sources = decode(p.read_bytes())
                h = bytes.fromhex(p.name)
                if type(size) is not int or size < 0 or type(sources) is not list:
                    raise TypeError("not [size [node ...]]")
            except (SyrupError, ValueError, TypeError) as exc:
                raise TransferError(f"blob want {p} is damaged: {exc}") from exc
            f = _Fetch(h, size, [n for n in sources if type(n) is str])
            f.received = self.blobs.partial_size(h)
            self._fetches[h] = f

    async def _want(self, source: str, ref: BlobRef) -> _Fetch | None:
        """Remember (durably) to pull ``ref`` from ``source``; the fetch to start, if any."""
        f = self._fetches.get(ref.hash)
        if f is not None and f.size != ref.size:
            log.warning("%s: %s names blob %s with another size", self.name, source, ref.hex)
            return None
        if f is None:
            f = self._fetches[ref.hash] = _Fetch(ref.hash, ref.size, [source])
        elif source not in f.sources:
            f.sources.append(source)
        elif f.state is not BlobState.FAILED:
            return f
        if f.state is BlobState.FAILED:  # a new batch names it again: try once more
            f.state, f.reason = BlobState.WAITING, None
        if self.blobs.has(ref.hash) or ref.size > self.blobs.max_size:
            return f
        path = self._wants_dir / ref.hex
        await asyncio.to_thread(write_files, [(path, encode([ref.size, list(f.sources)]))])
        return f

    async def fetch_blob(self, from_node: str, blob_hash: bytes, size: int) -> BlobProgress:
        """Pull a blob from ``from_node`` (durably queued; resumes after a restart).

        Batches sent with ``blobs=`` start this by themselves; call it for a blob a
        batch referenced in its own body only. ``from_node`` serves it only if it sent
        this node a batch referencing it (``allow_blob``). Completion is reported to
        ``on_blob`` and by ``blob_ready``.
        """
        if self.peers.get(from_node) is None:
            raise TransferError(
                f"{from_node!r} is not a member node", code="mp.transfer.unknown_node"
            )
        f = await self._want(from_node, BlobRef(blob_hash, size))
        if f is None:
            raise TransferError(f"blob {blob_hash.hex()} is already wanted with another size")
        self._start_fetch(f)
        return f.snapshot()

    def _start_fetch(self, f: _Fetch) -> None:
        if self.blobs.has(f.hash):
            if f.state is not BlobState.READY:
                self._finish(f, BlobState.READY)
            return
        if f.size > self.blobs.max_size or not f.sources:
            if f.state is not BlobState.FAILED:
                reason = (
                    f"larger than this node's limit ({f.size} bytes)" if f.sources else "no source"
                )
                self._finish(f, BlobState.FAILED, reason)
            return
        if self._tg is not None and (f.task is None or f.task.done()):
            f.task = self._tg.create_task(self._fetch(f))

    def _finish(self, f: _Fetch, state: BlobState, reason: str | None = None) -> None:
        f.state, f.reason = state, reason
        if state is BlobState.READY:
            f.received = f.size
            self.stats.blobs_ready += 1
        else:
            self.stats.blobs_failed += 1
            log.warning("%s: blob %s failed: %s", self.name, f.hash.hex(), reason)
        (self._wants_dir / f.hash.hex()).unlink(missing_ok=True)
        self._finished[f.hash] = None
        while len(self._finished) > self.settings.remember_fetches:
            old, _ = self._finished.popitem(last=False)
            done = self._fetches.get(old)
            if done is not None and done.state in (BlobState.READY, BlobState.FAILED):
                del self._fetches[old]
        self._notify()
        if self.on_blob is not None:
            try:
                self.on_blob(f.snapshot())
            except Exception:
                log.exception("%s: on_blob failed for %s", self.name, f.hash.hex())

    async def _fetch(self, f: _Fetch) -> None:
        s = self.settings
        attempt = refusals = 0
        part: PartialBlob | None = None
        try:
            while True:
                source = f.sources[refusals % len(f.sources)]
                try:
                    async with self._fetch_slots:
                        if part is None:
                            part = self.blobs.partial(f.hash, f.size)
                            await part.open()
                            f.received = part.received
                        f.state = BlobState.FETCHING
                        await self._pull(f, part, source)
                        if await part.complete():
                            self._finish(f, BlobState.READY)
                            return
                        part = None
                        raise _SourceRefused(f"{source} sent bytes that do not hash to the blob")
                except _SourceRefused as exc:
                    refusals += 1
                    log.warning("%s: fetching %s: %s", self.name, f.hash.hex(), exc.message)
                    if refusals >= s.max_source_refusals * len(f.sources):
                        self._finish(f, BlobState.FAILED, exc.message)
                        return
                except BlobTooLarge as exc:
                    self._finish(f, BlobState.FAILED, exc.message)
                    return
                except _RETRYABLE as exc:
                    self.stats.fetch_retries += 1
                    self._forget_facet(source)
                    log.debug("%s: fetching %s from %s: %s", self.name, f.hash.hex(), source, exc)
                except Exception:  # a bug must not stop the node's other fetches
                    self.stats.fetch_retries += 1
                    log.exception("%s: fetching %s failed unexpectedly", self.name, f.hash.hex())
                    if part is not None:
                        part.close()
                        part = None
                f.state = BlobState.WAITING
                self._notify()
                # A pause before retrying is the point here, not a stand-in for a condition.
                await asyncio.sleep(s.backoff.delay(attempt, self._rng))
                attempt += 1
        finally:
            if part is not None:
                if f.state is BlobState.FAILED:
                    part.discard()
                else:
                    part.close()

    async def _pull(self, f: _Fetch, part: PartialBlob, source: str) -> None:
        """Read chunks from ``source`` from ``part.received`` on, ``fetch_window`` ahead."""
        s = self.settings
        facet = await self._facet(source)
        while part.received < f.size:
            start = part.received
            asks = []
            for i in range(s.fetch_window):
                off = start + i * s.chunk_bytes
                if off >= f.size:
                    break
                n = min(s.chunk_bytes, f.size - off)
                asks.append((off, n, facet.send(READ_BLOB, f.hash, off, n)))
            for off, n, reply in asks:
                async with asyncio.timeout(s.call_timeout):
                    answer = await reply
                if type(answer) is list and len(answer) == 2 and answer[0] == REFUSED:
                    raise _SourceRefused(f"{source} refused: {answer[1]}")
                if (
                    type(answer) is not list
                    or len(answer) != 2
                    or answer[0] != OK
                    or type(answer[1]) is not bytes
                    or len(answer[1]) != n
                ):
                    raise _SourceRefused(f"{source} answered read-blob at {off} with no chunk")
                part.append(off, answer[1])
                f.received = part.received
                self.stats.chunks_fetched += 1
                self.stats.bytes_fetched += n
            self._notify()
