"""Three members in this process, each running the multi-party component behind its own REST app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from charter.api import NodeInfo, create_app
from charter.ledger.signatures import SignaturePolicy
from charter.ledger.trust import NodeCert
from charter.multiparty.component import MultipartyComponent, multiparty_component
from charter.multiparty.service import MessagingService
from charter.node.ledger_local import LocalLedgerNetwork
from charter.node.ledger_service import LedgerSettings
from charter.node.raft_transport import Backoff
from charter.ops import NodeMetrics

FAST = LedgerSettings(
    signature_policy=SignaturePolicy(every_tx=100, every_ms=20),
    submit_timeout=5.0,
    backoff=Backoff(base=0.01, cap=0.2),
)
WAIT = 20.0


@dataclass
class MpNet:
    net: LocalLedgerNetwork
    clients: dict[int, httpx.AsyncClient]
    root: Path
    apps: dict[int, Any]

    def component(self, nid: int) -> MultipartyComponent:
        (c,) = [c for c in self.net.members[nid].components if isinstance(c, MultipartyComponent)]
        return c

    def messaging(self, nid: int) -> MessagingService:
        m = self.component(nid).messaging
        assert m is not None
        return m

    async def until(self, predicate: Callable[[], Any], within: float = WAIT) -> None:
        await self.net.until(lambda: bool(predicate()), within)


@asynccontextmanager
async def mp_network(
    root: Path,
    settings: dict[str, Any] | None = None,
    netlayers: str = "tls",
) -> AsyncIterator[MpNet]:
    async with LocalLedgerNetwork(
        netlayers,  # type: ignore[arg-type]
        settings=FAST,
        components=[multiparty_component],
        data_root=root,
        component_settings=settings or {},
    ) as net:
        clients: dict[int, httpx.AsyncClient] = {}
        apps: dict[int, Any] = {}
        for nid in net.ids:
            m = net.members[nid]
            service = net.service(nid)
            info = NodeInfo(
                name=m.name,
                member=m.name,
                node_id=NodeCert.from_x509(m.ledger_cert.x509).node_id,
                raft_id=nid,
                api_url=f"http://{m.name}.test",
                version="test",
            )
            routers = [r for c in m.components for r in c.routers()]
            apps[nid] = app = create_app(service, info, NodeMetrics(service), routers=routers)
            clients[nid] = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=f"http://{m.name}.test", timeout=30
            )
        mp = MpNet(net, clients, root, apps)
        await net.elect(WAIT)
        for nid in net.ids:
            await mp.until(lambda n=nid: mp.component(n).service.__self__.messaging.ready.is_set())
        try:
            yield mp
        finally:
            for c in clients.values():
                await c.aclose()
