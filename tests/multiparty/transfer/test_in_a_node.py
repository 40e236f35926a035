"""The transfer inside real ledger nodes (in-process, TLS): built from the node's context."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter

from charter.ledger.engine import CommandHandler
from charter.multiparty.transfer import BlobRef, BlobState, InboundBatch, Transfer
from charter.node.components import NodeContext
from charter.node.ledger_local import LocalLedgerNetwork
from charter.node.ledger_service import LedgerService


class TransferOnly:
    """A component holding just a transfer, as the multi-party component does."""

    name = "transfer-test"

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self.transfer: Transfer | None = None
        self.received: list[InboundBatch] = []

    def handlers(self) -> Mapping[str, CommandHandler]:
        return {}

    def bind(self, service: LedgerService) -> None:
        self.transfer = Transfer.for_node(self.ctx, service, on_batch=self.on_batch)

    async def on_batch(self, b: InboundBatch) -> None:
        self.received.append(b)

    def routers(self) -> Sequence[APIRouter]:
        return self.transfer.routers() if self.transfer is not None else []

    async def run(self) -> None:
        assert self.transfer is not None
        await self.transfer.run()

    async def close(self) -> None:
        if self.transfer is not None:
            await self.transfer.close()


async def test_member_nodes_exchange_batches_and_blobs(tmp_path: Path) -> None:
    settings: dict[str, Any] = {"transfer": {"chunk_bytes": 128 << 10, "max_blob_bytes": 8 << 20}}
    async with LocalLedgerNetwork(
        components=[TransferOnly], data_root=tmp_path, component_settings=settings
    ) as net:
        parts = {nid: m.components[0] for nid, m in net.members.items()}
        t: dict[int, Transfer] = {}
        for nid, c in parts.items():
            assert isinstance(c, TransferOnly) and c.transfer is not None
            t[nid] = c.transfer
        assert t[1].settings.chunk_bytes == 128 << 10
        assert t[1].peers.names() == ["member-1", "member-2", "member-3"]
        info = await t[1].blobs.put_bytes(os.urandom(1 << 20))
        ref = BlobRef(info.hash, info.size)
        await t[1].send_batch(["member-1", "member-2"], b"private batch", blobs=[ref])
        done = await t[2].blob_ready(ref.hash, 15.0)
        assert done.state is BlobState.READY
        got = parts[2]
        assert isinstance(got, TransferOnly)
        assert [(b.sender, b.data) for b in got.received] == [("member-1", b"private batch")]
        assert (tmp_path / "member-2" / "blobs" / "objects" / ref.hex[:2] / ref.hex).is_file()
        assert not t[3].blobs.has(ref.hash)
        third = parts[3]
        assert isinstance(third, TransferOnly) and third.received == []
        await asyncio.wait_for(t[1].until(lambda: t[1].owed() == 0), 10.0)
