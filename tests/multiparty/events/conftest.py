"""An events service on a real loopback server, and a webhook receiver to deliver to."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, Response

from charter.api.fastpath import FastPaths, FastRouter
from charter.api.problems import install_problem_handlers
from charter.multiparty.events import EventsService, EventsSettings
from charter.store import Store

WAIT = 20.0
"""Longest any test waits for a delivery to happen."""


@contextlib.asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app on 127.0.0.1 (a port the kernel picks) in this event loop."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)  # connections queue from here on: no need to wait for uvicorn
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_config=None, access_log=False, lifespan="off", ws="websockets-sansio"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        server.force_exit = True
        async with asyncio.timeout(10):
            await task
        sock.close()


def events_app(service: EventsService) -> FastAPI:
    """The events routes as a node serves them: fast handlers in front of FastAPI's."""
    app = FastAPI()
    install_problem_handlers(app)
    fast = {}
    for router in service.routers():
        app.include_router(router, prefix="/api/v1")
        if isinstance(router, FastRouter):
            fast.update(router.fast)
    app.add_middleware(FastPaths, routes=fast)
    return app


@dataclass
class Node:
    store: Store
    service: EventsService
    http: httpx.AsyncClient
    address: str

    @property
    def ws_url(self) -> str:
        return f"ws://{self.address}/api/v1/ws"

    async def subscription(self, name: str) -> dict[str, Any]:
        r = await self.http.get(f"/api/v1/subscriptions/{name}")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def wait_offset(self, name: str, offset: int) -> None:
        """Until the subscription's stored offset reaches ``offset`` (bounded)."""

        async def reached() -> bool:
            return int((await self.subscription(name))["offset"]) >= offset

        await eventually(reached)


async def eventually(check: Callable[[], Awaitable[bool]], within: float = WAIT) -> None:
    """Poll an API-visible condition until it holds; fail after ``within`` seconds."""
    async with asyncio.timeout(within):
        while True:
            if await check():
                return
            await asyncio.sleep(0.02)


@pytest.fixture
async def node(store: Store) -> AsyncIterator[Node]:
    """An ``EventsService`` with its delivery loops running, served on loopback."""
    service = EventsService(store, EventsSettings(poll_interval=2.0, ws_start_timeout=5.0))
    async with serve(events_app(service)) as address:
        runner = asyncio.create_task(service.run())
        try:
            async with httpx.AsyncClient(base_url=f"http://{address}", timeout=10) as http:
                yield Node(store, service, http, address)
        finally:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
            await service.close()


@dataclass
class Receiver:
    """A webhook endpoint whose answer the test controls."""

    url: str = ""
    mode: str = "ok"
    """ok: 200; fail: 500; hang: answer only after the sender gave up; 'fail:<ref>': 500
    for events whose reference is <ref>, 200 for the others."""
    attempts: list[dict[str, Any]] = field(default_factory=list)
    delivered: list[dict[str, Any]] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            body = await request.json()
            assert request.headers["x-charter-event-id"] == body["event"]["id"]
            mode = self.mode
            failing = mode == "fail" or (
                mode.startswith("fail:") and body["event"]["reference"] == mode[5:]
            )
            if mode == "hang":
                await asyncio.sleep(0.6)  # longer than the subscription's 0.2 s timeout
            async with self.changed:
                self.attempts.append(body)
                if not failing and mode != "hang":
                    self.delivered.append(body)
                self.changed.notify_all()
            if failing:
                return JSONResponse({"error": "not now"}, status_code=500)
            return JSONResponse({"ok": True})

        return app

    async def wait_for(self, predicate: Any) -> None:
        async with asyncio.timeout(WAIT), self.changed:
            await self.changed.wait_for(lambda: predicate(self))


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    async with serve(r.app()) as address:
        r.url = f"http://{address}/hook"
        yield r
