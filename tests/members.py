"""What in-process network tests share: quick ledger settings and each member's REST client.

A member's client talks to the app a node process would serve (``create_app`` with the
routers of that member's components), over ASGI, without a socket.
"""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from charter.api import NodeInfo, create_app
from charter.ledger.signatures import SignaturePolicy
from charter.ledger.trust import NodeCert
from charter.node.ledger_local import LocalLedgerNetwork
from charter.node.ledger_service import LedgerSettings
from charter.node.raft_transport import Backoff
from charter.ops import NodeMetrics

FAST = LedgerSettings(
    signature_policy=SignaturePolicy(every_tx=100, every_ms=20),
    submit_timeout=5.0,
    backoff=Backoff(base=0.01, cap=0.2),
)
"""Signatures every 20 ms and quick retries: in-process networks settle fast."""


def member_app(net: LocalLedgerNetwork, nid: int) -> FastAPI:
    """The REST app of member ``nid``'s node, with its components' routes."""
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
    return create_app(service, info, NodeMetrics(service), routers=routers)


def member_client(
    net: LocalLedgerNetwork, nid: int, *, app: FastAPI | None = None, timeout: float = 30.0
) -> httpx.AsyncClient:
    """An HTTP client of member ``nid``'s app (``member_app`` unless one is given)."""
    served = app if app is not None else member_app(net, nid)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=served),
        base_url=f"http://{net.members[nid].name}.test",
        timeout=timeout,
    )
