"""Fast handlers: what they answer never reaches FastAPI, what they decline reaches it whole."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from starlette.types import Receive, Scope, Send

from charter.api.fastpath import FastPaths, FastRouter, json_bytes, query_pairs, send_json


def _app(seen: list[str]) -> FastAPI:
    router = FastRouter()

    @router.post("/echo")
    async def echo(request: Request) -> dict[str, Any]:
        seen.append("fastapi")
        return {"via": "fastapi", "body": (await request.body()).decode()}

    async def fast_echo(scope: Scope, receive: Receive, send: Send) -> bool:
        seen.append("fast")
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        if query_pairs(scope) != []:
            return False  # declined after reading the whole body
        await send_json(send, 200, {"via": "fast", "body": b"".join(chunks).decode()})
        return True

    router.add_fast("POST", "/api/v1/echo", fast_echo)
    app = FastAPI()
    app.include_router(router, prefix="/api/v1")
    app.add_middleware(FastPaths, routes=router.fast)
    return app


@pytest.fixture
async def client_seen() -> AsyncIterator[tuple[httpx.AsyncClient, list[str]]]:
    seen: list[str] = []
    transport = httpx.ASGITransport(app=_app(seen))
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
        yield client, seen


async def test_an_answered_request_never_reaches_fastapi(
    client_seen: tuple[httpx.AsyncClient, list[str]],
) -> None:
    client, seen = client_seen
    r = await client.post("/api/v1/echo", content=b"hello")
    assert r.json() == {"via": "fast", "body": "hello"}
    assert seen == ["fast"]


async def test_a_declined_request_reaches_fastapi_with_its_whole_body(
    client_seen: tuple[httpx.AsyncClient, list[str]],
) -> None:
    client, seen = client_seen
    r = await client.post("/api/v1/echo?x=1", content=b"x" * 100_000)
    assert r.json() == {"via": "fastapi", "body": "x" * 100_000}
    assert seen == ["fast", "fastapi"]


async def test_other_methods_and_paths_go_straight_to_fastapi(
    client_seen: tuple[httpx.AsyncClient, list[str]],
) -> None:
    client, seen = client_seen
    assert (await client.get("/api/v1/echo")).status_code == 405
    assert (await client.post("/api/v1/echo/", content=b"")).status_code in (307, 404)
    assert "fast" not in seen


def test_query_pairs_refuses_what_is_not_well_formed() -> None:
    assert query_pairs({"query_string": b""}) == []
    assert query_pairs({"query_string": b"a=1&b=%C3%A9"}) == [("a", "1"), ("b", "é")]
    assert query_pairs({"query_string": b"a=1&&b"}) is None


def test_json_bytes_are_fastapis() -> None:
    from starlette.responses import JSONResponse

    content = {"é": [1, 2.5, None, True], "k": "v"}
    assert json_bytes(content) == JSONResponse(content).body
