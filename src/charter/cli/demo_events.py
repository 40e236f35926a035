"""The demo's events act: each member subscribes, messages flow, every node streams its events.

``events_act(console, base_urls, send, count=N)`` creates a durable WebSocket
subscription on every node, calls ``send()`` (the act that produces messages), then
connects to each node's ``/api/v1/ws``, receives and acknowledges ``count`` events per
node and checks that each node's stored offset moved past them; finally it removes the
subscriptions. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import httpx
from rich.console import Console
from rich.markup import escape
from websockets.asyncio.client import connect

from charter.cli.demo_net import DemoError

__all__ = [
    "SUBSCRIPTION",
    "create_subscriptions",
    "delete_subscriptions",
    "events_act",
    "stream_events",
]

SUBSCRIPTION: Final = "demo-events"
EVENTS_TIMEOUT: Final = 20.0
HTTP_TIMEOUT: Final = 10.0


def _ws_url(base_url: str) -> str:
    scheme, rest = base_url.split("://", 1)
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest.rstrip('/')}/api/v1/ws"


async def create_subscriptions(
    console: Console,
    base_urls: Mapping[str, str],
    *,
    name: str = SUBSCRIPTION,
    types: Sequence[str] = ("message_confirmed",),
    topic: str | None = None,
) -> None:
    """A durable subscription on every node, starting at its newest event."""
    flt: dict[str, Any] = {"types": list(types)}
    if topic is not None:
        flt["topics"] = [topic]
    body = {"name": name, "transport": "websocket", "first_event": "newest", "filter": flt}
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
        for node, url in base_urls.items():
            r = await http.post(f"{url}/api/v1/subscriptions", json=body)
            if r.status_code == 409:
                await http.delete(f"{url}/api/v1/subscriptions/{name}")
                r = await http.post(f"{url}/api/v1/subscriptions", json=body)
            if r.status_code != 201:
                raise DemoError(f"{node}: subscription refused: {r.text}")
            console.print(
                f"ok {escape(node)}: subscription {name} from offset {r.json()['offset']}"
            )


async def _stream_one(
    console: Console, node: str, base_url: str, name: str, count: int
) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    async with connect(_ws_url(base_url)) as ws:
        await ws.send(json.dumps({"type": "start", "name": name}))
        started = json.loads(await ws.recv())
        if started.get("type") != "started":
            raise DemoError(f"{node}: {started.get('detail', started)}")
        while len(got) < count:
            message = json.loads(await ws.recv())
            if message.get("type") != "event":
                raise DemoError(f"{node}: {message.get('detail', message)}")
            event = message["event"]
            got.append(event)
            await ws.send(json.dumps({"type": "ack", "id": event["id"]}))
            console.print(
                f"ok {escape(node)}: event {event['offset']} {event['type']}"
                f" topic={escape(str(event.get('topic')))} author={escape(str(event.get('author')))}"
            )
    return got


async def stream_events(
    console: Console,
    base_urls: Mapping[str, str],
    *,
    count: int,
    name: str = SUBSCRIPTION,
    within: float = EVENTS_TIMEOUT,
) -> dict[str, list[dict[str, Any]]]:
    """Receive and acknowledge ``count`` events from every node, then check the offsets."""
    out: dict[str, list[dict[str, Any]]] = {}
    try:
        async with asyncio.timeout(within), asyncio.TaskGroup() as tg:
            tasks = {
                node: tg.create_task(_stream_one(console, node, url, name, count))
                for node, url in base_urls.items()
            }
    except TimeoutError:
        raise DemoError(f"fewer than {count} events per node within {within:g} s") from None
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
        for node, task in tasks.items():
            out[node] = events = task.result()
            last = int(events[-1]["offset"]) if events else 0
            async with asyncio.timeout(within):
                while True:
                    r = await http.get(f"{base_urls[node]}/api/v1/subscriptions/{name}")
                    if r.status_code == 200 and int(r.json()["offset"]) >= last:
                        break
                    await asyncio.sleep(0.05)  # the stored offset follows the acks
            console.print(f"ok {escape(node)}: {len(events)} events acknowledged, offset {last}")
    return out


async def delete_subscriptions(
    console: Console, base_urls: Mapping[str, str], *, name: str = SUBSCRIPTION
) -> None:
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
        for url in base_urls.values():
            await http.delete(f"{url}/api/v1/subscriptions/{name}")
    console.print(f"ok subscriptions {name} removed")


def events_act(
    console: Console,
    base_urls: Mapping[str, str],
    send: Callable[[], object],
    *,
    count: int,
    topic: str | None = None,
    within: float = EVENTS_TIMEOUT,
) -> dict[str, list[dict[str, Any]]]:
    """Subscribe on every node, ``send()``, stream ``count`` events per node, clean up.

    ``base_urls`` maps a node's name to its API base URL (``http://127.0.0.1:8101``);
    ``send`` is synchronous and runs outside any event loop.
    """
    asyncio.run(create_subscriptions(console, base_urls, topic=topic))
    try:
        send()
        return asyncio.run(stream_events(console, base_urls, count=count, within=within))
    finally:
        asyncio.run(delete_subscriptions(console, base_urls))
