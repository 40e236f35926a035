"""The asyncio driver of one RaftNode: timers, storage and transport around the pure core.

The driver owns the only clock (a tick every ``tick_interval`` seconds), feeds received
messages to the core, and runs the Ready loop in the order the core requires: persist,
send, apply, advance. A storage with ``blocking_io`` (on disk) is persisted from a worker
thread, one Ready at a time: while that persist is in flight neither the core nor the
storage is touched, and ticks, received messages and client calls wait in a queue that is
fed to the core, in arrival order, once the Ready has been advanced. A memory storage is
persisted inline, so in-memory clusters stay fast and deterministic.

Progress is driven by events, never by the next tick: a Ready is taken as soon as the
previous one is advanced, a leader's appends leave before its own persist (Raft thesis
10.2.1; see ``_send_early``), and a Ready the storage says needs no I/O (``needs_io``:
only the commit index moved, messages to send) is handled on the loop without a thread
hop. The application's own storage writes (snapshots, compaction) go through
``storage_job`` so that they too run in the worker thread, between Readies.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from charter.consensus.errors import ConsensusError, DriverStopped, ProposalDropped
from charter.consensus.raft import Config, RaftNode
from charter.consensus.storage import RaftStorage
from charter.consensus.types import (
    ConfChange,
    Entry,
    EntryKind,
    Message,
    MessageType,
    Ready,
    Role,
    Snapshot,
)
from charter.errors import CharterError

ApplyFn = Callable[[Entry], None]
"""Called for each committed entry, in log order (CONF_CHANGE entries included)."""

RestoreFn = Callable[[Snapshot], None]
"""Called when a snapshot replaces the application's state."""

StorageJobDone = Callable[[Any, Exception | None], None]
"""Told the result of a storage job, or the exception it raised (then the result is None)."""

_T = TypeVar("_T")


_EARLY = frozenset({MessageType.APPEND, MessageType.HEARTBEAT})
"""What a leader may send before its Ready is durable (see ``RaftDriver._send_early``)."""


def _always_io(rd: Ready) -> bool:
    return True


def _nothing() -> None:
    return None


SYNC_INTERVAL = 0.1
"""Seconds between catch-up writes of state a storage keeps lazily (its commit index):
done only when no Ready is waiting, so that it never holds up one that is."""


class _Pulse:
    """Wakes every waiter whenever something changed; waiters re-check their condition."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            await self._event.wait()


class MemoryNetwork:
    """Delivers messages between drivers of one event loop; links can be cut."""

    def __init__(self) -> None:
        self._inboxes: dict[int, asyncio.Queue[Message]] = {}
        self._cut: set[tuple[int, int]] = set()
        self._pulse = _Pulse()

    def register(self, node_id: int) -> asyncio.Queue[Message]:
        q: asyncio.Queue[Message] = asyncio.Queue()
        self._inboxes[node_id] = q
        return q

    def unregister(self, node_id: int) -> None:
        self._inboxes.pop(node_id, None)

    def send(self, m: Message) -> bool:
        """Queue ``m`` for its addressee; False if it is down or the link is cut."""
        q = self._inboxes.get(m.to)
        if q is None or (m.frm, m.to) in self._cut:
            return False
        q.put_nowait(m)
        return True

    def isolate(self, node_id: int) -> None:
        for other in self._inboxes:
            if other != node_id:
                self._cut.add((node_id, other))
                self._cut.add((other, node_id))

    def heal(self) -> None:
        self._cut.clear()

    def notify(self) -> None:
        self._pulse.fire()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate`` holds; it is re-checked whenever any driver acts."""
        await self._pulse.wait_for(predicate)


class RaftDriver:
    """Runs one RaftNode; ``run()`` until ``stop()``. Client calls are coroutines."""

    def __init__(
        self,
        config: Config,
        storage: RaftStorage,
        network: MemoryNetwork,
        apply: ApplyFn,
        *,
        restore: RestoreFn | None = None,
        tick_interval: float = 0.01,
    ) -> None:
        self.node = RaftNode(config, storage)
        self.storage = storage
        self._net = network
        self._apply = apply
        self._restore = restore
        self._tick_interval = tick_interval
        self._proposals: dict[int, tuple[int, asyncio.Future[int]]] = {}
        self._reads: dict[bytes, asyncio.Future[int]] = {}
        self._ctx = itertools.count(1)
        self._tasks: list[asyncio.Task[None]] = []
        self._running = False
        self._pulse = _Pulse()
        self._wake = asyncio.Event()
        self._blocking = bool(storage.blocking_io)
        sync_due = getattr(storage, "sync_due", None)
        sync = getattr(storage, "sync", None)
        self._sync_due: Callable[[], bool] | None = None
        self._sync: Callable[[], None] = _nothing
        if callable(sync_due) and callable(sync):
            self._sync_due, self._sync = sync_due, sync
        self._last_sync = 0.0
        self._sync_timer: asyncio.TimerHandle | None = None
        needs_io = getattr(storage, "needs_io", None)
        self._needs_io: Callable[[Ready], bool] = needs_io if callable(needs_io) else _always_io
        self._persisting = False
        self._held: deque[Callable[[], None]] = deque()
        self._jobs: deque[tuple[Callable[[], Any], StorageJobDone]] = deque()
        self._calls: set[asyncio.Future[Any]] = set()
        hs, _ = storage.initial_state()
        self._durable_term_vote = (hs.term, hs.vote)
        self.applied_index = storage.snapshot_index()
        if restore is not None and self.applied_index > 0:
            # A restarted node's application starts from its latest snapshot; the core then
            # hands out the committed entries after it again.
            restore(storage.snapshot())

    @property
    def node_id(self) -> int:
        return self.node.node_id

    @property
    def running(self) -> bool:
        return self._running

    async def run(self) -> None:
        """Drive the node until ``stop()``; the node's messages reach the network meanwhile."""
        if self._running:
            raise ConsensusError("driver already running", code="consensus.driver.running")
        inbox = self._net.register(self.node_id)
        self._running = True
        try:
            async with asyncio.TaskGroup() as tg:
                self._tasks = [
                    tg.create_task(self._ticker()),
                    tg.create_task(self._receiver(inbox)),
                    tg.create_task(self._flusher()),
                ]
                self._process()
        finally:
            self._running = False
            self._final_sync()
            self._net.unregister(self.node_id)
            self._fail_pending(DriverStopped(f"node {self.node_id} stopped"))
            self._net.notify()

    def stop(self) -> None:
        for t in self._tasks:
            t.cancel()

    @property
    def persisting(self) -> bool:
        """True while a Ready is being persisted in a worker thread."""
        return self._persisting

    async def _ticker(self) -> None:
        node = self.node
        while True:
            await asyncio.sleep(self._tick_interval)
            if self._persisting:
                self._held.append(node.tick)
            else:
                node.tick()
                self._process()

    async def _flusher(self) -> None:
        # Client calls only wake this task, so every call made in one turn of the event
        # loop lands in one Ready: one append message per follower for the whole batch.
        # On a blocking storage this task is the Ready loop itself.
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._blocking:
                await self._process_blocking()
            else:
                self._process()

    async def _receiver(self, inbox: asyncio.Queue[Message]) -> None:
        node = self.node
        while True:
            m = await inbox.get()
            if self._persisting:
                self._held.append(functools.partial(node.step, m))
                while not inbox.empty():
                    self._held.append(functools.partial(node.step, inbox.get_nowait()))
                continue
            node.step(m)
            while not inbox.empty():
                node.step(inbox.get_nowait())
            self._process()

    # --- the Ready loop -----------------------------------------------------------------------

    def _process(self) -> None:
        """Handle every Ready now (memory storage), or wake the Ready loop (blocking I/O)."""
        if self._blocking:
            self._wake.set()
            return
        node = self.node
        changed = False
        while node.has_ready():
            changed = True
            rd = node.ready()
            self.storage.persist(rd)
            self._after_persist(rd)
        if changed:
            self._notify()

    async def _process_blocking(self) -> None:
        node = self.node
        while True:
            held = self._held
            while held:
                held.popleft()()
            if self._jobs:
                job, done = self._jobs.popleft()
                try:
                    result = await self._off_loop(job)
                except Exception as exc:  # the caller's to handle, like persist's own errors
                    done(None, exc)
                else:
                    done(result, None)
                continue
            if not node.has_ready():
                if self._sync_due is not None and self._sync_due():
                    now = asyncio.get_running_loop().time()
                    if now - self._last_sync >= SYNC_INTERVAL:
                        self._last_sync = now
                        await self._off_loop(self._sync)
                        self._notify()
                        continue
                    self._wake_later(self._last_sync + SYNC_INTERVAL - now)
                return
            rd = node.ready()
            if self._needs_io(rd):
                early = self._send_early(rd)
                await self._persist_off_loop(rd)
                self._after_persist(rd, early)
            else:
                # Nothing to write (a commit index moved, messages to send): no thread hop.
                self.storage.persist(rd)
                self._after_persist(rd)
            self._notify()

    def _wake_later(self, delay: float) -> None:
        """Run the Ready loop again after ``delay`` (for a sync held back by its interval)."""
        if self._sync_timer is None or self._sync_timer.cancelled():
            loop = asyncio.get_running_loop()

            def fire() -> None:
                self._sync_timer = None
                self._wake.set()

            self._sync_timer = loop.call_later(max(delay, 0.0), fire)

    def _final_sync(self) -> None:
        """On stop, with no write in flight: leave the lazily kept state on disk."""
        if self._sync_timer is not None:
            self._sync_timer.cancel()
            self._sync_timer = None
        if self._blocking and self._sync_due is not None and self._sync_due():
            try:
                self._sync()
            except (OSError, ConsensusError, CharterError):
                return  # a failed storage: opening it again recovers what is durable

    def _send_early(self, rd: Ready) -> int:
        """Send a leader's appends and heartbeats before its own entries are durable.

        Safe because the leader counts itself toward a commit quorum only for entries
        ``advance`` reports durable, and its term was made durable when it campaigned
        (Raft thesis, 10.2.1). Everything else waits for the persist. Returns how many
        leading messages were sent (the rest keep their order behind them).
        """
        node = self.node
        hs = rd.hard_state
        if node.role is not Role.LEADER or (
            hs is not None and (hs.term, hs.vote) != self._durable_term_vote
        ):
            # (a single voter wins its election within one Ready: its new term is not
            # durable yet, so nothing of that term may leave before the persist)
            return 0
        term = node.term
        sent = 0
        unreachable: list[int] = []
        for m in rd.messages:
            if m.term != term or m.type not in _EARLY:
                break
            if not self._net.send(m):
                unreachable.append(m.to)
            sent += 1
        if unreachable:
            # reported once the persist is done: the core is not touched meanwhile
            self._held.extend(functools.partial(node.report_unreachable, to) for to in unreachable)
        return sent

    async def _persist_off_loop(self, rd: Ready) -> None:
        await self._off_loop(functools.partial(self.storage.persist, rd))

    async def _off_loop(self, call: Callable[[], _T]) -> _T:
        """``call`` (blocking storage work) in a worker thread; a cancelled driver still
        waits for it to finish, so the storage is never closed (or reused) under a write
        in flight."""
        self._persisting = True
        try:
            job = asyncio.ensure_future(asyncio.to_thread(call))
            try:
                return await asyncio.shield(job)
            except asyncio.CancelledError:
                while not job.done():
                    try:
                        await asyncio.wait({job})
                    except asyncio.CancelledError:
                        continue
                raise
        finally:
            self._persisting = False

    def _after_persist(self, rd: Ready, sent: int = 0) -> None:
        node = self.node
        if rd.hard_state is not None:
            self._durable_term_vote = (rd.hard_state.term, rd.hard_state.vote)
        msgs = rd.messages
        for m in msgs[sent:] if sent else msgs:
            if not self._net.send(m):
                node.report_unreachable(m.to)
        self._apply_ready(rd)
        node.advance(rd)

    def _notify(self) -> None:
        self._pulse.fire()
        self._net.notify()

    async def _on_core(self, call: Callable[[], _T]) -> _T:
        """Run ``call`` against the core now, or in turn once the persist in flight returns."""
        if not self._persisting:
            return call()
        fut: asyncio.Future[_T] = asyncio.get_running_loop().create_future()

        def run() -> None:
            if fut.cancelled():
                return
            try:
                fut.set_result(call())
            except Exception as exc:  # the caller gets the core's refusal
                fut.set_exception(exc)

        self._held.append(run)
        self._calls.add(fut)
        try:
            return await fut
        finally:
            self._calls.discard(fut)

    def _apply_ready(self, rd: Ready) -> None:
        if rd.snapshot is not None:
            idx = rd.snapshot.metadata.index
            if self._restore is not None:
                self._restore(rd.snapshot)
            self.applied_index = idx
            for i in [i for i in self._proposals if i <= idx]:
                _, fut = self._proposals.pop(i)
                if not fut.done():
                    fut.set_exception(ProposalDropped(f"outcome of {i} lost in a snapshot"))
        for e in rd.committed_entries:
            if e.kind is EntryKind.CONF_CHANGE:
                self.node.apply_conf_change(ConfChange.decode(e.data))
            self._apply(e)
            self.applied_index = e.index
            p = self._proposals.pop(e.index, None)
            if p is not None and not p[1].done():
                if p[0] == e.term:
                    p[1].set_result(e.index)
                else:
                    p[1].set_exception(ProposalDropped(f"entry {e.index} was replaced"))
        for rs in rd.read_states:
            waiter = self._reads.pop(rs.ctx, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(rs.index)

    def _fail_pending(self, exc: ConsensusError) -> None:
        for _, fut in self._proposals.values():
            if not fut.done():
                fut.set_exception(exc)
        for fut in self._reads.values():
            if not fut.done():
                fut.set_exception(exc)
        for call in self._calls:
            if not call.done():
                call.set_exception(exc)
        self._proposals.clear()
        self._reads.clear()
        self._calls.clear()
        self._held.clear()
        self._jobs.clear()  # not started: the storage is as it was

    # --- client calls -------------------------------------------------------------------------

    def _check_running(self) -> None:
        if not self._running:
            raise DriverStopped(f"node {self.node_id} is not running")

    async def _await_index(self, propose: Callable[[], int]) -> int:
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def call() -> int:
            index = propose()
            self._proposals[index] = (self.node.term, fut)
            return index

        index = await self._on_core(call)
        self._wake.set()
        try:
            return await fut
        finally:
            p = self._proposals.get(index)
            if p is not None and p[1] is fut:
                del self._proposals[index]

    async def propose(self, data: bytes) -> int:
        """Commit ``data`` through the log; returns its index once applied here."""
        self._check_running()
        node = self.node
        return await self._await_index(lambda: node.propose(data))

    async def propose_conf_change(self, cc: ConfChange) -> int:
        """Commit and apply a membership change; returns the index of its entry."""
        self._check_running()
        node = self.node
        return await self._await_index(lambda: node.propose_conf_change(cc))

    def storage_job(self, job: Callable[[], Any], done: StorageJobDone) -> None:
        """Run ``job``, a write to the storage besides the Ready loop's (the application's
        ``create_snapshot`` and ``compact``), where the storage's writes run.

        On a blocking storage it runs in the worker thread before the next Ready, with
        the core and the storage left alone meanwhile like during a persist; ``done`` is
        called on the event loop afterwards. On a memory storage both run now. A job must
        not assume the core is where it was when it was queued: it takes what it needs
        as arguments and lets the storage refuse what became stale.
        """
        if not self._blocking:
            try:
                result = job()
            except Exception as exc:
                done(None, exc)
            else:
                done(result, None)
            return
        self._jobs.append((job, done))
        self._wake.set()

    def transfer_leadership(self, to: int) -> None:
        """Start a leadership transfer; while a persist is in flight it starts right after
        (and a refusal then is the core's to drop: the caller observes the leader)."""
        self._check_running()
        if self._persisting:
            self._held.append(lambda: self._transfer_quietly(to))
            return
        self.node.transfer_leadership(to)
        self._wake.set()

    def _transfer_quietly(self, to: int) -> None:
        try:
            self.node.transfer_leadership(to)
        except ConsensusError:
            return

    async def read(self) -> int:
        """A linearizable read point: returns once this node has applied it."""
        self._check_running()
        ctx = b"r%d" % next(self._ctx)
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._reads[ctx] = fut
        node = self.node
        try:
            await self._on_core(lambda: node.read_index(ctx))
            self._wake.set()
            index = await fut
        finally:
            self._reads.pop(ctx, None)
        await self.wait_for(lambda: self.applied_index >= index)
        return index

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate`` holds (re-checked after every Ready); wrap in a timeout."""
        await self._pulse.wait_for(predicate)
