"""The asyncio driver: a 3-node in-process cluster over MemoryNetwork."""

from __future__ import annotations

import asyncio
import random

import pytest

from charter.consensus.driver import MemoryNetwork, RaftDriver
from charter.consensus.errors import ConsensusError, DriverStopped, NotLeader, ProposalDropped
from charter.consensus.raft import Config
from charter.consensus.storage import MemoryStorage
from charter.consensus.types import ConfChange, ConfChangeKind, ConfState, Entry, Role, Snapshot

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


class Cluster:
    def __init__(self, ids: list[int]) -> None:
        self.net = MemoryNetwork()
        self.storages = {i: MemoryStorage.bootstrap(ConfState(frozenset(ids))) for i in ids}
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


async def test_three_drivers_elect_commit_fail_over_and_catch_up() -> None:
    c = Cluster([1, 2, 3])
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
