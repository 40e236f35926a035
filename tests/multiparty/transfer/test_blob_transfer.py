"""Blobs pulled in chunks from the node that sent the batch: verified, resumable, authorized."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from charter.multiparty.transfer import BlobNotFound, BlobRef, BlobState, TransferSettings
from charter.multiparty.transfer.wire import OK, READ_BLOB, REFUSED

from .mesh import FAST, Mesh, Node
from .test_batches import facet_of

WAIT = 20.0
SLOW = TransferSettings(chunk_bytes=64 << 10, fetch_window=1, backoff=FAST.backoff)
"""One 64 KiB chunk at a time: a transfer long enough to cut in the middle."""


async def give(node: Node, size: int) -> BlobRef:
    info = await node.t.blobs.put_bytes(os.urandom(size))
    return BlobRef(info.hash, info.size)


def blob_bytes(node: Node, ref: BlobRef) -> bytes:
    return node.t.blobs.path(ref.hash).read_bytes()


async def test_a_blob_follows_its_batch_in_verified_chunks(tmp_path: Path) -> None:
    async with Mesh(tmp_path, 3) as mesh:
        n1, n2, n3 = mesh["n1"], mesh["n2"], mesh["n3"]
        ref = await give(n1, 3 * (256 << 10) + 1234)
        empty = await give(n1, 0)
        await n1.t.send_batch(["n2", "n3"], b"two blobs, one twice", blobs=[ref, empty, ref])
        for n in (n2, n3):
            done = await n.t.blob_ready(ref.hash, WAIT)
            assert done.state is BlobState.READY and done.received == ref.size
            assert (await n.t.blob_ready(empty.hash, WAIT)).state is BlobState.READY
            assert blob_bytes(n, ref) == blob_bytes(n1, ref)
            assert {p.hash for p in n.blob_events if p.state is BlobState.READY} == {
                ref.hash,
                empty.hash,
            }
            assert n.t.stats.chunks_fetched == 4
            assert n.received[0].blobs == (ref, empty)
            assert not list((n.data_dir / "blobs" / "partial").iterdir())
            assert not list((n.data_dir / "blobs" / "wants").iterdir())
        assert n1.t.stats.chunks_served == 8


async def test_a_cut_connection_resumes_from_the_bytes_received(tmp_path: Path) -> None:
    async with Mesh(tmp_path, 2, settings=SLOW) as mesh:
        n1, n2 = mesh["n1"], mesh["n2"]
        ref = await give(n1, 4 << 20)
        await n1.t.send_batch(["n2"], b"big", blobs=[ref])
        await n2.t.until(
            lambda: (p := n2.t.progress(ref.hash)) is not None and p.received >= 1 << 20
        )
        cut_at = n2.t.progress(ref.hash).received  # type: ignore[union-attr]
        for session in n2.runtime.sessions:
            session.abort("cable pulled")
        done = await n2.t.blob_ready(ref.hash, WAIT)
        assert done.state is BlobState.READY and cut_at < ref.size
        assert n2.t.stats.fetch_retries >= 1
        assert n2.t.stats.bytes_fetched == ref.size  # nothing fetched twice
        assert blob_bytes(n2, ref) == blob_bytes(n1, ref)


async def test_a_restarted_recipient_resumes_from_its_partial_file(tmp_path: Path) -> None:
    async with Mesh(tmp_path, 2, settings=SLOW) as mesh:
        n1, n2 = mesh["n1"], mesh["n2"]
        ref = await give(n1, 4 << 20)
        await n1.t.send_batch(["n2"], b"big", blobs=[ref])
        await n2.t.until(
            lambda: (p := n2.t.progress(ref.hash)) is not None and p.received >= 1 << 20
        )
        await mesh.stop("n2")
        kept = n2.t.blobs.partial_size(ref.hash)
        assert 0 < kept < ref.size
        await mesh.restart("n2")
        assert n2.t.progress(ref.hash).received == kept  # type: ignore[union-attr]
        done = await n2.t.blob_ready(ref.hash, WAIT)
        assert done.state is BlobState.READY
        assert n2.t.stats.bytes_fetched == ref.size - kept
        assert hashlib.sha256(blob_bytes(n2, ref)).digest() == ref.hash


async def test_a_node_outside_the_group_cannot_fetch(tmp_path: Path) -> None:
    async with Mesh(tmp_path, 3) as mesh:
        n1, n3 = mesh["n1"], mesh["n3"]
        ref = await give(n1, 100_000)
        await n1.t.send_batch(["n2"], b"private to n2", blobs=[ref])
        await mesh["n2"].t.blob_ready(ref.hash, WAIT)
        facet = await facet_of(n3.runtime, mesh, n1)
        answer = await facet.send(READ_BLOB, ref.hash, 0, 1000)
        assert answer[0] == REFUSED
        # the same answer as for a blob n1 does not hold at all: n3 learns nothing
        assert await facet.send(READ_BLOB, os.urandom(32), 0, 1000) == answer
        failed = await n3.t.fetch_blob("n1", ref.hash, ref.size)
        assert failed.state is not BlobState.READY
        done = await n3.t.blob_ready(ref.hash, WAIT)
        assert done.state is BlobState.FAILED and "refused" in (done.reason or "")
        assert not n3.t.blobs.has(ref.hash)
        assert not [p for p in n3.data_dir.rglob("*") if ref.hash.hex() in p.name]
        # n2 was granted: it may read the same bytes
        facet2 = await facet_of(mesh["n2"].runtime, mesh, n1)
        assert (await facet2.send(READ_BLOB, ref.hash, 0, 10))[0] == OK


async def test_bytes_that_do_not_match_the_hash_are_never_kept(tmp_path: Path) -> None:
    async with Mesh(tmp_path, 2) as mesh:
        n1, n2 = mesh["n1"], mesh["n2"]
        ref = await give(n1, 300_000)
        path = n1.t.blobs.path(ref.hash)
        await n1.t.send_batch(["n2"], b"will lie", blobs=[ref])
        path.chmod(0o600)
        path.write_bytes(os.urandom(ref.size))  # the source's copy rots after the grant
        done = await n2.t.blob_ready(ref.hash, WAIT)
        assert done.state is BlobState.FAILED and "do not hash" in (done.reason or "")
        assert not n2.t.blobs.has(ref.hash)
        assert not list((n2.data_dir / "blobs" / "partial").iterdir())


async def test_only_blobs_held_here_can_be_sent_and_limits_hold(tmp_path: Path) -> None:
    small = TransferSettings(max_blob_bytes=1000, backoff=FAST.backoff)
    async with Mesh(tmp_path, 2, n2=small) as mesh:
        n1, n2 = mesh["n1"], mesh["n2"]
        with pytest.raises(BlobNotFound):
            await n1.t.send_batch(["n2"], b"x", blobs=[BlobRef(os.urandom(32), 10)])
        big = await give(n1, 5000)
        await n1.t.send_batch(["n2"], b"too big for n2", blobs=[big])
        done = await n2.t.blob_ready(big.hash, WAIT)
        assert done.state is BlobState.FAILED and "limit" in (done.reason or "")
        assert n2.t.stats.chunks_fetched == 0


async def test_blobs_of_a_batch_the_application_refused_are_not_fetched(tmp_path: Path) -> None:
    async with Mesh(tmp_path, 2) as mesh:
        n1, n2 = mesh["n1"], mesh["n2"]
        n2.unwanted = True
        ref = await give(n1, 50_000)
        await n1.t.send_batch(["n2"], b"n2 will not use this", blobs=[ref])
        await n1.t.until(lambda: n1.t.owed() == 0, WAIT)
        assert n2.t.progress(ref.hash) is None and n1.t.stats.chunks_served == 0
        assert not [p for p in n2.data_dir.rglob("*") if ref.hash.hex() in p.name]
