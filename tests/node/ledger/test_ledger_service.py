"""Three ledger members in one process, over the memory netlayer and over TLS on loopback."""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from pathlib import Path
from typing import Any

import pytest

from charter.consensus.storage import MemoryStorage, RaftStorage
from charter.consensus.types import ConfState, Snapshot
from charter.ledger.engine import (
    Transaction,
    TxStatus,
    parse_tx_id,
    sign_batch,
    signature_entry,
)
from charter.ledger.errors import LedgerError
from charter.ledger.raft_storage import DurableRaftStorage
from charter.ledger.signatures import SignaturePolicy, sign_signed_root
from charter.ledger.snapshots import SnapshotPolicy
from charter.ledger.trust import NodeCert
from charter.ledger.verify import verify_receipt
from charter.node.ledger_local import LocalLedgerNetwork, LocalMember, Netlayers
from charter.node.ledger_service import (
    LedgerHalted,
    LedgerNetwork,
    LedgerService,
    LedgerServiceError,
    LedgerSettings,
    NotAvailable,
)
from charter.node.ledger_submit import INTRODUCE, SubmitRefused, submit_swiss
from charter.node.raft_transport import Backoff
from charter.ocapn.locator import SturdyRef
from charter.ocapn.runtime import PromiseBrokenError, Runtime

SETTINGS = LedgerSettings(
    signature_policy=SignaturePolicy(every_tx=100, every_ms=50),
    submit_timeout=10.0,
    backoff=Backoff(base=0.01, cap=0.2),
)
WAIT = 15.0


def signer_id(net: LocalLedgerNetwork, nid: int) -> str:
    return NodeCert.from_x509(net.members[nid].ledger_cert.x509).node_id


def flip_bit(data: bytes, at: int) -> bytes:
    out = bytearray(data)
    out[at] ^= 0x01
    return bytes(out)


async def write_at_each(net: LocalLedgerNetwork, tag: str) -> dict[int, str]:
    """One write submitted at each live member, concurrently; their committed tx ids."""
    live = net.live()
    async with asyncio.timeout(WAIT):
        tickets = await asyncio.gather(
            *(
                net.service(n).submit([("accounts", f"{tag}-{n}", tag.encode())], wait="committed")
                for n in live
            )
        )
    for t in tickets:
        assert t.status is TxStatus.COMMITTED, t
        assert parse_tx_id(t.tx_id) is not None
    return {n: t.tx_id for n, t in zip(live, tickets, strict=True)}


async def check_network(kind: Netlayers) -> None:
    async with LocalLedgerNetwork(kind, settings=SETTINGS) as net:
        leader = await net.elect()
        followers = [n for n in net.ids if n != leader]

        tx_ids = await write_at_each(net, "first")
        assert all(net.service(n).forwarded >= 1 for n in followers)
        assert net.service(leader).forwarded == 0
        # readable on all three, as committed state
        await net.until(
            lambda: all(
                net.service(m).engine.get_committed("accounts", f"first-{n}") == b"first"
                for m in net.ids
                for n in net.ids
            )
        )
        follower = net.service(followers[0])
        assert await follower.get("accounts", f"first-{leader}", "linearizable") == b"first"
        assert await follower.get("accounts", "absent", "local") is None

        # receipts from any member verify offline against the members' certificates
        trusted = net.trusted()
        for n, tx_id in tx_ids.items():
            for fmt in ("json", "cose"):
                receipt = follower.receipt(tx_id, fmt)  # type: ignore[arg-type]
                verified = verify_receipt(receipt, trusted)
                assert verified.signer == signer_id(net, leader)
                with pytest.raises(LedgerError):
                    verify_receipt(flip_bit(receipt, len(receipt) - 3), trusted)
            assert net.service(n).status(tx_id) is TxStatus.COMMITTED

        # the leader stops: a new one is elected, writes continue and it signs them
        await net.stop(leader)
        new_leader = await net.elect()
        assert new_leader != leader
        more = await write_at_each(net, "second")
        survivor = net.service(net.live()[0])
        for tx_id in more.values():
            verified = verify_receipt(survivor.receipt(tx_id, "cose"), trusted)
            assert verified.signer == signer_id(net, new_leader)
        summary = net.service(new_leader).summary()
        assert summary.role == "leader" and summary.leader == new_leader
        assert summary.signed_upto > 1 and not summary.halted and summary.alarms == 0
        assert summary.applied_index <= summary.commit_index


async def test_three_members_over_memory_netlayer() -> None:
    await check_network("memory")


async def test_three_members_over_tls_on_loopback() -> None:
    await check_network("tls")


async def test_writes_of_one_turn_travel_as_one_signed_batch() -> None:
    async with LocalLedgerNetwork("memory", settings=SETTINGS) as net:
        leader = await net.elect()
        follower = net.service(next(n for n in net.ids if n != leader))
        before = follower.batches_sent
        async with asyncio.timeout(WAIT):
            tickets = await asyncio.gather(
                *(follower.submit([("t", f"k{i}", b"%d" % i)]) for i in range(50))
            )
        assert follower.batches_sent == before + 1
        seqnos = sorted(parse_tx_id(t.tx_id)[1] for t in tickets)  # type: ignore[index]
        assert seqnos == list(range(seqnos[0], seqnos[0] + 50))
        assert all(t.status in (TxStatus.PENDING, TxStatus.COMMITTED) for t in tickets)
        # without wait=committed they still become Committed once a signature lands
        await net.until(
            lambda: all(follower.status(t.tx_id) is TxStatus.COMMITTED for t in tickets)
        )


async def test_submit_many_answers_in_order_from_one_batch() -> None:
    async with LocalLedgerNetwork("memory", settings=SETTINGS) as net:
        leader = await net.elect()
        follower = net.service(next(n for n in net.ids if n != leader))
        before = follower.batches_sent
        txs = [Transaction.of([("t", f"many{i}", b"%d" % i)]) for i in range(30)]
        async with asyncio.timeout(WAIT):
            accepted = await follower.submit_many(txs[:20])
            committed = await follower.submit_many(txs[20:], wait="committed")
        assert follower.batches_sent == before + 2
        seqnos = [parse_tx_id(t.tx_id)[1] for t in accepted + committed]  # type: ignore[index]
        assert seqnos == sorted(seqnos) and len(set(seqnos)) == 30  # in the order given
        assert all(t.status is TxStatus.COMMITTED for t in committed)
        assert all(t.status in (TxStatus.PENDING, TxStatus.COMMITTED) for t in accepted)
        await net.until(lambda: follower.engine.get("t", "many29") == b"29")
        assert follower.engine.get("t", "many0") == b"0"


async def test_a_batch_forged_in_another_members_name_is_invalid_everywhere() -> None:
    async with LocalLedgerNetwork("memory", settings=SETTINGS) as net:
        leader = await net.elect()
        forger = next(n for n in net.ids if n != leader)
        victim = next(n for n in net.ids if n not in (leader, forger))
        tx = Transaction.of([("accounts", "stolen", b"yes")])
        forged = sign_batch(net.members[forger].node_key, net.members[victim].name, 7, [tx])
        async with asyncio.timeout(WAIT):
            await net.service(forger).propose_entry(forged)  # forwarded to the leader
            await net.service(victim).submit([("accounts", "honest", b"1")], wait="committed")

        def invalid_reasons(n: int) -> list[str]:
            engine = net.service(n).engine
            out = []
            for seqno in range(1, engine.last_seqno + 1):
                tx_id = engine.tx_id(seqno)
                assert tx_id is not None
                if engine.status(tx_id) is TxStatus.INVALID:
                    out.append(engine.invalid_reason(tx_id) or "")
            return out

        await net.until(lambda: all(invalid_reasons(n) for n in net.ids))
        for n in net.ids:
            assert invalid_reasons(n) == ["the batch signature does not verify"]
            assert net.service(n).engine.get("accounts", "stolen") is None


async def test_submit_without_a_quorum_fails_with_a_typed_error() -> None:
    settings = LedgerSettings(
        signature_policy=SignaturePolicy(every_tx=100, every_ms=50),
        submit_timeout=1.0,
        backoff=Backoff(base=0.01, cap=0.2),
    )
    async with LocalLedgerNetwork("memory", settings=settings) as net:
        leader = await net.elect()
        alone = next(n for n in net.ids if n != leader)
        for n in net.ids:
            if n != alone:
                await net.stop(n)
        async with asyncio.timeout(WAIT):
            with pytest.raises(NotAvailable) as info:
                await net.service(alone).submit([("t", "k", b"v")], wait="committed")
            with pytest.raises(NotAvailable):
                await net.service(alone).get("t", "k", "linearizable")
        assert info.value.code == "node.ledger.not_available"
        assert net.service(alone).engine.get("t", "k") is None
        # the batch it gave up on is no longer watched for
        assert len(net.service(alone).waiters) == 0


async def test_only_members_are_introduced_to_the_submit_gate() -> None:
    async with LocalLedgerNetwork("memory", settings=SETTINGS) as net:
        await net.elect()
        # a stranger reaches the gate but is refused: its key is not in the network
        stranger = Runtime([net.board.netlayer("stranger")])
        await stranger.start()
        try:
            assert net.network is not None
            loc = net.network.raft.peers[1]
            gate = await stranger.enliven(SturdyRef(loc, submit_swiss(net.network_id, 1)))
            with pytest.raises(PromiseBrokenError, match="not a member"):
                await gate.send(INTRODUCE, _Token())
        finally:
            await stranger.close()
        assert net.service(1)._gate.refused == 1
        assert SubmitRefused.code == "node.ledger.submit_refused"


class _Token:
    """Any object the stranger exports, to introduce itself with."""


async def test_snapshots_compact_the_log_and_bring_a_stopped_member_back() -> None:
    settings = LedgerSettings(
        signature_policy=SignaturePolicy(every_tx=10, every_ms=50),
        snapshot_policy=SnapshotPolicy(every_tx=20),
        compact_margin=5,
        backoff=Backoff(base=0.01, cap=0.2),
    )
    async with LocalLedgerNetwork("memory", settings=settings) as net:
        leader = await net.elect()
        svc = net.service(leader)
        lag = next(n for n in net.ids if n != leader)
        async with asyncio.timeout(WAIT):
            await svc.submit([("t", "early", b"1")], wait="committed")
        await net.until(lambda: net.service(lag).engine.get("t", "early") == b"1")
        await net.stop(lag)
        async with asyncio.timeout(WAIT):
            for i in range(6):
                await asyncio.gather(*(svc.submit([("t", f"k{i}-{j}", b"v")]) for j in range(10)))
            await svc.submit([("t", "late", b"2")], wait="committed")
        await net.until(lambda: svc.engine.get_committed("charter.snapshots", "latest") is not None)
        storage = svc.driver.storage
        assert storage.snapshot_index() > 0
        assert storage.first_index() > net.service(lag).driver.applied_index + 1  # compacted

        # the stopped member comes back: the log it missed is gone, so it gets a snapshot
        await net.restart(lag)
        back = net.service(lag)
        await net.until(lambda: back.engine.get("t", "late") == b"2")
        assert back.engine.get("t", "k5-9") == b"v"
        assert back.driver.storage.snapshot_index() > 1  # restored from the leader's snapshot
        async with asyncio.timeout(WAIT):
            ticket = await back.submit([("t", "after", b"3")], wait="committed")
        assert ticket.status is TxStatus.COMMITTED
        await net.until(lambda: back.engine.root() == svc.engine.root())
        verify_receipt(back.receipt(ticket.tx_id), net.trusted())


async def test_divergence_alarm_stops_writes(caplog: pytest.LogCaptureFixture) -> None:
    async with LocalLedgerNetwork("memory", settings=SETTINGS) as net:
        leader = await net.elect()
        svc = net.service(leader)
        async with asyncio.timeout(WAIT):
            await svc.submit([("t", "a", b"1")], wait="committed")
        # a member signs a root that is not the tree's: every engine raises the alarm
        member = net.members[leader]
        bogus = sign_signed_root(
            member.ledger_key,
            member.ledger_cert,
            view=svc.driver.node.term,
            seqno=svc.engine.last_seqno + 1,
            root=bytes(32),
            iat=0,
        )
        with caplog.at_level(logging.ERROR, logger="charter.node.ledger_service"):
            async with asyncio.timeout(WAIT):
                await svc.propose_entry(signature_entry(bogus))
            await net.until(lambda: all(net.service(n).engine.halted for n in net.ids))
        assert all(net.service(n).alarm_count == 1 for n in net.ids)
        assert any(getattr(r, "event", "") == "ledger.divergence" for r in caplog.records)
        assert net.service(leader).summary().halted
        with pytest.raises(LedgerHalted) as info:
            await svc.submit([("t", "b", b"2")])
        assert info.value.code == "node.ledger.halted"


async def test_configuration_mistakes_are_refused_up_front() -> None:
    async with LocalLedgerNetwork("memory", settings=SETTINGS) as net:
        network = net.network
        assert network is not None
        m1, m2 = net.members[1], net.members[2]
        with pytest.raises(LedgerServiceError):
            LedgerNetwork(network.raft, network.secret, {1: network.members[1]})
        with pytest.raises(LedgerServiceError):
            LedgerService(
                m1.runtime,
                network,
                1,
                batch_key=m2.node_key,  # not the key the network lists for member 1
                ledger_key=m1.ledger_key,
                ledger_cert=m1.ledger_cert,
                storage=MemoryStorage(),
                rng=random.Random(1),
            )
        idle = LedgerService(
            m1.runtime,
            network,
            1,
            batch_key=m1.node_key,
            ledger_key=m1.ledger_key,
            ledger_cert=m1.ledger_cert,
            storage=MemoryStorage(),
            rng=random.Random(1),
        )
        with pytest.raises(NotAvailable, match="not running"):
            await idle.submit([("t", "k", b"v")])
        assert idle.status("1.1") is TxStatus.UNKNOWN
        summary = idle.summary()
        assert summary.name == "member-1" and summary.leader is None and not summary.halted


async def test_writes_in_flight_across_a_leader_change_commit_once() -> None:
    async with LocalLedgerNetwork("memory", settings=SETTINGS) as net:
        leader = await net.elect()
        follower = net.service(next(n for n in net.ids if n != leader))
        writes = [
            asyncio.create_task(follower.submit([("t", f"k{i}", b"v")], wait="committed"))
            for i in range(20)
        ]
        await net.until(lambda: follower.forwarded >= 1)  # on its way to the leader
        await net.stop(leader)
        async with asyncio.timeout(WAIT):
            tickets = await asyncio.gather(*writes)
        assert all(t.status is TxStatus.COMMITTED for t in tickets)
        assert len({t.tx_id for t in tickets}) == 20
        engine = follower.engine
        committed_seqnos = [parse_tx_id(t.tx_id)[1] for t in tickets]  # type: ignore[index]
        assert all(engine.view_of(s) is not None for s in committed_seqnos)
        assert sorted(k for k, _ in engine.items("t")) == sorted(f"k{i}" for i in range(20))


async def test_settings_reach_the_raft_member_and_the_batch_observer() -> None:
    sizes: list[int] = []
    settings = LedgerSettings(
        signature_policy=SignaturePolicy(every_tx=100, every_ms=50),
        election_ticks=12,
        heartbeat_ticks=3,
        observe_batch_size=sizes.append,
        backoff=Backoff(base=0.01, cap=0.2),
    )
    async with LocalLedgerNetwork("memory", settings=settings) as net:
        for n in net.ids:
            config = net.service(n).member.config
            assert (config.election_ticks, config.heartbeat_ticks) == (12, 3)
        leader = await net.elect()
        follower = net.service(next(n for n in net.ids if n != leader))
        async with asyncio.timeout(WAIT):
            await asyncio.gather(*(follower.submit([("t", f"k{i}", b"v")]) for i in range(7)))
            await net.service(leader).submit([("t", "one", b"v")], wait="committed")
        assert sorted(sizes) == [1, 7]
        # every member counts the signatures it applies, not only the leader that signed
        await net.until(lambda: all(net.service(n).signatures_applied >= 1 for n in net.ids))


async def test_committed_writes_do_not_wait_for_the_signature_interval() -> None:
    # The interval is far beyond the submit timeout: only signing as soon as something is
    # unsigned (group commit) lets these commit, at a leader and at a follower, in turn.
    settings = LedgerSettings(
        signature_policy=SignaturePolicy(every_tx=100_000, every_ms=600_000),
        submit_timeout=5.0,
        backoff=Backoff(base=0.01, cap=0.2),
    )
    async with LocalLedgerNetwork("memory", settings=settings) as net:
        leader = await net.elect(WAIT)
        follower = next(n for n in net.ids if n != leader)
        for i in range(3):
            for nid in (leader, follower):
                t = await net.service(nid).submit([("t", f"k{nid}-{i}", b"v")], wait="committed")
                assert t.status is TxStatus.COMMITTED
        assert net.service(leader).signatures_proposed >= 6


class _ThreadedDurable(DurableRaftStorage):
    """Durable storage that records which threads wrote its snapshots and compactions."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.snapshot_threads: list[int] = []

    def create_snapshot(self, index: int, conf: ConfState, data: bytes) -> Snapshot:
        self.snapshot_threads.append(threading.get_ident())
        return super().create_snapshot(index, conf, data)

    def compact(self, index: int) -> None:
        self.snapshot_threads.append(threading.get_ident())
        super().compact(index)


class _DurableNetwork(LocalLedgerNetwork):
    def __init__(self, root: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._root = root

    def _service(self, m: LocalMember, storage: RaftStorage) -> LedgerService:
        if type(storage) is MemoryStorage:
            conf = ConfState(frozenset(self.ids))
            storage = _ThreadedDurable(self._root / m.name, bootstrap=conf)
        return super()._service(m, storage)


async def test_snapshots_on_disk_are_written_off_the_event_loop(tmp_path: Path) -> None:
    settings = LedgerSettings(
        signature_policy=SignaturePolicy(every_tx=10, every_ms=50),
        snapshot_policy=SnapshotPolicy(every_tx=20),
        compact_margin=5,
        backoff=Backoff(base=0.01, cap=0.2),
    )
    loop_thread = threading.get_ident()
    async with _DurableNetwork(tmp_path, netlayers="memory", settings=settings) as net:
        leader = await net.elect()
        svc = net.service(leader)
        async with asyncio.timeout(WAIT):
            for i in range(4):
                await asyncio.gather(*(svc.submit([("t", f"k{i}-{j}", b"v")]) for j in range(10)))
            await svc.submit([("t", "late", b"2")], wait="committed")
        await net.until(lambda: svc.engine.get_committed("charter.snapshots", "latest") is not None)
        for nid in net.ids:
            storage = net.service(nid).driver.storage
            assert isinstance(storage, _ThreadedDurable)
            await net.until(lambda s=storage: s.snapshot_index() > 1)
            assert storage.snapshot_threads and loop_thread not in storage.snapshot_threads
        assert svc.driver.storage.first_index() > 2  # compacted
        async with asyncio.timeout(WAIT):
            ticket = await svc.submit([("t", "after", b"3")], wait="committed")
        assert ticket.status is TxStatus.COMMITTED
        storages = [net.service(nid).driver.storage for nid in net.ids]
    for storage in storages:
        assert isinstance(storage, DurableRaftStorage)
        storage.close()
