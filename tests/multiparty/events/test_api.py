"""The REST routes: the event log with its filters, subscriptions, and refusals that store nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from charter.api.fastpath import FastRouter
from charter.multiparty.events import EventsService
from charter.store import Store
from charter.store.data import insert_data
from charter.store.events import NewEvent, append_events
from charter.store.messages import insert_message
from charter.store.models import DataRow, MessageRow
from charter.store.subscriptions import list_subscriptions

from .conftest import events_app

GROUP = "ab" * 32


@pytest.fixture
async def api(store: Store) -> AsyncIterator[httpx.AsyncClient]:
    app = events_app(EventsService(store))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
        yield client


async def _seed(store: Store) -> None:
    async with store.transaction() as s:
        await insert_message(
            s,
            MessageRow(
                id="11111111-1111-4111-8111-111111111111",
                member="member-1",
                node="member-1",
                type="private",
                topic="orders",
                group_hash=GROUP,
                context="cd" * 32,
                state="confirmed",
            ),
        )
        await insert_data(
            s,
            [
                DataRow(
                    id=f"2222222{i}-2222-4222-8222-222222222222",
                    message_id="11111111-1111-4111-8111-111111111111",
                    position=i,
                    value={"n": i},
                    hash=f"{i}" * 64,
                )
                for i in (1, 0)
            ],
        )
        await append_events(
            s,
            [
                NewEvent("transaction_submitted", reference="3.7", tx_id="3.7"),
                NewEvent(
                    "message_confirmed",
                    reference="11111111-1111-4111-8111-111111111111",
                    topic="orders",
                    author="member-1",
                    group_hash=GROUP,
                ),
                NewEvent("blob_arrived", reference="ef" * 32),
            ],
        )


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?after=1",
        "?limit=2&type=message_confirmed&type=blob_arrived",
        "?type=message_confirmed&with_data=true",
        "?topic=orders&with_data=false&after=0",
        "?after=0&after=2",
    ],
)
async def test_the_fast_event_log_answers_fastapis_bytes(
    api: httpx.AsyncClient, store: Store, query: str
) -> None:
    await _seed(store)
    fast = await api.get(f"/api/v1/events{query}")
    # an unknown parameter makes the fast handler decline; FastAPI ignores it
    slow = await api.get(f"/api/v1/events{query}{'&' if query else '?'}unknown=1")
    assert fast.status_code == slow.status_code == 200
    assert fast.content == slow.content
    assert fast.headers["content-type"] == slow.headers["content-type"]
    # and the first one really was the fast handler's
    (router,) = EventsService(store).routers()
    assert isinstance(router, FastRouter)
    handler = router.fast[("GET", "/api/v1/events")]
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "method": "GET", "path": "/api/v1/events"}
    assert await handler({**scope, "query_string": query[1:].encode()}, receive, send)
    assert sent[-1]["body"] == fast.content
    assert not await handler({**scope, "query_string": b"unknown=1"}, receive, send)


@pytest.mark.parametrize(
    "query", ["?limit=0", "?limit=1001", "?after=-1", "?type=no%20such", "?with_data=maybe"]
)
async def test_unusual_event_queries_get_fastapis_answer(
    api: httpx.AsyncClient, query: str
) -> None:
    r = await api.get(f"/api/v1/events{query}")
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_event_log_pages_and_filters(api: httpx.AsyncClient, store: Store) -> None:
    await _seed(store)
    everything = (await api.get("/api/v1/events")).json()
    assert [e["offset"] for e in everything] == ["1", "2", "3"]
    assert set(everything[0]) >= {"id", "offset", "type", "reference", "created"}
    assert [e["offset"] for e in (await api.get("/api/v1/events?after=1&limit=1")).json()] == ["2"]
    typed = (await api.get("/api/v1/events?type=blob_arrived&type=transaction_submitted")).json()
    assert [e["type"] for e in typed] == ["transaction_submitted", "blob_arrived"]
    (topical,) = (await api.get("/api/v1/events?topic=orders&with_data=true")).json()
    assert topical["message"]["author"] == {"member": "member-1", "node": "member-1"}
    assert topical["message"]["group"] == GROUP
    assert [d["value"] for d in topical["data"]] == [{"n": 0}, {"n": 1}]
    assert "message" not in (await api.get("/api/v1/events?topic=orders")).json()[0]


async def test_bad_event_queries_are_problems(api: httpx.AsyncClient) -> None:
    for query in ["after=-1", "limit=0", "limit=100000", "type=Not-A-Type", "with_data=maybe"]:
        r = await api.get(f"/api/v1/events?{query}")
        assert r.status_code == 422, query
        assert r.headers["content-type"] == "application/problem+json", query


async def test_subscription_life_cycle(api: httpx.AsyncClient, store: Store) -> None:
    await _seed(store)
    r = await api.post(
        "/api/v1/subscriptions",
        json={"name": "app-1", "filter": {"topic": "ord.*", "authors": ["member-1"]}},
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["offset"] == "3"  # first_event newest: what exists now is not delivered
    assert created["transport"] == "websocket"
    assert created["filter"] == {"topic": "ord.*", "authors": ["member-1"]}
    r = await api.post("/api/v1/subscriptions", json={"name": "from-2", "first_event": 2})
    assert r.json()["offset"] == "1"
    again = await api.post("/api/v1/subscriptions", json={"name": "app-1"})
    assert again.status_code == 409
    assert again.json()["code"] == "events.subscription.exists"
    listed = (await api.get("/api/v1/subscriptions")).json()
    assert [s["name"] for s in listed] == ["app-1", "from-2"]
    assert (await api.get("/api/v1/subscriptions/app-1")).json()["dead_letters"] == 0
    assert (await api.delete("/api/v1/subscriptions/app-1")).status_code == 204
    gone = await api.get("/api/v1/subscriptions/app-1")
    assert gone.status_code == 404
    assert gone.headers["content-type"] == "application/problem+json"
    assert gone.json()["code"] == "events.subscription.not_found"
    assert (await api.delete("/api/v1/subscriptions/app-1")).status_code == 404
    missing = await api.get("/api/v1/subscriptions/nope/deadletters")
    assert missing.status_code == 404


BAD_SUBSCRIPTIONS: list[Any] = [
    {},
    {"name": ""},
    {"name": "has space"},
    {"name": "x" * 200},
    {"name": "ok", "unknown": 1},
    {"name": "ok", "transport": "carrier-pigeon"},
    {"name": "ok", "transport": "webhook"},
    {"name": "ok", "webhook": {"url": "http://127.0.0.1:1/"}},
    {"name": "ok", "transport": "webhook", "webhook": {"url": "ftp://example.org/x"}},
    {"name": "ok", "transport": "webhook", "webhook": {"url": "not a url"}},
    {
        "name": "ok",
        "transport": "webhook",
        "webhook": {"url": "http://h/", "retry": {"max_attempts": 0}},
    },
    {"name": "ok", "filter": {"topic": "(unclosed"}},
    {"name": "ok", "filter": {"types": ["Message Confirmed"]}},
    {"name": "ok", "filter": {"groups": ["not-a-hash"]}},
    {"name": "ok", "filter": {"colour": "blue"}},
    {"name": "ok", "first_event": "yesterday"},
    {"name": "ok", "first_event": -1},
    {"name": "ok", "read_ahead": 0},
    {"name": "ok", "ack_timeout": 0},
    [],
    "name",
]


async def test_malformed_subscriptions_are_problems_and_store_nothing(
    api: httpx.AsyncClient, store: Store
) -> None:
    for body in BAD_SUBSCRIPTIONS:
        r = await api.post("/api/v1/subscriptions", json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"] == "application/problem+json", body
        assert r.json()["code"] == "api.validation", body
    r = await api.post(
        "/api/v1/subscriptions", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert (await api.get("/api/v1/subscriptions")).json() == []
    async with store.read() as s:
        assert await list_subscriptions(s) == []


async def test_the_routes_are_in_the_openapi_document() -> None:
    from charter.store import open_store

    memory = await open_store("sqlite://", None)  # in memory: one shared connection
    try:
        paths = events_app(EventsService(memory)).openapi()["paths"]
    finally:
        await memory.close()
    assert {
        "/api/v1/events",
        "/api/v1/subscriptions",
        "/api/v1/subscriptions/{name}",
        "/api/v1/subscriptions/{name}/deadletters",
        "/api/v1/subscriptions/{name}/deadletters/redeliver",
    } <= set(paths)
    body = paths["/api/v1/subscriptions"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["$ref"].endswith("/SubscriptionSpec")
