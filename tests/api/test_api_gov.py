"""Governance over REST: three in-process members with the governance component."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest_asyncio

from charter.api import create_app
from charter.crypto.keys import Ed25519PrivateKey
from charter.governance import actions as acts
from charter.governance import state
from charter.governance.client import GovClient, GovClientError
from charter.governance.component import GovernanceComponent, governance_component
from charter.governance.requests import Ballot
from charter.node.ledger_local import LocalLedgerNetwork
from charter.ops import NodeMetrics

from .conftest import FAST, WAIT, node_info

MEASUREMENT = "ef" * 32


@dataclass
class GovNet:
    net: LocalLedgerNetwork
    keys: dict[str, Ed25519PrivateKey]
    clients: dict[int, GovClient]
    http: dict[int, httpx.AsyncClient]

    def component(self, nid: int) -> GovernanceComponent:
        c = self.net.members[nid].components[0]
        assert isinstance(c, GovernanceComponent)
        return c


@pytest_asyncio.fixture
async def gnet() -> AsyncIterator[GovNet]:
    keys = {f"member-{i}": Ed25519PrivateKey.generate() for i in (1, 2, 3, 4)}
    settings = {
        "governance": {
            "members": {n: k.public_key for n, k in keys.items() if n != "member-4"},
            "constitution": {"measurements": [MEASUREMENT]},
        }
    }
    async with LocalLedgerNetwork(
        "memory", settings=FAST, components=[governance_component], component_settings=settings
    ) as net:
        http: dict[int, httpx.AsyncClient] = {}
        for nid in net.ids:
            service = net.service(nid)
            routers = [r for c in net.members[nid].components for r in c.routers()]
            app = create_app(service, node_info(net, nid), NodeMetrics(service), routers=routers)
            http[nid] = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=f"http://node-{nid}.test"
            )
        await net.elect(WAIT)
        await net.until(lambda: all(state.bootstrapped(net.service(n).engine) for n in net.ids))
        try:
            yield GovNet(net, keys, {n: GovClient(h) for n, h in http.items()}, http)
        finally:
            for h in http.values():
                await h.aclose()


def add_member(keys: dict[str, Ed25519PrivateKey], name: str) -> acts.Action:
    return acts.from_json(
        {"kind": "add_member", "name": name, "public_key": keys[name].public_key.hex()}
    )


async def test_propose_vote_accept_over_rest(gnet: GovNet) -> None:
    c1, c2 = gnet.clients[1], gnet.clients[2]
    k = gnet.keys
    answer = await c1.propose("member-1", k["member-1"], [add_member(k, "member-4")], "fourth")
    assert answer["status"] == "Committed"
    pid = answer["proposal"]["id"]
    assert answer["proposal"]["state"] == "open"
    voted = await c2.vote("member-2", k["member-2"], pid, True)
    assert voted["proposal"]["state"] == "accepted"
    # every node applied it
    await gnet.net.until(
        lambda: all(
            state.member(gnet.net.service(n).engine, "member-4") is not None for n in gnet.net.ids
        )
    )
    shown = await gnet.clients[3].proposal(pid)
    assert shown["ballots"] == {"member-1": "for", "member-2": "for"}
    assert shown["actions"][0]["kind"] == "add_member"
    names = [m["name"] for m in await c1.members()]
    assert names == ["member-1", "member-2", "member-3", "member-4"]
    listed = await c1.proposals(state="accepted")
    assert [p["id"] for p in listed] == [pid]
    doc = await c1.constitution()
    assert doc["measurements"] == [MEASUREMENT] and doc["bootstrapped"] is True
    assert {n["name"] for n in await c1.nodes()} == {"member-1", "member-2", "member-3"}


async def test_refusals_are_problems_with_the_rule(gnet: GovNet) -> None:
    c1 = gnet.clients[1]
    k = gnet.keys
    answer = await c1.propose(
        "member-1", k["member-1"], [acts.from_json({"kind": "trigger_snapshot"})]
    )
    pid = answer["proposal"]["id"]
    # forged: signed by another key -> refused at the door
    forged = await c1.sign("member-2", k["member-3"], Ballot(pid, True))
    try:
        await c1.send(forged)
        raise AssertionError("forged ballot accepted")
    except GovClientError as exc:
        assert exc.code == "gov.signature" and exc.status == 403
    # stale
    old = await c1.sign("member-2", k["member-2"], Ballot(pid, True), created_ms=1_000)
    try:
        await c1.send(old)
        raise AssertionError("stale ballot accepted")
    except GovClientError as exc:
        assert exc.code == "gov.stale"
    # replayed: the second copy is refused by the handler, with the transaction id
    ballot = await c1.sign("member-2", k["member-2"], Ballot(pid, False))
    await c1.send(ballot)
    response = await gnet.http[2].post(
        f"/api/v1/gov/proposals/{pid}/ballots",
        params={"wait": "committed"},
        json={"request": base64.b64encode(ballot.encode()).decode()},
    )
    assert response.status_code == 409
    problem = response.json()
    assert problem["code"] == "gov.replay" and problem["tx_id"]
    assert response.headers["content-type"].startswith("application/problem+json")
    # unknown proposal, wrong route, not found
    try:
        await c1.vote("member-3", k["member-3"], "7.7777", True)
        raise AssertionError("ballot on an unknown proposal accepted")
    except GovClientError as exc:
        assert exc.code == "gov.proposal.unknown" and exc.status == 404
    missing = await gnet.http[1].get("/api/v1/gov/proposals/1.2")
    assert missing.status_code == 404 and missing.json()["code"] == "gov.proposal.not_found"
    bad = await gnet.http[1].post("/api/v1/gov/proposals", json={"request": "%%%"})
    assert bad.status_code == 400 and bad.json()["code"] == "gov.format"


async def test_withdraw_over_rest(gnet: GovNet) -> None:
    c3 = gnet.clients[3]
    k = gnet.keys
    answer = await c3.propose(
        "member-3", k["member-3"], [acts.from_json({"kind": "trigger_snapshot"})]
    )
    pid = answer["proposal"]["id"]
    out = await c3.withdraw("member-3", k["member-3"], pid)
    assert out["proposal"]["state"] == "withdrawn"


async def test_transfer_leadership_intent_moves_the_leader(gnet: GovNet) -> None:
    net = gnet.net
    leader = await net.elect(WAIT)
    target = next(n for n in net.ids if n != leader)
    k = gnet.keys
    action = acts.from_json({"kind": "transfer_leadership", "node": f"member-{target}"})
    answer = await gnet.clients[1].propose("member-1", k["member-1"], [action])
    voter = 2
    await gnet.clients[voter].vote(
        f"member-{voter}", k[f"member-{voter}"], answer["proposal"]["id"], True
    )
    await net.until(lambda: net.leader() == target, WAIT)


async def test_retiring_the_leader_keeps_the_network_available(gnet: GovNet) -> None:
    net = gnet.net
    leader = await net.elect(WAIT)
    others = [n for n in net.ids if n != leader]
    k = gnet.keys
    c = gnet.clients[others[0]]
    name = f"member-{others[0]}"
    retire = acts.from_json({"kind": "retire_node", "name": f"member-{leader}"})
    answer = await c.propose(name, k[name], [retire])
    second = f"member-{others[1]}"
    voted = await gnet.clients[others[1]].vote(second, k[second], answer["proposal"]["id"], True)
    assert voted["proposal"]["state"] == "accepted" and voted["status"] == "Committed"
    await net.until(lambda: net.leader() in others, WAIT)
    # the remaining trusted nodes still commit governance (and anything else)
    later = await c.propose(name, k[name], [acts.from_json({"kind": "trigger_snapshot"})])
    assert later["status"] == "Committed"
    nodes = {n["name"]: n["status"] for n in await c.nodes()}
    assert nodes[f"member-{leader}"] == "retired"


async def test_a_relayed_join_request_is_checked_against_the_allowed_code(gnet: GovNet) -> None:
    import os
    import time

    from charter.crypto.certs import self_signed_certificate
    from charter.crypto.keys import P256PrivateKey
    from charter.governance.join import JoinRequest, join_command, sign_join_request
    from charter.identity.attestation import NODE, attest
    from charter.ledger.engine import TxStatus
    from charter.ledger.trust import NodeCert

    node_key = Ed25519PrivateKey.generate()
    cert = self_signed_certificate(P256PrivateKey.generate(), common_name="joiner")

    def request(measurement: str) -> JoinRequest:
        return JoinRequest(
            gnet.net.network_id, "joiner", "member-1", node_key.public_key,
            NodeCert.from_x509(cert.x509), "127.0.0.1", 7001, "http://127.0.0.1:7000",
            measurement, int(time.time() * 1000), os.urandom(16),
            attest(gnet.keys["member-1"], node_key.public_key, NODE, epoch=0),
        )  # fmt: skip

    service = gnet.net.service(2)
    refused = await service.submit(
        join_command(sign_join_request(request("00" * 32), node_key)), wait="committed"
    )
    assert refused.status is TxStatus.INVALID
    assert (refused.reason or "").startswith("gov.measurement: code measurement 0000")
    admitted = await service.submit(
        join_command(sign_join_request(request(MEASUREMENT), node_key)), wait="committed"
    )
    assert admitted.status is TxStatus.COMMITTED
    nodes = {n["name"]: n["status"] for n in await gnet.clients[2].nodes()}
    assert nodes["joiner"] == "pending"
