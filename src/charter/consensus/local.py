"""A synchronous in-process cluster of pure cores: the smallest correct Ready loop.

It persists each Ready to the node's storage (a MemoryStorage unless a ``storage``
factory says otherwise), queues its messages on an in-memory
FIFO wire (links can be cut, nodes crashed and restarted) and applies committed entries
to a tiny application that records what it applied. Benchmarks and scenario tests use it
to drive several cores without asyncio; the randomized fault simulator lives elsewhere.
"""

from __future__ import annotations

import random
import struct
from collections import deque
from collections.abc import Callable, Iterable

from charter.consensus.errors import ConsensusError
from charter.consensus.raft import Config, RaftNode
from charter.consensus.storage import MemoryStorage, RaftStorage
from charter.consensus.types import ConfChange, ConfState, Entry, EntryKind, Message, Role

_FRAME = struct.Struct(">QI")

StorageFactory = Callable[[int, ConfState | None], RaftStorage]
"""Storage for node ``nid``: bootstrapped with the founding voters, or empty (``None``)
for a node that joins later and learns everything from the leader."""


def memory_storage(nid: int, founders: ConfState | None) -> RaftStorage:
    return MemoryStorage() if founders is None else MemoryStorage.bootstrap(founders)


def encode_state(records: list[tuple[int, bytes]]) -> bytes:
    """Serialise an applied history of (index, data) as the application's snapshot."""
    out = bytearray()
    for idx, data in records:
        out += _FRAME.pack(idx, len(data))
        out += data
    return bytes(out)


def decode_state(blob: bytes) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(blob):
        idx, n = _FRAME.unpack_from(blob, pos)
        pos += _FRAME.size
        out.append((idx, blob[pos : pos + n]))
        pos += n
    return out


class LocalCluster:
    """Cores wired together in one thread; delivery order is FIFO and deterministic."""

    def __init__(
        self,
        ids: Iterable[int],
        *,
        seed: int = 0,
        config: Callable[[int, random.Random], Config] | None = None,
        storage: StorageFactory = memory_storage,
    ) -> None:
        self._rng = random.Random(seed)
        self._config = config or (lambda nid, rng: Config(nid, rng=rng))
        voters = frozenset(ids)
        self._storage = storage
        self.storages: dict[int, RaftStorage] = {}
        self.nodes: dict[int, RaftNode] = {}
        self.applied: dict[int, list[tuple[int, bytes]]] = {}
        self.applied_index: dict[int, int] = {}
        self.confs: dict[int, list[tuple[int, ConfState]]] = {}
        self.reads: dict[int, list[tuple[int, bytes]]] = {}
        self.wire: deque[Message] = deque()
        self.cut: set[tuple[int, int]] = set()
        self.drop_filter: Callable[[Message], bool] | None = None
        self.delivered = 0
        for nid in sorted(voters):
            self.storages[nid] = storage(nid, ConfState(voters=voters))
            self._boot(nid)

    # --- membership of the simulation -------------------------------------------------------

    def _boot(self, nid: int) -> None:
        storage = self.storages[nid]
        cfg = self._config(nid, random.Random(self._rng.getrandbits(32)))
        self.nodes[nid] = RaftNode(cfg, storage)
        snap = storage.snapshot()
        self.applied[nid] = decode_state(snap.data)
        self.applied_index[nid] = snap.metadata.index
        self.confs[nid] = [(snap.metadata.index, snap.metadata.conf)]
        self.reads.setdefault(nid, [])

    def add_node(self, nid: int) -> RaftNode:
        """A brand-new node with empty storage; it learns everything from the leader."""
        self.storages[nid] = self._storage(nid, None)
        self._boot(nid)
        return self.nodes[nid]

    def crash(self, nid: int) -> None:
        """Lose the node's volatile state; its storage (what it reported durable) stays."""
        self.nodes.pop(nid, None)

    def restart(self, nid: int) -> None:
        if nid not in self.nodes:
            self._boot(nid)

    def isolate(self, nid: int) -> None:
        for other in self.storages:
            if other != nid:
                self.cut.add((nid, other))
                self.cut.add((other, nid))

    def heal(self) -> None:
        self.cut.clear()

    # --- driving ----------------------------------------------------------------------------

    def leader(self) -> RaftNode | None:
        best: RaftNode | None = None
        for n in self.nodes.values():
            if n.role is Role.LEADER and (best is None or n.term > best.term):
                best = n
        return best

    def handle_ready(self, nid: int) -> bool:
        node = self.nodes.get(nid)
        if node is None or not node.has_ready():
            return False
        rd = node.ready()
        storage = self.storages[nid]
        storage.persist(rd)
        self.wire.extend(rd.messages)
        if rd.snapshot is not None:
            meta = rd.snapshot.metadata
            self.applied[nid] = decode_state(rd.snapshot.data)
            self.applied_index[nid] = meta.index
            self.confs[nid] = [(meta.index, meta.conf)]
        self._apply(nid, node, rd.committed_entries)
        self.reads[nid].extend((rs.index, rs.ctx) for rs in rd.read_states)
        node.advance(rd)
        return True

    def _apply(self, nid: int, node: RaftNode, entries: list[Entry]) -> None:
        if not entries:
            return
        applied = self.applied[nid]
        for e in entries:
            if e.kind is EntryKind.CONF_CHANGE:
                conf = node.apply_conf_change(ConfChange.decode(e.data))
                self.confs[nid].append((e.index, conf))
            elif e.data:
                applied.append((e.index, e.data))
        self.applied_index[nid] = entries[-1].index

    def deliver_one(self) -> bool:
        if not self.wire:
            return False
        m = self.wire.popleft()
        node = self.nodes.get(m.to)
        if node is None or (m.frm, m.to) in self.cut:
            return True
        if self.drop_filter is not None and self.drop_filter(m):
            return True
        self.delivered += 1
        node.step(m)
        self.handle_ready(m.to)
        return True

    def pump(self, limit: int = 1_000_000) -> None:
        """Handle Readies and deliver messages until the cluster is quiet."""
        for _ in range(limit):
            busy = False
            for nid in list(self.nodes):
                while self.handle_ready(nid):
                    busy = True
            if self.deliver_one():
                busy = True
            if not busy:
                return
        raise ConsensusError("cluster did not quiesce", code="consensus.local.stalled")

    def tick(self, times: int = 1, only: Iterable[int] | None = None) -> None:
        chosen = list(only) if only is not None else None
        for _ in range(times):
            for nid, node in list(self.nodes.items()):
                if chosen is None or nid in chosen:
                    node.tick()
            self.pump()

    def elect(self, nid: int, max_ticks: int = 200) -> RaftNode:
        """Tick only ``nid`` until it leads, then let the cluster settle."""
        node = self.nodes[nid]
        for _ in range(max_ticks):
            if node.role is Role.LEADER:
                break
            node.tick()
            self.pump()
        if node.role is not Role.LEADER:
            raise ConsensusError(
                f"node {nid} did not become leader", code="consensus.local.stalled"
            )
        self.pump()
        return node

    def compact(self, nid: int, index: int | None = None) -> int:
        """Snapshot node ``nid``'s application at ``index`` (default: applied) and compact."""
        storage = self.storages[nid]
        at = self.applied_index[nid] if index is None else index
        conf = self.confs[nid][0][1]
        for idx, c in self.confs[nid]:
            if idx <= at:
                conf = c
        state = [r for r in self.applied[nid] if r[0] <= at]
        storage.create_snapshot(at, conf, encode_state(state))
        storage.compact(at)
        return at
