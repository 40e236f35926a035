"""The node's ledger service: Raft over OCapN feeding the ledger engine.

A thin asyncio shell; every decision that can be pure lives in ``charter.ledger.engine``.

- **Writes.** ``submit`` queues one transaction; all transactions queued within one turn
  of the event loop (or up to ``max_batch_txs``) become ONE batch, signed once with this
  node's Ed25519 key. The leader proposes it; a follower forwards the signed batch to the
  leader's ``ledger-submit`` capability (``ledger_submit``). On a leader change the same
  bytes are sent again (a bounded number of times, within ``submit_timeout``): the
  engine's replay check turns a second copy into an Invalid leaf, so nothing applies
  twice. ``wait="accepted"`` returns once the batch is applied here (the transaction id
  is known, status Pending); ``wait="committed"`` once a signature covers it (Committed)
  or it was rejected (Invalid, with the engine's reason).
- **Signatures.** Only the leader signs: a task feeds elapsed time to the engine's
  schedule and proposes ``engine.make_signature`` with the node's P-256 ledger key when
  it is due (every N transactions or T ms). A new leader signs what its predecessor left
  unsigned.
- **Snapshots.** When the engine's ``SnapshotSchedule`` says so after an apply, the
  engine's snapshot becomes the Raft snapshot (``create_snapshot``, then ``compact``
  keeping ``compact_margin`` entries for slightly lagging followers); the leader proposes
  the snapshot evidence so that a later signature covers it.
- **Divergence.** A signed root that differs from ours halts the engine; the service
  logs the alarm with structured fields, counts it, and refuses writes (``LedgerHalted``).

Batch sequence numbers start from the wall clock in microseconds, so they keep rising
across restarts as the engine's replay check needs; its window is a minute of those
microseconds (a clock set back by more than that would make a restarted node's first
batches Invalid).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from charter.consensus.driver import RaftDriver
from charter.consensus.errors import (
    ConsensusError,
    DriverStopped,
    NotLeader,
    ProposalDropped,
    TransferInProgress,
)
from charter.consensus.storage import RaftStorage
from charter.consensus.types import Entry, Role, Snapshot
from charter.crypto.certs import Certificate
from charter.crypto.keys import Ed25519PrivateKey, Ed25519PublicKey, P256PrivateKey
from charter.errors import CharterError
from charter.ledger.engine import (
    ApplyResult,
    Command,
    CommandHandler,
    DivergenceAlarm,
    Engine,
    EngineError,
    EntryKind,
    Transaction,
    TxStatus,
    Waiters,
    Write,
    sign_batch,
)
from charter.ledger.signatures import SignaturePolicy
from charter.ledger.snapshots import SnapshotPolicy
from charter.ledger.trust import NodeCert, TrustedNodes
from charter.node.ledger_submit import (
    BUSY,
    INTRODUCE,
    NOT_LEADER,
    OK,
    SUBMIT,
    SubmitGate,
    submit_swiss,
)
from charter.node.raft_member import RaftMember
from charter.node.raft_transport import Backoff, RaftNetworkConfig
from charter.ocapn.locator import SturdyRef
from charter.ocapn.runtime import RemoteRef, Runtime

__all__ = [
    "LedgerHalted",
    "LedgerMember",
    "LedgerNetwork",
    "LedgerService",
    "LedgerServiceError",
    "LedgerSettings",
    "LedgerStatus",
    "NotAvailable",
    "SubmitTicket",
]

log = logging.getLogger(__name__)
_MAX_BOOTSTRAP_SKIP = 16

Wait = Literal["accepted", "committed"]


def _now_us() -> int:
    """The wall clock in microseconds: batch sequence numbers never fall behind it."""
    return time.time_ns() // 1000


Consistency = Literal["local", "committed", "linearizable"]


class LedgerServiceError(CharterError):
    code = "node.ledger"


class NotAvailable(LedgerServiceError):
    """The ledger cannot serve the request now (no leader, no quorum, not running)."""

    code = "node.ledger.not_available"

    def __init__(self, reason: str) -> None:
        super().__init__(f"ledger not available: {reason}")
        self.reason = reason


class LedgerHalted(LedgerServiceError):
    """This node's engine halted on a divergence alarm; it takes no writes."""

    code = "node.ledger.halted"


@dataclass(frozen=True)
class LedgerMember:
    """What the network knows of one member: its batch signer and its ledger certificate."""

    name: str
    """The submitter id its batches carry."""
    batch_key: Ed25519PublicKey
    ledger_cert: Certificate
    """The P-256 certificate its signature transactions are verified with."""
    member: str = ""
    """The member who owns the node (command handlers authorise by it)."""


@dataclass(frozen=True)
class LedgerNetwork:
    """The consensus group (``raft``) and, per node id, what the engine must trust."""

    raft: RaftNetworkConfig
    secret: bytes
    members: Mapping[int, LedgerMember]

    def __post_init__(self) -> None:
        if set(self.members) != set(self.raft.peers):
            raise LedgerServiceError("every raft peer, and only they, are ledger members")
        if len({m.name for m in self.members.values()}) != len(self.members):
            raise LedgerServiceError("member names are unique")

    def node_keys(self) -> dict[str, Ed25519PublicKey]:
        return {m.name: m.batch_key for m in self.members.values()}

    def node_members(self) -> dict[str, str]:
        return {m.name: m.member for m in self.members.values()}

    def trusted(self) -> TrustedNodes:
        return TrustedNodes(NodeCert.from_x509(m.ledger_cert.x509) for m in self.members.values())


@dataclass(frozen=True)
class LedgerSettings:
    """Tunables of one node's ledger service (the engine's policies among them)."""

    signature_policy: SignaturePolicy = field(default_factory=SignaturePolicy)
    snapshot_policy: SnapshotPolicy = field(default_factory=SnapshotPolicy)
    max_batch_txs: int = 1000
    submit_timeout: float = 10.0
    """How long a write may wait for a leader before ``NotAvailable``."""
    max_attempts: int = 20
    """How many times one batch is (re)sent across leader changes."""
    signature_check_ms: int = 10
    """How often the leader asks the schedule whether a signature is due."""
    signature_group_commit: bool = True
    """Sign as soon as anything applied is unsigned and no signature is in flight; False
    signs only when the signature policy says one is due (fewer, later signatures)."""
    compact_margin: int = 1000
    tick_interval: float = 0.01
    election_ticks: int = 10
    heartbeat_ticks: int = 1
    backoff: Backoff | None = None
    observe_batch_size: Callable[[int], None] | None = None
    """Told the number of transactions of each batch this node signs (a metrics hook)."""


@dataclass(frozen=True, slots=True)
class SubmitTicket:
    """The outcome of one submitted transaction."""

    tx_id: str
    status: TxStatus
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class LedgerStatus:
    """The node's ledger at a glance, as the REST API's status endpoint will serve it."""

    node_id: int
    name: str
    role: str
    term: int
    leader: int | None
    commit_index: int
    applied_index: int
    last_seqno: int
    signed_upto: int
    halted: bool
    alarms: int


class _Pending:
    """One submitted transaction: applied here (``accepted``), then signed or rejected."""

    __slots__ = ("accepted", "final", "tx", "tx_id")

    def __init__(self, tx: Transaction | Command, loop: asyncio.AbstractEventLoop) -> None:
        self.tx = tx
        self.tx_id = ""
        self.accepted: asyncio.Future[str] = loop.create_future()
        self.final: asyncio.Future[SubmitTicket] = loop.create_future()

    def fail(self, exc: BaseException) -> None:
        for fut in (self.accepted, self.final):
            if not fut.done():
                fut.set_exception(exc)
                fut.exception()  # retrieved: a caller waiting only for one must not warn


class LedgerService:
    """One node's ledger: ``run()`` until cancelled; writes, reads, receipts, status."""

    def __init__(
        self,
        runtime: Runtime,
        network: LedgerNetwork,
        node_id: int,
        *,
        batch_key: Ed25519PrivateKey,
        ledger_key: P256PrivateKey,
        ledger_cert: Certificate,
        storage: RaftStorage,
        rng: random.Random,
        settings: LedgerSettings | None = None,
        handlers: Mapping[str, CommandHandler] | None = None,
    ) -> None:
        if node_id not in network.members:
            raise LedgerServiceError(f"node {node_id} is not a member of the network")
        me = network.members[node_id]
        if me.batch_key != batch_key.public_key:
            raise LedgerServiceError("the batch key is not the one the network lists")
        if not ledger_cert.matches(ledger_key.public_key):
            raise LedgerServiceError("the ledger certificate is not for the ledger key")
        self.settings = s = settings or LedgerSettings()
        self.runtime = runtime
        self.network = network
        self.node_id = node_id
        self.name = me.name
        self._batch_key = batch_key
        self._ledger_key = ledger_key
        self._ledger_cert = ledger_cert
        self.engine = Engine(
            network_secret=network.secret,
            node_keys=network.node_keys(),
            trusted=network.trusted(),
            signature_policy=s.signature_policy,
            snapshot_policy=s.snapshot_policy,
            node_members=network.node_members(),
            handlers=handlers,
        )
        self.waiters = Waiters()
        self._listeners: list[Callable[[ApplyResult], None]] = []
        self.alarm_count = 0
        self.forwarded = 0
        self.batches_sent = 0
        self.signatures_proposed = 0
        self.signatures_applied = 0
        """Signature transactions applied here (any leader's), since this process started."""
        self._queue: list[_Pending] = []
        self._flush_scheduled = False
        self._batches: dict[tuple[str, int], list[_Pending]] = {}
        self._finals: dict[str, _Pending] = {}
        # Batch sequence numbers rise across restarts: the engine refuses replays by them.
        self._batch_seq = _now_us()
        self._facets: dict[int, RemoteRef] = {}
        self._gate = SubmitGate(network.raft, node_id, self._propose_for_peer)
        self._swiss = submit_swiss(network.raft.network_id, node_id)
        self._signature_wake = asyncio.Event()
        self._tg: asyncio.TaskGroup | None = None
        self.member = RaftMember(
            runtime,
            network.raft,
            node_id,
            storage,
            self._apply,
            restore=self._restore,
            rng=rng,
            tick_interval=s.tick_interval,
            election_ticks=s.election_ticks,
            heartbeat_ticks=s.heartbeat_ticks,
            backoff=s.backoff,
        )

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def driver(self) -> RaftDriver:
        return self.member.driver

    @property
    def running(self) -> bool:
        return self._tg is not None

    async def run(self) -> None:
        """Serve until cancelled: the Raft member, the submit gate and the signer."""
        self.runtime.register(self._gate, self._swiss)
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                signer = tg.create_task(self._signer())
                await self.member.run()
                signer.cancel()
        finally:
            self._tg = None
            self.runtime.unregister(self._swiss)
            self._fail_all(NotAvailable(f"node {self.node_id} stopped"))

    def _fail_all(self, exc: CharterError) -> None:
        for pending in [*self._queue, *self._finals.values()]:
            pending.fail(exc)
        for batch in self._batches.values():
            for pending in batch:
                pending.fail(exc)
        for submitter, seq in self._batches:
            self.waiters.unwatch_batch(submitter, seq)
        self._queue.clear()
        self._finals.clear()
        self._batches.clear()

    # -- apply side (called by the driver for each committed entry) ----------------------

    def _apply(self, entry: Entry) -> None:
        engine = self.engine
        if engine.halted:
            return
        result = engine.apply([entry])
        if result.applied:
            self.signatures_applied += sum(
                1
                for tx in result.applied
                if tx.kind is EntryKind.SIGNATURE and tx.status is not TxStatus.INVALID
            )
            self._settle(result)
            for listener in self._listeners:
                listener(result)
        if result.alarms:
            for alarm in result.alarms:
                self._alarm(alarm)
        if result.signature_due or (result.applied and self.settings.signature_group_commit):
            self._signature_wake.set()  # the leader's signer signs what is now unsigned
        if result.snapshot_due and not engine.halted:
            self._take_snapshot(entry.index)

    def _settle(self, result: ApplyResult) -> None:
        batches = self._batches
        if batches:
            position: dict[tuple[str, int], int] = {}
            for tx in result.applied:
                if tx.batch_seq is None or tx.submitter != self.name:
                    continue
                key = (tx.submitter, tx.batch_seq)
                members = batches.get(key)
                if members is None:
                    continue
                i = position.get(key, 0)
                position[key] = i + 1
                if i < len(members):
                    p = members[i]
                    p.tx_id = tx.tx_id
                    if not p.accepted.done():
                        p.accepted.set_result(tx.tx_id)
                    if tx.status is TxStatus.INVALID:
                        if not p.final.done():
                            p.final.set_result(SubmitTicket(tx.tx_id, tx.status, tx.reason))
                    else:
                        self._finals[tx.tx_id] = p
            for key in position:
                batches.pop(key, None)
        for settled in self.waiters.feed(result):
            owner = self._finals.pop(settled.tx_id, None)
            if owner is not None and not owner.final.done():
                owner.final.set_result(SubmitTicket(settled.tx_id, settled.status, settled.reason))

    def _alarm(self, alarm: DivergenceAlarm) -> None:
        self.alarm_count += 1
        log.error(
            "ledger divergence: signed root differs from ours; writes stopped",
            extra={
                "event": "ledger.divergence",
                "node_id": self.node_id,
                "tx_id": alarm.tx_id,
                "tree_size": alarm.tree_size,
                "signer": alarm.received.node_id,
                "received_root": alarm.received.root.hex(),
                "computed_root": alarm.computed_root.hex(),
            },
        )
        self._fail_all(LedgerHalted(f"node {self.node_id} halted on a divergence alarm"))

    def _restore(self, snap: Snapshot) -> None:
        if snap.data:
            self.engine.restore(snap.data)
            return
        # An empty snapshot is the founding one (``MemoryStorage.bootstrap``): it holds no
        # engine state, only the index the log starts after, which the engine skips.
        first, index = self.engine.applied_index + 1, snap.metadata.index
        if index - first >= _MAX_BOOTSTRAP_SKIP:
            raise LedgerServiceError(f"an empty snapshot at index {index} holds no ledger state")
        term = snap.metadata.term
        self.engine.apply([Entry(term, i) for i in range(first, index + 1)])

    def _take_snapshot(self, index: int) -> None:
        """The engine's state as of ``index`` becomes the Raft snapshot; writing it (and
        compacting the log) is a storage job, off the event loop on a disk storage."""
        engine = self.engine
        driver = self.member.driver
        storage = driver.storage
        data = engine.snapshot()
        # taken now: the evidence must describe the engine as of this apply
        evidence = engine.snapshot_evidence(data)
        conf = driver.node.conf_state
        keep_from = max(0, index - self.settings.compact_margin)

        def write() -> None:
            storage.create_snapshot(index, conf, data)
            storage.compact(keep_from)

        def done(_: object, exc: Exception | None) -> None:
            if exc is not None:
                if not isinstance(exc, ConsensusError):
                    raise exc  # an I/O error: the storage refuses writes from now on
                log.warning("node %d: snapshot at %d not taken: %s", self.node_id, index, exc)
                return
            if self._is_leader() and self._tg is not None:
                self._tg.create_task(self._propose_quietly(evidence, "snapshot evidence"))

        driver.storage_job(write, done)

    async def _propose_quietly(self, entry: bytes, what: str) -> None:
        try:
            async with asyncio.timeout(self.settings.submit_timeout):
                await self.member.driver.propose(entry)
        except (ConsensusError, TimeoutError) as exc:
            log.info("node %d: %s not committed: %r", self.node_id, what, exc)

    def add_listener(self, listener: Callable[[ApplyResult], None]) -> Callable[[], None]:
        """Call ``listener`` with every apply result that added leaves, in log order.

        It runs inside the apply path: it must be quick and must not raise (queue work
        for a task instead). Returns a function that removes the listener.
        """
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    # -- writes ------------------------------------------------------------------------

    async def submit(
        self,
        tx: Transaction | Command | Iterable[Write | tuple[str, str, bytes | None]],
        *,
        wait: Wait = "accepted",
    ) -> SubmitTicket:
        """Submit one transaction or command; the module notes say what ``wait`` waits for."""
        if not isinstance(tx, (Transaction, Command)):
            tx = Transaction.of(tx)
        (ticket,) = await self.submit_many([tx], wait=wait)
        return ticket

    async def submit_many(
        self, txs: Sequence[Transaction | Command], *, wait: Wait = "accepted"
    ) -> list[SubmitTicket]:
        """``submit`` for each of ``txs``, queued together (one batch if they fit): the
        tickets in order, without a task and a timer per transaction."""
        pending = [self._enqueue(tx) for tx in txs]
        limit = self.settings.submit_timeout
        try:
            async with asyncio.timeout(limit * 2):
                tx_ids = [await p.accepted for p in pending]
        except TimeoutError:
            raise NotAvailable(f"the batch was not applied here within {2 * limit:g} s") from None
        if wait == "accepted":
            engine = self.engine
            for p in pending:
                p.final.cancel()
            return [SubmitTicket(t, engine.status(t), engine.invalid_reason(t)) for t in tx_ids]
        try:
            async with asyncio.timeout(limit):
                return [await p.final for p in pending]
        except TimeoutError:
            for tx_id in tx_ids:
                self._finals.pop(tx_id, None)
            what = tx_ids[0] if len(tx_ids) == 1 else f"{len(tx_ids)} transactions"
            raise NotAvailable(f"{what} was not signed within {limit:g} s") from None

    def _enqueue(self, tx: Transaction | Command) -> _Pending:
        """Queue ``tx`` for this turn's batch; await the returned futures."""
        if self.engine.halted:
            raise LedgerHalted(f"node {self.node_id} halted on a divergence alarm")
        if self._tg is None:
            raise NotAvailable(f"node {self.node_id} is not running")
        p = _Pending(tx, asyncio.get_running_loop())
        self._queue.append(p)
        if len(self._queue) >= self.settings.max_batch_txs:
            self._flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        return p

    def _flush(self) -> None:
        self._flush_scheduled = False
        queue, self._queue = self._queue, []
        if not queue:
            return
        tg = self._tg
        if tg is None:
            for p in queue:
                p.fail(NotAvailable(f"node {self.node_id} is not running"))
            return
        # rises by one per batch and never falls behind the clock: handlers read it as time
        self._batch_seq = max(self._batch_seq + 1, _now_us())
        seq = self._batch_seq
        try:
            entry = sign_batch(self._batch_key, self.name, seq, [p.tx for p in queue])
        except EngineError as exc:
            for p in queue:
                p.fail(exc)
            return
        self._batches[(self.name, seq)] = queue
        self.waiters.watch_batch(self.name, seq)
        self.batches_sent += 1
        observe = self.settings.observe_batch_size
        if observe is not None:
            observe(len(queue))
        tg.create_task(self._deliver(entry, (self.name, seq)))

    async def _deliver(self, entry: bytes, key: tuple[str, int]) -> None:
        """Get ``entry`` into the log: propose here, or forward to the leader; retry."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.submit_timeout
        reason = "no leader"
        for _ in range(self.settings.max_attempts):
            if key not in self._batches:
                return  # applied meanwhile (an earlier attempt got through)
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                async with asyncio.timeout(remaining):
                    leader = await self._await_leader()
                    if leader == self.node_id:
                        await self.member.driver.propose(entry)
                    else:
                        reply = await self._forward(leader, entry)
                        if reply[0] != OK:
                            reason = f"node {leader} answered {reply[0]}"
                            await self._changed_leader(leader)
                            continue
                return
            except TimeoutError:
                reason = "no leader with a quorum within the timeout"
                break
            except (NotLeader, ProposalDropped, TransferInProgress) as exc:
                reason = exc.message
            except DriverStopped as exc:
                reason = exc.message
                break
            except (CharterError, OSError) as exc:
                # the leader went away mid-call (promise broken, session closed)
                reason = str(exc)
                self._facets.clear()
            await self._pause(deadline)
        batch = self._batches.pop(key, None)
        if batch is not None:
            self.waiters.unwatch_batch(*key)
            exc2 = NotAvailable(f"{reason} (after {self.settings.submit_timeout:g} s)")
            for p in batch:
                p.fail(exc2)

    async def _pause(self, deadline: float) -> None:
        """Wait for the consensus state to change (a step), bounded by the deadline."""
        net = self.member.transport
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            return
        term = self.member.driver.node.term
        with_timeout = min(remaining, self.settings.tick_interval * self.settings.election_ticks)
        try:
            async with asyncio.timeout(with_timeout):
                await net.wait_for(lambda: self.member.driver.node.term != term)
        except TimeoutError:
            return

    async def _changed_leader(self, old: int) -> None:
        node = self.member.driver.node
        term = node.term
        limit = self.settings.tick_interval * self.settings.election_ticks * 2
        try:
            async with asyncio.timeout(limit):
                await self.member.transport.wait_for(
                    lambda: node.term != term or node.leader_id != old
                )
        except TimeoutError:
            return

    def _is_leader(self) -> bool:
        node = self.member.driver.node
        return bool(node.role is Role.LEADER)

    async def _await_leader(self) -> int:
        node = self.member.driver.node
        await self.member.transport.wait_for(lambda: node.leader_id is not None)
        leader = node.leader_id
        assert leader is not None
        return int(leader)

    async def _forward(self, leader: int, entry: bytes) -> list[Any]:
        facet = self._facets.get(leader)
        if facet is None or facet.peer.closed.is_set():
            sturdy = SturdyRef(
                self.network.raft.peers[leader], submit_swiss(self.network.raft.network_id, leader)
            )
            gate = await self.runtime.enliven(sturdy)
            if type(gate) is not RemoteRef:
                raise NotAvailable(f"node {leader}'s submit gate is not a remote object")
            facet = await gate.send(INTRODUCE, self._gate)
            if type(facet) is not RemoteRef:
                raise NotAvailable(f"node {leader} returned no submit facet")
            self._facets[leader] = facet
        self.forwarded += 1
        reply = await facet.send(SUBMIT, entry)
        if not isinstance(reply, list) or not reply or type(reply[0]) is not str:
            raise NotAvailable(f"node {leader} sent a malformed submit reply")
        return reply

    async def propose_entry(self, entry: bytes) -> int:
        """Put an already built entry into the log (one attempt); its Raft index.

        For callers that build their own entries (governance later); the engine judges
        the entry like any other, so this grants nothing a member does not have.
        """
        leader = await self._await_leader()
        if leader == self.node_id:
            index: int = await self.member.driver.propose(entry)
            return index
        reply = await self._forward(leader, entry)
        if reply[0] != OK or len(reply) != 2 or type(reply[1]) is not int:
            raise NotAvailable(f"node {leader} answered {reply[0]}")
        return reply[1]

    async def _propose_for_peer(self, entry: bytes) -> list[Any]:
        """A member's forwarded batch: into the log if we lead, else say who does."""
        if self.engine.halted:
            return [BUSY, "halted"]
        try:
            async with asyncio.timeout(self.settings.submit_timeout):
                index = await self.member.driver.propose(entry)
        except NotLeader as exc:
            return [NOT_LEADER, exc.leader_id or 0]
        except ConsensusError as exc:
            return [BUSY, exc.message]
        except TimeoutError:
            return [BUSY, "not committed within the timeout"]
        return [OK, index]

    # -- signatures --------------------------------------------------------------------

    async def _signer(self) -> None:
        """On the leader: propose signature transactions, one in flight at a time.

        With ``signature_group_commit`` (the default) it signs as soon as applied
        transactions await a signature: whatever is applied while one travels waits for
        the next, so signatures batch more under load and cost nothing when idle. Waiting
        for the policy's interval instead holds every ``wait=committed`` write for that
        long however idle the network is. Without it, it signs when the policy says one
        is due (the interval is then a cadence).
        """
        loop = asyncio.get_running_loop()
        period = self.settings.signature_check_ms / 1000
        every_ms = self.settings.signature_policy.every_ms
        group = self.settings.signature_group_commit
        last = loop.time()
        last_attempt = 0.0
        retry = False  # the last signature did not land: its leaves are unsigned still
        while True:
            now = loop.time()
            elapsed_ms = int((now - last) * 1000)
            last += elapsed_ms / 1000  # the fraction of a millisecond counts next time
            engine = self.engine
            due = engine.signature_due(elapsed_ms)
            if not self._can_sign():
                # Only a leader signs: sleep until this node leads (each Raft state change
                # re-checks), instead of polling on every node.
                self._signature_wake.clear()
                await self.member.transport.wait_for(self._can_sign)
                continue
            if group:
                want = retry or engine.schedule.unsigned > 0
            else:
                # a signature whose proposal was lost leaves leaves unsigned: sign again
                stale = engine.signed_upto < engine.last_seqno and (now - last_attempt) * 1000 >= (
                    2 * every_ms
                )
                want = due or stale
            if want:
                last_attempt = now
                before = engine.signed_upto
                await self._sign_once()
                retry = self.engine.signed_upto <= before
                if group and not retry:
                    continue  # whatever was applied while it travelled is next
            # With group commit an apply wakes the signer whenever there is something to
            # sign; only a retry needs the short period. Without it the schedule is polled.
            wait = period if retry or not group else every_ms / 1000
            try:
                async with asyncio.timeout(wait):
                    await self._signature_wake.wait()
            except TimeoutError:
                pass
            self._signature_wake.clear()

    def _can_sign(self) -> bool:
        return self._is_leader() and not self.engine.halted

    async def _sign_once(self) -> None:
        driver = self.member.driver
        try:
            entry = self.engine.make_signature(
                driver.node.term, self._ledger_key, self._ledger_cert, int(time.time() * 1000)
            )
        except EngineError as exc:
            log.warning("node %d: no signature: %s", self.node_id, exc)
            return
        self.signatures_proposed += 1
        await self._propose_quietly(entry, "signature")

    # -- reads -------------------------------------------------------------------------

    async def get(
        self, table: str, key: str, consistency: Consistency = "committed"
    ) -> bytes | None:
        """``local``: applied state; ``committed``: as of the last signature;
        ``linearizable``: the applied state once this node has caught up with the
        leader's commit index at the time of the call (Raft read index)."""
        if consistency == "local":
            return self.engine.get(table, key)
        if consistency == "committed":
            return self.engine.get_committed(table, key)
        if consistency != "linearizable":
            raise ValueError(f"unknown consistency {consistency!r}")
        try:
            async with asyncio.timeout(self.settings.submit_timeout):
                while True:
                    try:
                        await self.member.driver.read()
                        break
                    except NotLeader:
                        await self._await_leader()
        except TimeoutError:
            raise NotAvailable("no read index from a leader within the timeout") from None
        except DriverStopped as exc:
            raise NotAvailable(exc.message) from None
        return self.engine.get(table, key)

    def status(self, tx_id: str) -> TxStatus:
        return self.engine.status(tx_id)

    def receipt(self, tx_id: str, fmt: Literal["json", "cose"] = "json") -> bytes:
        return self.engine.receipt(tx_id, fmt)

    def summary(self) -> LedgerStatus:
        driver = self.member.driver
        node = driver.node
        return LedgerStatus(
            node_id=self.node_id,
            name=self.name,
            role=node.role.name.lower(),
            term=node.term,
            leader=node.leader_id,
            commit_index=node.commit_index,
            applied_index=driver.applied_index,
            last_seqno=self.engine.last_seqno,
            signed_upto=self.engine.signed_upto,
            halted=self.engine.halted,
            alarms=self.alarm_count,
        )
