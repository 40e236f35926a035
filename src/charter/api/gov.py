"""REST routes of governance: ``/api/v1/gov/...`` (docs/governance.md).

Writes carry a member's signed request, made and signed by the client (``charter gov``
or any client holding the member key): ``{"request": "<base64 of the signed request's
canonical Syrup bytes>"}`` (``charter.governance.requests``). This node checks what it
can early (well-formed, the right kind for the route, an active member, the signature,
created within the request window of this node's clock), then submits the request as
a ``gov`` command; the handler decides it on every node. ``?wait=committed`` answers
once a signature covers the transaction, with the proposal's state then.

A request the handler refuses answers problem+json whose ``code`` is the rule
(``gov.signature``, ``gov.replay``, ``gov.stale``, ``gov.member``, ...) with the
transaction's ``tx_id`` and ``reason``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from charter.api.problems import Problem
from charter.errors import CharterError
from charter.governance import actions as acts
from charter.governance import state
from charter.governance.audit import GOV_TABLES
from charter.governance.errors import GovernanceError
from charter.governance.model import Proposal
from charter.governance.requests import Ballot, Payload, Propose, SignedRequest, Withdraw
from charter.ledger.engine import TxStatus

if TYPE_CHECKING:
    from charter.governance.component import GovernanceComponent

__all__ = ["RequestBody", "gov_router", "proposal_json"]

Wait = Literal["accepted", "committed"]
WAIT_DOC = "accepted: applied at this node (Pending); committed: covered by a signature"
MAX_REQUEST_CHARS = 2 * 1024 * 1024
REQUEST_TIMEOUT = 30.0

_STATUS_BY_RULE = {
    "gov.format": 400,
    "gov.network": 400,
    "gov.stale": 400,
    "gov.signature": 403,
    "gov.member": 403,
    "gov.withdraw": 403,
    "gov.proposal.unknown": 404,
    "gov.replay": 409,
    "gov.proposal.closed": 409,
    "gov.ballot.twice": 409,
    "gov.bootstrap": 503,
}


class RequestBody(BaseModel):
    request: str
    """Base64 (standard alphabet) of ``SignedRequest.encode()``."""


def proposal_json(p: Proposal) -> dict[str, Any]:
    return {
        "id": p.id,
        "proposer": p.proposer,
        "title": p.title,
        "actions": [acts.to_json(a) for a in p.actions],
        "ballots": {m: ("for" if v else "against") for m, v in sorted(p.ballots.items())},
        "state": p.state,
        "created_ms": p.created_ms,
        "decided_tx": p.decided_tx or None,
        "reason": p.reason or None,
    }


def _status(rule: str) -> int:
    if rule in _STATUS_BY_RULE:
        return _STATUS_BY_RULE[rule]
    return 422 if rule.startswith("gov.") else 409


def gov_router(component: GovernanceComponent) -> APIRouter:
    router = APIRouter(prefix="/gov", tags=["governance"])

    def view() -> Any:
        return component.service.engine

    def parse(body: RequestBody, kind: type[Any]) -> SignedRequest:
        if len(body.request) > MAX_REQUEST_CHARS:
            raise Problem(413, "gov.request.size", "the signed request is too large")
        try:
            raw = base64.b64decode(body.request, validate=True)
            signed = SignedRequest.decode(raw)
            request = signed.request
        except (binascii.Error, ValueError):
            raise Problem(400, "gov.format", "request: not base64") from None
        except GovernanceError as exc:
            raise Problem(400, "gov.format", exc.message) from None
        if not isinstance(request.payload, kind):
            raise Problem(400, "gov.format", f"this route takes a {kind.__name__.lower()}")
        engine = view()
        genesis = component.genesis
        member = state.member(engine, request.member, genesis)
        if member is None or not member.active:
            raise Problem(403, "gov.member", f"no active member {request.member!r}")
        try:
            signed.verify(member.public_key)
        except GovernanceError as exc:
            raise Problem(403, "gov.signature", exc.message) from None
        window = state.constitution(engine, genesis).request_window_ms
        skew = abs(int(time.time() * 1000) - request.created_ms)
        if skew > window:
            raise Problem(
                400,
                "gov.stale",
                f"the request was created {skew} ms from this node's clock; the window is "
                f"{window} ms",
            )
        return signed

    async def submit(signed: SignedRequest, wait: Wait, pid: str | None) -> dict[str, Any]:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                await component.ensure_bootstrapped()
                ticket = await component.service.submit(signed.command(), wait=wait)
        except TimeoutError:
            raise Problem(504, "api.timeout", "the ledger did not answer in time") from None
        if ticket.status is TxStatus.INVALID:
            reason = ticket.reason or "refused"
            rule = reason.split(":", 1)[0]
            raise Problem(
                _status(rule),
                rule,
                reason,
                extra={"tx_id": ticket.tx_id, "tx_status": ticket.status.value, "reason": reason},
            )
        answer: dict[str, Any] = {"tx_id": ticket.tx_id, "status": ticket.status.value}
        proposal = state.proposal(view(), pid or ticket.tx_id)
        if proposal is not None:
            answer["proposal"] = proposal_json(proposal)
        return answer

    @router.post("/proposals", summary="Propose actions (a member's signed request)")
    async def propose(
        body: RequestBody, wait: Annotated[Wait, Query(description=WAIT_DOC)] = "accepted"
    ) -> dict[str, Any]:
        return await submit(parse(body, Propose), wait, None)

    @router.post("/proposals/{pid}/ballots", summary="Vote for or against a proposal")
    async def ballot(
        pid: str,
        body: RequestBody,
        wait: Annotated[Wait, Query(description=WAIT_DOC)] = "accepted",
    ) -> dict[str, Any]:
        signed = parse(body, Ballot)
        _same_proposal(signed.request.payload, pid)
        return await submit(signed, wait, pid)

    @router.post("/proposals/{pid}/withdraw", summary="Withdraw one's own proposal")
    async def withdraw(
        pid: str,
        body: RequestBody,
        wait: Annotated[Wait, Query(description=WAIT_DOC)] = "accepted",
    ) -> dict[str, Any]:
        signed = parse(body, Withdraw)
        _same_proposal(signed.request.payload, pid)
        return await submit(signed, wait, pid)

    @router.get("/proposals", summary="Proposals in log order")
    async def list_proposals(
        state_filter: Annotated[str | None, Query(alias="state")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        after: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        items = state.proposals(view(), state=state_filter)
        page = items[after : after + limit]
        return {"items": [proposal_json(p) for p in page], "total": len(items)}

    @router.get("/proposals/{pid}", summary="One proposal")
    async def get_proposal(pid: str) -> dict[str, Any]:
        p = _read(lambda: state.proposal(view(), pid))
        if p is None:
            raise Problem(404, "gov.proposal.not_found", f"no proposal {pid!r}")
        return proposal_json(p)

    @router.get("/constitution", summary="The rules in force, and the network they govern")
    async def get_constitution() -> dict[str, Any]:
        engine = view()
        genesis = component.genesis
        network = state.network_id(engine) or (genesis.network_id if genesis else None)
        return {
            **state.constitution(engine, genesis).to_json(),
            "network_id": network.hex() if network is not None else None,
            "bootstrapped": state.bootstrapped(engine),
            "ledger_ms": state.ledger_ms(engine),
        }

    @router.get("/members", summary="Members, removed ones included")
    async def get_members() -> dict[str, Any]:
        items = state.members(view(), component.genesis)
        return {"items": [m.to_json() for m in items]}

    @router.get("/nodes", summary="Nodes governance knows, with their status")
    async def get_nodes() -> dict[str, Any]:
        items = state.nodes(view(), component.genesis)
        return {"items": [n.to_json() for n in items]}

    @router.get("/export", summary="Every governance table, for an independent audit")
    async def export() -> dict[str, Any]:
        engine = view()
        tables = {
            table: {k: base64.b64encode(v).decode("ascii") for k, v in engine.items(table)}
            for table in GOV_TABLES
        }
        return {"tables": tables}

    @router.get("/users", summary="Members' application users and their roles")
    async def get_users() -> dict[str, Any]:
        items = state.users(view(), component.genesis)
        return {"items": [u.to_json() for u in items]}

    return router


def _same_proposal(payload: Payload, pid: str) -> None:
    target = payload.proposal_id if isinstance(payload, (Ballot, Withdraw)) else ""
    if target != pid:
        raise Problem(400, "gov.format", f"the signed request is about proposal {target!r}")


def _read(fn: Any) -> Any:
    try:
        return fn()
    except CharterError as exc:
        raise Problem(500, exc.code, exc.message) from None
