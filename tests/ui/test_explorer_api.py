"""The explorer's read-only endpoints against three real in-process members."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from charter.api.problems import PROBLEM_JSON
from charter.governance import actions as acts
from charter.ledger.engine import TxStatus
from charter.ledger.engine.commands import Command
from charter.ui.recent import MAX_KEPT_BODY, LedgerRecorder

from .conftest import WAIT, ExplorerNet

pytestmark = pytest.mark.asyncio(loop_scope="module")
C = {"wait": "committed"}


async def committed(client: httpx.AsyncClient, method: str, path: str, body: Any) -> Any:
    r = await client.request(method, path, params=C, json=body)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["status"] == "Committed", doc
    return doc


async def txs(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    r = await client.get("/api/v1/explorer/transactions", params=params)
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    return doc


def by_id(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["tx_id"]: t for t in doc["items"]}


async def test_a_write_is_listed_with_its_status_submitter_and_receipt(xnet: ExplorerNet) -> None:
    c1, c3 = xnet.http[1], xnet.http[3]
    tx = (await committed(c1, "PUT", "/api/v1/tables/orders/o-1", {"qty": 5}))["tx_id"]
    await xnet.net.until(lambda: xnet.service(3).status(tx) is TxStatus.COMMITTED, WAIT)
    for client in (c1, c3):  # the submitter's node and another one agree
        doc = await txs(client)
        row = by_id(doc)[tx]
        assert row["kind"] == "write"
        assert row["status"] == "Committed"
        assert row["submitter"] == xnet.name(1)
        assert row["member"] == xnet.name(1)
        assert row["receipt"] == f"/api/v1/tx/{tx}/receipt"
        assert isinstance(row["batch_us"], int) and isinstance(row["applied_us"], int)
        receipt = await client.get(row["receipt"])
        assert receipt.status_code == 200
        assert receipt.headers["content-type"] == "application/json"
        seqnos = [t["seqno"] for t in doc["items"]]
        assert seqnos == sorted(seqnos, reverse=True), "newest first"
        assert doc["last_seqno"] >= row["seqno"] and doc["signed_upto"] > row["seqno"]
        # a signature transaction signs it: its span holds the write's seqno
        spans = [
            t["covers"]
            for t in doc["items"]
            if t["kind"] == "signature" and t.get("covers") and t["status"] != "Invalid"
        ]
        assert any((s["from"] or 1) <= row["seqno"] < s["upto"] for s in spans), (
            f"no signature covers {row['seqno']}: {spans}"
        )
        signer_rows = [t for t in doc["items"] if t["kind"] == "signature" and t.get("covers")]
        assert all(t["submitter"] in {xnet.name(n) for n in xnet.net.ids} for t in signer_rows)


async def test_tokens_kinds_invalid_reasons_and_filters(xnet: ExplorerNet) -> None:
    c1 = xnet.http[1]
    m1, m2 = xnet.name(1), xnet.name(2)
    base = "/api/v1/tokens"
    await committed(c1, "POST", f"{base}/pools", {"name": "ore", "type": "fungible", "decimals": 2})
    minted = await committed(c1, "POST", f"{base}/mint", {"pool": "ore", "to": m1, "amount": "900"})
    moved = await committed(
        c1, "POST", f"{base}/transfers", {"pool": "ore", "from": m1, "to": m2, "amount": "150"}
    )
    refused = await c1.post(
        f"{base}/transfers",
        params=C,
        json={"pool": "ore", "from": m1, "to": m2, "amount": "100000"},
    )
    assert refused.status_code == 409, refused.text
    bad_tx = refused.json()["tx_id"]

    doc = await txs(c1, kind="tokens")
    rows = by_id(doc)
    assert {t["kind"] for t in doc["items"]} == {"tokens"}
    assert rows[minted["tx_id"]]["op"] == "mint"
    assert rows[minted["tx_id"]]["summary"] == f"mint 900 ore to {m1}"
    assert rows[moved["tx_id"]]["op"] == "transfer"
    assert rows[bad_tx]["status"] == "Invalid"
    assert rows[bad_tx]["reason"].startswith("tokens.balance")
    assert rows[bad_tx]["receipt"] is None

    both = await txs(c1, kind=["tokens", "signature"], limit=500)
    assert {t["kind"] for t in both["items"]} <= {"tokens", "signature"}
    older = await txs(c1, before=moved["tx_id"].split(".")[1], limit=3)
    assert len(older["items"]) <= 3
    assert all(t["seqno"] < int(moved["tx_id"].split(".")[1]) for t in older["items"])

    r = await c1.get("/api/v1/explorer/token-transfers", params={"limit": 10})
    assert r.status_code == 200
    newest = r.json()
    history = (await c1.get(f"{base}/transfers", params={"pool": "ore"})).json()
    assert [t for t in newest if t["pool"] == "ore"] == history[::-1]
    assert newest[0]["type"] == "transfer" and newest[0]["amount"] == "150"


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/explorer/transactions", {"kind": "nonsense"}),
        ("/api/v1/explorer/transactions", {"limit": 0}),
        ("/api/v1/explorer/transactions", {"limit": 501}),
        ("/api/v1/explorer/transactions", {"before": "x"}),
        ("/api/v1/explorer/token-transfers", {"limit": -1}),
        ("/api/v1/explorer/proposals", {"state": "maybe"}),
    ],
)
async def test_bad_parameters_are_problems(
    xnet: ExplorerNet, path: str, params: dict[str, Any]
) -> None:
    r = await xnet.http[2].get(path, params=params)
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM_JSON
    assert r.json()["code"] == "api.validation"


async def test_proposals_are_tallied_against_the_threshold(xnet: ExplorerNet) -> None:
    k = xnet.keys
    action = acts.from_json({"kind": "set_member_data", "name": "member-3", "data": {"x": "1"}})
    answer = await xnet.gov[1].propose("member-1", k["member-1"], [action], "tag member 3")
    pid = answer["proposal"]["id"]
    r = await xnet.http[2].get("/api/v1/explorer/proposals", params={"state": "open"})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["bootstrapped"] is True and doc["voters"] == 3
    (p,) = [p for p in doc["items"] if p["id"] == pid]
    assert p["state"] == "open" and p["title"] == "tag member 3"
    tally = p["tally"]
    assert (tally["for"], tally["against"], tally["abstained"]) == (1, 0, 2)
    assert tally["needed"] == 2 and tally["rejects_at"] == 2
    assert tally["rules"] == [{"kind": "set_member_data", "rule": "majority", "needed": 2}]

    await xnet.gov[2].vote("member-2", k["member-2"], pid, True)
    r = await xnet.http[3].get("/api/v1/explorer/proposals")
    (p,) = [p for p in r.json()["items"] if p["id"] == pid]
    assert p["state"] == "accepted"
    assert p["tally"]["for"] == 2 and p["ballots"] == {"member-1": "for", "member-2": "for"}

    ledger = by_id(await txs(xnet.http[1], kind="governance"))
    assert ledger[pid]["op"] == "propose" and ledger[pid]["by"] == "member-1"
    ballots = [t for t in ledger.values() if t.get("op") == "ballot" and t["proposal"] == pid]
    assert ballots and ballots[0]["summary"] == f"member-2 votes for {pid}"


async def test_network_view_in_process(xnet: ExplorerNet) -> None:
    leader = xnet.net.leader()
    assert leader is not None
    r = await xnet.http[leader].get("/api/v1/explorer/network")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["observer"] == xnet.name(leader)
    assert doc["leader"] == leader
    assert len(doc["nodes"]) == 3
    me = next(n for n in doc["nodes"] if n["self"])
    assert me["role"] == "leader" and me["lag"] == 0 and me["reachable"] is True
    assert me["ready"] is True and me["raft"] == "voter"
    assert sorted(me["connected_peers"]) == sorted(n for n in xnet.net.ids if n != leader)
    for other in (n for n in doc["nodes"] if not n["self"]):
        # in process no peer has an API address: shown as unknown, with the leader's lag
        assert other["reachable"] is None and "no API address" in other["error"]
        assert isinstance(other["match"], int) and other["lag"] is not None
    assert {(x["a"], x["b"]) for x in doc["links"]} <= {
        (a, b) for a in xnet.net.ids for b in xnet.net.ids if a < b
    }


async def test_the_recorder_keeps_only_the_newest(xnet: ExplorerNet) -> None:
    service = xnet.service(2)
    recorder = LedgerRecorder(service.engine, capacity=4, transfers=2)
    remove = service.add_listener(recorder)
    try:
        ids = [
            (await committed(xnet.http[2], "PUT", f"/api/v1/tables/ring/k{i}", i))["tx_id"]
            for i in range(6)
        ]
        doc = recorder.transactions(limit=100)
        assert len(doc["items"]) == 4 and doc["capacity"] == 4
        held = [t["tx_id"] for t in doc["items"]]
        assert ids[-1] in held and ids[0] not in held
        assert doc["oldest_held"] == doc["items"][-1]["seqno"]
        # history from before the recorder started is read from the ledger once
        transfers = recorder.token_transfers(limit=2)
        assert [t["amount"] for t in transfers] == ["150", "900"]
        # a large command body is described by its size, not kept
        big = Command("elsewhere", b"x" * (MAX_KEPT_BODY + 1))
        ticket = await service.submit(big, wait="committed")
        assert ticket.status is TxStatus.INVALID
        (row,) = [t for t in recorder.transactions(limit=10)["items"] if t["tx_id"] == ticket.tx_id]
        assert row["kind"] == "other" and row["status"] == "Invalid"
        assert row["summary"] == f"elsewhere command of {MAX_KEPT_BODY + 1} bytes"
        assert row["reason"].startswith("engine.app")
    finally:
        remove()
