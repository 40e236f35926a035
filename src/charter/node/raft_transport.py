"""Raft traffic between nodes as messages to capabilities over OCapN.

Each node exports a **raft gate** on its OCapN ``Runtime`` under a swiss number every
member can compute from the network configuration (``inbox_swiss``), so no round trip
is needed to learn the sturdyref. The swiss number is not a secret and grants nothing
by itself: a peer must ``introduce`` itself by handing the gate a reference it exports
(its own gate). A reference the gate receives is always bound to the session it came
over (a reference to a third party arrives as a handoff promise, one of our own objects
arrives as itself), so the gate reads the session's *authenticated* peer designator
(the TLS netlayer proves the peer's key; memory connections are authenticated by
construction), looks up the node id the configuration gives that key, and returns an
**inbox facet** bound to that node id. Only messages whose ``frm`` equals the bound id
reach the local driver: a peer can never speak for another node.

Outgoing, messages per peer are queued and flushed as one ``deliver`` of a batch (a list
of encoded messages) per peer per event-loop turn (split only where a batch would exceed
the runtime's CapTP message size or ``MAX_BATCH`` messages). A link to a peer that is
unreachable, or whose session ended, is re-established with bounded, jittered exponential
backoff; messages to it are dropped meanwhile and the driver reports the peer unreachable
to the core (Raft retransmits). While a peer's connection is above its high-water mark (a
slow reader), new messages to it are dropped the same way, so a slow peer costs at most
the connection's buffer. Every queue is bounded: the per-peer send queue, the inbound
queue, and the batch size a peer may deliver.

Peers come and go at runtime (``add_peer``, ``remove_peer``) as governance trusts and
retires nodes: a removed peer's link is dropped at once and whatever it still delivers on
an inbox it was given earlier is refused.

The driver takes a ``MemoryNetwork``; ``RaftTransport`` is a drop-in subclass whose
``register``/``send`` go over OCapN instead of in-process queues.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from charter.codec.syrup import Record, Symbol, encode
from charter.consensus.driver import MemoryNetwork
from charter.consensus.types import Message
from charter.errors import CharterError
from charter.node.raft_wire import RaftWireError, decode_message, encode_message
from charter.ocapn.locator import PeerLocation, SturdyRef
from charter.ocapn.runtime import PeerSession, RemoteRef, Runtime

__all__ = [
    "DELIVER",
    "INTRODUCE",
    "Backoff",
    "RaftGate",
    "RaftNetworkConfig",
    "RaftTransport",
    "RaftTransportError",
    "TransportStats",
    "inbox_swiss",
]

log = logging.getLogger(__name__)

INTRODUCE = Symbol("introduce")
DELIVER = Symbol("deliver")
_SWISS_LABEL = Symbol("charter-raft-inbox-v1")

MAX_BATCH = 4096
"""Messages one ``deliver`` may carry; a larger batch is refused whole."""


class RaftTransportError(CharterError):
    """A peer's request to the raft gate was refused, or the transport is misconfigured."""

    code = "node.raft_transport"


def inbox_swiss(network_id: bytes, node_id: int) -> bytes:
    """The swiss number of ``node_id``'s raft gate in network ``network_id``.

    SHA-256 of the canonical Syrup record ``<charter-raft-inbox-v1 network-id node-id>``,
    as 64 lowercase hex digits (ASCII). Anyone with the configuration can compute it.
    """
    digest = hashlib.sha256(encode(Record(_SWISS_LABEL, network_id, node_id))).hexdigest()
    return digest.encode("ascii")


class RaftNetworkConfig:
    """Who is in the consensus group: node id -> where its runtime is reached.

    ``network_id`` names the network (e.g. the digest of its constitution) so that two
    networks sharing nodes never share gates. Each location's (transport, designator)
    is the key a peer must authenticate with to speak as that node.

    The peer set changes at runtime as governance trusts and retires nodes
    (``add_peer``, ``remove_peer``); the transport and the submit gate of a node hold
    the same object, so both see a change at once. ``version`` rises with every change.
    """

    __slots__ = ("_by_key", "_peers", "network_id", "version")

    def __init__(self, network_id: bytes, peers: Mapping[int, PeerLocation]) -> None:
        self.network_id = network_id
        self._peers: dict[int, PeerLocation] = {}
        self._by_key: dict[tuple[str, str], int] = {}
        self.version = 0
        for node_id, loc in peers.items():
            self.add_peer(node_id, loc)
        self.version = 0

    @property
    def peers(self) -> Mapping[int, PeerLocation]:
        """The current peers (a read-only view; it follows later changes)."""
        return MappingProxyType(self._peers)

    def add_peer(self, node_id: int, loc: PeerLocation) -> bool:
        """Add or move ``node_id``; False if it was already there at ``loc``.

        A key may speak for one node only: adding a second node with a key already in
        use is refused.
        """
        if type(node_id) is not int or node_id <= 0:
            raise RaftTransportError(f"node ids are positive integers, not {node_id!r}")
        owner = self._by_key.get(loc.key)
        if owner is not None and owner != node_id:
            raise RaftTransportError(
                f"nodes {owner} and {node_id} share designator {loc.designator}"
            )
        old = self._peers.get(node_id)
        if old == loc:
            return False
        if old is not None:
            del self._by_key[old.key]
        self._peers[node_id] = loc
        self._by_key[loc.key] = node_id
        self.version += 1
        return True

    def remove_peer(self, node_id: int) -> bool:
        """Forget ``node_id``; False if it was not a peer."""
        loc = self._peers.pop(node_id, None)
        if loc is None:
            return False
        del self._by_key[loc.key]
        self.version += 1
        return True

    def node_for(self, transport: str, designator: str) -> int | None:
        """The node id whose key is ``designator`` on ``transport``, if any."""
        return self._by_key.get((transport, designator))

    def inbox_sturdyref(self, node_id: int) -> SturdyRef:
        return SturdyRef(self._peers[node_id], inbox_swiss(self.network_id, node_id))

    def __repr__(self) -> str:
        return f"RaftNetworkConfig({self.network_id!r}, {dict(self._peers)!r})"


@dataclass
class TransportStats:
    """Counters of one node's transport (for metrics and tests)."""

    batches_sent: int = 0
    messages_sent: int = 0
    dropped_unreachable: int = 0
    dropped_overflow: int = 0
    dropped_backpressure: int = 0
    dropped_unencodable: int = 0
    batches_received: int = 0
    messages_received: int = 0
    refused_forged: int = 0
    refused_malformed: int = 0
    dropped_inbox_full: int = 0
    dropped_not_running: int = 0
    links_established: int = 0
    link_failures: int = 0
    introductions_refused: int = 0
    refused_removed: int = 0
    """Batches from a peer removed after it was given its inbox."""


@dataclass
class Backoff:
    """Bounded exponential backoff with jitter between attempts to reach a peer."""

    base: float = 0.02
    cap: float = 1.0
    factor: float = 2.0
    jitter: float = 0.5
    """Each delay is drawn uniformly from [(1 - jitter) * d, d]."""

    def delay(self, attempt: int, rng: random.Random) -> float:
        d = min(self.cap, self.base * self.factor ** min(attempt, 32))
        return rng.uniform((1.0 - self.jitter) * d, d)


class _InboxFacet:
    """What one authenticated peer holds: delivers its batches, as its own node id only.

    It lives as long as the session it was introduced on: should the peer pass it on,
    it stops working when that peer's session ends.
    """

    def __init__(self, transport: RaftTransport, peer_id: int, session: PeerSession) -> None:
        self._transport = transport
        self._peer_id = peer_id
        self._session = weakref.ref(session)

    def deliver(self, batch: Any) -> None:
        session = self._session()
        if session is None or session.closed.is_set():
            raise RaftTransportError("the session this inbox was introduced on has ended")
        if self._peer_id not in self._transport.config.peers:
            self._transport.stats.refused_removed += 1
            self._transport.notify()
            raise RaftTransportError(f"node {self._peer_id} is no longer a peer")
        self._transport._receive(self._peer_id, batch)


class RaftGate:
    """The object registered under the node's raft swiss number."""

    def __init__(self, transport: RaftTransport) -> None:
        self._transport = transport
        self._facets: weakref.WeakKeyDictionary[PeerSession, _InboxFacet] = (
            weakref.WeakKeyDictionary()
        )

    def introduce(self, token: Any) -> _InboxFacet:
        """The inbox facet for the caller, identified by the session ``token`` came over."""
        t = self._transport
        if type(token) is not RemoteRef:
            t.stats.introductions_refused += 1
            raise RaftTransportError("introduce takes a reference the caller exports")
        session = token.peer
        designator = session.conn.peer_designator
        if designator is None or not session.usable:
            t.stats.introductions_refused += 1
            raise RaftTransportError("the session's peer is not authenticated")
        peer_id = t.config.node_for(session.transport, designator)
        if peer_id is None or peer_id == t.node_id:
            t.stats.introductions_refused += 1
            raise RaftTransportError(f"key {designator} is not a peer of this network")
        facet = self._facets.get(session)
        if facet is None:
            facet = _InboxFacet(t, peer_id, session)
            self._facets[session] = facet
        return facet


class _Link:
    """The outgoing side towards one peer: its inbox facet while connected, and a queue."""

    __slots__ = ("blocked", "drain", "facet", "node_id", "pending", "task", "up")

    def __init__(self, node_id: int) -> None:
        self.node_id = node_id
        self.facet: RemoteRef | None = None
        self.pending: list[Message] = []
        self.up = asyncio.Event()
        self.drain: asyncio.Task[None] | None = None
        self.task: asyncio.Task[None] | None = None
        """The task keeping this link up (while the transport runs)."""
        self.blocked = False


class RaftTransport(MemoryNetwork):
    """One node's Raft transport over its OCapN runtime; ``run()`` beside the driver."""

    def __init__(
        self,
        runtime: Runtime,
        config: RaftNetworkConfig,
        node_id: int,
        *,
        rng: random.Random,
        backoff: Backoff | None = None,
        connect_timeout: float = 5.0,
        max_pending: int = 1024,
        max_inbox: int = 8192,
    ) -> None:
        super().__init__()
        if node_id not in config.peers:
            raise RaftTransportError(f"node {node_id} is not in the network configuration")
        self.runtime = runtime
        self.config = config
        self.node_id = node_id
        self.stats = TransportStats()
        self._rng = rng
        self._backoff = backoff or Backoff()
        self._connect_timeout = connect_timeout
        self._max_pending = max_pending
        self._max_inbox = max_inbox
        self._gate = RaftGate(self)
        self._swiss = inbox_swiss(config.network_id, node_id)
        self._links = {nid: _Link(nid) for nid in config.peers if nid != node_id}
        self._inbox: asyncio.Queue[Message] | None = None
        self._flush_scheduled = False
        self._running = False
        self._tg: asyncio.TaskGroup | None = None
        # one deliver must fit the runtime's CapTP message limit, with room for the envelope
        self._batch_bytes = max(64 * 1024, runtime.max_message_size - 64 * 1024)

    # --- lifecycle --------------------------------------------------------------------------

    async def run(self) -> None:
        """Export the gate and keep a link to every peer until cancelled."""
        if self._running:
            raise RaftTransportError("transport already running")
        self._running = True
        self.runtime.register(self._gate, self._swiss)
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                for link in self._links.values():
                    link.task = tg.create_task(self._maintain(link))
                # Links come and go with add_peer / remove_peer; stay until cancelled.
                await asyncio.Future()
        finally:
            self._tg = None
            self._running = False
            self.runtime.unregister(self._swiss)
            for link in self._links.values():
                link.task = None
                link.facet = None
                link.up.clear()
                link.pending.clear()

    # --- peers joining and leaving ----------------------------------------------------------

    def add_peer(self, node_id: int, loc: PeerLocation) -> bool:
        """Start keeping a link to ``node_id`` at ``loc`` (or move it there).

        Updates the shared configuration too, so the node's gates admit the peer's key.
        Returns False if nothing changed. Idempotent: the membership watcher calls it on
        every directory change.
        """
        if node_id == self.node_id:
            return False
        changed = self.config.add_peer(node_id, loc)
        link = self._links.get(node_id)
        if link is not None and not changed and (link.task is not None or self._tg is None):
            return False
        if link is not None:
            self._stop_link(link)  # moved: redial at the new location
        link = self._links[node_id] = _Link(node_id)
        if self._tg is not None:
            link.task = self._tg.create_task(self._maintain(link))
        self.notify()
        return True

    def remove_peer(self, node_id: int) -> bool:
        """Stop talking to ``node_id`` and refuse what it still delivers; idempotent."""
        if node_id == self.node_id:
            return False
        removed = self.config.remove_peer(node_id)
        link = self._links.pop(node_id, None)
        if link is None and not removed:
            return False
        if link is not None:
            self._stop_link(link)
        self.notify()
        return True

    def peer_ids(self) -> list[int]:
        """The peers this transport keeps links to."""
        return sorted(self._links)

    def _stop_link(self, link: _Link) -> None:
        if link.task is not None:
            link.task.cancel()
            link.task = None
        if link.drain is not None:
            link.drain.cancel()
            link.drain = None
        self.stats.dropped_unreachable += len(link.pending)
        link.pending.clear()
        link.facet = None
        link.up.clear()

    def connected(self, node_id: int) -> bool:
        link = self._links.get(node_id)
        return link is not None and link.facet is not None

    async def wait_connected(self, node_id: int) -> None:
        await self._links[node_id].up.wait()

    async def _maintain(self, link: _Link) -> None:
        sturdy = self.config.inbox_sturdyref(link.node_id)
        attempt = 0
        while True:
            try:
                async with asyncio.timeout(self._connect_timeout):
                    gate = await self.runtime.enliven(sturdy)
                    if type(gate) is not RemoteRef:
                        raise RaftTransportError("the peer's raft gate is not a remote object")
                    facet = await gate.send(INTRODUCE, self._gate)
                if type(facet) is not RemoteRef:
                    raise RaftTransportError("the peer's gate returned no inbox")
            except (CharterError, OSError, TimeoutError, LookupError) as exc:
                self.stats.link_failures += 1
                self.notify()
                log.debug("node %d: no link to %d yet: %s", self.node_id, link.node_id, exc)
                # A pause before redialing is the point here, not a stand-in for a condition.
                await asyncio.sleep(self._backoff.delay(attempt, self._rng))
                attempt += 1
                continue
            attempt = 0
            self.stats.links_established += 1
            link.facet = facet
            link.up.set()
            self.notify()
            try:
                await facet.peer.closed.wait()
            finally:
                link.facet = None
                link.blocked = False
                link.up.clear()
                link.pending.clear()
                self.notify()

    # --- the driver's side (MemoryNetwork interface) ----------------------------------------

    def register(self, node_id: int) -> asyncio.Queue[Message]:
        if node_id != self.node_id:
            raise RaftTransportError(f"this transport serves node {self.node_id}, not {node_id}")
        q: asyncio.Queue[Message] = asyncio.Queue(self._max_inbox)
        self._inbox = q
        return q

    def unregister(self, node_id: int) -> None:
        if node_id == self.node_id:
            self._inbox = None

    def send(self, m: Message) -> bool:
        """Queue ``m`` for this turn's batch to its peer; False if the peer is unreachable."""
        link = self._links.get(m.to)
        if link is None or link.facet is None:
            self.stats.dropped_unreachable += 1
            return False
        if link.blocked:
            self.stats.dropped_backpressure += 1
            return False
        if len(link.pending) >= self._max_pending:
            self.stats.dropped_overflow += 1
            return False
        link.pending.append(m)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        return True

    def isolate(self, node_id: int) -> None:
        raise RaftTransportError("an OCapN transport is cut by closing sessions, not isolate()")

    def _flush(self) -> None:
        self._flush_scheduled = False
        budget = self._batch_bytes
        for link in self._links.values():
            if not link.pending:
                continue
            msgs, link.pending = link.pending, []
            facet = link.facet
            if facet is None:
                self.stats.dropped_unreachable += len(msgs)
                continue
            batch: list[bytes] = []
            size = 0
            for i, m in enumerate(msgs):
                try:
                    data = encode_message(m)
                except RaftWireError as exc:
                    self.stats.dropped_unencodable += 1
                    log.error("node %d: cannot encode %s: %s", self.node_id, m.type.name, exc)
                    continue
                if len(data) > budget:
                    self.stats.dropped_unencodable += 1
                    log.error(
                        "node %d: a %d-byte message exceeds the batch limit",
                        self.node_id,
                        len(data),
                    )
                    continue
                if batch and (size + len(data) > budget or len(batch) >= MAX_BATCH):
                    if not self._deliver(link, facet, batch):
                        self.stats.dropped_unreachable += len(msgs) - i
                        batch = []
                        break
                    batch, size = [], 0
                batch.append(data)
                size += len(data)
            if batch:
                self._deliver(link, facet, batch)
            self._watch_drain(link, facet)
        self.notify()

    def _deliver(self, link: _Link, facet: RemoteRef, batch: list[bytes]) -> bool:
        try:
            facet.send_only(DELIVER, batch)
        except CharterError as exc:
            self.stats.dropped_unreachable += len(batch)
            log.debug("node %d: send to %d failed: %s", self.node_id, link.node_id, exc)
            return False
        self.stats.batches_sent += 1
        self.stats.messages_sent += len(batch)
        return True

    def _watch_drain(self, link: _Link, facet: RemoteRef) -> None:
        tg = self._tg
        if tg is not None and (link.drain is None or link.drain.done()):
            link.drain = tg.create_task(self._drain(link, facet))

    async def _drain(self, link: _Link, facet: RemoteRef) -> None:
        # ``blocked`` is visible to others only while the connection is really above its
        # high-water mark (a drain that need not wait completes within this first step).
        link.blocked = True
        try:
            await facet.peer.drain()
        except (CharterError, OSError) as exc:
            log.debug("node %d: drain towards %d failed: %s", self.node_id, link.node_id, exc)
        finally:
            link.blocked = False
            self.notify()

    # --- the inbox's side -------------------------------------------------------------------

    def _receive(self, peer_id: int, batch: Any) -> None:
        stats = self.stats
        if type(batch) is not list or len(batch) > MAX_BATCH:
            stats.refused_malformed += 1
            raise RaftTransportError(f"a batch is a list of at most {MAX_BATCH} messages")
        stats.batches_received += 1
        inbox = self._inbox
        malformed = forged = 0
        problem = ""
        for data in batch:
            try:
                m = decode_message(data)
            except RaftWireError as exc:
                malformed += 1
                problem = exc.message
                continue
            if m.frm != peer_id or m.to != self.node_id:
                forged += 1
                problem = f"a message from {m.frm} to {m.to}"
                continue
            if inbox is None:
                stats.dropped_not_running += 1
                continue
            try:
                inbox.put_nowait(m)
            except asyncio.QueueFull:
                stats.dropped_inbox_full += 1
                continue
            stats.messages_received += 1
        if malformed or forged:
            # one line per batch, however many bad messages a hostile peer packs into it
            stats.refused_malformed += malformed
            stats.refused_forged += forged
            log.warning(
                "node %d: refused %d malformed and %d forged messages from node %d (last: %s)",
                self.node_id,
                malformed,
                forged,
                peer_id,
                problem,
            )
