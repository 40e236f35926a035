"""Three members in this process (memory netlayer), each running the tokens component
behind its own REST app, as a node process assembles it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest_asyncio
from tests.members import FAST, member_client

from charter.node.ledger_local import LocalLedgerNetwork
from charter.node.ledger_service import LedgerService
from charter.tokens.component import tokens_component

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
            clients[nid] = member_client(net, nid)
        await net.elect(WAIT)
        try:
            yield TokenNet(net, clients)
        finally:
            for c in clients.values():
                await c.aclose()
