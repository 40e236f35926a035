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
