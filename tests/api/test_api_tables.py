"""Table requests answer the same way through the fast path and through the FastAPI routes.

A request with one query parameter the fast path does not know (``x=1``, which FastAPI
ignores) takes the FastAPI route; the same request without it takes the fast path.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from charter.api.problems import PROBLEM_JSON
from charter.api.tables import TablesApi, TablesFastPath

if TYPE_CHECKING:
    from conftest import Cluster, Serve

pytestmark = pytest.mark.asyncio(loop_scope="module")

ROUTED = {"x": "1"}  # an extra parameter: the fast path passes the request on


def problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = r.json()
    assert body["code"] == code and body["status"] == status
    assert body["instance"] == r.request.url.path
    return body


def answer_shape(r: httpx.Response) -> tuple[int, str, list[str]]:
    return r.status_code, r.headers["content-type"], sorted(r.json())


async def test_writes_and_reads_are_the_same_both_ways(cluster: Cluster) -> None:
    client = cluster.nodes[cluster.net.ids[0]].client
    doc = {"b": [1, 2.5, None], "a": "ü"}
    fast = await client.put("/api/v1/tables/both/k/fast", params={"wait": "committed"}, json=doc)
    routed = await client.put(
        "/api/v1/tables/both/k/routed", params={"wait": "committed", **ROUTED}, json=doc
    )
    assert (
        answer_shape(fast) == answer_shape(routed) == (200, "application/json", ["status", "tx_id"])
    )
    assert fast.json()["status"] == routed.json()["status"] == "Committed"
    # equal documents are stored as equal bytes, and read back as those bytes either way
    reads = [
        await client.get("/api/v1/tables/both/k/fast"),
        await client.get("/api/v1/tables/both/k/routed", params=ROUTED),
        await client.get("/api/v1/tables/both/k/fast", params={"consistency": "local"}),
    ]
    for r in reads:
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        assert r.content == b'{"a":"\xc3\xbc","b":[1,2.5,null]}'
        assert r.headers["content-length"] == str(len(r.content))
    gone = await client.delete("/api/v1/tables/both/k/fast", params={"wait": "committed"})
    assert answer_shape(gone) == answer_shape(fast)
    problem(
        await client.get("/api/v1/tables/both/k/fast", params={"consistency": "local"}),
        404,
        "api.not_found",
    )


async def test_refusals_are_the_same_problems_both_ways(cluster: Cluster) -> None:
    client = cluster.nodes[cluster.net.ids[0]].client
    for extra in ({}, ROUTED):
        bad = await client.put(
            "/api/v1/tables/t/k",
            params=extra,
            content=b"{nope",
            headers={"content-type": "application/json"},
        )
        assert "not JSON" in problem(bad, 400, "api.bad_json")["detail"]
        nan = await client.put("/api/v1/tables/t/k", params=extra, content=b"NaN")
        problem(nan, 400, "api.bad_json")
        problem(
            await client.put("/api/v1/tables/charter.gov/k", params=extra, json=1),
            403,
            "api.table.reserved",
        )
        problem(
            await client.put("/api/v1/tables/" + "t" * 300 + "/k", params=extra, json=1),
            400,
            "api.invalid_name",
        )
        missing = await client.get("/api/v1/tables/t/never-written", params=extra)
        assert (
            "no value at t/never-written (committed)"
            in problem(missing, 404, "api.not_found")["detail"]
        )


async def test_unusual_query_strings_go_to_the_validating_routes(cluster: Cluster) -> None:
    client = cluster.nodes[cluster.net.ids[0]].client
    for params in ({"wait": "soon"}, [("wait", "accepted"), ("wait", "committed")]):
        r = await client.put("/api/v1/tables/t/q", params=params, json=1)
        if isinstance(params, dict):
            assert "wait" in problem(r, 422, "api.validation")["detail"]
        else:
            assert r.status_code == 200  # FastAPI takes the last value, as it always did
    problem(
        await client.get("/api/v1/tables/t/q", params={"consistency": "eventual"}),
        422,
        "api.validation",
    )
    problem(await client.post("/api/v1/tables/t/k", json=1), 405, "api.method_not_allowed")


async def test_a_body_over_the_limit_is_refused_before_it_is_read(
    cluster: Cluster, serve_node: Serve
) -> None:
    _, _, client = await serve_node(cluster.net, cluster.net.ids[0], max_body=64)
    async with client:
        big = json.dumps("x" * 100).encode()
        for extra in ({}, ROUTED):
            r = await client.put("/api/v1/tables/t/big", params=extra, content=big)
            problem(r, 413, "api.body_too_large")

            async def chunks() -> Any:  # no content-length: refused while streaming
                for _ in range(4):
                    yield b'"' + b"y" * 30

            streamed = await client.put("/api/v1/tables/t/big", params=extra, content=chunks())
            problem(streamed, 413, "api.body_too_large")
        ok = await client.put("/api/v1/tables/t/small", json="fits")
        assert ok.status_code == 200, ok.text


async def test_the_fast_path_answers_well_formed_requests_itself(cluster: Cluster) -> None:
    passed_on: list[str] = []

    async def routes(scope: Any, receive: Any, send: Any) -> None:
        passed_on.append(f"{scope['method']} {scope['path']}?{scope['query_string'].decode()}")
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    nid = cluster.net.ids[0]
    tables = TablesApi(
        cluster.net.service(nid), cluster.nodes[nid].metrics, max_body=1024, request_timeout=10
    )
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=TablesFastPath(routes, tables)), base_url="http://n"
    )
    async with client:
        assert (await client.put("/api/v1/tables/f/a", json=1)).status_code == 200
        assert (await client.put("/api/v1/tables/f/b?wait=committed", json=2)).status_code == 200
        assert (await client.get("/api/v1/tables/f/b")).content == b"2"
        assert (await client.delete("/api/v1/tables/f/a?wait=accepted")).status_code == 200
        assert passed_on == []
        for method, url in [
            ("PUT", "/api/v1/tables/f/a?wait=later"),
            ("PUT", "/api/v1/tables/f/a?wait=committed&x=1"),
            ("GET", "/api/v1/tables/f/a?wait=committed"),
            ("POST", "/api/v1/tables/f/a"),
            ("PUT", "/api/v1/tables/f"),
            ("PUT", "/api/v1/tables/f/"),
            ("GET", "/api/v1/status"),
        ]:
            assert (await client.request(method, url, json=1)).status_code == 299
        assert len(passed_on) == 7
