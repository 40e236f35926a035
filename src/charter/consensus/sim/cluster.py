"""A simulated cluster: nodes, their disks and applications, the network, and virtual time.

The cluster is the "environment" around each sans-I/O ``RaftNode``: it ticks nodes, carries
their messages, persists and applies their Readies exactly as a real driver must (persist
before sending, apply only what was persisted), and reports every observable fact to the
invariant checker after every step. A crash throws away the node object, its pending Ready
and its application; only what the node reported durable survives in its storage.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from charter.consensus.sim import core
from charter.consensus.sim.appstate import decode_applied, encode_applied
from charter.consensus.sim.errors import InvariantViolation, SimError
from charter.consensus.sim.faults import NetProfile
from charter.consensus.sim.invariants import Checker, EntryRecord
from charter.consensus.sim.network import Network
from charter.consensus.types import ConfChangeKind, Message
from charter.errors import CharterError

_MAX_ROUNDS = 64  # bound on same-tick delivery rounds (zero-delay ping-pong)
_MAX_READIES = 16  # bound on consecutive Readies handled after one step


@dataclass(slots=True)
class SimNode:
    """One node's durable storage plus its volatile lifetime (None while crashed)."""

    node_id: int
    storage: core.MemoryStorage
    raft: core.RaftNode | None = None
    applied: list[EntryRecord] = field(default_factory=list)
    applied_index: int = 0
    conf: core.ConfState | None = None
    conf_history: list[tuple[int, core.ConfState]] = field(default_factory=list)
    pending: core.Ready | None = None
    pending_done_at: int = 0
    pending_sent: bool = False
    slow_until: int = 0
    slow_extra: int = 0
    proposals: set[bytes] = field(default_factory=set)
    reads: dict[bytes, int] = field(default_factory=dict)
    read_results: dict[bytes, int] = field(default_factory=dict)
    lifetimes: int = 0

    @property
    def alive(self) -> bool:
        return self.raft is not None


class Cluster:
    """Drives a set of ``RaftNode`` instances in virtual time from one seeded RNG."""

    def __init__(
        self,
        seed: int,
        size: int,
        *,
        profile: NetProfile | None = None,
        election_ticks: int = 10,
        heartbeat_ticks: int = 1,
        pre_vote: bool = True,
        check_quorum: bool = True,
        checker: Checker | None = None,
        trace: Callable[[str], None] | None = None,
        node_factory: Callable[..., core.RaftNode] | None = None,
        node_options: dict[str, int] | None = None,
        trace_messages: bool = False,
    ) -> None:
        self.rng = random.Random(seed)
        self.net: Network[Message] = Network(self.rng, profile or NetProfile())
        self.checker = checker or Checker()
        self.now = 0
        self.election_ticks = election_ticks
        self.heartbeat_ticks = heartbeat_ticks
        self.pre_vote = pre_vote
        self.check_quorum = check_quorum
        self._trace = trace
        self._factory: Callable[..., core.RaftNode] = node_factory or core.new_node
        self.node_options: dict[str, int] = dict(node_options or {})
        self.trace_messages = trace_messages
        self.nodes: dict[int, SimNode] = {}
        self.counts: Counter[str] = Counter()
        self._last_role: dict[int, tuple[int, object]] = {}
        voters = frozenset(range(1, size + 1))
        for nid in sorted(voters):
            self._add_node(nid, core.new_storage(voters))

    # --- nodes --------------------------------------------------------------------------------

    def trace(self, text: str) -> None:
        if self._trace is not None:
            self._trace(f"[{self.now:5d}] {text}")

    def _add_node(self, nid: int, storage: core.MemoryStorage) -> SimNode:
        sn = SimNode(nid, storage)
        self.nodes[nid] = sn
        self._boot(sn)
        return sn

    def _boot(self, sn: SimNode) -> None:
        rng = random.Random(self.rng.getrandbits(64))
        sn.raft = self._factory(
            sn.node_id,
            sn.storage,
            rng,
            election_ticks=self.election_ticks,
            heartbeat_ticks=self.heartbeat_ticks,
            pre_vote=self.pre_vote,
            check_quorum=self.check_quorum,
            **self.node_options,
        )
        sn.lifetimes += 1
        sn.pending = None
        sn.applied = []
        sn.applied_index = 0
        sn.conf = sn.raft.conf_state
        sn.conf_history = [(0, sn.conf)]
        self.checker.on_restart(sn.node_id)
        snap = sn.storage.snapshot()
        if snap.metadata.index > 0:
            if sn.lifetimes == 1:
                # A founding member's bootstrap snapshot is durable from the start.
                self.checker.on_snapshot(sn.node_id, snap.metadata.index, snap.metadata.term, None)
            sn.applied = decode_applied(snap.data)
            sn.applied_index = snap.metadata.index
            sn.conf = snap.metadata.conf
            sn.conf_history = [(snap.metadata.index, snap.metadata.conf)]
            self.checker.on_snapshot_applied(sn.node_id, sn.applied_index, sn.applied)
        self._observe(sn)

    def live(self) -> list[SimNode]:
        return [sn for _, sn in sorted(self.nodes.items()) if sn.raft is not None]

    def node(self, nid: int) -> SimNode:
        sn = self.nodes.get(nid)
        if sn is None:
            raise SimError(f"no node {nid}", code="consensus.sim.node")
        return sn

    def raft(self, nid: int) -> core.RaftNode:
        r = self.node(nid).raft
        if r is None:
            raise SimError(f"node {nid} is down", code="consensus.sim.node")
        return r

    def crash(self, nid: int) -> None:
        sn = self.node(nid)
        if sn.raft is None:
            return
        self.trace(f"crash {nid}")
        self.counts["crash"] += 1
        sn.raft = None
        sn.pending = None
        sn.proposals.clear()
        sn.reads.clear()
        self._last_role.pop(nid, None)
        self.checker.on_crash(nid)
        self.net.cut(nid)

    def restart(self, nid: int) -> None:
        sn = self.node(nid)
        if sn.raft is not None:
            return
        self.trace(f"restart {nid}")
        self._boot(sn)

    def add_joiner(self, nid: int) -> SimNode:
        """A brand-new node with empty storage; it learns the cluster from the leader."""
        return self._add_node(nid, core.new_storage(None))

    def leader(self) -> SimNode | None:
        """The live leader with the highest term, if any."""
        best: SimNode | None = None
        for sn in self.live():
            r = sn.raft
            assert r is not None
            if r.role is core.Role.LEADER and (
                best is None or best.raft is None or r.term > best.raft.term
            ):
                best = sn
        return best

    def slow_disk(self, nid: int, extra: int, until: int) -> None:
        sn = self.node(nid)
        sn.slow_extra = extra
        sn.slow_until = until

    # --- client operations -------------------------------------------------------------------

    def propose(self, nid: int, data: bytes) -> bool:
        sn = self.node(nid)
        r = sn.raft
        if r is None:
            return False
        try:
            r.propose(data)
        except CharterError as exc:
            if isinstance(exc, InvariantViolation):
                raise
            self.trace(f"propose {nid} {data!r} refused: {exc.code}")
            return False
        sn.proposals.add(b"N" + data)
        self.trace(f"propose {nid} {data!r}")
        self._after(sn)
        return True

    def conf_change(self, nid: int, kind: ConfChangeKind, target: int) -> bool:
        sn = self.node(nid)
        r = sn.raft
        if r is None:
            return False
        try:
            r.propose_conf_change(core.ConfChange(kind, target))
        except CharterError as exc:
            if isinstance(exc, InvariantViolation):
                raise
            self.trace(f"conf-change {kind.name} {target} at {nid} refused: {exc.code}")
            return False
        self.trace(f"conf-change {kind.name} {target} at {nid}")
        self._after(sn)
        return True

    def transfer(self, nid: int, to: int) -> bool:
        sn = self.node(nid)
        r = sn.raft
        if r is None:
            return False
        try:
            r.transfer_leadership(to)
        except CharterError as exc:
            if isinstance(exc, InvariantViolation):
                raise
            self.trace(f"transfer {nid}->{to} refused: {exc.code}")
            return False
        self.trace(f"transfer {nid}->{to}")
        self._after(sn)
        return True

    def read_index(self, nid: int, ctx: bytes) -> bool:
        sn = self.node(nid)
        r = sn.raft
        if r is None:
            return False
        try:
            r.read_index(ctx)
        except CharterError as exc:
            if isinstance(exc, InvariantViolation):
                raise
            return False
        # Linearizability floor: the read must see every write acknowledged before it.
        sn.reads[ctx] = self.checker.max_acknowledged()
        self._after(sn)
        return True

    def compact(self, nid: int, index: int | None = None) -> int:
        """Snapshot the application at ``index`` (default: applied) and compact the log."""
        sn = self.node(nid)
        if sn.raft is None or sn.conf is None:
            return 0
        at = sn.applied_index if index is None else min(index, sn.applied_index)
        if at <= sn.storage.snapshot_index():
            return 0
        state = [rec for rec in sn.applied if rec[0] <= at]
        conf = self._conf_at(sn, at)
        sn.storage.create_snapshot(at, conf, encode_applied(state))
        sn.storage.compact(at)
        self.checker.on_compact(nid, at)
        self.trace(f"compact {nid} at {at}")
        self.counts["compact"] += 1
        return at

    def _conf_at(self, sn: SimNode, index: int) -> core.ConfState:
        # Conf changes take effect when applied; the conf at ``index`` is the latest one
        # applied at or before it. We keep the history on the node for exactly this.
        conf = sn.conf
        assert conf is not None
        for at, c in reversed(sn.conf_history):
            if at <= index:
                return c
        return conf

    # --- time ---------------------------------------------------------------------------------

    def tick(self, nodes: Iterable[int] | None = None, *, deliver: bool = True) -> None:
        """One tick of virtual time: disks finish, clocks tick, the network delivers."""
        self.now += 1
        self._finish_disks()
        ids = sorted(self.nodes) if nodes is None else list(nodes)
        for nid in ids:
            sn = self.nodes[nid]
            if sn.raft is not None:
                sn.raft.tick()
                self._after(sn)
        if deliver:
            self.deliver_due()

    def deliver_due(self) -> None:
        for _ in range(_MAX_ROUNDS):
            batch = self.net.due(self.now)
            if not batch:
                return
            for _frm, to, msg in batch:
                self.deliver(to, msg)
            self._finish_disks()

    def deliver_all(self, rounds: int = 1000) -> None:
        """Deliver everything in flight in send order until quiet (scenario mode)."""
        for _ in range(rounds):
            self._finish_disks()
            batch = self.net.drain()
            if not batch:
                return
            for _frm, to, msg in batch:
                self.deliver(to, msg)

    def deliver_one(self) -> bool:
        """Deliver the oldest message in flight; False if nothing was deliverable."""
        self._finish_disks()
        got = self.net.pop_next()
        if got is None:
            return False
        self.deliver(got[1], got[2])
        return True

    def deliver(self, to: int, msg: Message) -> None:
        sn = self.nodes.get(to)
        if self.trace_messages:
            extra = f" +{len(msg.entries)}" if msg.entries else ""
            rej = " reject" if msg.reject else ""
            self.trace(
                f"{msg.frm}->{to} {msg.type.name} t{msg.term} i{msg.index} lt{msg.log_term}"
                f" c{msg.commit}{extra}{rej}"
            )
        if sn is None or sn.raft is None:
            return
        try:
            sn.raft.step(msg)
        except CharterError as exc:
            if isinstance(exc, InvariantViolation):
                raise
            self.trace(f"node {to} rejected {msg.type.name}: {exc.code}")
        self._after(sn)

    def _finish_disks(self) -> None:
        for sn in self.nodes.values():
            if sn.pending is not None and sn.pending_done_at <= self.now:
                self._complete(sn)
                self._after(sn)

    # --- the driver loop for one node ---------------------------------------------------------

    def _observe(self, sn: SimNode) -> None:
        r = sn.raft
        if r is None:
            return
        role = r.role
        term = r.term
        last = self._last_role.get(sn.node_id)
        if last is None or last[0] != term or last[1] is not role:
            self._last_role[sn.node_id] = (term, role)
            if role is core.Role.LEADER:
                self.counts["leader"] += 1
                self.trace(f"node {sn.node_id} leads term {term}")
        ch = self.checker
        if role is core.Role.LEADER:
            ch.on_role(sn.node_id, term, True)
        commit = r.commit_index
        if commit > ch.max_committed:  # the common case returns here, cheaply
            ch.on_commit(sn.node_id, commit, r.conf_state.voters)

    def _after(self, sn: SimNode) -> None:
        """Observe ``sn`` and handle its Readies (unless a slow disk still holds one)."""
        self._observe(sn)
        for _ in range(_MAX_READIES):
            r = sn.raft
            if r is None or sn.pending is not None or not r.has_ready():
                return
            rd = r.ready()
            ch = self.checker
            ch.on_pending(sn.node_id, [core.entry_record(e) for e in rd.entries])
            ch.on_ready_taken(sn.node_id, r.role is core.Role.LEADER, r.term)
            sn.pending = rd
            sn.pending_sent = False
            if self.now < sn.slow_until and (rd.entries or rd.hard_state or rd.snapshot):
                sn.pending_done_at = self.now + sn.slow_extra
                if self._may_send_early(sn, rd):
                    # The core allows a leader to ship its own new entries while its disk
                    # writes them: it does not count itself until they are durable.
                    for m in rd.messages:
                        self.net.send(sn.node_id, m.to, m, self.now)
                    sn.pending_sent = True
                return
            self._complete(sn)
            self._observe(sn)

    def _may_send_early(self, sn: SimNode, rd: core.Ready) -> bool:
        r = sn.raft
        if r is None or r.role is not core.Role.LEADER or rd.snapshot is not None:
            return False
        hs = rd.hard_state
        durable = sn.storage.hard_state
        return hs is None or (hs.term, hs.vote) == (durable.term, durable.vote)

    def _complete(self, sn: SimNode) -> None:
        """Persist, send, apply, advance: the order a correct driver must follow."""
        rd = sn.pending
        r = sn.raft
        if rd is None or r is None:
            return
        sn.pending = None
        nid = sn.node_id
        ch = self.checker
        snap = rd.snapshot
        snap_state: list[EntryRecord] | None = None
        if snap is not None:
            snap_state = decode_applied(snap.data)
        core.persist(sn.storage, rd)
        if snap is not None:
            ch.on_snapshot(nid, snap.metadata.index, snap.metadata.term, snap_state)
        ch.on_persist(nid, [core.entry_record(e) for e in rd.entries])
        if rd.hard_state is not None:
            hs = rd.hard_state
            ch.on_hard_state(nid, hs.term, hs.vote, hs.commit)
        if not sn.pending_sent:
            for m in rd.messages:
                self.net.send(nid, m.to, m, self.now)
        if snap is not None and snap_state is not None and snap.metadata.index > sn.applied_index:
            sn.applied = snap_state
            sn.applied_index = snap.metadata.index
            sn.conf = snap.metadata.conf
            sn.conf_history = [(snap.metadata.index, snap.metadata.conf)]
            ch.on_snapshot_applied(nid, sn.applied_index, snap_state)
            self.counts["snapshot-installed"] += 1
            self.trace(f"node {nid} installed snapshot at {sn.applied_index}")
        for e in rd.committed_entries:
            rec = core.entry_record(e)
            ch.on_apply(nid, rec[0], rec[1], rec[2])
            sn.applied.append(rec)
            sn.applied_index = e.index
            cc = core.conf_change_of(e)
            if cc is not None:
                sn.conf = r.apply_conf_change(cc)
                sn.conf_history.append((e.index, sn.conf))
                self.counts["conf-applied"] += 1
                self.trace(f"node {nid} applied {cc.kind.name} {cc.node_id} at {e.index}")
            if rec[2] in sn.proposals:
                sn.proposals.discard(rec[2])
                ch.acknowledge(rec[0], rec[1], rec[2])
                self.counts["acknowledged"] += 1
        for rs in rd.read_states:
            floor = sn.reads.pop(rs.ctx, None)
            if floor is not None:
                if rs.index < floor:
                    raise InvariantViolation(
                        "read-index",
                        f"node {nid} read index {rs.index} misses acknowledged index {floor}",
                    )
                sn.read_results[rs.ctx] = rs.index
                self.counts["read"] += 1
        r.advance(rd)
