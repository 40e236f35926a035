"""The demo's messages act: a broadcast to all, a private exchange with a blob, an outsider.

``messages_act(console, base_urls)`` takes member name -> API base URL of running stack
nodes (at least three; the first three in name order play A, B and C) and shows:

1. A broadcasts a notice; every node streams the ``message_confirmed`` event live over
   its WebSocket subscription (``charter.cli.demo_events``);
2. A uploads a blob and sends it privately to B with a JSON value; A and B stream the
   event live, B downloads the blob and it matches;
3. C has neither the message nor the blob, yet its ledger holds the pin transaction
   (same transaction id, Committed), which names no topic, group or data;
4. every node released the broadcast at the same ledger place.

Every wait is bounded; each step prints one ``ok`` line. Raises ``DemoError`` on failure.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any, Final

import httpx
from rich.console import Console
from rich.markup import escape
from websockets.asyncio.client import connect

from charter.cli.demo_events import create_subscriptions, delete_subscriptions
from charter.cli.demo_net import DemoError

__all__ = ["messages_act"]

HTTP_TIMEOUT: Final = 30.0
WAIT_S: Final = 20.0
NEWS: Final = "demo-news"
DEAL: Final = "demo-deal"
SUB_NEWS: Final = "demo-messages-news"
SUB_DEAL: Final = "demo-messages-deal"


def _ok(r: httpx.Response, what: str, *codes: int) -> dict[str, Any]:
    if r.status_code not in (codes or (200,)):
        raise DemoError(f"{what}: HTTP {r.status_code} {r.text[:300]}")
    body: dict[str, Any] = r.json()
    return body


def _ws_url(base_url: str) -> str:
    scheme, rest = base_url.split("://", 1)
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest.rstrip('/')}/api/v1/ws"


async def _stream_one(
    console: Console, http: httpx.AsyncClient, node: str, url: str, name: str, count: int
) -> None:
    """Receive and acknowledge ``count`` events live; keep the socket open until the
    node has stored the acknowledged offset."""
    async with connect(_ws_url(url)) as ws:
        await ws.send(json.dumps({"type": "start", "name": name}))
        started = json.loads(await ws.recv())
        if started.get("type") != "started":
            raise DemoError(f"{node}: {started.get('detail', started)}")
        last = 0
        for _ in range(count):
            message = json.loads(await ws.recv())
            if message.get("type") != "event":
                raise DemoError(f"{node}: {message.get('detail', message)}")
            event = message["event"]
            await ws.send(json.dumps({"type": "ack", "id": event["id"]}))
            last = int(event["offset"])
            console.print(
                f"ok {escape(node)}: live event {event['offset']} {event['type']}"
                f" topic={escape(str(event.get('topic')))}"
                f" author={escape(str(event.get('author')))}"
            )
        while True:
            r = await http.get(f"{url}/api/v1/subscriptions/{name}")
            if r.status_code == 200 and int(r.json()["offset"]) >= last:
                return
            await asyncio.sleep(0.05)  # the stored offset follows the acks


async def _stream(
    console: Console, http: httpx.AsyncClient, urls: Mapping[str, str], name: str, count: int
) -> None:
    try:
        async with asyncio.timeout(WAIT_S), asyncio.TaskGroup() as tg:
            for node, url in urls.items():
                tg.create_task(_stream_one(console, http, node, url, name, count))
    except TimeoutError:
        raise DemoError(
            f"fewer than {count} acknowledged events per node in {WAIT_S:g} s"
        ) from None


async def _confirmed(http: httpx.AsyncClient, url: str, mid: str) -> dict[str, Any]:
    """The message once confirmed at ``url`` (bounded)."""
    async with asyncio.timeout(WAIT_S):
        while True:
            r = await http.get(f"{url}/api/v1/messages/{mid}", params={"with_data": "true"})
            if r.status_code == 200 and r.json()["state"] in ("confirmed", "failed"):
                body: dict[str, Any] = r.json()
                if body["state"] != "confirmed":
                    raise DemoError(f"message {mid} failed: {body.get('reason')}")
                return body
            await asyncio.sleep(0.05)  # polling a remote node's REST API


async def _act(console: Console, urls: Mapping[str, str]) -> None:
    names = sorted(urls)
    if len(names) < 3:
        raise DemoError("the messages act needs three members")
    a, b, c = names[:3]
    trio = {n: urls[n] for n in (a, b, c)}
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
        # 1. broadcast, streamed live on every node
        await create_subscriptions(console, trio, name=SUB_NEWS, topic=NEWS)
        try:
            r = await http.post(
                f"{urls[a]}/api/v1/messages/broadcast",
                params={"wait": "confirmed"},
                json={
                    "header": {"topic": NEWS, "tag": "notice"},
                    "data": [{"value": {"text": f"{a} opens the season"}}],
                    "idempotency_key": f"demo-news-{os.urandom(4).hex()}",
                },
            )
            news = _ok(r, "broadcast", 200)
            console.print(
                f"ok {escape(a)} broadcast {news['id'][:8]} pinned at ledger seqno "
                f"{news['pin']['seqno']}"
            )
            await _stream(console, http, trio, SUB_NEWS, 1)
        finally:
            await delete_subscriptions(console, trio, name=SUB_NEWS)
        places = set()
        for n in (a, b, c):
            got = await _confirmed(http, urls[n], news["id"])
            places.add(got["pin"]["seqno"])
        if len(places) != 1:
            raise DemoError(f"nodes disagree on the broadcast's place: {places}")
        console.print(f"ok all three nodes released the broadcast at seqno {places.pop()}")

        # 2. private exchange with a blob, A -> B
        pair = {n: urls[n] for n in (a, b)}
        blob = os.urandom(256 * 1024)
        up = _ok(
            await http.post(
                f"{urls[a]}/api/v1/data/blob", params={"name": "contract.pdf"}, content=blob
            ),
            "blob upload",
            201,
        )
        console.print(
            f"ok {escape(a)} uploaded a {len(blob) // 1024} KiB blob {up['blob']['hash'][:12]}"
        )
        await create_subscriptions(console, pair, name=SUB_DEAL, topic=DEAL)
        try:
            r = await http.post(
                f"{urls[a]}/api/v1/messages/private",
                params={"wait": "confirmed"},
                json={
                    "header": {"topic": DEAL},
                    "group": {"members": [b]},
                    "data": [{"value": {"price": "1200.00", "currency": "EUR"}}, {"id": up["id"]}],
                },
            )
            deal = _ok(r, "private message", 200)
            console.print(f"ok {escape(a)} sent {deal['id'][:8]} privately to {escape(b)}")
            await _stream(console, http, pair, SUB_DEAL, 1)
        finally:
            await delete_subscriptions(console, pair, name=SUB_DEAL)
        at_b = await _confirmed(http, urls[b], deal["id"])
        if at_b["data"][0].get("value") != {"price": "1200.00", "currency": "EUR"}:
            raise DemoError(f"{b} holds other data: {at_b['data']}")
        dl = await http.get(f"{urls[b]}/api/v1/data/{up['id']}/blob")
        if dl.status_code != 200 or hashlib.sha256(dl.content).hexdigest() != up["blob"]["hash"]:
            raise DemoError(f"{b} could not serve the blob (HTTP {dl.status_code})")
        console.print(f"ok {escape(b)} holds the message and the blob (SHA-256 verified)")

        # 3. the outsider has the pin only
        if (await http.get(f"{urls[c]}/api/v1/messages/{deal['id']}")).status_code != 404:
            raise DemoError(f"{c} knows the private message")
        if (await http.get(f"{urls[c]}/api/v1/data/{up['id']}")).status_code != 404:
            raise DemoError(f"{c} knows the blob's data id")
        listed = _ok(await http.get(f"{urls[c]}/api/v1/messages", params={"topic": DEAL}), "list")
        if listed["items"]:
            raise DemoError(f"{c} lists messages of the private topic")
        tx_id = deal["pin"]["tx_id"]
        async with asyncio.timeout(WAIT_S):
            while True:
                st = await http.get(f"{urls[c]}/api/v1/tx/{tx_id}")
                if st.status_code == 200 and st.json().get("status") == "Committed":
                    break
                await asyncio.sleep(0.05)  # polling a remote node's REST API
        console.print(
            f"ok {escape(c)} has no message, data or blob, but its ledger holds the pin "
            f"transaction {tx_id} (Committed)"
        )


def messages_act(console: Console, base_urls: Mapping[str, str]) -> None:
    """Run the act against running stack nodes (synchronous; owns its event loop)."""
    asyncio.run(_act(console, base_urls))
