"""The explorer's routes: ``/`` redirects to ``/explorer``, which serves the page.

The page is static HTML, CSS and JavaScript modules shipped in this package and read
into memory once; everything it shows it fetches from this node's REST API and event
WebSocket. Its files are served with a content security policy that allows nothing
but this origin, so the page works offline and can load no third-party code.
"""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from charter.api.info import NodeInfo
from charter.api.problems import Problem
from charter.ledger.trust import NodeCert
from charter.node.ledger_service import LedgerService
from charter.ops.metrics import NodeMetrics
from charter.ui.endpoints import explorer_api_router
from charter.ui.network import ClientFactory, NetworkView
from charter.ui.recent import LedgerRecorder
from charter.ui.static_bundle import StaticBundle

__all__ = ["EXPLORER_URL", "SECURITY_HEADERS", "explorer_router", "static_router"]

EXPLORER_URL: Final = "/explorer"
INDEX: Final = "index.html"

SECURITY_HEADERS: Final[dict[str, str]] = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def static_router(bundle: StaticBundle | None = None) -> APIRouter:
    """The page and its files; needs nothing from the node."""
    files = bundle or StaticBundle.from_package()
    router = APIRouter(include_in_schema=False)

    def serve(path: str, request: Request) -> Response:
        found = files.get(path)
        if found is None:
            raise Problem(404, "ui.not_found", f"the explorer has no file {path[:80]!r}")
        headers = {**SECURITY_HEADERS, "ETag": found.etag}
        if request.headers.get("if-none-match") == found.etag:
            return Response(status_code=304, headers=headers)
        body = b"" if request.method == "HEAD" else found.body
        response = Response(body, media_type=found.content_type, headers=headers)
        if request.method == "HEAD":
            response.headers["content-length"] = str(len(found.body))
        return response

    @router.get("/")
    async def root() -> RedirectResponse:
        return RedirectResponse(EXPLORER_URL, status_code=307)

    @router.api_route(EXPLORER_URL, methods=["GET", "HEAD"])
    async def page(request: Request) -> Response:
        return serve(INDEX, request)

    @router.api_route(EXPLORER_URL + "/{path:path}", methods=["GET", "HEAD"])
    async def asset(path: str, request: Request) -> Response:
        return serve(path or INDEX, request)

    return router


def explorer_router(
    service: LedgerService,
    info: NodeInfo,
    metrics: NodeMetrics,
    *,
    client_factory: ClientFactory | None = None,
) -> APIRouter:
    """The page, its files and its read-only API, for ``create_app`` to include.

    Registers the recorder of recent transactions on ``service`` (it sees every
    transaction applied from now on).
    """
    signers = {
        NodeCert.from_x509(m.ledger_cert.x509).node_id: m.name
        for m in service.network.members.values()
    }
    recorder = LedgerRecorder(service.engine, signers=signers)
    service.add_listener(recorder)
    network = NetworkView(service, info, metrics, client_factory=client_factory)
    router = APIRouter()
    router.include_router(static_router())
    router.include_router(explorer_api_router(service, recorder=recorder, network=network))
    return router
