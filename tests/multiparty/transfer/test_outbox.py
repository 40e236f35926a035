"""The outbox log: durable adds, group commit, replay, torn tails, compaction."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from charter.multiparty.transfer import BlobRef, OutboxFull
from charter.multiparty.transfer.outbox import Outbox, OutboxEntry


def entry(i: int, *nodes: str, size: int = 100) -> OutboxEntry:
    data = bytes([i % 256]) * size + i.to_bytes(4, "big")
    blobs = (BlobRef(hashlib.sha256(data).digest(), 7),) if i % 2 else ()
    return OutboxEntry(hashlib.sha256(data).digest(), data, b"s" * 64, blobs, set(nodes))


async def test_concurrent_adds_share_syncs_and_replay_in_order(tmp_path: Path) -> None:
    box = Outbox(tmp_path, max_bytes=1 << 30)
    entries = [entry(i, "a", "b") for i in range(50)]
    await asyncio.gather(*(box.add(e) for e in entries))
    assert box.syncs < 50
    box.acked(entries[0].hash, "a")
    box.acked(entries[0].hash, "b")
    box.acked(entries[1].hash, "a")
    await box.close()
    again = Outbox(tmp_path, max_bytes=1 << 30)
    assert list(again.entries) == [e.hash for e in entries[1:]]
    assert again.entries[entries[1].hash].remaining == {"b"}
    assert again.entries[entries[1].hash].blobs == entries[1].blobs
    assert list(again.owed_to("a")) == [e.hash for e in entries[2:]]
    with pytest.raises(OutboxFull):
        await Outbox(tmp_path / "small", max_bytes=150).add(entry(1, "a", size=200))
    await again.close()


async def test_a_torn_tail_is_cut_at_the_last_whole_record(tmp_path: Path) -> None:
    box = Outbox(tmp_path, max_bytes=1 << 30)
    await box.add(entry(1, "a"))
    await box.add(entry(2, "a"))
    await box.close()
    log = tmp_path / "outbox.log"
    whole = log.read_bytes()
    log.write_bytes(whole[:-10])  # the second add was being written when power failed
    again = Outbox(tmp_path, max_bytes=1 << 30)
    assert list(again.entries) == [entry(1, "a").hash]
    await again.add(entry(3, "a"))
    await again.close()
    assert list(Outbox(tmp_path, max_bytes=1 << 30).entries) == [
        entry(1, "a").hash,
        entry(3, "a").hash,
    ]


async def test_the_log_is_compacted_to_what_is_still_owed(tmp_path: Path) -> None:
    box = Outbox(tmp_path, max_bytes=1 << 30, compact_bytes=64 << 10)
    for i in range(100):
        e = entry(i, "a", size=4000)
        await box.add(e)
        if i != 42:
            box.acked(e.hash, "a")
    await box.close()
    assert (tmp_path / "outbox.log").stat().st_size < (64 << 10) + 8000
    assert list(Outbox(tmp_path, max_bytes=1 << 30).entries) == [entry(42, "a", size=4000).hash]
