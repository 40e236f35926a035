"""Signed batches between member nodes over TLS: delivery, refusals, at-least-once."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest

from charter.crypto.keys import Ed25519PrivateKey
from charter.multiparty.transfer import (
    BlobRef,
    OutboxFull,
    TransferError,
    TransferSettings,
    inbox_swiss,
    sign_batch,
)
from charter.multiparty.transfer.outbox import Outbox
from charter.multiparty.transfer.wire import DELIVER, INTRODUCE, OK, REFUSED
from charter.ocapn.locator import SturdyRef
from charter.ocapn.runtime import PromiseBrokenError, RemoteRef, Runtime

from .mesh import FAST, Mesh, Node, start_runtime

WAIT = 10.0


async def facet_of(rt: Runtime, mesh: Mesh, target: Node) -> RemoteRef:
    """``rt``'s own inbox facet on ``target``, introduced with an object ``rt`` exports."""
    gate = await rt.enliven(
        SturdyRef(target.runtime.location(), inbox_swiss(mesh.network_id, target.name))
    )
    facet = await gate.send(INTRODUCE, object())
    assert type(facet) is RemoteRef
    return facet


async def test_a_batch_reaches_exactly_its_recipients(tmp_path: Path) -> None:
    async with Mesh(tmp_path, 3) as mesh:
        batch = b"private batch " + os.urandom(64)
        h = await mesh["n1"].t.send_batch(["n2"], batch)
        assert h == hashlib.sha256(batch).digest()
        await mesh["n1"].t.until(lambda: mesh["n1"].t.owed() == 0, WAIT)
        [got] = mesh["n2"].received
        assert (got.sender, got.hash, got.data) == ("n1", h, batch)
        broadcast = b"to everyone"
        await mesh["n1"].t.send_batch(["n1", "n2", "n3"], broadcast)
        await mesh["n1"].t.until(lambda: mesh["n1"].t.owed() == 0, WAIT)
        assert [b.data for b in mesh["n2"].received] == [batch, broadcast]
        assert [b.data for b in mesh["n3"].received] == [broadcast]
        assert mesh["n1"].received == []  # never to itself


async def test_many_batches_arrive_once_each(tmp_path: Path) -> None:
    async with Mesh(tmp_path, 2) as mesh:
        sent = [os.urandom(100) + bytes([i]) for i in range(40)]
        for b in sent:
            await mesh["n1"].t.send_batch(["n2"], b)
        await mesh["n1"].t.send_batch(["n2"], sent[0])  # again: harmless
        await mesh["n1"].t.until(lambda: mesh["n1"].t.owed() == 0, WAIT)
        assert sorted(b.data for b in mesh["n2"].received) == sorted(sent)
        assert mesh["n1"].t.stats.batches_acked >= 41


async def test_a_forged_sender_is_refused(tmp_path: Path) -> None:
    """n3 replays a batch n1 signed: the session says n3, so n1's signature does not fit."""
    async with Mesh(tmp_path, 3) as mesh:
        batch = b"n1 wrote this"
        h = hashlib.sha256(batch).digest()
        sig = sign_batch(mesh["n1"].key, mesh.network_id, h)
        facet = await facet_of(mesh["n3"].runtime, mesh, mesh["n2"])
        answer = await facet.send(DELIVER, h, batch, sig, [])
        assert answer[0] == REFUSED and "signature" in answer[1]
        assert mesh["n2"].received == [] and mesh["n2"].t.stats.refused_signature == 1
        # signed by n3 itself, the same bytes are accepted as n3's
        own = sign_batch(mesh["n3"].key, mesh.network_id, h)
        assert await facet.send(DELIVER, h, batch, own, []) == [OK]
        assert [(b.sender, b.data) for b in mesh["n2"].received] == [("n3", batch)]


async def test_tampered_bytes_are_refused(tmp_path: Path) -> None:
    async with Mesh(tmp_path, 2) as mesh:
        facet = await facet_of(mesh["n1"].runtime, mesh, mesh["n2"])
        batch = b"the amount is 10"
        h = hashlib.sha256(batch).digest()
        sig = sign_batch(mesh["n1"].key, mesh.network_id, h)
        tampered = b"the amount is 99"
        answer = await facet.send(DELIVER, h, tampered, sig, [])
        assert answer[0] == REFUSED and "hash" in answer[1]
        # the hash of the tampered bytes, with the signature over the original: refused too
        answer = await facet.send(DELIVER, hashlib.sha256(tampered).digest(), tampered, sig, [])
        assert answer[0] == REFUSED and "signature" in answer[1]
        # a blob list the sender did not sign
        fake = BlobRef(os.urandom(32), 5)
        answer = await facet.send(DELIVER, h, batch, sig, [fake.to_wire()])
        assert answer[0] == REFUSED and "signature" in answer[1]
        answer = await facet.send(DELIVER, h, 42, sig, [])
        assert answer[0] == REFUSED
        assert mesh["n2"].received == []
        s = mesh["n2"].t.stats
        assert (s.refused_hash, s.refused_signature, s.refused_malformed) == (1, 2, 1)
        assert await facet.send(DELIVER, h, batch, sig, []) == [OK]


async def test_a_node_outside_the_network_gets_no_inbox(tmp_path: Path) -> None:
    async with Mesh(tmp_path, 2) as mesh:
        outsider = await start_runtime(Ed25519PrivateKey.generate())
        try:
            with pytest.raises(PromiseBrokenError, match="not a member node"):
                await facet_of(outsider, mesh, mesh["n2"])
        finally:
            await outsider.close()
        assert mesh["n2"].t._gate.refused == 1


async def test_the_outbox_resends_once_the_receiver_is_back(tmp_path: Path) -> None:
    async with Mesh(tmp_path, 3) as mesh:
        await mesh.stop("n2")
        batches = [b"while n2 was down " + bytes([i]) for i in range(5)]
        for b in batches:
            await mesh["n1"].t.send_batch(["n2", "n3"], b)
        t1 = mesh["n1"].t
        await t1.until(lambda: t1.owed("n3") == 0 and t1.stats.delivery_retries >= 2, WAIT)
        assert t1.owed("n2") == 5 and mesh["n2"].received == []
        await mesh.restart("n2")
        await t1.until(lambda: t1.owed() == 0, WAIT)
        assert [b.data for b in mesh["n2"].received] == batches


async def test_the_outbox_survives_a_restart_of_the_sender(tmp_path: Path) -> None:
    async with Mesh(tmp_path, 2) as mesh:
        await mesh.stop("n2")
        await mesh["n1"].t.send_batch(["n2"], b"kept on disk")
        await mesh.stop("n1")
        kept = Outbox(mesh["n1"].data_dir / "outbox", max_bytes=1 << 20)
        assert [e.data for e in kept.entries.values()] == [b"kept on disk"]
        await kept.close()
        await mesh.restart("n1")
        await mesh.restart("n2")
        t1 = mesh["n1"].t
        await t1.until(lambda: t1.owed() == 0, WAIT)
        assert [b.data for b in mesh["n2"].received] == [b"kept on disk"]
        await mesh.stop("n1")  # the acknowledgement is written at close
        assert Outbox(mesh["n1"].data_dir / "outbox", max_bytes=1 << 20).entries == {}


async def test_a_batch_the_receiver_could_not_keep_comes_again(tmp_path: Path) -> None:
    async with Mesh(tmp_path, 2) as mesh:
        mesh["n2"].fail_next = 2
        await mesh["n1"].t.send_batch(["n2"], b"retry me")
        t1 = mesh["n1"].t
        await t1.until(lambda: t1.owed() == 0, WAIT)
        assert [b.data for b in mesh["n2"].received] == [b"retry me"]
        assert t1.stats.delivery_retries >= 2


async def test_send_batch_refuses_what_it_cannot_deliver(tmp_path: Path) -> None:
    small = TransferSettings(max_batch_bytes=1000, max_outbox_bytes=1500, backoff=FAST.backoff)
    async with Mesh(tmp_path, 2, settings=small) as mesh:
        t1 = mesh["n1"].t
        with pytest.raises(TransferError, match="1 to 1000 bytes"):
            await t1.send_batch(["n2"], b"x" * 1001)
        with pytest.raises(TransferError) as unknown:
            await t1.send_batch(["n9"], b"x")
        assert unknown.value.code == "mp.transfer.unknown_node"
        with pytest.raises(TransferError, match="SHA-256"):
            await t1.send_batch(["n2"], b"x", b"\0" * 32)
        await mesh.stop("n2")
        await t1.send_batch(["n2"], b"a" * 1000)
        with pytest.raises(OutboxFull):
            await t1.send_batch(["n2"], b"b" * 1000)


async def test_a_receiver_bounds_the_batches_it_keeps_at_once(tmp_path: Path) -> None:
    one = TransferSettings(max_inflight_per_sender=1, backoff=FAST.backoff)
    async with Mesh(tmp_path, 2, n2=one) as mesh:
        n1, n2 = mesh["n1"], mesh["n2"]
        n2.hold = asyncio.Event()
        await n1.t.send_batch(["n2"], b"first")
        await n1.t.send_batch(["n2"], b"second")
        await n2.t.until(lambda: n2.t.stats.turned_away >= 1, WAIT)
        assert n2.received == []
        n2.hold.set()
        await n1.t.until(lambda: n1.t.owed() == 0, WAIT)
        assert sorted(b.data for b in n2.received) == [b"first", b"second"]
