"""Hot requests answered straight from ASGI, every other request through FastAPI.

FastAPI's per-request machinery (route matching over every route, dependency solving,
query and body parameter models, response encoding) costs more CPU than submitting a
message or reading a page of events does. A component's router can register a fast
handler for an exact method and path next to its FastAPI route; the handler answers the
requests it recognises completely, and declines anything unusual (an unexpected query
parameter, a body the model refuses), which then goes on to the FastAPI route as if the
fast handler had not looked. The FastAPI route stays the documented one (OpenAPI) and
the one whose answers, errors included, the fast handler must reproduce byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final
from urllib.parse import parse_qsl

from fastapi import APIRouter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "JSON_HEADERS",
    "FastHandler",
    "FastPaths",
    "FastRouter",
    "json_bytes",
    "query_pairs",
    "send_json",
    "send_json_bytes",
]

FastHandler = Callable[[Scope, Receive, Send], Awaitable[bool]]
"""Answers a request and returns True, or returns False having sent nothing."""

JSON_HEADERS: Final = [(b"content-type", b"application/json")]


class FastRouter(APIRouter):
    """An ``APIRouter`` that also carries fast handlers for some of its routes."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fast: dict[tuple[str, str], FastHandler] = {}

    def add_fast(self, method: str, path: str, handler: FastHandler) -> None:
        """``path`` as mounted (under ``/api/v1``): matched exactly, no parameters."""
        self.fast[(method, path)] = handler


class _Recorded:
    """A ``receive`` that keeps what it hands out, so a declined request can be replayed."""

    def __init__(self, receive: Receive) -> None:
        self.receive = receive
        self.seen: list[Message] = []

    async def __call__(self) -> Message:
        message = await self.receive()
        self.seen.append(message)
        return message

    def replay(self) -> Receive:
        pending = list(self.seen)

        async def receive() -> Message:
            return pending.pop(0) if pending else await self.receive()

        return receive


class FastPaths:
    """ASGI middleware dispatching exact (method, path) pairs to their fast handlers."""

    def __init__(self, app: ASGIApp, routes: Mapping[tuple[str, str], FastHandler]) -> None:
        self.app = app
        self.routes = dict(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = (
            self.routes.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        )
        if handler is None:
            await self.app(scope, receive, send)
            return
        recorded = _Recorded(receive)
        if not await handler(scope, recorded, send):
            await self.app(scope, recorded.replay(), send)


def query_pairs(scope: Scope) -> list[tuple[str, str]] | None:
    """The query string's pairs, or None if it is not well formed (FastAPI then decides)."""
    query: bytes = scope.get("query_string", b"")
    if not query:
        return []
    try:
        return parse_qsl(query.decode("latin-1"), keep_blank_values=True, strict_parsing=True)
    except ValueError:
        return None


def json_bytes(content: Any) -> bytes:
    """The bytes FastAPI's JSONResponse sends for ``content``."""
    return json.dumps(
        content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")


async def send_json_bytes(send: Send, status: int, body: bytes) -> None:
    """Answer JSON bytes as they are (a stored value, or ``json_bytes`` of one)."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*JSON_HEADERS, (b"content-length", str(len(body)).encode("ascii"))],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_json(send: Send, status: int, content: Any) -> None:
    await send_json_bytes(send, status, json_bytes(content))
