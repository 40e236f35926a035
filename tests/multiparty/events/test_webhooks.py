"""Webhooks: ordered delivery, retries with backoff, never an ack on failure, dead letters."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from charter.multiparty.events import EventsService, EventsSettings, SubscriptionSpec
from charter.store import Store
from charter.store.events import NewEvent, append_events

from .conftest import Node, Receiver, eventually


async def _append(node: Node, *refs: str, type: str = "message_confirmed") -> None:
    async with node.store.transaction() as s:
        await append_events(s, [NewEvent(type, reference=r, topic="orders") for r in refs])


def _hook(receiver: Receiver, *, attempts: int, timeout: float = 2.0) -> dict[str, Any]:
    return {
        "url": receiver.url,
        "timeout": timeout,
        "retry": {"max_attempts": attempts, "initial_delay": 0.02, "max_delay": 0.1},
        "headers": {"Authorization": "Bearer secret"},
    }


async def test_failing_endpoint_that_recovers_receives_every_event_in_order(
    node: Node, receiver: Receiver
) -> None:
    receiver.mode = "fail"
    r = await node.http.post(
        "/api/v1/subscriptions",
        json={
            "name": "orders-hook",
            "transport": "webhook",
            "first_event": "oldest",
            "webhook": _hook(receiver, attempts=100),
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["webhook"]["headers"] == {"Authorization": "(set)"}
    await _append(node, *(f"m{i}" for i in range(1, 6)))

    await receiver.wait_for(lambda rc: len(rc.attempts) >= 4)
    # Every failed attempt was the first event again, and nothing was acknowledged.
    assert {a["event"]["offset"] for a in receiver.attempts} == {"1"}
    assert [a["attempt"] for a in receiver.attempts[:4]] == [1, 2, 3, 4]
    assert (await node.subscription("orders-hook"))["offset"] == "0"

    receiver.mode = "ok"
    await receiver.wait_for(lambda rc: len(rc.delivered) >= 5)
    assert [d["event"]["reference"] for d in receiver.delivered] == ["m1", "m2", "m3", "m4", "m5"]
    await node.wait_offset("orders-hook", 5)
    dead = await node.http.get("/api/v1/subscriptions/orders-hook/deadletters")
    assert dead.json() == []


async def test_a_timeout_is_a_failure_not_an_ack(node: Node, receiver: Receiver) -> None:
    receiver.mode = "hang"
    await node.http.post(
        "/api/v1/subscriptions",
        json={
            "name": "slow",
            "transport": "webhook",
            "first_event": "oldest",
            "webhook": _hook(receiver, attempts=100, timeout=0.2),
        },
    )
    await _append(node, "m1")
    await receiver.wait_for(lambda rc: len(rc.attempts) >= 1)
    assert (await node.subscription("slow"))["offset"] == "0"
    receiver.mode = "ok"
    await receiver.wait_for(lambda rc: len(rc.delivered) >= 1)
    await node.wait_offset("slow", 1)


async def test_dead_letter_after_the_last_retry_then_redelivery(
    node: Node, receiver: Receiver
) -> None:
    receiver.mode = "fail:bad"
    await node.http.post(
        "/api/v1/subscriptions",
        json={
            "name": "dl",
            "transport": "webhook",
            "first_event": "oldest",
            "filter": {"types": ["message_confirmed"]},
            "webhook": _hook(receiver, attempts=3),
        },
    )
    await _append(node, "good1", "bad")
    await _append(node, "skipped", type="data_arrived")
    await _append(node, "good2")
    await receiver.wait_for(lambda rc: len(rc.delivered) >= 2)
    assert [d["event"]["reference"] for d in receiver.delivered] == ["good1", "good2"]
    assert [a["event"]["reference"] for a in receiver.attempts].count("bad") == 3
    await node.wait_offset("dl", 4)

    dead = (await node.http.get("/api/v1/subscriptions/dl/deadletters")).json()
    assert [(d["event"]["reference"], d["attempts"], d["state"]) for d in dead] == [
        ("bad", 3, "dead")
    ]
    assert dead[0]["last_error"].startswith("HTTP 500")
    assert (await node.subscription("dl"))["dead_letters"] == 1

    receiver.mode = "ok"
    r = await node.http.post("/api/v1/subscriptions/dl/deadletters/redeliver", json={})
    assert r.json() == {"queued": 1}
    await receiver.wait_for(lambda rc: len(rc.delivered) >= 3)
    again = receiver.delivered[2]
    assert again["event"]["reference"] == "bad" and again["redelivery"] is True

    async def no_dead_letters() -> bool:
        return (await node.http.get("/api/v1/subscriptions/dl/deadletters")).json() == []

    await eventually(no_dead_letters)
    assert (await node.subscription("dl"))["dead_letters"] == 0


async def test_delivery_resumes_after_the_service_restarts(
    store: Store, receiver: Receiver
) -> None:
    """What was not acknowledged before a stop is delivered by the next service on the store."""
    receiver.mode = "fail"
    spec = SubscriptionSpec.model_validate(
        {
            "name": "durable",
            "transport": "webhook",
            "first_event": "oldest",
            "webhook": _hook(receiver, attempts=100),
        }
    )
    first = EventsService(store, EventsSettings(poll_interval=2.0))
    await first.create(spec)
    async with store.transaction() as s:
        await append_events(s, [NewEvent("message_confirmed", reference=r) for r in "ab"])
    async with _running(first):
        await receiver.wait_for(lambda rc: len(rc.attempts) >= 2)
    assert (await first.get("durable"))["offset"] == "0"

    receiver.mode = "ok"
    second = EventsService(store, EventsSettings(poll_interval=2.0))
    async with _running(second):
        await receiver.wait_for(lambda rc: len(rc.delivered) >= 2)

        async def settled() -> bool:
            return (await second.get("durable"))["offset"] == "2"

        await eventually(settled)
    assert [d["event"]["reference"] for d in receiver.delivered] == ["a", "b"]


@contextlib.asynccontextmanager
async def _running(service: EventsService) -> AsyncIterator[None]:
    runner = asyncio.create_task(service.run())
    try:
        yield
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        await service.close()
