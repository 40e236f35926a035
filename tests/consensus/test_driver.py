"""The asyncio driver: a 3-node in-process cluster over MemoryNetwork."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from charter.consensus.driver import MemoryNetwork, RaftDriver
from charter.consensus.errors import ConsensusError, DriverStopped, NotLeader, ProposalDropped
from charter.consensus.local import LocalCluster
from charter.consensus.raft import Config
from charter.consensus.storage import MemoryStorage, RaftStorage
from charter.consensus.types import (
    ConfChange,
    ConfChangeKind,
    ConfState,
    Entry,
    Ready,
    Role,
    Snapshot,
)
from charter.ledger.raft_storage import DurableRaftStorage

TICK = 0.005
WAIT = 10.0


class App:
    """The application of one node: the data of applied entries, in order."""

    def __init__(self) -> None:
        self.data: list[bytes] = []

    def apply(self, e: Entry) -> None:
        if e.data and e.kind.name == "NORMAL":
            self.data.append(e.data)

    def restore(self, snap: Snapshot) -> None:
        self.data = [snap.data] if snap.data else []


StorageFactory = Callable[[int, ConfState], RaftStorage]


def memory(nid: int, conf: ConfState) -> RaftStorage:
    return MemoryStorage.bootstrap(conf)


class Cluster:
    def __init__(self, ids: list[int], storage: StorageFactory = memory) -> None:
        self.net = MemoryNetwork()
        conf = ConfState(frozenset(ids))
        self.storages = {i: storage(i, conf) for i in ids}
        self.apps: dict[int, App] = {}
        self.drivers: dict[int, RaftDriver] = {}
        self.tasks: dict[int, asyncio.Task[None]] = {}
        for i in ids:
            self.make(i)

    def make(self, nid: int) -> RaftDriver:
        app = App()
        self.apps[nid] = app
        d = RaftDriver(
            Config(nid, rng=random.Random(nid)),
            self.storages[nid],
            self.net,
            app.apply,
            restore=app.restore,
            tick_interval=TICK,
        )
        self.drivers[nid] = d
        return d

    def start(self, tg: asyncio.TaskGroup, nid: int) -> None:
        self.tasks[nid] = tg.create_task(self.drivers[nid].run())

    async def stop(self, nid: int) -> None:
        self.drivers[nid].stop()
        await self.tasks[nid]

    def leader(self) -> RaftDriver | None:
        for d in self.drivers.values():
            if d.running and d.node.role is Role.LEADER:
                return d
        return None

    async def wait_leader(self, exclude: int | None = None) -> RaftDriver:
        def found() -> bool:
            d = self.leader()
            return d is not None and d.node_id != exclude

        async with asyncio.timeout(WAIT):
            await self.net.wait_for(found)
        d = self.leader()
        assert d is not None
        return d


@pytest.fixture(params=["memory", "durable"])
def storage_factory(request: pytest.FixtureRequest, tmp_path: Path) -> StorageFactory:
    if request.param == "memory":
        return memory

    def durable(nid: int, conf: ConfState) -> RaftStorage:
        return DurableRaftStorage(tmp_path / f"n{nid}", bootstrap=conf)

    return durable


async def test_three_drivers_elect_commit_fail_over_and_catch_up(
    storage_factory: StorageFactory,
) -> None:
    c = Cluster([1, 2, 3], storage_factory)
    async with asyncio.TaskGroup() as tg:
        for nid in (1, 2, 3):
            c.start(tg, nid)
        lead = await c.wait_leader()
        async with asyncio.timeout(WAIT):
            indices = [await lead.propose(b"w%d" % i) for i in range(5)]
        assert indices == sorted(indices)
        # Concurrent proposals are batched and all resolve.
        async with asyncio.timeout(WAIT):
            many = await asyncio.gather(*(lead.propose(b"c%d" % i) for i in range(50)))
        assert len(set(many)) == 50
        async with asyncio.timeout(WAIT):
            read_at = await lead.read()
        assert read_at >= many[-1]
        follower = next(d for d in c.drivers.values() if d is not lead)
        async with asyncio.timeout(WAIT):
            assert await follower.read() >= many[-1]
        with pytest.raises(NotLeader):
            await follower.propose(b"not here")

        # Leader failure: stop its driver; the others elect a new leader and go on.
        old = lead.node_id
        await c.stop(old)
        with pytest.raises(DriverStopped):
            await lead.propose(b"stopped")
        new = await c.wait_leader(exclude=old)
        async with asyncio.timeout(WAIT):
            await new.propose(b"after failover")

        # The old leader restarts from its storage and catches up.
        c.make(old)
        c.start(tg, old)
        want = c.apps[new.node_id].data
        async with asyncio.timeout(WAIT):
            await c.net.wait_for(lambda: c.apps[old].data == want)
        assert want[-1] == b"after failover"
        assert len(want) == 56
        for nid in list(c.drivers):
            await c.stop(nid)


async def test_driver_conf_change_transfer_and_errors() -> None:
    c = Cluster([1, 2, 3])
    async with asyncio.TaskGroup() as tg:
        for nid in (1, 2, 3):
            c.start(tg, nid)
        lead = await c.wait_leader()
        with pytest.raises(ConsensusError):
            await lead.run()
        async with asyncio.timeout(WAIT):
            await lead.propose(b"first")
            await lead.propose_conf_change(ConfChange(ConfChangeKind.REMOVE, 3))
        assert lead.node.conf_state.voters == frozenset({1, 2, 3}) - {3}
        target = next(n for n in (1, 2) if n != lead.node_id)
        lead.transfer_leadership(target)
        async with asyncio.timeout(WAIT):
            await c.net.wait_for(lambda: c.drivers[target].node.role is Role.LEADER)
        for nid in list(c.drivers):
            await c.stop(nid)
    stopped = c.drivers[1]
    with pytest.raises(DriverStopped):
        stopped.transfer_leadership(2)
    with pytest.raises(DriverStopped):
        await stopped.read()


async def test_a_proposal_overwritten_by_a_new_leader_is_reported_dropped() -> None:
    c = Cluster([1, 2, 3])
    async with asyncio.TaskGroup() as tg:
        for nid in (1, 2, 3):
            c.start(tg, nid)
        lead = await c.wait_leader()
        async with asyncio.timeout(WAIT):
            await lead.propose(b"ok")
        c.net.isolate(lead.node_id)
        pending = asyncio.ensure_future(lead.propose(b"lost"))
        new = await c.wait_leader(exclude=lead.node_id)
        async with asyncio.timeout(WAIT):
            await new.propose(b"winner")
        c.net.heal()
        async with asyncio.timeout(WAIT):
            with pytest.raises(ProposalDropped):
                await pending
        for nid in list(c.drivers):
            await c.stop(nid)


async def test_a_restarted_node_behind_the_compacted_log_restores_a_snapshot() -> None:
    c = Cluster([1, 2, 3])
    async with asyncio.TaskGroup() as tg:
        for nid in (1, 2, 3):
            c.start(tg, nid)
        lead = await c.wait_leader()
        lag = next(n for n in (1, 2, 3) if n != lead.node_id)
        await c.stop(lag)
        async with asyncio.timeout(WAIT):
            for i in range(10):
                await lead.propose(b"s%d" % i)
        blob = b"|".join(c.apps[lead.node_id].data)
        store = lead.storage
        store.create_snapshot(lead.applied_index, lead.node.conf_state, blob)
        store.compact(lead.applied_index)
        c.make(lag)
        c.start(tg, lag)
        async with asyncio.timeout(WAIT):
            await c.net.wait_for(lambda: c.apps[lag].data == [blob])
            await lead.propose(b"next")
            await c.net.wait_for(lambda: c.apps[lag].data == [blob, b"next"])
        assert c.drivers[lag].applied_index == lead.applied_index
        # The compacted node itself restarts: its application comes back from its snapshot.
        old = lead.node_id
        await c.stop(old)
        restarted = c.make(old)
        assert c.apps[old].data == [blob]
        c.start(tg, old)
        async with asyncio.timeout(WAIT):
            await c.net.wait_for(lambda: c.apps[old].data == [blob, b"next"])
        assert restarted.applied_index >= lead.applied_index
        for nid in list(c.drivers):
            await c.stop(nid)


async def test_stopping_a_driver_fails_its_pending_reads() -> None:
    c = Cluster([1, 2, 3])
    async with asyncio.TaskGroup() as tg:
        for nid in (1, 2, 3):
            c.start(tg, nid)
        lead = await c.wait_leader()
        follower = next(d for d in c.drivers.values() if d is not lead)
        c.net.isolate(follower.node_id)
        pending = asyncio.ensure_future(follower.read())
        async with asyncio.timeout(WAIT):
            await c.net.wait_for(lambda: bool(follower._reads))
        await c.stop(follower.node_id)
        with pytest.raises(DriverStopped):
            await pending
        for nid in list(c.drivers):
            await c.stop(nid)


async def test_a_proposal_swallowed_by_a_snapshot_is_reported_dropped() -> None:
    c = Cluster([1, 2, 3])
    async with asyncio.TaskGroup() as tg:
        for nid in (1, 2, 3):
            c.start(tg, nid)
        lead = await c.wait_leader()
        c.net.isolate(lead.node_id)
        pending = asyncio.ensure_future(lead.propose(b"lost"))
        new = await c.wait_leader(exclude=lead.node_id)
        async with asyncio.timeout(WAIT):
            await new.propose(b"winner")
            await new.propose(b"winner2")
        blob = b"|".join(c.apps[new.node_id].data)
        new.storage.create_snapshot(new.applied_index, new.node.conf_state, blob)
        new.storage.compact(new.applied_index)
        c.net.heal()
        async with asyncio.timeout(WAIT):
            with pytest.raises(ProposalDropped):
                await pending
            await c.net.wait_for(lambda: c.apps[lead.node_id].data == [blob])
        for nid in list(c.drivers):
            await c.stop(nid)


# --- storages whose persist blocks ------------------------------------------------------------


def test_only_storages_over_real_io_declare_blocking_io(tmp_path: Path) -> None:
    assert MemoryStorage.blocking_io is False
    assert MemoryStorage().blocking_io is False
    with DurableRaftStorage(tmp_path / "d", bootstrap=ConfState(frozenset({1}))) as d:
        assert d.blocking_io is True

    class InMemoryVariant(MemoryStorage, blocking_io=False):
        __slots__ = ()

    assert InMemoryVariant.blocking_io is False


class GatedStorage(MemoryStorage):
    """A storage whose ``persist`` blocks its thread until the test opens the gate."""

    __slots__ = ("busy", "entered", "gate")

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.busy = False

    def persist(self, rd: Ready) -> None:
        self.busy = True
        self.entered.set()
        try:
            # bounded, so that a driver persisting on the event loop fails the test, not hangs
            self.gate.wait(2.0)
            super().persist(rd)
        finally:
            self.busy = False


def gated(nid: int, conf: ConfState) -> RaftStorage:
    return GatedStorage.bootstrap(conf)


async def test_a_blocking_persist_runs_off_the_loop_and_the_core_waits_for_it() -> None:
    c = Cluster([1, 2, 3], gated)
    touched_while_busy: list[str] = []
    stepped_after: list[int] = []
    for nid, d in c.drivers.items():
        storage = c.storages[nid]
        assert isinstance(storage, GatedStorage)
        node = d.node
        for name in ("tick", "step", "propose", "read_index"):
            original = getattr(node, name)

            def spy(
                *args: object,
                _original: Callable[..., object] = original,
                _name: str = name,
                _storage: GatedStorage = storage,
                _nid: int = nid,
            ) -> object:
                if _storage.busy:
                    touched_while_busy.append(f"{_name} on node {_nid}")
                if _name == "step" and not _storage.gate.is_set():
                    stepped_after.append(_nid)
                return _original(*args)

            setattr(node, name, spy)

    async with asyncio.TaskGroup() as tg:
        for nid in (1, 2, 3):
            c.start(tg, nid)
        lead = await c.wait_leader()
        async with asyncio.timeout(WAIT):
            before = await lead.propose(b"before")
        storage = c.storages[lead.node_id]
        assert isinstance(storage, GatedStorage)

        storage.entered.clear()
        storage.gate.clear()
        first = tg.create_task(lead.propose(b"held-1"))
        async with asyncio.timeout(WAIT):
            await asyncio.to_thread(storage.entered.wait, WAIT)
        # The persist is in flight in a worker thread: the loop still runs other work
        # (this sleep, the followers' drivers) and the leader's core is left alone.
        ticks_before = lead.node.term, lead.node.commit_index
        await asyncio.sleep(TICK * 6)
        assert storage.busy and lead.persisting
        second = tg.create_task(lead.propose(b"held-2"))
        read = tg.create_task(lead.read())
        await asyncio.sleep(TICK * 2)
        assert storage.busy, "the persist finished early: the gate did not hold it"
        assert not second.done() and not read.done()
        assert (lead.node.term, lead.node.commit_index) == ticks_before
        storage.gate.set()
        async with asyncio.timeout(WAIT):
            i1, i2, at = await first, await second, await read
        assert before < i1 < i2 and at >= before
        assert touched_while_busy == []
        want = [b"before", b"held-1", b"held-2"]
        async with asyncio.timeout(WAIT):
            await c.net.wait_for(lambda: all(a.data == want for a in c.apps.values()))
        for nid in list(c.drivers):
            await c.stop(nid)


async def test_a_driver_stopped_mid_persist_waits_for_the_write_to_finish() -> None:
    c = Cluster([1], gated)
    storage = c.storages[1]
    assert isinstance(storage, GatedStorage)
    async with asyncio.TaskGroup() as tg:
        c.start(tg, 1)
        lead = await c.wait_leader()
        storage.entered.clear()
        storage.gate.clear()

        async def propose() -> BaseException | None:
            try:
                await lead.propose(b"in flight")
            except DriverStopped as exc:
                return exc
            return None

        pending = tg.create_task(propose())
        async with asyncio.timeout(WAIT):
            await asyncio.to_thread(storage.entered.wait, WAIT)
        lead.stop()
        await asyncio.sleep(TICK * 2)
        # cancelled, but the run() task is still waiting for the write in the thread
        assert not c.tasks[1].done() and storage.busy
        storage.gate.set()
        async with asyncio.timeout(WAIT):
            await c.tasks[1]
        assert not storage.busy
        assert isinstance(await pending, DriverStopped)


def test_local_cluster_runs_on_a_storage_factory(tmp_path: Path) -> None:
    made: list[int] = []

    def durable(nid: int, founders: ConfState | None) -> RaftStorage:
        made.append(nid)
        return DurableRaftStorage(tmp_path / f"n{nid}", bootstrap=founders)

    c = LocalCluster([1, 2, 3], seed=3, storage=durable)
    lead = c.elect(1)
    for i in range(5):
        lead.propose(b"v%d" % i)
    c.pump()
    assert all(len(c.applied[n]) == 5 for n in (1, 2, 3))
    c.add_node(4)
    assert made == [1, 2, 3, 4]
    for s in c.storages.values():
        assert isinstance(s, DurableRaftStorage)
        s.close()
    reopened = DurableRaftStorage(tmp_path / "n2")
    assert reopened.last_index() >= 6
    reopened.close()


class EntryGatedStorage(GatedStorage):
    """Holds only the persists that write entries (the gate is for the leader's append)."""

    __slots__ = ()

    def persist(self, rd: Ready) -> None:
        if rd.entries:
            super().persist(rd)
        else:
            MemoryStorage.persist(self, rd)


def entry_gated(nid: int, conf: ConfState) -> RaftStorage:
    return EntryGatedStorage.bootstrap(conf)


async def test_a_leader_sends_its_appends_while_its_own_persist_is_in_flight() -> None:
    c = Cluster([1, 2, 3], entry_gated)
    async with asyncio.TaskGroup() as tg:
        for nid in (1, 2, 3):
            c.start(tg, nid)
        lead = await c.wait_leader()
        async with asyncio.timeout(WAIT):
            await lead.propose(b"before")
        storage = c.storages[lead.node_id]
        assert isinstance(storage, EntryGatedStorage)
        storage.entered.clear()
        storage.gate.clear()
        pending = tg.create_task(lead.propose(b"in parallel"))
        async with asyncio.timeout(WAIT):
            await asyncio.to_thread(storage.entered.wait, WAIT)
        last = lead.node.last_index
        assert lead.node.progress(lead.node_id).match < last  # type: ignore[union-attr]
        followers = [d for d in c.drivers.values() if d is not lead]
        # the followers hold the entry (durably: their gates are open) while the leader's
        # own write of it is still held in its worker thread
        async with asyncio.timeout(WAIT):
            await c.net.wait_for(lambda: all(d.node.last_index >= last for d in followers))
        assert storage.busy and not pending.done()
        storage.gate.set()
        async with asyncio.timeout(WAIT):
            assert await pending == last
        want = [b"before", b"in parallel"]
        async with asyncio.timeout(WAIT):
            await c.net.wait_for(lambda: all(a.data == want for a in c.apps.values()))
        for nid in list(c.drivers):
            await c.stop(nid)


class ThreadRecordingStorage(MemoryStorage):
    """A blocking storage that says which Readies touch the disk (new entries, a new term
    or vote) and records which thread persisted each Ready."""

    __slots__ = ("jobs", "persists", "written_hs")

    def __init__(self) -> None:
        super().__init__()
        self.persists: list[tuple[bool, int]] = []
        self.jobs: list[int] = []
        self.written_hs = (0, 0)

    def needs_io(self, rd: Ready) -> bool:
        hs = rd.hard_state
        return bool(
            rd.entries or rd.snapshot or (hs is not None and (hs.term, hs.vote) != self.written_hs)
        )

    def persist(self, rd: Ready) -> None:
        self.persists.append((self.needs_io(rd), threading.get_ident()))
        if rd.hard_state is not None:
            self.written_hs = (rd.hard_state.term, rd.hard_state.vote)
        super().persist(rd)


def recording(nid: int, conf: ConfState) -> RaftStorage:
    return ThreadRecordingStorage.bootstrap(conf)


async def test_only_readies_that_write_to_the_disk_go_to_the_worker_thread() -> None:
    c = Cluster([1, 2, 3], recording)
    loop_thread = threading.get_ident()
    async with asyncio.TaskGroup() as tg:
        for nid in (1, 2, 3):
            c.start(tg, nid)
        lead = await c.wait_leader()
        async with asyncio.timeout(WAIT):
            for i in range(5):
                await lead.propose(b"x%d" % i)
            await c.net.wait_for(lambda: all(len(a.data) == 5 for a in c.apps.values()))
        for nid in list(c.drivers):
            await c.stop(nid)
    for storage in c.storages.values():
        assert isinstance(storage, ThreadRecordingStorage)
        io = {thread != loop_thread for needs, thread in storage.persists if needs}
        quick = {thread == loop_thread for needs, thread in storage.persists if not needs}
        # commit-index moves and heartbeats happen on every node; entries too
        assert io == {True} and quick == {True}


async def test_storage_jobs_run_off_the_loop_between_readies() -> None:
    c = Cluster([1, 2, 3], gated)
    loop_thread = threading.get_ident()
    async with asyncio.TaskGroup() as tg:
        for nid in (1, 2, 3):
            c.start(tg, nid)
        lead = await c.wait_leader()
        async with asyncio.timeout(WAIT):
            index = await lead.propose(b"x")
        storage = c.storages[lead.node_id]
        assert isinstance(storage, GatedStorage)
        ran: list[tuple[int, bool]] = []
        outcomes: asyncio.Queue[tuple[object, Exception | None, int]] = asyncio.Queue()

        def snapshot() -> int:
            ran.append((threading.get_ident(), storage.busy))
            storage.create_snapshot(index, lead.node.conf_state, b"state")
            return index

        def stale() -> None:
            storage.create_snapshot(index, lead.node.conf_state, b"again")

        def done(result: object, exc: Exception | None) -> None:
            outcomes.put_nowait((result, exc, threading.get_ident()))

        # a persist in flight: the job waits for it, then runs in the worker thread
        storage.entered.clear()
        storage.gate.clear()
        pending = tg.create_task(lead.propose(b"y"))
        async with asyncio.timeout(WAIT):
            await asyncio.to_thread(storage.entered.wait, WAIT)
        lead.storage_job(snapshot, done)
        lead.storage_job(stale, done)
        assert ran == [] and outcomes.empty()
        storage.gate.set()
        async with asyncio.timeout(WAIT):
            first = await outcomes.get()
            second = await outcomes.get()
            await pending
        assert ran == [(ran[0][0], False)] and ran[0][0] != loop_thread
        assert first == (index, None, loop_thread)
        assert second[0] is None and isinstance(second[1], ConsensusError)
        assert storage.snapshot_index() == index
        for nid in list(c.drivers):
            await c.stop(nid)

    # on a memory storage the job and its callback run at once
    mem = Cluster([1])
    got: list[tuple[object, Exception | None]] = []
    mem.drivers[1].storage_job(lambda: 7, lambda r, e: got.append((r, e)))
    assert got == [(7, None)]


async def test_a_single_voter_sends_nothing_of_a_term_it_has_not_persisted() -> None:
    """A lone voter wins its election within one Ready: its appends to a learner must
    wait until the new term is durable (else a crash could reuse the term elsewhere)."""
    conf = ConfState(frozenset({1}), frozenset({2}))
    storages: dict[int, EntryGatedStorage] = {}

    def make(nid: int, _: ConfState) -> RaftStorage:
        storages[nid] = EntryGatedStorage.bootstrap(conf)  # type: ignore[assignment]
        return storages[nid]

    c = Cluster([1, 2], make)
    storages[1].gate.clear()
    async with asyncio.TaskGroup() as tg:
        c.start(tg, 1)
        c.start(tg, 2)
        async with asyncio.timeout(WAIT):
            await asyncio.to_thread(storages[1].entered.wait, WAIT)
        lead = c.drivers[1]
        assert lead.node.role is Role.LEADER and storages[1].busy
        await asyncio.sleep(TICK * 4)
        assert c.drivers[2].node.term < lead.node.term  # nothing of the new term arrived
        storages[1].gate.set()
        async with asyncio.timeout(WAIT):
            index = await lead.propose(b"x")
            await c.net.wait_for(lambda: c.drivers[2].applied_index >= index)
        for nid in list(c.drivers):
            await c.stop(nid)


async def test_an_idle_driver_and_a_stopped_one_leave_the_commit_index_on_disk(
    tmp_path: Path,
) -> None:
    def durable(nid: int, conf: ConfState) -> RaftStorage:
        return DurableRaftStorage(tmp_path / f"n{nid}", bootstrap=conf)

    c = Cluster([1, 2, 3], durable)
    async with asyncio.TaskGroup() as tg:
        for nid in (1, 2, 3):
            c.start(tg, nid)
        lead = await c.wait_leader()
        async with asyncio.timeout(WAIT):
            index = await lead.propose(b"x")
            await c.net.wait_for(lambda: all(d.applied_index >= index for d in c.drivers.values()))
            # nothing more to do: each driver catches its state file up with the commit
            await c.net.wait_for(
                lambda: not any(s.sync_due() for s in c.storages.values())  # type: ignore[attr-defined]
            )
        index = await lead.propose(b"y")
        await c.stop(lead.node_id)  # at once: the stop itself writes it
        storage = c.storages[lead.node_id]
        assert isinstance(storage, DurableRaftStorage)
        assert not storage.sync_due() and storage.hard_state.commit >= index
        for nid in list(c.drivers):
            if c.drivers[nid].running:
                await c.stop(nid)
    for s in c.storages.values():
        assert isinstance(s, DurableRaftStorage)
        s.close()
    with DurableRaftStorage(tmp_path / f"n{lead.node_id}") as reopened:
        assert reopened.hard_state.commit >= index
