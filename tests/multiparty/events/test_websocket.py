"""WebSocket delivery: acks, redelivery, resume after a disconnect without loss, takeover."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from charter.store.events import NewEvent, append_events

from .conftest import WAIT, Node

EventMsg = dict[str, Any]


async def _append(node: Node, n: int, *, start: int = 1, type: str = "message_confirmed") -> None:
    async with node.store.transaction() as s:
        await append_events(
            s, [NewEvent(type, reference=f"m{i}", topic="t") for i in range(start, start + n)]
        )


async def _recv(ws: ClientConnection, within: float = WAIT) -> dict[str, Any]:
    async with asyncio.timeout(within):
        message: dict[str, Any] = json.loads(await ws.recv())
    return message


async def _start(ws: ClientConnection, **start: Any) -> dict[str, Any]:
    await ws.send(json.dumps({"type": "start", **start}))
    return await _recv(ws)


async def _events(ws: ClientConnection, n: int) -> list[EventMsg]:
    out = []
    for _ in range(n):
        message = await _recv(ws)
        assert message["type"] == "event", message
        event = message["event"]
        assert isinstance(event["offset"], str)  # a decimal string, like all big numbers
        out.append({**event, "offset": int(event["offset"])})
    return out


async def _ack(ws: ClientConnection, *events: EventMsg) -> None:
    for e in events:
        await ws.send(json.dumps({"type": "ack", "id": e["id"]}))


async def _subscribe(node: Node, name: str, **extra: Any) -> None:
    body = {"name": name, "transport": "websocket", "first_event": "oldest", **extra}
    r = await node.http.post("/api/v1/subscriptions", json=body)
    assert r.status_code == 201, r.text


async def test_a_client_that_disconnects_mid_stream_resumes_without_loss(node: Node) -> None:
    await _subscribe(node, "app", read_ahead=5)
    await _append(node, 20)
    acked: dict[str, int] = {}

    async with connect(node.ws_url) as ws:
        assert await _start(ws, name="app") == {
            "type": "started",
            "subscription": "app",
            "offset": "0",
        }
        first = await _events(ws, 5)  # the read-ahead window: no more until acks come
        assert [e["offset"] for e in first] == [1, 2, 3, 4, 5]
        await _ack(ws, *first)
        more = await _events(ws, 5)
        assert [e["offset"] for e in more] == [6, 7, 8, 9, 10]
        await _ack(ws, more[0], more[1], more[3])  # 6, 7 and 9: 8 stays unacknowledged
        acked.update({e["id"]: e["offset"] for e in [*first, more[0], more[1], more[3]]})
        await node.wait_offset("app", 7)
        ws.transport.abort()  # gone without a close handshake, mid-stream

    await _append(node, 5, start=21)
    assert (await node.subscription("app"))["offset"] == "7"  # never past the lowest unacked

    async with connect(node.ws_url) as ws:
        started = await _start(ws, name="app")
        assert started["offset"] == "7"
        while len(set(acked.values())) < 25:
            (event,) = await _events(ws, 1)
            acked[event["id"]] = event["offset"]
            await _ack(ws, event)
        await node.wait_offset("app", 25)
    assert sorted(set(acked.values())) == list(range(1, 26))
    async with node.store.read() as s:
        from charter.store.events import list_events

        assert {e.id for e in await list_events(s, limit=100)} == set(acked)


async def test_an_unacknowledged_event_is_sent_again(node: Node) -> None:
    await _subscribe(node, "slow", ack_timeout=0.3, read_ahead=2)
    await _append(node, 1)
    async with connect(node.ws_url) as ws:
        await _start(ws, name="slow")
        (once,) = await _events(ws, 1)
        (again,) = await _events(ws, 1)
        assert again == once
        await _ack(ws, again)
        await node.wait_offset("slow", 1)
        await _append(node, 1, start=2)
        (nxt,) = await _events(ws, 1)
        while nxt["offset"] == 1:  # a resend that crossed our ack (a slow machine)
            (nxt,) = await _events(ws, 1)
        assert nxt["offset"] == 2


async def test_ephemeral_subscription_with_filter_and_autoack(node: Node) -> None:
    await _append(node, 2, type="data_arrived")
    await _append(node, 2, start=3)
    async with connect(node.ws_url) as ws:
        started = await _start(
            ws,
            ephemeral=True,
            first_event="oldest",
            autoack=True,
            read_ahead=1,
            filter={"types": ["message_confirmed"]},
        )
        assert started == {"type": "started", "subscription": None, "offset": "0"}
        got = await _events(ws, 2)
        assert [(e["type"], e["offset"]) for e in got] == [
            ("message_confirmed", 3),
            ("message_confirmed", 4),
        ]
        await _append(node, 1, start=5)
        (live,) = await _events(ws, 1)
        assert live["offset"] == 5


async def test_a_second_connection_takes_the_subscription_over(node: Node) -> None:
    await _subscribe(node, "shared")
    async with connect(node.ws_url) as old:
        await _start(old, name="shared")
        async with connect(node.ws_url) as new:
            await _start(new, name="shared")
            notice = await _recv(old)
            assert notice["type"] == "error" and notice["code"] == "events.ws.replaced"
            await _append(node, 1)
            (event,) = await _events(new, 1)
            assert event["offset"] == 1


async def test_bad_starts_are_refused_with_a_reason(node: Node) -> None:
    async with connect(node.ws_url) as ws:
        answer = await _start(ws, name="nobody")
        assert answer["code"] == "events.subscription.not_found"
    async with connect(node.ws_url) as ws:
        answer = await _start(ws, ephemeral=True, read_ahead=0)
        assert answer["code"] == "events.ws.invalid"
    async with connect(node.ws_url) as ws:
        await ws.send("not json")
        answer = await _recv(ws)
        assert answer["code"] == "events.ws.protocol"


async def test_deleting_a_subscription_ends_its_connection(node: Node) -> None:
    await _subscribe(node, "doomed")
    async with connect(node.ws_url) as ws:
        await _start(ws, name="doomed")
        assert (await node.http.delete("/api/v1/subscriptions/doomed")).status_code == 204
        notice = await _recv(ws)
        assert notice["code"] == "events.subscription.deleted"
