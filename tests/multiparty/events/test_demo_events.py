"""The demo's events act against a served events service."""

from __future__ import annotations

import io

from rich.console import Console

from charter.cli.demo_events import create_subscriptions, delete_subscriptions, stream_events
from charter.store.events import NewEvent, append_events

from .conftest import Node


async def test_events_act_streams_acknowledges_and_cleans_up(node: Node) -> None:
    out = io.StringIO()
    console = Console(file=out, width=200)
    urls = {"member-1": f"http://{node.address}"}
    async with node.store.transaction() as s:
        await append_events(s, [NewEvent("message_confirmed", topic="old")])
    await create_subscriptions(console, urls, topic="news")
    async with node.store.transaction() as s:
        await append_events(
            s,
            [
                NewEvent("message_confirmed", topic="news", author="member-2"),
                NewEvent("data_arrived", topic="news"),
                NewEvent("message_confirmed", topic="other"),
                NewEvent("message_confirmed", topic="news", author="member-3"),
            ],
        )
    got = await stream_events(console, urls, count=2, within=10)
    assert [e["offset"] for e in got["member-1"]] == ["2", "5"]
    await delete_subscriptions(console, urls)
    assert (await node.http.get("/api/v1/subscriptions")).json() == []
    lines = out.getvalue().splitlines()
    assert lines[0] == "ok member-1: subscription demo-events from offset 1"
    assert "ok member-1: 2 events acknowledged, offset 5" in lines
