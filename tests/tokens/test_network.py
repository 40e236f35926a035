"""Tokens on a three-member network: every node computes the same balances, a double
spend from two nodes succeeds once, and the REST API answers the documented shapes."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from charter.api.problems import PROBLEM_JSON
from charter.tokens import queries as q

from .conftest import TokenNet

pytestmark = pytest.mark.asyncio(loop_scope="module")
C = {"wait": "committed"}


async def post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> httpx.Response:
    return await client.post(f"/api/v1/tokens{path}", params=C, json=body)


async def ok(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = await post(client, path, body)
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    assert doc["status"] == "Committed", doc
    return doc


async def test_every_node_agrees_on_every_balance(tnet: TokenNet) -> None:
    c1, c2, c3 = (tnet.clients[n] for n in (1, 2, 3))
    await ok(c1, "/pools", {"name": "usd", "type": "fungible", "decimals": 2})
    big = str(2**300 + 7)
    await ok(c1, "/mint", {"pool": "usd", "to": "member-1", "amount": big})
    await ok(
        c1, "/transfers", {"pool": "usd", "from": "member-1", "to": "member-2", "amount": "500"}
    )
    await ok(
        c1, "/transfers", {"pool": "usd", "from": "member-1", "to": "member-3/app", "amount": "9"}
    )
    sends = [
        post(c2, "/transfers", {"pool": "usd", "from": "member-2", "to": "member-3", "amount": "1"})
        for _ in range(20)
    ] + [
        post(
            c3,
            "/transfers",
            {"pool": "usd", "from": "member-3/app", "to": "member-1", "amount": "1"},
        )
        for _ in range(9)
    ]
    answers = await asyncio.gather(*sends)
    assert all(r.status_code == 200 for r in answers), [r.text for r in answers]
    await tnet.caught_up()
    views = [q.balances(tnet.service(n).engine, "usd") for n in (1, 2, 3)]
    assert views[0] == views[1] == views[2]
    expected = {
        "member-1": 2**300 + 7 - 509 + 9,
        "member-2": 480,
        "member-3": 20,
    }
    assert {b.account: b.balance for b in views[0]} == expected
    digests = {tnet.service(n).engine.kv.digest() for n in (1, 2, 3)}
    assert len(digests) == 1
    r = await c3.get("/api/v1/tokens/balances", params={"pool": "usd", "account": "member-1"})
    assert r.json() == [
        {"account": "member-1", "pool": "usd", "balance": str(expected["member-1"])}
    ]


async def test_concurrent_double_spend_from_two_nodes_succeeds_once(tnet: TokenNet) -> None:
    c1, c2 = tnet.clients[1], tnet.clients[2]
    await ok(c1, "/pools", {"name": "ds", "type": "fungible"})
    await ok(c1, "/mint", {"pool": "ds", "to": "member-1/wallet", "amount": "10"})
    # member-2's node may move all of member-1/wallet's tokens: two nodes can spend them
    await ok(
        c1,
        "/approvals",
        {
            "pool": "ds",
            "owner": "member-1/wallet",
            "operator": "member-2",
            "operator_for_all": True,
        },
    )
    for round_ in range(3):
        if round_:
            await ok(c1, "/mint", {"pool": "ds", "to": "member-1/wallet", "amount": "10"})
        mine = post(
            c1,
            "/transfers",
            {"pool": "ds", "from": "member-1/wallet", "to": "member-3", "amount": "10"},
        )
        theirs = post(
            c2,
            "/transfers",
            {
                "pool": "ds",
                "from": "member-1/wallet",
                "to": "member-2",
                "amount": "10",
                "operator": "member-2",
            },
        )
        a, b = await asyncio.gather(mine, theirs)
        codes = sorted([a.status_code, b.status_code])
        assert codes == [200, 409], (a.text, b.text)
        loser = a if a.status_code == 409 else b
        doc = loser.json()
        assert loser.headers["content-type"].startswith(PROBLEM_JSON)
        assert doc["code"] == "tokens.balance" and doc["tx_status"] == "Invalid"
        assert doc["reason"].startswith("tokens.balance:") and doc["tx_id"]
    await tnet.caught_up()
    for n in (1, 2, 3):
        engine = tnet.service(n).engine
        assert q.balance(engine, "ds", "member-1/wallet") == 0
        assert q.balance(engine, "ds", "member-2") + q.balance(engine, "ds", "member-3") == 30


async def test_unauthorised_mint_transfer_and_approval_use_are_refused(tnet: TokenNet) -> None:
    c1, c2 = tnet.clients[1], tnet.clients[2]
    await ok(c1, "/pools", {"name": "auth", "type": "fungible"})
    await ok(c1, "/mint", {"pool": "auth", "to": "member-1", "amount": "100"})
    refusals = [
        (c2, "/mint", {"pool": "auth", "to": "member-2", "amount": "5"}, "tokens.mint.authority"),
        (
            c2,
            "/transfers",
            {"pool": "auth", "from": "member-1", "to": "member-2", "amount": "5"},
            "tokens.authority",
        ),
        (
            c2,
            "/approvals",
            {"pool": "auth", "owner": "member-1", "operator": "member-2", "amount": "5"},
            "tokens.authority",
        ),
        (c2, "/burn", {"pool": "auth", "from": "member-1", "amount": "5"}, "tokens.authority"),
        (
            c2,
            "/transfers",
            {
                "pool": "auth",
                "from": "member-1",
                "to": "member-2",
                "amount": "5",
                "operator": "member-2",
            },
            "tokens.allowance",
        ),
    ]
    for client, path, body, rule in refusals:
        r = await post(client, path, body)
        assert r.status_code == 409, r.text
        assert r.headers["content-type"].startswith(PROBLEM_JSON)
        doc = r.json()
        assert doc["code"] == rule and doc["tx_status"] == "Invalid", doc
        status = (await client.get(f"/api/v1/tx/{doc['tx_id']}")).json()
        assert status["status"] == "Invalid" and status["reason"].startswith(rule)
    # allowance: exactly what was approved, no more
    await ok(
        c1,
        "/approvals",
        {"pool": "auth", "owner": "member-1", "operator": "member-2", "amount": "5"},
    )
    spend = {
        "pool": "auth",
        "from": "member-1",
        "to": "member-2",
        "amount": "5",
        "operator": "member-2",
    }
    await ok(c2, "/transfers", spend)
    r = await post(c2, "/transfers", spend)
    assert r.status_code == 409 and r.json()["code"] == "tokens.allowance"
    r = await c1.get("/api/v1/tokens/balances", params={"pool": "auth"})
    assert r.json() == [
        {"account": "member-1", "pool": "auth", "balance": "95"},
        {"account": "member-2", "pool": "auth", "balance": "5"},
    ]


async def test_api_shapes_history_supply_receipts_and_problems(tnet: TokenNet) -> None:
    c1 = tnet.clients[1]
    await ok(
        c1, "/pools", {"name": "shape", "type": "fungible", "decimals": 6, "max_supply": "1000"}
    )
    minted = await ok(c1, "/mint", {"pool": "shape", "to": "member-1", "amount": "700"})
    moved = await ok(
        c1, "/transfers", {"pool": "shape", "from": "member-1", "to": "member-2", "amount": "200"}
    )
    assert moved["pool"] == "shape" and moved["amount"] == "200" and moved["from"] == "member-1"
    await ok(c1, "/burn", {"pool": "shape", "from": "member-1", "amount": "100"})
    r = await post(c1, "/mint", {"pool": "shape", "to": "member-1", "amount": "401"})
    assert r.status_code == 409 and r.json()["code"] == "tokens.supply"

    pool = (await c1.get("/api/v1/tokens/pools/shape")).json()
    assert pool["type"] == "fungible" and pool["decimals"] == 6
    assert (
        pool["max_supply"] == "1000" and pool["supply"] == "600" and pool["creator"] == "member-1"
    )
    names = [p["name"] for p in (await c1.get("/api/v1/tokens/pools")).json()]
    assert "shape" in names and names == sorted(names)
    supply = (await c1.get("/api/v1/tokens/supply", params={"pool": "shape"})).json()
    assert supply == {
        "pool": "shape",
        "minted": "700",
        "burned": "100",
        "total": "600",
        "max_supply": "1000",
    }

    history = (await c1.get("/api/v1/tokens/transfers", params={"pool": "shape"})).json()
    assert [(h["type"], h["from"], h["to"], h["amount"]) for h in history] == [
        ("mint", None, "member-1", "700"),
        ("transfer", "member-1", "member-2", "200"),
        ("burn", "member-1", None, "100"),
    ]
    assert history[0]["tx_id"] == minted["tx_id"] and history[1]["tx_id"] == moved["tx_id"]
    page = (
        await c1.get(
            "/api/v1/tokens/transfers",
            params={"pool": "shape", "after": history[0]["seqno"], "limit": 1},
        )
    ).json()
    assert [h["tx_id"] for h in page] == [moved["tx_id"]]
    mine = (
        await c1.get("/api/v1/tokens/transfers", params={"pool": "shape", "account": "member-2"})
    ).json()
    assert [h["type"] for h in mine] == ["transfer"]

    receipt = await c1.get(f"/api/v1/tx/{moved['tx_id']}/receipt")
    assert receipt.status_code == 200

    for path, body, status, code in [
        (
            "/transfers",
            {"pool": "shape", "from": "member-1", "to": "member-2", "amount": "-1"},
            422,
            "api.validation",
        ),
        (
            "/transfers",
            {"pool": "shape", "from": "member-1", "to": "member-2", "amount": 5},
            422,
            "api.validation",
        ),
        (
            "/transfers",
            {"pool": "shape", "from": "a|b", "to": "member-2", "amount": "1"},
            422,
            "tokens.account",
        ),
        (
            "/transfers",
            {"pool": "shape", "from": "member-1", "to": "member-1", "amount": "1"},
            422,
            "tokens.transfer.self",
        ),
        (
            "/transfers",
            {"pool": "nope", "from": "member-1", "to": "member-2", "amount": "1"},
            409,
            "tokens.pool.unknown",
        ),
        ("/pools", {"name": "shape", "type": "fungible"}, 409, "tokens.pool.exists"),
        ("/pools", {"name": "x", "type": "gold"}, 422, "api.validation"),
    ]:
        r = await post(c1, path, body)
        assert r.status_code == status and r.json()["code"] == code, (body, r.text)
        assert r.headers["content-type"].startswith(PROBLEM_JSON)
    r = await c1.get("/api/v1/tokens/pools/none")
    assert r.status_code == 404 and r.json()["code"] == "tokens.pool.not_found"
    r = await c1.get("/api/v1/tokens/supply", params={"pool": "none"})
    assert r.status_code == 404


async def test_batch_endpoint_commits_each_transfer_as_its_own_transaction(tnet: TokenNet) -> None:
    c1 = tnet.clients[1]
    await ok(c1, "/pools", {"name": "batch", "type": "fungible"})
    await ok(c1, "/mint", {"pool": "batch", "to": "member-1", "amount": "100"})
    transfers = [
        {"pool": "batch", "from": "member-1", "to": f"member-2/u{i}", "amount": "1"}
        for i in range(120)
    ]
    r = await c1.post("/api/v1/tokens/transfers/batch", params=C, json={"transfers": transfers})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["accepted"] == 100 and doc["refused"] == 20
    ids = [x["tx_id"] for x in doc["results"]]
    assert len(set(ids)) == 120
    assert sum(x["status"] == "Committed" for x in doc["results"]) == 100
    assert {x["code"] for x in doc["results"] if x["status"] == "Invalid"} == {"tokens.balance"}
    assert q.balance(tnet.service(1).engine, "batch", "member-1") == 0


async def test_nonfungible_pool_over_the_api(tnet: TokenNet) -> None:
    c1, c2 = tnet.clients[1], tnet.clients[2]
    await ok(c1, "/pools", {"name": "deeds", "type": "nonfungible", "decimals": 0})
    await ok(
        c1,
        "/mint",
        {
            "pool": "deeds",
            "to": "member-1",
            "amount": "1",
            "token_id": "lot-1",
            "uri": "https://lots/1",
        },
    )
    r = await post(
        c1, "/mint", {"pool": "deeds", "to": "member-2", "amount": "1", "token_id": "lot-1"}
    )
    assert r.status_code == 409 and r.json()["code"] == "tokens.nft.exists"
    await ok(
        c1,
        "/transfers",
        {"pool": "deeds", "from": "member-1", "to": "member-2", "amount": "1", "token_id": "lot-1"},
    )
    r = await post(
        c1,
        "/transfers",
        {"pool": "deeds", "from": "member-1", "to": "member-2", "amount": "1", "token_id": "lot-1"},
    )
    assert r.status_code == 409 and r.json()["code"] == "tokens.nft.owner"
    await tnet.caught_up()
    for n in (1, 2, 3):
        nft = q.nft(tnet.service(n).engine, "deeds", "lot-1")
        assert nft is not None and nft.owner == "member-2"
    r = await c2.get("/api/v1/tokens/balances", params={"account": "member-2", "pool": "deeds"})
    assert r.json() == [{"account": "member-2", "pool": "deeds", "balance": "1"}]


async def test_token_events_are_appended_once_committed_on_every_node(tnet: TokenNet) -> None:
    from charter.store.events import list_events
    from charter.tokens.component import TokensComponent

    c1 = tnet.clients[1]
    await ok(c1, "/pools", {"name": "evt", "type": "fungible"})
    await ok(c1, "/mint", {"pool": "evt", "to": "member-1", "amount": "10"})
    pin = "ab" * 32
    moved = await ok(
        c1,
        "/transfers",
        {"pool": "evt", "from": "member-1", "to": "member-2", "amount": "3", "pin": pin},
    )
    r = await post(
        c1, "/transfers", {"pool": "evt", "from": "member-1", "to": "member-2", "amount": "99"}
    )
    assert r.status_code == 409  # refused: no event

    async def events(nid: int) -> list[tuple[str, str | None, str | None, str | None]]:
        comp = tnet.net.members[nid].components[0]
        assert isinstance(comp, TokensComponent)
        if comp.store is None:  # still opening (its first migration may take a while)
            return []
        async with comp.store.read() as s:
            rows = await list_events(s, topic="tokens/evt", limit=100)
        return [(e.type, e.tx_id, e.author, e.correlator) for e in rows]

    for nid in tnet.net.ids:
        async with asyncio.timeout(15):
            while len(got := await events(nid)) < 3:  # noqa: ASYNC110 (a database, polled)
                await asyncio.sleep(0.05)
        assert [t for t, *_ in got] == [
            "token_pool_confirmed",
            "token_transfer_confirmed",
            "token_transfer_confirmed",
        ]
        assert got[2] == ("token_transfer_confirmed", moved["tx_id"], "member-1", pin)


async def test_a_node_without_messaging_refuses_a_carried_message(tnet: TokenNet) -> None:
    before = q.transfers(tnet.service(1).engine, pool_name="usd", limit=1000)
    r = await post(
        tnet.clients[1],
        "/transfers",
        {
            "pool": "usd",
            "from": "member-1",
            "to": "member-2",
            "amount": "1",
            "message": {"header": {"topic": "t"}, "data": [{"value": 1}]},
        },
    )
    assert r.status_code == 503 and r.headers["content-type"].startswith(PROBLEM_JSON)
    assert r.json()["code"] == "mp.not_ready" and "tx_id" not in r.json()
    await asyncio.sleep(0.1)
    assert q.transfers(tnet.service(1).engine, pool_name="usd", limit=1000) == before
