"""Writes, reads, transactions, receipts, status and metrics against three real members."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from charter.api.docs import swagger_assets
from charter.ledger.engine import TxStatus
from charter.ledger.errors import LedgerError
from charter.ledger.verify import verify_receipt
from charter.ops import STALL_REASONS

if TYPE_CHECKING:
    from conftest import Cluster

pytestmark = pytest.mark.asyncio(loop_scope="module")
WAIT = 15.0


def follower_of(cluster: Cluster) -> tuple[int, int]:
    leader = cluster.net.leader()
    assert leader is not None
    follower = next(n for n in cluster.net.ids if n != leader)
    return leader, follower


async def committed_put(cluster: Cluster, nid: int, table: str, key: str, value: object) -> str:
    r = await cluster.nodes[nid].client.put(
        f"/api/v1/tables/{table}/{key}", params={"wait": "committed"}, json=value
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "Committed"
    assert set(body) == {"tx_id", "status"}
    return str(body["tx_id"])


async def everywhere_committed(cluster: Cluster, tx_id: str) -> None:
    services = [cluster.net.service(n) for n in cluster.net.ids]
    await cluster.net.until(
        lambda: all(s.status(tx_id) is TxStatus.COMMITTED for s in services), WAIT
    )


async def test_put_at_follower_and_leader_reads_everywhere(cluster: Cluster) -> None:
    leader, follower = follower_of(cluster)
    doc = {"owner": "acme", "amounts": [3, 1.5], "note": "café"}
    at_follower = await committed_put(cluster, follower, "accounts", "f-1", doc)
    at_leader = await committed_put(cluster, leader, "accounts", "l-1", [1, 2])
    assert at_follower != at_leader
    canonical = b'{"amounts":[3,1.5],"note":"caf\xc3\xa9","owner":"acme"}'
    for node in cluster.nodes.values():
        r = await node.client.get(
            "/api/v1/tables/accounts/f-1", params={"consistency": "linearizable"}
        )
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/json"
        assert r.content == canonical
        assert r.json() == doc
        r = await node.client.get(
            "/api/v1/tables/accounts/l-1", params={"consistency": "linearizable"}
        )
        assert r.json() == [1, 2]
    # the writer sees its Committed write in the committed state (the default)
    r = await cluster.nodes[follower].client.get("/api/v1/tables/accounts/f-1")
    assert r.content == canonical
    r = await cluster.nodes[leader].client.get(
        "/api/v1/tables/accounts/f-1", params={"consistency": "local"}
    )
    assert r.content == canonical


async def test_keys_with_slashes_and_delete(cluster: Cluster) -> None:
    _leader, follower = follower_of(cluster)
    await committed_put(cluster, follower, "docs", "a/b/c", {"v": 1})
    client = cluster.nodes[follower].client
    r = await client.get("/api/v1/tables/docs/a/b/c")
    assert r.json() == {"v": 1}
    r = await client.delete("/api/v1/tables/docs/a/b/c", params={"wait": "committed"})
    assert r.status_code == 200 and r.json()["status"] == "Committed"
    r = await client.get("/api/v1/tables/docs/a/b/c")
    assert r.status_code == 404
    assert r.json()["code"] == "api.not_found"


async def test_accepted_write_then_status(cluster: Cluster) -> None:
    _, follower = follower_of(cluster)
    r = await cluster.nodes[follower].client.put("/api/v1/tables/accounts/acc-1", json=7)
    assert r.status_code == 200
    body = r.json()
    assert body["status"] in ("Pending", "Committed")
    tx_id = body["tx_id"]
    await everywhere_committed(cluster, tx_id)
    for node in cluster.nodes.values():
        r = await node.client.get(f"/api/v1/tx/{tx_id}")
        assert r.status_code == 200
        assert r.json() == {"tx_id": tx_id, "status": "Committed"}
    r = await cluster.nodes[follower].client.get("/api/v1/tx/999.999999")
    assert r.json() == {"tx_id": "999.999999", "status": "Unknown"}


async def test_receipts_verify_offline_on_every_node(cluster: Cluster) -> None:
    _, follower = follower_of(cluster)
    tx_id = await committed_put(cluster, follower, "accounts", "receipted", {"x": 1})
    await everywhere_committed(cluster, tx_id)
    trusted = cluster.net.trusted()  # built from the members' ledger certificates
    for node in cluster.nodes.values():
        r = await node.client.get(f"/api/v1/tx/{tx_id}/receipt")
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/json"
        assert json.loads(r.content)
        verified = verify_receipt(r.content, trusted)
        assert verified.tx_id == tx_id
        r = await node.client.get(f"/api/v1/tx/{tx_id}/receipt.cose")
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/cose"
        verified = verify_receipt(r.content, trusted)
        assert verified.form == "cose"
        tampered = bytearray(r.content)
        tampered[-3] ^= 1
        with pytest.raises(LedgerError):
            verify_receipt(bytes(tampered), trusted)


async def test_status_fields(cluster: Cluster) -> None:
    leader, _follower = follower_of(cluster)
    for nid, node in cluster.nodes.items():
        r = await node.client.get("/api/v1/status")
        assert r.status_code == 200
        s = r.json()
        assert s["name"] == f"node-{nid}"
        assert s["member"] == f"member-{nid}"
        assert s["raft_id"] == nid
        assert len(s["node_id"]) == 64
        assert s["role"] == ("leader" if nid == leader else "follower")
        assert s["leader"] == leader
        assert s["term"] >= 1
        assert s["applied_index"] <= s["commit_index"]
        assert s["peers"] == [n for n in cluster.net.ids if n != nid]
        assert s["halted"] is False


async def all_connected(cluster: Cluster) -> None:
    ids = cluster.net.ids
    transports = [cluster.net.service(n).member.transport for n in ids]
    await cluster.net.until(
        lambda: all(
            t.connected(p) for n, t in zip(ids, transports, strict=True) for p in ids if p != n
        ),
        WAIT,
    )


async def test_health_and_readiness(cluster: Cluster) -> None:
    for node in cluster.nodes.values():
        r = await node.client.get("/healthz")
        assert r.status_code == 200 and r.json() == {"status": "ok"}
    await all_connected(cluster)
    for node in cluster.nodes.values():
        r = await node.client.get("/readyz")
        assert r.status_code == 200, r.text
        assert r.json() == {"ready": True, "reasons": []}


def samples(text: str) -> dict[str, list[Sample]]:
    out: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append(sample)
    return out


def value(found: dict[str, list[Sample]], name: str, **labels: str) -> float:
    for s in found[name]:
        if all(s.labels.get(k) == v for k, v in labels.items()):
            return float(s.value)
    raise AssertionError(f"no sample {name} {labels}")


async def test_metrics(cluster: Cluster) -> None:
    leader, follower = follower_of(cluster)
    await committed_put(cluster, follower, "accounts", "m-1", 1)
    await committed_put(cluster, leader, "accounts", "m-2", 2)
    await all_connected(cluster)
    for nid, node in cluster.nodes.items():
        r = await node.client.get("/metrics")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain")
        found = samples(r.text)
        assert value(found, "charter_raft_term") >= 1
        roles = {s.labels["role"]: s.value for s in found["charter_raft_role"]}
        assert set(roles) == {"leader", "follower", "candidate", "learner"}
        assert sum(roles.values()) == 1
        assert roles["leader" if nid == leader else "follower"] == 1
        commit = value(found, "charter_raft_commit_index")
        applied = value(found, "charter_raft_applied_index")
        assert 0 < applied <= commit
        assert value(found, "charter_peers_connected") == 2
        assert value(found, "charter_ready") == 1
        for reason in STALL_REASONS:
            assert value(found, "charter_stall", reason=reason) == 0
        assert value(found, "charter_proposals_total", kind="signature") >= 0
        assert value(found, "charter_divergence_alarms_total") == 0
        assert "charter_fsync_duration_seconds_bucket" in found
        assert value(found, "charter_batch_size_count") >= 0
        assert "charter_commit_latency_seconds_bucket" in found
        if nid in (leader, follower):
            assert value(found, "charter_proposals_total", kind="batch") >= 1
            assert value(found, "charter_commit_latency_seconds_count") >= 1
            assert value(found, "charter_commit_latency_seconds_sum") > 0
        lags = found.get("charter_replication_lag_entries", [])
        if nid == leader:
            assert value(found, "charter_signature_transactions_total") >= 1
            assert {s.labels["peer"] for s in lags} == {
                str(n) for n in cluster.net.ids if n != leader
            }
            assert all(s.value >= 0 for s in lags)
        else:
            assert lags == []


async def test_openapi_served_locally(cluster: Cluster) -> None:
    client = next(iter(cluster.nodes.values())).client
    r = await client.get("/api/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    for path in (
        "/api/v1/tables/{table}/{key}",
        "/api/v1/tx/{tx_id}",
        "/api/v1/tx/{tx_id}/receipt",
        "/api/v1/tx/{tx_id}/receipt.cose",
        "/api/v1/status",
        "/readyz",
        "/metrics",
    ):
        assert path in paths, path
    r = await client.get("/api")
    assert r.status_code == 200
    assert "text/html" in r.headers["content-type"]
    assert "/api/openapi.json" in r.text


async def test_swagger_ui_assets_are_served_by_the_node(cluster: Cluster) -> None:
    if swagger_assets() is None:
        pytest.skip("fastapi-offline (the shipped Swagger UI assets) is not installed")
    client = next(iter(cluster.nodes.values())).client
    page = (await client.get("/api")).text
    assert "cdn." not in page
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/api/static/{asset}" in page
        r = await client.get(f"/api/static/{asset}")
        assert r.status_code == 200 and len(r.content) > 1000
