"""Three members in this process (memory netlayer), each running the tokens component
behind its own REST app, as a node process assembles it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest_asyncio

from charter.api import NodeInfo, create_app
from charter.ledger.signatures import SignaturePolicy
from charter.ledger.trust import NodeCert
from charter.node.ledger_local import LocalLedgerNetwork
from charter.node.ledger_service import LedgerService, LedgerSettings
from charter.node.raft_transport import Backoff
from charter.ops import NodeMetrics
from charter.tokens.component import tokens_component

FAST = LedgerSettings(
    signature_policy=SignaturePolicy(every_tx=100, every_ms=20),
    submit_timeout=5.0,
    backoff=Backoff(base=0.01, cap=0.2),
)
WAIT = 15.0


@dataclass
class TokenNet:
    net: LocalLedgerNetwork
    clients: dict[int, httpx.AsyncClient]

    def service(self, nid: int) -> LedgerService:
        return self.net.service(nid)

    async def caught_up(self) -> None:
        """Every member has applied the same leaves as the most advanced one."""

        def same() -> bool:
            sizes = {self.service(n).engine.last_seqno for n in self.net.ids}
            return len(sizes) == 1

        await self.net.until(same, WAIT)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def tnet(tmp_path_factory: object) -> AsyncIterator[TokenNet]:
    root: Path = tmp_path_factory.mktemp("tokens")  # type: ignore[attr-defined]
    async with LocalLedgerNetwork(
        "memory",
        settings=FAST,
        components=[tokens_component],
        data_root=root,
        component_settings={"tokens": {"migrate_after": 0}},
    ) as net:
        clients: dict[int, httpx.AsyncClient] = {}
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
            app = create_app(service, info, NodeMetrics(service), routers=routers)
            clients[nid] = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=f"http://{m.name}.test"
            )
        await net.elect(WAIT)
        try:
            yield TokenNet(net, clients)
        finally:
            for c in clients.values():
                await c.aclose()
