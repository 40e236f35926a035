"""Every error path answers application/problem+json with a stable code."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import pytest_asyncio

from charter.api import PROBLEM_JSON
from charter.api.problems import Problem, status_for_code
from charter.ledger.engine.errors import EngineHaltedError, TransactionError
from charter.ledger.signatures import SignaturePolicy
from charter.node import ledger_service
from charter.node.ledger_service import LedgerHalted, LedgerSettings, NotAvailable
from charter.node.raft_transport import Backoff

if TYPE_CHECKING:
    from conftest import Cluster, Serve

pytestmark = pytest.mark.asyncio(loop_scope="module")

# signatures are rare here, so accepted writes stay Pending for the receipt checks
SLOW_SIGNATURES = LedgerSettings(
    signature_policy=SignaturePolicy(every_tx=100_000, every_ms=600_000),
    signature_group_commit=False,
    submit_timeout=1.0,
    backoff=Backoff(base=0.01, cap=0.2),
)
WAIT = 15.0
FIELDS = {"type", "title", "status", "detail", "code", "instance"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def slow(
    cluster_with: Callable[[LedgerSettings], AsyncIterator[Cluster]],
) -> AsyncIterator[Cluster]:
    async for c in cluster_with(SLOW_SIGNATURES):
        yield c


def problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = r.json()
    assert set(body) >= FIELDS, body
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:charter:problem:{code}"
    assert body["instance"] == r.request.url.path
    assert body["detail"] and "Traceback" not in r.text
    return body


def client(c: Cluster) -> httpx.AsyncClient:
    leader = c.net.leader()
    assert leader is not None
    return c.nodes[leader].client


async def test_bad_json(slow: Cluster) -> None:
    cl = client(slow)
    r = await cl.put("/api/v1/tables/t/k", content=b"{not json")
    problem(r, 400, "api.bad_json")
    r = await cl.put("/api/v1/tables/t/k", content=b"[NaN]")
    problem(r, 400, "api.bad_json")
    r = await cl.put("/api/v1/tables/t/k", content=b"\xff\xfe")
    problem(r, 400, "api.bad_json")
    r = await cl.put("/api/v1/tables/t/k", content=b"")
    problem(r, 400, "api.bad_json")


async def test_bad_names(slow: Cluster) -> None:
    cl = client(slow)
    r = await cl.put(f"/api/v1/tables/{'t' * 129}/k", json=1)
    problem(r, 400, "api.invalid_name")
    r = await cl.put(f"/api/v1/tables/t/{'k' * 1025}", json=1)
    problem(r, 400, "api.invalid_name")
    r = await cl.get(f"/api/v1/tables/{'t' * 129}/k")
    problem(r, 400, "api.invalid_name")


async def test_reserved_tables(slow: Cluster) -> None:
    cl = client(slow)
    r = await cl.put("/api/v1/tables/charter.signatures/latest", json=1)
    problem(r, 403, "api.table.reserved")
    r = await cl.delete("/api/v1/tables/charter.members/x")
    problem(r, 403, "api.table.reserved")


async def test_body_too_large(slow: Cluster, serve_node: Serve) -> None:
    leader = slow.net.leader()
    assert leader is not None
    _, _, small = await serve_node(slow.net, leader, max_body=64)
    async with small:
        r = await small.put("/api/v1/tables/t/k", json="x" * 100)
        problem(r, 413, "api.body_too_large")

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as read
            for _ in range(10):
                yield b'"0123456789"'

        r = await small.put("/api/v1/tables/t/k", content=chunks())
        problem(r, 413, "api.body_too_large")
        r = await small.put("/api/v1/tables/t/k", json="fits")
        assert r.status_code == 200


async def test_validation_and_routing(slow: Cluster) -> None:
    cl = client(slow)
    body = problem(await cl.put("/api/v1/tables/t/k?wait=soon", json=1), 422, "api.validation")
    assert body["errors"][0]["loc"] == ["query", "wait"]
    problem(await cl.get("/api/v1/tables/t/k?consistency=eventual"), 422, "api.validation")
    problem(await cl.get("/api/v1/nothing-here"), 404, "api.not_found")
    problem(await cl.post("/api/v1/status"), 405, "api.method_not_allowed")


async def test_not_found(slow: Cluster) -> None:
    cl = client(slow)
    body = problem(await cl.get("/api/v1/tables/t/absent"), 404, "api.not_found")
    assert "absent" in body["detail"]
    problem(await cl.get("/api/v1/tx/7.123456/receipt"), 404, "api.not_found")


async def test_bad_tx_ids(slow: Cluster) -> None:
    cl = client(slow)
    for bad in ("abc", "1.", ".2", "01.2", "1.2.3", "-1.2"):
        problem(await cl.get(f"/api/v1/tx/{bad}"), 400, "ledger.tx.invalid_id")
        problem(await cl.get(f"/api/v1/tx/{bad}/receipt"), 400, "ledger.tx.invalid_id")
        problem(await cl.get(f"/api/v1/tx/{bad}/receipt.cose"), 400, "ledger.tx.invalid_id")


async def test_receipt_of_a_pending_transaction(slow: Cluster) -> None:
    cl = client(slow)
    # signatures are rare here, but the leader signs once when it first sees unsigned
    # work: a write may be covered by that one, so try a few
    for attempt in range(5):
        r = await cl.put(f"/api/v1/tables/t/pending-{attempt}", json={"a": attempt})
        assert r.status_code == 200
        tx_id = r.json()["tx_id"]
        r = await cl.get(f"/api/v1/tx/{tx_id}/receipt")
        if r.status_code == 200:
            continue
        body = problem(r, 409, "ledger.receipt.not_committed")
        assert body["tx_status"] == "Pending"
        # the one early signature may land between two requests: then try another write
        if (await cl.get(f"/api/v1/tx/{tx_id}")).json()["status"] != "Pending":
            continue
        r = await cl.get(f"/api/v1/tx/{tx_id}/receipt.cose")
        if r.status_code == 200:
            continue
        problem(r, 409, "ledger.receipt.not_committed")
        return
    pytest.fail("every write was signed at once despite the slow signature policy")


async def test_an_invalid_write_answers_its_reason(
    slow: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    leader = slow.net.leader()
    assert leader is not None
    cl = slow.nodes[leader].client
    r = await cl.put("/api/v1/tables/t/replayed", json=1)
    assert r.status_code == 200
    # make the next batch reuse the last batch's sequence number: the engine's replay
    # check rejects it on apply, so the transaction lands Invalid with a reason
    service = slow.net.service(leader)
    monkeypatch.setattr(ledger_service, "_now_us", lambda: 0)  # a clock set far back
    service._batch_seq -= 1
    r = await cl.put("/api/v1/tables/t/replayed", json=2, params={"wait": "committed"})
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "Invalid"
    assert body["reason"]
    tx_id = body["tx_id"]
    status = (await cl.get(f"/api/v1/tx/{tx_id}")).json()
    assert status == {"tx_id": tx_id, "status": "Invalid", "reason": body["reason"]}
    r = await cl.get(f"/api/v1/tx/{tx_id}/receipt")
    assert problem(r, 409, "ledger.receipt.not_committed")["tx_status"] == "Invalid"
    r = await cl.get("/api/v1/tables/t/replayed", params={"consistency": "local"})
    assert r.json() == 1


async def test_unexpected_errors_are_problems(slow: Cluster, serve_node: Serve) -> None:
    leader = slow.net.leader()
    assert leader is not None
    app, _, cl = await serve_node(slow.net, leader)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    async with cl:
        body = problem(await cl.get("/boom"), 500, "api.internal")
        assert "secret" not in body["detail"]


async def test_codes_map_to_statuses() -> None:
    for exc, status in (
        (NotAvailable("no leader"), 503),
        (LedgerHalted("halted"), 503),
        (EngineHaltedError("halted"), 503),
        (TransactionError("bad"), 400),
    ):
        p = Problem.from_error(exc)
        assert (p.status, p.code) == (status, exc.code)
        assert ("Retry-After" in p.headers) == (status == 503)
    assert status_for_code("node.ledger.halted") == 503
    assert status_for_code("something.else") == 500
    assert status_for_code("ledger.engine.txx") == 500


# last: it stops two of the three members
async def test_unavailable_timeouts_and_not_ready(slow: Cluster, serve_node: Serve) -> None:
    net = slow.net
    leader = net.leader()
    assert leader is not None
    me = next(n for n in net.ids if n != leader)
    cl = slow.nodes[me].client
    assert (await cl.get("/readyz")).status_code == 200
    for other in net.ids:
        if other != me:
            await net.stop(other)
    transport = net.service(me).member.transport
    node = net.service(me).driver.node
    await net.until(
        lambda: node.leader_id is None and not any(transport.connected(p) for p in net.ids),
        WAIT,
    )
    body = problem(await cl.get("/readyz"), 503, "node.not_ready")
    codes = {reason.split(":")[0] for reason in body["reasons"]}
    assert {"no_leader", "no_peers"} <= codes
    assert body["ready"] is False
    assert (await cl.get("/healthz")).status_code == 200
    metrics = (await cl.get("/metrics")).text
    assert "charter_ready 0.0" in metrics
    assert 'charter_stall{reason="no_peers"} 1.0' in metrics

    r = await cl.put("/api/v1/tables/t/k", json=1)
    problem(r, 503, "node.ledger.not_available")
    assert r.headers["retry-after"] == "1"

    _, _, impatient = await serve_node(net, me, request_timeout=0.2)
    async with impatient:
        r = await impatient.get("/api/v1/tables/t/k", params={"consistency": "linearizable"})
        problem(r, 504, "api.timeout")
        r = await impatient.put("/api/v1/tables/t/k", json=1, params={"wait": "committed"})
        problem(r, 504, "api.timeout")
