"""Three in-process members with governance and tokens, each behind its own REST app
(built by ``create_app``, so the explorer is wired in as a node process has it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest_asyncio
from tests.members import FAST, member_client

from charter.crypto.keys import Ed25519PrivateKey
from charter.governance import state
from charter.governance.client import GovClient
from charter.governance.component import governance_component
from charter.node.ledger_local import LocalLedgerNetwork
from charter.node.ledger_service import LedgerService
from charter.tokens.component import tokens_component

WAIT = 15.0


@dataclass
class ExplorerNet:
    net: LocalLedgerNetwork
    keys: dict[str, Ed25519PrivateKey]
    http: dict[int, httpx.AsyncClient]
    gov: dict[int, GovClient]

    def service(self, nid: int) -> LedgerService:
        return self.net.service(nid)

    def name(self, nid: int) -> str:
        return self.net.members[nid].name


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def xnet() -> AsyncIterator[ExplorerNet]:
    keys = {f"member-{i}": Ed25519PrivateKey.generate() for i in (1, 2, 3)}
    settings = {"governance": {"members": {n: k.public_key for n, k in keys.items()}}}
    async with LocalLedgerNetwork(
        "memory",
        settings=FAST,
        components=[governance_component, tokens_component],
        component_settings=settings,
    ) as net:
        http: dict[int, httpx.AsyncClient] = {}
        for nid in net.ids:
            http[nid] = member_client(net, nid)
        await net.elect(WAIT)
        await net.until(lambda: all(state.bootstrapped(net.service(n).engine) for n in net.ids))
        try:
            yield ExplorerNet(net, keys, http, {n: GovClient(h) for n, h in http.items()})
        finally:
            for client in http.values():
                await client.aclose()
