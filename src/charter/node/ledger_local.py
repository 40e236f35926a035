"""A ledger network whose members all run in this process: for the demo and for tests.

Each member still has its own OCapN runtime, keys and Raft storage, and the members talk
only through their netlayers (TLS 1.3 on loopback with pinned Ed25519 keys, or the
in-process memory netlayer); separate node processes come with ``charter node run``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from charter.consensus.storage import MemoryStorage, RaftStorage
from charter.consensus.types import ConfState, Role
from charter.crypto.certs import Certificate, self_signed_certificate
from charter.crypto.keys import Ed25519PrivateKey, P256PrivateKey
from charter.ledger.engine import CommandHandler
from charter.ledger.trust import TrustedNodes
from charter.node.components import (
    Component,
    ComponentFactory,
    NodeContext,
    assemble,
    merged_handlers,
)
from charter.node.ledger_service import (
    LedgerMember,
    LedgerNetwork,
    LedgerService,
    LedgerSettings,
    NotAvailable,
)
from charter.node.raft_transport import RaftNetworkConfig
from charter.ocapn.netlayer.base import Netlayer
from charter.ocapn.netlayer.memory import Switchboard
from charter.ocapn.netlayer.tls import TlsNetlayer
from charter.ocapn.runtime import Runtime

__all__ = ["LocalLedgerNetwork", "LocalMember"]

Netlayers = Literal["memory", "tls"]


@dataclass
class LocalMember:
    node_id: int
    name: str
    node_key: Ed25519PrivateKey
    """Signs its batches; over TLS it is also the key peers pin."""
    ledger_key: P256PrivateKey
    ledger_cert: Certificate
    runtime: Runtime
    service: LedgerService | None
    task: asyncio.Task[None] | None = None
    components: list[Component] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()


class LocalLedgerNetwork:
    """``async with LocalLedgerNetwork(...) as net``: members started, stopped on exit."""

    def __init__(
        self,
        netlayers: Netlayers = "tls",
        *,
        size: int = 3,
        settings: LedgerSettings | None = None,
        node_keys: Mapping[int, Ed25519PrivateKey] | None = None,
        network_id: bytes | None = None,
        seed: int = 0,
        handlers: Callable[[int], Mapping[str, CommandHandler]] | None = None,
        components: Sequence[ComponentFactory] = (),
        data_root: Path | None = None,
        component_settings: Mapping[str, Any] | None = None,
    ) -> None:
        """``handlers(node_id)`` gives each member's command handlers (fresh objects per
        node, as separate processes would have). ``components`` are built per member as
        a node process builds them (``charter.node.components``), with data directories
        under ``data_root`` (None: no data directory)."""
        if size < 1:
            raise ValueError("a network has at least one member")
        self.netlayers = netlayers
        self.ids = list(range(1, size + 1))
        self.settings = settings or LedgerSettings()
        self._keys = dict(node_keys or {})
        self.network_id = network_id or os.urandom(16)
        self._seed = seed
        self._handlers = handlers
        self._factories = list(components)
        self._data_root = data_root
        self._component_settings = dict(component_settings or {})
        self.members: dict[int, LocalMember] = {}
        self.network: LedgerNetwork | None = None
        self.board = Switchboard()
        """The memory netlayer's switchboard (unused over TLS)."""
        self._stack = contextlib.AsyncExitStack()
        self._tg: asyncio.TaskGroup | None = None

    async def __aenter__(self) -> LocalLedgerNetwork:
        keys = {nid: self._keys.get(nid) or Ed25519PrivateKey.generate() for nid in self.ids}
        runtimes: dict[int, Runtime] = {}
        await self._stack.__aenter__()
        try:
            for nid in self.ids:
                runtimes[nid] = await self._start_runtime(nid, keys[nid], port=0)
            ledger_keys = {nid: P256PrivateKey.generate() for nid in self.ids}
            certs = {
                nid: self_signed_certificate(k, common_name=f"charter ledger node {nid}")
                for nid, k in ledger_keys.items()
            }
            raft = RaftNetworkConfig(
                self.network_id, {nid: rt.location() for nid, rt in runtimes.items()}
            )
            self.network = network = LedgerNetwork(
                raft,
                os.urandom(32),
                {
                    nid: LedgerMember(
                        f"member-{nid}", keys[nid].public_key, certs[nid], f"member-{nid}"
                    )
                    for nid in self.ids
                },
            )
            voters = ConfState(frozenset(self.ids))
            for nid in self.ids:
                self.members[nid] = m = LocalMember(
                    nid,
                    network.members[nid].name,
                    keys[nid],
                    ledger_keys[nid],
                    certs[nid],
                    runtimes[nid],
                    None,
                )
                m.service = self._service(m, MemoryStorage.bootstrap(voters))
            self._tg = await self._stack.enter_async_context(asyncio.TaskGroup())
            self._stack.callback(self._cancel_all)
            for nid in self.ids:
                self.members[nid].task = self._tg.create_task(self._run_member(self.members[nid]))
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def _start_runtime(self, nid: int, key: Ed25519PrivateKey, *, port: int) -> Runtime:
        nl: Netlayer
        if self.netlayers == "tls":
            nl = TlsNetlayer(key.to_cryptography(), "127.0.0.1", port)
        else:
            nl = self.board.netlayer(f"node-{nid}")
        rt = Runtime([nl])
        self._stack.push_async_callback(rt.close)
        await rt.start()
        return rt

    def _service(self, m: LocalMember, storage: RaftStorage) -> LedgerService:
        assert self.network is not None
        data_dir = None if self._data_root is None else self._data_root / m.name
        if data_dir is not None:
            data_dir.mkdir(parents=True, exist_ok=True)
        ctx = NodeContext(
            name=m.name,
            member=m.name,
            raft_id=m.node_id,
            runtime=m.runtime,
            identity=m.node_key,
            data_dir=data_dir,
            settings=self._component_settings,
        )
        m.components = assemble(ctx, self._factories)
        handlers = merged_handlers(m.components)
        if self._handlers is not None:
            handlers.update(self._handlers(m.node_id))
        service = LedgerService(
            m.runtime,
            self.network,
            m.node_id,
            batch_key=m.node_key,
            ledger_key=m.ledger_key,
            ledger_cert=m.ledger_cert,
            storage=storage,
            rng=random.Random(self._seed * 1000 + m.node_id),
            settings=self.settings,
            handlers=handlers,
        )
        for component in m.components:
            component.bind(service)
        return service

    async def _run_member(self, m: LocalMember) -> None:
        service = m.service
        assert service is not None
        try:
            async with asyncio.TaskGroup() as tg:
                parts = [tg.create_task(c.run()) for c in m.components]
                await service.run()
                for part in parts:  # the service ended: so do the components
                    part.cancel()
        finally:
            for component in reversed(m.components):
                await component.close()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._cancel_all()
        await self._stack.__aexit__(exc_type, exc, tb)

    def _cancel_all(self) -> None:
        for m in self.members.values():
            if m.task is not None:
                m.task.cancel()

    # -- inspection and control ------------------------------------------------------------

    def service(self, nid: int) -> LedgerService:
        service = self.members[nid].service
        assert service is not None
        return service

    def live(self) -> list[int]:
        return [nid for nid, m in self.members.items() if m.running]

    def trusted(self) -> TrustedNodes:
        assert self.network is not None
        return self.network.trusted()

    def leader(self) -> int | None:
        leaders = [n for n in self.live() if self.service(n).driver.node.role is Role.LEADER]
        return leaders[0] if len(leaders) == 1 else None

    async def until(self, predicate: Callable[[], bool], within: float = 15.0) -> None:
        """Wait for ``predicate``, re-checked whenever a live member's Raft state moves."""
        live = self.live()
        if not live:
            raise NotAvailable("no member is running")
        transport = self.service(live[0]).member.transport
        async with asyncio.timeout(within):
            await transport.wait_for(predicate)

    async def elect(self, within: float = 15.0) -> int:
        """The leader once exactly one live member leads and every live member knows it."""

        def settled() -> bool:
            leader = self.leader()
            return leader is not None and all(
                self.service(n).driver.node.leader_id == leader for n in self.live()
            )

        await self.until(settled, within)
        leader = self.leader()
        assert leader is not None
        return leader

    async def stop(self, nid: int) -> None:
        """Stop one member: its service ends and its runtime closes (peers see it go)."""
        m = self.members[nid]
        if m.task is not None and not m.task.done():
            m.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await m.task
        await m.runtime.close()

    async def restart(self, nid: int) -> None:
        """Start a stopped member again at its address, with its Raft storage as it was
        (its engine starts from that storage's snapshot and catches up from its peers)."""
        m = self.members[nid]
        if m.running or self._tg is None or self.network is None:
            raise NotAvailable(f"member {nid} is running, or the network is not")
        port = int(self.network.raft.peers[nid].hints_dict().get("port", 0))
        storage = self.service(nid).driver.storage
        m.runtime = await self._start_runtime(nid, m.node_key, port=port)
        m.service = self._service(m, storage)
        m.task = self._tg.create_task(self._run_member(m))
