"""Three members in this process, each running the multi-party component behind its own REST app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from tests.members import FAST, member_app, member_client

from charter.multiparty.component import MultipartyComponent, multiparty_component
from charter.multiparty.service import MessagingService
from charter.node.ledger_local import LocalLedgerNetwork

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
            apps[nid] = app = member_app(net, nid)
            clients[nid] = member_client(net, nid, app=app)
        mp = MpNet(net, clients, root, apps)
        await net.elect(WAIT)
        for nid in net.ids:
            await mp.until(lambda n=nid: mp.component(n).service.__self__.messaging.ready.is_set())
        try:
            yield mp
        finally:
            for c in clients.values():
                await c.aclose()
