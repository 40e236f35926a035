"""Member nodes with real OCapN runtimes over TLS on loopback, each running a Transfer."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from charter.crypto.keys import Ed25519PrivateKey
from charter.multiparty.transfer import (
    BlobProgress,
    InboundBatch,
    PeerDirectory,
    PeerNode,
    Transfer,
    TransferSettings,
)
from charter.node.raft_transport import Backoff
from charter.ocapn.locator import PeerLocation
from charter.ocapn.netlayer.tls import TlsNetlayer
from charter.ocapn.runtime import Runtime

FAST = TransferSettings(backoff=Backoff(base=0.01, cap=0.1), connect_timeout=2.0)


async def start_runtime(key: Ed25519PrivateKey, port: int = 0) -> Runtime:
    rt = Runtime([TlsNetlayer(key.to_cryptography(), "127.0.0.1", port)])
    await rt.start()
    return rt


@dataclass
class Node:
    name: str
    key: Ed25519PrivateKey
    data_dir: Path
    runtime: Runtime
    transfer: Transfer | None = None
    task: asyncio.Task[None] | None = None
    received: list[InboundBatch] = field(default_factory=list)
    blob_events: list[BlobProgress] = field(default_factory=list)
    fail_next: int = 0
    """How many of the next deliveries ``on_batch`` refuses (raising), as a full disk would."""
    unwanted: bool = False
    """``on_batch`` acknowledges but refuses every batch (returns False)."""
    hold: asyncio.Event | None = None
    """While set to an unset event, ``on_batch`` waits for it (a slow application)."""

    @property
    def t(self) -> Transfer:
        assert self.transfer is not None
        return self.transfer

    @property
    def port(self) -> int:
        return int(self.runtime.location().hints_dict()["port"])

    async def on_batch(self, b: InboundBatch) -> bool | None:
        if self.unwanted:
            return False
        if self.hold is not None:
            await self.hold.wait()
        if self.fail_next > 0:
            self.fail_next -= 1
            raise OSError("cannot keep the batch now")
        self.received.append(b)
        return None

    def on_blob(self, p: BlobProgress) -> None:
        self.blob_events.append(p)


class Mesh:
    """``async with Mesh(tmp_path, 3) as mesh``: nodes ``n1..nN``, all running."""

    def __init__(
        self, root: Path, size: int, settings: TransferSettings = FAST, **overrides: Any
    ) -> None:
        self.root = root
        self.size = size
        self.settings = settings
        self.overrides = overrides
        self.network_id = os.urandom(16)
        self.nodes: dict[str, Node] = {}
        self.peers: PeerDirectory | None = None
        self._tg = asyncio.TaskGroup()

    async def __aenter__(self) -> Mesh:
        await self._tg.__aenter__()
        for i in range(1, self.size + 1):
            key = Ed25519PrivateKey.generate()
            name = f"n{i}"
            data_dir = self.root / name
            data_dir.mkdir(parents=True, exist_ok=True)
            self.nodes[name] = Node(name, key, data_dir, await start_runtime(key))
        self.peers = PeerDirectory(
            self.network_id,
            [
                PeerNode(n.name, f"member-{n.name}", n.runtime.location(), n.key.public_key)
                for n in self.nodes.values()
            ],
        )
        for n in self.nodes.values():
            self._start_transfer(n)
        return self

    def settings_for(self, name: str) -> TransferSettings:
        return self.overrides.get(name, self.settings)  # type: ignore[no-any-return]

    def _start_transfer(self, n: Node) -> None:
        assert self.peers is not None
        n.transfer = Transfer(
            n.runtime,
            n.key,
            self.peers,
            name=n.name,
            data_dir=n.data_dir,
            settings=self.settings_for(n.name),
            on_batch=n.on_batch,
            on_blob=n.on_blob,
            rng=random.Random(n.name),
        )
        n.task = self._tg.create_task(n.transfer.run())

    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]

    async def stop(self, name: str) -> None:
        """The node goes away: its transfer stops and its runtime closes (peers see it)."""
        n = self.nodes[name]
        if n.task is not None:
            n.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await n.task
            n.task = None
        if n.transfer is not None:
            await n.transfer.close()
        await n.runtime.close()

    async def restart(self, name: str) -> None:
        """Start the node again at its address, with a fresh Transfer over its files."""
        n = self.nodes[name]
        n.runtime = await start_runtime(n.key, n.port)
        self._start_transfer(n)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for n in self.nodes.values():
            if n.task is not None:
                n.task.cancel()
        try:
            await self._tg.__aexit__(exc_type, exc, tb)
        finally:
            for n in self.nodes.values():
                await n.runtime.close()


def location_of(node: Node) -> PeerLocation:
    return node.runtime.location()
