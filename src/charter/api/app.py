"""The node's REST API: ledger tables, transactions, receipts, status, health, metrics.

Table requests are answered by ``charter.api.tables`` (their values, checks and fast
way in); the routes here document them in OpenAPI and answer the unusual ones.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Query, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from charter.api.docs import OPENAPI_URL, install_docs
from charter.api.fastpath import FastPaths, FastRouter
from charter.api.info import NodeInfo
from charter.api.problems import Problem, install_problem_handlers, problem_response
from charter.api.tables import (
    ConsistencyParam,
    TablesApi,
    TablesFastPath,
    WaitParam,
    read_body,
)
from charter.ledger.engine import TxStatus
from charter.ledger.engine.engine import parse_tx_id
from charter.ledger.engine.errors import ReceiptUnavailableError
from charter.node.ledger_service import LedgerService
from charter.ops.logging import log_event
from charter.ops.metrics import CONTENT_TYPE, NodeMetrics
from charter.ops.probe import peer_ids

__all__ = ["DEFAULT_MAX_BODY", "DEFAULT_REQUEST_TIMEOUT", "create_app"]

DEFAULT_MAX_BODY = 1024 * 1024
"""Largest PUT body accepted, in bytes (413 beyond)."""
DEFAULT_REQUEST_TIMEOUT = 30.0
"""Longest a request may wait on the ledger before a 504."""

COSE = "application/cose"

WAIT_DOC = "accepted: applied at this node (status Pending); committed: covered by a signature"
CONSISTENCY_DOC = (
    "local: applied here; committed: as of the last signature; "
    "linearizable: after catching up with the leader's commit index"
)

_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
"""Probed every few seconds: their access lines are debug, not info."""

access_log = logging.getLogger("charter.api.access")
log = logging.getLogger("charter.api")


def create_app(
    service: LedgerService,
    info: NodeInfo,
    metrics: NodeMetrics,
    *,
    max_body: int = DEFAULT_MAX_BODY,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    routers: Sequence[APIRouter] = (),
) -> FastAPI:
    """The node's ASGI app; the caller serves it (uvicorn) in the service's event loop."""
    app = FastAPI(
        title=f"Charter node {info.name}",
        version=info.version,
        description="The REST API of one Charter node. Errors are application/problem+json.",
        docs_url=None,
        redoc_url=None,
        openapi_url=OPENAPI_URL,
        # Metrics are Prometheus (/metrics); probing for OpenTelemetry providers on
        # every request costs time on the write path for nothing.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_docs(app, app.title)
    install_problem_handlers(app)
    tables = TablesApi(service, metrics, max_body=max_body, request_timeout=request_timeout)
    app.add_middleware(TablesFastPath, tables=tables)
    fast = {k: h for r in routers if isinstance(r, FastRouter) for k, h in r.fast.items()}
    app.add_middleware(FastPaths, routes=fast)
    _install_access_log(app)  # added last: outermost, so it also sees the fast path

    # -- tables (answered by TablesFastPath unless the query string is unusual) ----------

    @app.put(
        "/api/v1/tables/{table}/{key:path}",
        tags=["tables"],
        summary="Write a JSON value (stored as canonical JSON bytes)",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {}}},
            }
        },
    )
    async def put_value(
        table: str,
        key: str,
        request: Request,
        wait: Annotated[WaitParam, Query(description=WAIT_DOC)] = "accepted",
    ) -> dict[str, str]:
        return await tables.put(
            table, key, await read_body(request.scope, request.receive, max_body), wait
        )

    @app.get(
        "/api/v1/tables/{table}/{key:path}",
        tags=["tables"],
        summary="Read the stored JSON value",
        responses={200: {"content": {"application/json": {}}}},
    )
    async def get_value(
        table: str,
        key: str,
        consistency: Annotated[ConsistencyParam, Query(description=CONSISTENCY_DOC)] = "committed",
    ) -> Response:
        return Response(await tables.get(table, key, consistency), media_type="application/json")

    @app.delete("/api/v1/tables/{table}/{key:path}", tags=["tables"], summary="Delete a key")
    async def delete_value(
        table: str,
        key: str,
        wait: Annotated[WaitParam, Query(description=WAIT_DOC)] = "accepted",
    ) -> dict[str, str]:
        return await tables.delete(table, key, wait)

    # -- transactions -------------------------------------------------------------------

    @app.get("/api/v1/tx/{tx_id}", tags=["transactions"], summary="Status of a transaction")
    async def tx_status(tx_id: str) -> dict[str, str]:
        _check_tx_id(tx_id)
        status = service.status(tx_id)
        answer = {"tx_id": tx_id, "status": status.value}
        if status is TxStatus.INVALID:
            reason = service.engine.invalid_reason(tx_id)
            if reason is not None:
                answer["reason"] = reason
        return answer

    def receipt_bytes(tx_id: str, fmt: Literal["json", "cose"]) -> bytes:
        _check_tx_id(tx_id)
        status = service.status(tx_id)
        if status is TxStatus.UNKNOWN:
            raise Problem(404, "api.not_found", f"transaction {tx_id} is unknown here")
        if status is not TxStatus.COMMITTED:
            raise Problem(
                409,
                "ledger.receipt.not_committed",
                f"transaction {tx_id} is {status.value}; receipts exist once it is Committed",
                extra={"tx_status": status.value},
            )
        try:
            return service.receipt(tx_id, fmt)
        except ReceiptUnavailableError as exc:
            raise Problem(410, exc.code, exc.message) from None

    @app.get(
        "/api/v1/tx/{tx_id}/receipt",
        tags=["transactions"],
        summary="JSON receipt of a Committed transaction",
        responses={200: {"content": {"application/json": {}}}},
    )
    async def receipt_json(tx_id: str) -> Response:
        return Response(receipt_bytes(tx_id, "json"), media_type="application/json")

    @app.get(
        "/api/v1/tx/{tx_id}/receipt.cose",
        tags=["transactions"],
        summary="COSE_Sign1 receipt of a Committed transaction",
        responses={200: {"content": {COSE: {}}}},
    )
    async def receipt_cose(tx_id: str) -> Response:
        return Response(receipt_bytes(tx_id, "cose"), media_type=COSE)

    # -- node ---------------------------------------------------------------------------

    @app.get("/api/v1/status", tags=["node"], summary="The node and its ledger at a glance")
    async def node_status() -> dict[str, Any]:
        s = service.summary()
        transport = service.member.transport
        peers = peer_ids(service)
        return {
            "name": info.name,
            "member": info.member,
            "node_id": info.node_id,
            "raft_id": info.raft_id,
            "api_url": info.api_url,
            "version": info.version,
            "role": s.role,
            "term": s.term,
            "leader": s.leader,
            "commit_index": s.commit_index,
            "applied_index": s.applied_index,
            "last_seqno": s.last_seqno,
            "signed_upto": s.signed_upto,
            "halted": s.halted,
            "divergence_alarms": s.alarms,
            "peers": peers,
            "connected_peers": [p for p in peers if transport.connected(p)],
        }

    @app.get("/healthz", tags=["operations"], summary="Liveness: 200 while the node runs")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="Readiness: 200 when part of a quorum and applying, else 503 with reasons",
    )
    async def readyz(request: Request) -> Response:
        readiness = metrics.readiness()
        if readiness.ready:
            return JSONResponse({"ready": True, "reasons": []})
        problem = Problem(
            503,
            "node.not_ready",
            "; ".join(readiness.reasons),
            headers={"Retry-After": "1"},
            extra={"ready": False, "reasons": readiness.reasons},
        )
        return problem_response(problem, request.url.path)

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics (text format)")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    from charter.ui import explorer_router  # here: the explorer is the layer above the API

    app.include_router(explorer_router(service, info, metrics))  # /, /explorer and its API
    for router in routers:  # the node's components: governance, messages, tokens
        app.include_router(router, prefix="/api/v1")
    return app


def _check_tx_id(tx_id: str) -> None:
    if parse_tx_id(tx_id) is None:
        raise Problem(
            400, "ledger.tx.invalid_id", f"{tx_id[:40]!r} is not a transaction id (view.seqno)"
        )


def _install_access_log(app: FastAPI) -> None:
    app.add_middleware(_AccessLog)


class _AccessLog:
    """One structured line per request, and a problem for any unhandled error.

    A plain ASGI middleware: Starlette's ``BaseHTTPMiddleware`` runs each request through
    memory streams and an extra task, which cost more than the write handler itself.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_and_note(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
            await send(message)

        path: str = scope["path"]
        method: str = scope["method"]
        try:
            await self.app(scope, receive, send_and_note)
        except Exception:
            log.exception("unhandled error in %s %s", method, path, extra={"event": "api.error"})
            if response_started:
                raise
            status = 500
            await problem_response(
                Problem(500, "api.internal", "internal error; see the node's log"), path
            )(scope, receive, send)
        level = logging.DEBUG if path in _QUIET_PATHS else logging.INFO
        if access_log.isEnabledFor(level):
            client = scope.get("client")
            log_event(
                access_log,
                level,
                "api.request",
                f"{method} {path} {status}",
                {
                    "method": method,
                    "path": path,
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                    "client": client[0] if client else None,
                },
            )
