"""Three Raft members, each with its own OCapN runtime, over the memory and TLS netlayers."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from charter.consensus.storage import MemoryStorage
from charter.consensus.types import (
    ConfState,
    Entry,
    EntryKind,
    Message,
    MessageType,
    Role,
    Snapshot,
)
from charter.node.raft_member import RaftMember
from charter.node.raft_transport import (
    DELIVER,
    INTRODUCE,
    Backoff,
    RaftGate,
    RaftNetworkConfig,
    RaftTransport,
    RaftTransportError,
    inbox_swiss,
)
from charter.node.raft_wire import encode_message
from charter.ocapn.locator import PeerLocation
from charter.ocapn.netlayer.base import Netlayer
from charter.ocapn.netlayer.memory import Switchboard
from charter.ocapn.netlayer.tls import TlsNetlayer
from charter.ocapn.runtime import PromiseBrokenError, RemoteRef, Runtime

WAIT = 15.0
TICK = 0.01
NETWORK = b"test-network"
IDS = [1, 2, 3]


class App:
    def __init__(self) -> None:
        self.data: list[bytes] = []

    def apply(self, e: Entry) -> None:
        if e.kind is EntryKind.NORMAL and e.data:
            self.data.append(e.data)

    def restore(self, snap: Snapshot) -> None:
        self.data = [snap.data] if snap.data else []


class Cluster:
    """Members of one network; each runs in its own task and can be stopped alone."""

    def __init__(
        self,
        runtimes: dict[int, Runtime],
        tg: asyncio.TaskGroup,
        absent: dict[int, PeerLocation] | None = None,
    ) -> None:
        self.runtimes = dict(runtimes)
        self.tg = tg
        peers = {nid: rt.location() for nid, rt in runtimes.items()}
        peers.update(absent or {})
        self.config = RaftNetworkConfig(NETWORK, peers)
        self.apps: dict[int, App] = {}
        self.members: dict[int, RaftMember] = {}
        self.tasks: dict[int, asyncio.Task[None]] = {}
        voters = ConfState(frozenset(peers))
        for nid, rt in runtimes.items():
            self.start(nid, rt, MemoryStorage.bootstrap(voters))

    def start(self, nid: int, rt: Runtime, storage: MemoryStorage) -> None:
        self.runtimes[nid] = rt
        self.apps[nid] = app = App()
        m = RaftMember(
            rt,
            self.config,
            nid,
            storage,
            app.apply,
            restore=app.restore,
            rng=random.Random(nid),
            tick_interval=TICK,
            backoff=Backoff(base=0.01, cap=0.2),
        )
        self.members[nid] = m
        self.tasks[nid] = self.tg.create_task(m.run())

    def live(self) -> list[int]:
        return [nid for nid, t in self.tasks.items() if not t.done()]

    async def until(self, predicate: Callable[[], bool]) -> None:
        """Wait for ``predicate`` (re-checked whenever a live driver acts)."""
        net = self.members[self.live()[0]].transport
        async with asyncio.timeout(WAIT):
            await net.wait_for(predicate)

    def leader(self) -> int | None:
        leaders = [n for n in self.live() if self.members[n].driver.node.role is Role.LEADER]
        return leaders[0] if len(leaders) == 1 else None

    async def elect(self) -> int:
        await self.until(lambda: self.leader() is not None)
        leader = self.leader()
        assert leader is not None
        return leader

    async def stop(self, nid: int) -> None:
        self.tasks[nid].cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.tasks[nid]
        await self.runtimes[nid].close()


MakeNetlayer = Callable[[int, PeerLocation | None], Netlayer]
"""A netlayer for a node: a fresh one, or again at the node's previous location."""


@asynccontextmanager
async def cluster(make: MakeNetlayer) -> AsyncIterator[Cluster]:
    runtimes = {nid: Runtime([make(nid, None)]) for nid in IDS}
    try:
        for rt in runtimes.values():
            await rt.start()
        async with asyncio.TaskGroup() as tg:
            c = Cluster(runtimes, tg)
            try:
                yield c
            finally:
                for t in c.tasks.values():
                    t.cancel()
    finally:
        for rt in [*runtimes.values(), *c.runtimes.values()]:
            await rt.close()


def memory_netlayers() -> MakeNetlayer:
    board = Switchboard()
    return lambda nid, _: board.netlayer(f"node-{nid}")


def tls_netlayers() -> MakeNetlayer:
    keys: dict[int, Ed25519PrivateKey] = {}

    def make(nid: int, previous: PeerLocation | None) -> Netlayer:
        key = keys.setdefault(nid, Ed25519PrivateKey.generate())
        port = int(previous.hints_dict()["port"]) if previous is not None else 0
        return TlsNetlayer(key, "127.0.0.1", port)

    return make


async def propose_all(c: Cluster, leader: int, count: int, tag: bytes) -> list[bytes]:
    payloads = [b"%s-%d" % (tag, i) for i in range(count)]
    driver = c.members[leader].driver
    async with asyncio.timeout(WAIT):
        await asyncio.gather(*(driver.propose(p) for p in payloads))
    return payloads


async def check_replication(c: Cluster, make: MakeNetlayer) -> None:
    leader = await c.elect()
    payloads = await propose_all(c, leader, 200, b"a")
    await c.until(lambda: all(c.apps[n].data[-200:] == payloads for n in c.live()))
    assert all(m.transport.stats.refused_forged == 0 for m in c.members.values())

    # the leader's runtime goes away: the others elect a new leader and commit without it
    await c.stop(leader)
    await c.until(lambda: c.leader() not in (None, leader))
    new_leader = await c.elect()
    more = await propose_all(c, new_leader, 20, b"b")
    await c.until(lambda: all(c.apps[n].data[-20:] == more for n in c.live()))
    assert all(c.apps[n].data[:200] == payloads for n in c.live())
    assert all(not c.members[n].transport.connected(leader) for n in c.live())

    # it comes back at the same location with its durable state: the others' links
    # re-establish (with backoff) and it catches up with everything it missed
    rt = Runtime([make(leader, c.config.peers[leader])])
    await rt.start()
    c.start(leader, rt, c.members[leader].driver.storage)
    await c.until(lambda: c.apps[leader].data == payloads + more)
    others = [n for n in c.live() if n != leader]
    await c.until(lambda: all(c.members[n].transport.connected(leader) for n in others))


async def test_three_members_over_memory_netlayer() -> None:
    make = memory_netlayers()
    async with cluster(make) as c:
        await check_replication(c, make)


async def test_three_members_over_tls_on_loopback() -> None:
    make = tls_netlayers()
    async with cluster(make) as c:
        await check_replication(c, make)


def test_swiss_number_is_derived_from_network_and_node() -> None:
    a = inbox_swiss(b"net", 1)
    assert a == inbox_swiss(b"net", 1)
    assert len({a, inbox_swiss(b"net", 2), inbox_swiss(b"other", 1)}) == 3
    assert len(a) == 64 and a.isascii()


def test_config_refuses_a_designator_shared_by_two_nodes() -> None:
    loc = PeerLocation("x", "memory")
    with pytest.raises(RaftTransportError):
        RaftNetworkConfig(b"n", {1: loc, 2: loc})
    with pytest.raises(RaftTransportError):
        RaftNetworkConfig(b"n", {0: loc})


async def test_a_peer_cannot_speak_for_another_node() -> None:
    """Node 3's key may only deliver messages from node 3; strangers are not introduced."""
    board = Switchboard()
    runtimes = {nid: Runtime([board.netlayer(f"node-{nid}")]) for nid in IDS}
    rogue3 = runtimes.pop(3)  # holds node 3's key but runs no member
    stranger = Runtime([board.netlayer("stranger")])
    for rt in [*runtimes.values(), rogue3, stranger]:
        await rt.start()
    try:
        async with asyncio.TaskGroup() as tg:
            c = Cluster(runtimes, tg, {3: rogue3.location()})
            config = c.config
            t1 = c.members[1].transport
            # a gate of our own, so that we hold an object to introduce ourselves with
            own = RaftGate(t1)
            gate = await rogue3.enliven(config.inbox_sturdyref(1))
            facet = await gate.send(INTRODUCE, own)
            assert isinstance(facet, RemoteRef)
            forged = Message(MessageType.VOTE, 2, 1, 99, log_term=99, index=10**6)
            honest = Message(MessageType.HEARTBEAT_RESP, 3, 1, 0)
            wrong_to = Message(MessageType.HEARTBEAT_RESP, 3, 2, 0)
            facet.send_only(DELIVER, [encode_message(forged), b"junk", encode_message(wrong_to)])
            facet.send_only(DELIVER, [encode_message(honest)])
            await c.until(lambda: t1.stats.batches_received >= 2)
            assert t1.stats.refused_forged == 2
            assert t1.stats.refused_malformed == 1
            assert t1.stats.messages_received >= 1
            assert c.members[1].driver.node.term < 99  # the forged vote never reached the core

            # a token that is not the caller's own reference is refused
            with pytest.raises(PromiseBrokenError):
                await gate.send(INTRODUCE, b"node-2")
            # a key the configuration does not list is never introduced
            sgate = await stranger.enliven(config.inbox_sturdyref(1))
            with pytest.raises(PromiseBrokenError, match="not a peer"):
                await sgate.send(INTRODUCE, RaftGate(t1))
            assert t1.stats.introductions_refused == 2
            # a batch that is not a list is refused whole
            with pytest.raises(PromiseBrokenError):
                await facet.send(DELIVER, b"not a list")
            # the inbox dies with the session it was introduced on
            session1, local_facet = next(
                (s, f) for s, f in t1._gate._facets.items() if f._peer_id == 3
            )
            facet.peer.abort("done")
            await c.until(session1.closed.is_set)
            with pytest.raises(RaftTransportError, match="has ended"):
                local_facet.deliver([encode_message(honest)])
            for t in c.tasks.values():
                t.cancel()
    finally:
        for rt in [*runtimes.values(), rogue3, stranger]:
            await rt.close()


async def test_messages_to_an_unreachable_peer_are_dropped_not_queued() -> None:
    board = Switchboard()
    runtimes = {nid: Runtime([board.netlayer(f"node-{nid}")]) for nid in (1, 2)}
    for rt in runtimes.values():
        await rt.start()
    config = RaftNetworkConfig(
        NETWORK, {1: runtimes[1].location(), 2: PeerLocation("absent", "memory")}
    )
    try:
        t = RaftTransport(
            runtimes[1], config, 1, rng=random.Random(1), backoff=Backoff(base=0.01, cap=0.05)
        )
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(t.run())
            async with asyncio.timeout(WAIT):
                await t.wait_for(lambda: t.stats.link_failures >= 3)
            for _ in range(10_000):
                assert not t.send(Message(MessageType.HEARTBEAT, 1, 2, 1))
            assert t.stats.dropped_unreachable == 10_000
            assert not t.connected(2)
            task.cancel()
    finally:
        for rt in runtimes.values():
            await rt.close()


async def test_messages_of_one_turn_travel_as_one_batch() -> None:
    board = Switchboard()
    runtimes = {nid: Runtime([board.netlayer(f"node-{nid}")]) for nid in (1, 2)}
    for rt in runtimes.values():
        await rt.start()
    config = RaftNetworkConfig(NETWORK, {n: rt.location() for n, rt in runtimes.items()})
    try:
        t1, t2 = (RaftTransport(runtimes[n], config, n, rng=random.Random(n)) for n in (1, 2))
        inbox = t2.register(2)
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(t.run()) for t in (t1, t2)]
            async with asyncio.timeout(WAIT):
                await t1.wait_connected(2)
            sent = [Message(MessageType.HEARTBEAT, 1, 2, 1, commit=i) for i in range(50)]
            assert all(t1.send(m) for m in sent)
            got = [await asyncio.wait_for(inbox.get(), WAIT) for _ in sent]
            assert [m.commit for m in got] == list(range(50))
            assert t1.stats.batches_sent == 1 and t1.stats.messages_sent == 50
            assert t2.stats.batches_received == 1
            for t in tasks:
                t.cancel()
    finally:
        for rt in runtimes.values():
            await rt.close()


@asynccontextmanager
async def two_transports(
    board: Switchboard, max_message_size: int = 8 << 20
) -> AsyncIterator[tuple[RaftTransport, RaftTransport, asyncio.Queue[Message]]]:
    runtimes = {
        nid: Runtime([board.netlayer(f"node-{nid}")], max_message_size=max_message_size)
        for nid in (1, 2)
    }
    for rt in runtimes.values():
        await rt.start()
    config = RaftNetworkConfig(NETWORK, {n: rt.location() for n, rt in runtimes.items()})
    t1, t2 = (RaftTransport(runtimes[n], config, n, rng=random.Random(n)) for n in (1, 2))
    inbox = t2.register(2)
    try:
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(t.run()) for t in (t1, t2)]
            async with asyncio.timeout(WAIT):
                await t1.wait_connected(2)
            try:
                yield t1, t2, inbox
            finally:
                for t in tasks:
                    t.cancel()
    finally:
        for rt in runtimes.values():
            await rt.close()


def big_append(i: int, size: int) -> Message:
    return Message(MessageType.APPEND, 1, 2, 1, 0, 0, [Entry(1, 1, data=bytes([i % 256]) * size)])


async def test_a_batch_is_split_to_fit_the_captp_message_limit() -> None:
    async with two_transports(Switchboard(), max_message_size=256 * 1024) as (t1, _, inbox):
        # 192 KiB per deliver: ten 50 KB appends travel as four batches; 300 KB cannot travel
        for i in range(10):
            assert t1.send(big_append(i, 50_000))
        assert t1.send(big_append(99, 300_000))
        got = [await asyncio.wait_for(inbox.get(), WAIT) for _ in range(10)]
        assert [m.entries[0].data[0] for m in got] == list(range(10))
        assert t1.stats.batches_sent == 4
        assert t1.stats.dropped_unencodable == 1
        assert t1.connected(2)


async def test_a_peer_that_stops_reading_costs_a_bounded_buffer() -> None:
    board = Switchboard()
    async with two_transports(board) as (t1, _, inbox):
        stall = asyncio.Event()
        stalled = [c for c in board.connections if c.local_designator == "node-2"]
        for conn in stalled:
            original = conn.read

            async def stalled_read(original: Callable[[], Any] = original) -> bytes:
                await stall.wait()
                data: bytes = await original()
                return data

            conn.read = stalled_read  # type: ignore[method-assign]  # a peer that stops reading
        accepted = 0
        for i in range(200):
            if not t1.send(big_append(i, 200_000)):
                break
            accepted += 1
            async with asyncio.timeout(WAIT):
                await t1.wait_for(lambda: not t1._links[2].pending)
        assert t1.stats.dropped_backpressure == 1
        assert accepted < 20  # about the 1 MiB high-water mark, not all 200
        assert all(c._inbox_size < 2 << 20 for c in stalled)
        for _ in range(100):
            assert not t1.send(big_append(0, 200_000))
        stall.set()
        async with asyncio.timeout(WAIT):
            await t1.wait_for(lambda: not t1._links[2].blocked)
        assert t1.send(big_append(7, 10))
        got = [await asyncio.wait_for(inbox.get(), WAIT) for _ in range(accepted + 1)]
        assert got[-1].entries[0].data == bytes([7]) * 10


def test_backoff_is_bounded_and_jittered() -> None:
    b = Backoff(base=0.01, cap=0.5, jitter=0.5)
    rng = random.Random(7)
    delays = [b.delay(n, rng) for n in range(100)]
    assert all(0.005 <= d <= 0.01 for d in delays[:1])
    assert all(0.25 <= d <= 0.5 for d in delays[10:])  # capped, never beyond
    assert len(set(delays[10:])) > 80  # two peers retrying do not march in step


async def test_junk_batches_only_raise_typed_errors() -> None:
    async with two_transports(Switchboard()) as (_, t2, inbox):
        rng = random.Random(3)
        junk: list[Any] = [None, 5, "text", b"bytes", [1, 2], {"a": 1}, [[b"x"]], ["<>"]]
        for _ in range(200):
            batch: Any = rng.choice(junk)
            try:
                t2._receive(1, batch)
            except RaftTransportError:
                continue
        assert t2.stats.refused_malformed > 0
        assert inbox.empty()
        with pytest.raises(RaftTransportError):
            t2._receive(1, [b""] * 5000)


async def test_a_member_stops_with_its_driver() -> None:
    make = memory_netlayers()
    async with cluster(make) as c:
        await c.elect()
        c.members[1].driver.stop()
        async with asyncio.timeout(WAIT):
            await c.tasks[1]
        assert not c.members[1].transport.connected(2)


async def test_a_member_behind_the_compacted_log_gets_a_snapshot_over_ocapn() -> None:
    make = memory_netlayers()
    async with cluster(make) as c:
        leader = await c.elect()
        lag = next(n for n in IDS if n != leader)
        await propose_all(c, leader, 10, b"early")
        await c.until(lambda: len(c.apps[lag].data) == 10)
        await c.stop(lag)
        await propose_all(c, leader, 40, b"late")
        lead = c.members[leader].driver
        # a snapshot of several 1 MiB chunks: it travels as SNAPSHOT messages in batches
        blob = b"|".join(c.apps[leader].data) + bytes(3 << 20)
        lead.storage.create_snapshot(lead.applied_index, lead.node.conf_state, blob)
        lead.storage.compact(lead.applied_index)
        rt = Runtime([make(lag, c.config.peers[lag])])
        await rt.start()
        c.start(lag, rt, c.members[lag].driver.storage)
        await propose_all(c, leader, 1, b"next")
        await c.until(lambda: c.apps[lag].data == [blob, b"next-0"])
        assert c.members[lag].transport.stats.refused_malformed == 0


async def test_peers_are_added_and_removed_at_runtime() -> None:
    """A node starts knowing no peer; links come with add_peer and go with remove_peer."""
    board = Switchboard()
    runtimes = {nid: Runtime([board.netlayer(f"node-{nid}")]) for nid in (1, 2)}
    for rt in runtimes.values():
        await rt.start()
    loc1, loc2 = runtimes[1].location(), runtimes[2].location()
    # each node its own configuration, as in separate processes
    c1 = RaftNetworkConfig(NETWORK, {1: loc1})
    c2 = RaftNetworkConfig(NETWORK, {2: loc2})
    t1 = RaftTransport(runtimes[1], c1, 1, rng=random.Random(1), backoff=Backoff(0.01, 0.05))
    t2 = RaftTransport(runtimes[2], c2, 2, rng=random.Random(2), backoff=Backoff(0.01, 0.05))
    inbox = t2.register(2)
    try:
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(t.run()) for t in (t1, t2)]
            assert not t1.send(Message(MessageType.HEARTBEAT, 1, 2, 1))
            assert t1.add_peer(2, loc2) and not t1.add_peer(2, loc2)
            assert t1.peer_ids() == [2] and c1.node_for(loc2.transport, loc2.designator) == 2
            # node 2 does not know node 1's key yet: its gate refuses the introduction
            async with asyncio.timeout(WAIT):
                await t1.wait_for(lambda: t2.stats.introductions_refused >= 1)
            assert not t1.connected(2)
            assert t2.add_peer(1, loc1)
            async with asyncio.timeout(WAIT):
                await t1.wait_connected(2)
            assert t1.send(Message(MessageType.HEARTBEAT, 1, 2, 1, commit=7))
            got = await asyncio.wait_for(inbox.get(), WAIT)
            assert (got.frm, got.commit) == (1, 7)

            # node 2 removes node 1: what node 1 still delivers on its old inbox is refused
            assert t2.remove_peer(1) and not t2.remove_peer(1)
            assert c2.node_for(loc1.transport, loc1.designator) is None
            before = t2.stats.messages_received
            assert t1.send(Message(MessageType.HEARTBEAT, 1, 2, 1, commit=8))
            async with asyncio.timeout(WAIT):
                await t2.wait_for(lambda: t2.stats.refused_removed >= 1)
            assert t2.stats.messages_received == before and inbox.empty()

            # node 1 removes node 2: its link ends, sends are dropped at once
            assert t1.remove_peer(2)
            assert t1.peer_ids() == [] and not t1.connected(2)
            assert not t1.send(Message(MessageType.HEARTBEAT, 1, 2, 1))
            for t in tasks:
                t.cancel()
    finally:
        for rt in runtimes.values():
            await rt.close()


def test_config_changes_keep_keys_unique_and_count_versions() -> None:
    a, b = PeerLocation("a", "memory"), PeerLocation("b", "memory")
    config = RaftNetworkConfig(NETWORK, {1: a})
    assert config.version == 0
    assert config.add_peer(2, b) and config.version == 1
    with pytest.raises(RaftTransportError):
        config.add_peer(3, b)
    moved = PeerLocation("c", "memory")
    assert config.add_peer(2, moved) and config.node_for("memory", "b") is None
    assert config.node_for("memory", "c") == 2
    assert config.remove_peer(2) and not config.remove_peer(2)
    assert dict(config.peers) == {1: a}
    with pytest.raises(TypeError):
        config.peers[5] = a  # type: ignore[index]
