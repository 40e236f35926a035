"""Real ledger services (three members over the memory netlayer) behind the REST app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from charter.api import NodeInfo, create_app
from charter.ledger.signatures import SignaturePolicy
from charter.ledger.trust import NodeCert
from charter.node.ledger_local import LocalLedgerNetwork
from charter.node.ledger_service import LedgerSettings
from charter.node.raft_transport import Backoff
from charter.ops import NodeMetrics

FAST = LedgerSettings(
    signature_policy=SignaturePolicy(every_tx=100, every_ms=50),
    submit_timeout=5.0,
    backoff=Backoff(base=0.01, cap=0.2),
)
WAIT = 15.0
Serve = Callable[..., Awaitable[tuple[FastAPI, NodeMetrics, httpx.AsyncClient]]]


@dataclass
class Node:
    nid: int
    app: FastAPI
    metrics: NodeMetrics
    client: httpx.AsyncClient


@dataclass
class Cluster:
    net: LocalLedgerNetwork
    nodes: dict[int, Node]


def node_info(net: LocalLedgerNetwork, nid: int) -> NodeInfo:
    m = net.members[nid]
    return NodeInfo(
        name=f"node-{nid}",
        member=m.name,
        node_id=NodeCert.from_x509(m.ledger_cert.x509).node_id,
        raft_id=nid,
        api_url=f"http://node-{nid}.test",
        version="test",
    )


async def serve(
    net: LocalLedgerNetwork, nid: int, **options: float | int
) -> tuple[FastAPI, NodeMetrics, httpx.AsyncClient]:
    service = net.service(nid)
    metrics = NodeMetrics(service)
    app = create_app(service, node_info(net, nid), metrics, **options)  # type: ignore[arg-type]
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=f"http://node-{nid}.test"
    )
    return app, metrics, client


async def start_cluster(settings: LedgerSettings) -> AsyncIterator[Cluster]:
    async with LocalLedgerNetwork("memory", settings=settings) as net:
        nodes: dict[int, Node] = {}
        for nid in net.ids:
            app, metrics, client = await serve(net, nid)
            nodes[nid] = Node(nid, app, metrics, client)
        await net.elect(WAIT)
        try:
            yield Cluster(net, nodes)
        finally:
            for node in nodes.values():
                await node.client.aclose()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster() -> AsyncIterator[Cluster]:
    async for c in start_cluster(FAST):
        yield c


@pytest.fixture(scope="session")
def serve_node() -> Serve:
    """Another app (with its own options) on one member's service."""
    return serve


@pytest.fixture(scope="session")
def cluster_with() -> Callable[[LedgerSettings], AsyncIterator[Cluster]]:
    return start_cluster
