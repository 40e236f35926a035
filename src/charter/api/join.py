"""REST for joining: a new node's request is relayed here; its state is read back here.

- ``POST /api/v1/gov/join`` with ``{"request": "<base64 of the signed join request>"}``
  (``charter.governance.join``): this node (a trusted one) relays it as the governance
  join command and answers once the ledger decided: ``202`` pending, or ``403``
  ``gov.join.refused`` with the handler's reason (e.g. ``gov.measurement: ...``).
- ``GET /api/v1/gov/join/{node}``: ``pending``, ``trusted`` (with the trusted peers and
  the Raft configuration the node needs to start), ``retired``, or ``refused`` with the
  reason if this node relayed a request that was refused; 404 otherwise.
- ``GET /api/v1/membership``: the Raft configuration, this node's part in it, the
  learners' progress (on the leader), for operators and the joiner's progress display.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from pydantic import BaseModel

from charter.api.problems import Problem
from charter.errors import CharterError
from charter.governance.join import SignedJoinRequest, join_command
from charter.ledger.engine import TxStatus
from charter.ledger.engine.nodes import NodeStatus

if TYPE_CHECKING:
    from charter.node.ledger_service import LedgerService
    from charter.node.membership import MembershipComponent

__all__ = ["JoinBody", "join_router"]

MAX_REQUEST_CHARS = 64 * 1024


class JoinBody(BaseModel):
    request: str
    """Base64 (standard alphabet) of ``SignedJoinRequest.encode()``."""


def join_router(component: MembershipComponent) -> APIRouter:
    router = APIRouter(tags=["join"])

    def service() -> LedgerService:
        s = component.service
        if s is None:
            raise Problem(503, "node.ledger.not_available", "the node is starting")
        return s

    @router.post("/gov/join", status_code=202)
    async def relay_join(body: JoinBody) -> dict[str, Any]:
        """Relay a joining node's signed request to the ledger; answers the decision."""
        svc = service()
        if len(body.request) > MAX_REQUEST_CHARS:
            raise Problem(413, "gov.join.malformed", "the join request is too large")
        try:
            data = base64.b64decode(body.request, validate=True)
            signed = SignedJoinRequest.decode(data)
            request = signed.verify()
        except (binascii.Error, ValueError):
            raise Problem(400, "gov.join.malformed", "request is not base64") from None
        except CharterError as exc:
            raise Problem(400, "gov.join.malformed", exc.message) from None
        if request.network_id != svc.network.raft.network_id:
            raise Problem(
                403,
                "gov.join.refused",
                "the request is for another network",
                extra={"node": request.name},
            )
        existing = svc.engine.directory().get(request.name)
        if existing is not None:
            return {"node": request.name, "status": existing.status.value, "tx_id": None}
        ticket = await svc.submit(join_command(signed), wait="committed")
        component._relayed[request.name] = ticket.tx_id
        if ticket.status is TxStatus.INVALID:
            raise Problem(
                403,
                "gov.join.refused",
                ticket.reason or "refused",
                extra={"node": request.name, "tx_id": ticket.tx_id},
            )
        entry = svc.engine.directory().get(request.name)
        status = entry.status.value if entry is not None else NodeStatus.PENDING.value
        return {"node": request.name, "status": status, "tx_id": ticket.tx_id}

    @router.get("/gov/join/{node}")
    async def join_state(node: str) -> dict[str, Any]:
        """Where a joining node stands, and once trusted what it needs to start."""
        svc = service()
        entry = svc.engine.directory().get(node)
        if entry is None:
            tx_id = component._relayed.get(node)
            if tx_id is not None and svc.engine.status(tx_id) is TxStatus.INVALID:
                return {
                    "node": node,
                    "status": "refused",
                    "reason": svc.engine.invalid_reason(tx_id),
                    "tx_id": tx_id,
                }
            raise Problem(404, "gov.join.not_found", f"no join request of node {node!r} is known")
        answer: dict[str, Any] = {"node": node, "status": entry.status.value}
        if entry.status is NodeStatus.TRUSTED and component.watcher is not None:
            view = component.watcher.describe()
            answer["peers"] = [
                {
                    "name": row["name"],
                    "identity": row["identity"],
                    "host": row["location"]["host"],
                    "port": int(row["location"]["port"]),
                    "api_url": row["api_url"],
                }
                for row in view["nodes"]
                if row["status"] == NodeStatus.TRUSTED.value and row["location"] is not None
            ]
            answer["raft"] = {
                "voters": view["voters"],
                "learners": view["learners"],
                "leader": view["leader"],
                "commit_index": view["commit_index"],
            }
        return answer

    @router.get("/membership")
    async def membership() -> dict[str, Any]:
        """The Raft configuration and this node's part in it."""
        service()
        if component.watcher is None:
            raise Problem(503, "node.ledger.not_available", "the node is starting")
        return component.watcher.describe()

    return router
