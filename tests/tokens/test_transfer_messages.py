"""Token operations carrying a message, on three in-process members running the tokens
and multi-party components behind their REST apps: the message is confirmed with its
transfer (ordered by the transfer's own transaction) or fails with it, on every node of
its group, whatever order batches and transactions arrive in."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import func, select
from tests.members import FAST, member_app, member_client
from tests.multiparty.netfix import WAIT, MpNet

from charter.api.problems import PROBLEM_JSON
from charter.ledger.engine import AppliedTx, ApplyResult
from charter.multiparty.component import multiparty_component
from charter.node.ledger_local import LocalLedgerNetwork
from charter.store.models import EventRow, MessageRow, PinRow
from charter.tokens import queries as q
from charter.tokens.component import tokens_component

pytestmark = pytest.mark.asyncio(loop_scope="module")

API = "/api/v1"
C = {"wait": "committed"}


@dataclass
class Net(MpNet):
    """The multi-party network's helpers, and every transaction each member applied."""

    applied: dict[int, list[AppliedTx]] = field(default_factory=dict)

    async def caught_up(self) -> None:
        def same() -> bool:
            return len({self.net.service(n).engine.last_seqno for n in self.net.live()}) == 1

        await self.net.until(same, WAIT)

    async def ready(self, nid: int) -> None:
        async with asyncio.timeout(WAIT):
            await self.component(nid).started.wait()
            await self.messaging(nid).ready.wait()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def tm(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Net]:
    root: Path = tmp_path_factory.mktemp("tokens-messages")
    async with LocalLedgerNetwork(
        "memory",
        settings=FAST,
        components=[tokens_component, multiparty_component],
        data_root=root,
    ) as net:
        apps = {nid: member_app(net, nid) for nid in net.ids}
        clients = {nid: member_client(net, nid, app=apps[nid]) for nid in net.ids}
        n = Net(net, clients, root, apps)
        for nid in net.ids:
            seen = n.applied[nid] = []

            def keep(result: ApplyResult, seen: list[AppliedTx] = seen) -> None:
                seen.extend(result.applied)

            net.service(nid).add_listener(keep)
        await net.elect(WAIT)
        for nid in net.ids:
            await n.ready(nid)
        r = await n.clients[1].post(
            f"{API}/tokens/pools", params=C, json={"name": "pay", "type": "fungible"}
        )
        assert r.status_code == 200, r.text
        r = await n.clients[1].post(
            f"{API}/tokens/mint", params=C, json={"pool": "pay", "to": "member-1", "amount": "1000"}
        )
        assert r.status_code == 200, r.text
        try:
            yield n
        finally:
            for c in n.clients.values():
                await c.aclose()


def _remittance(topic: str, *, to: list[str] | None, marker: str) -> dict[str, Any]:
    message: dict[str, Any] = {
        "header": {"topic": topic, "tag": "remittance"},
        "data": [{"value": {"invoice": marker, "amount": "25"}}],
    }
    if to is not None:
        message["group"] = {"members": to}
    return message


async def _pay(
    tm: Net, amount: str, message: dict[str, Any], *, nid: int = 1, to: str = "member-2"
) -> httpx.Response:
    body = {"pool": "pay", "from": f"member-{nid}", "to": to, "amount": amount, "message": message}
    return await tm.clients[nid].post(f"{API}/tokens/transfers", params=C, json=body)


async def _events(tm: Net, nid: int, *types: str) -> list[EventRow]:
    async with tm.messaging(nid).store.read() as s:
        rows = await s.execute(
            select(EventRow).where(EventRow.type.in_(types)).order_by(EventRow.seq)
        )
        return list(rows.scalars())


async def _message(tm: Net, nid: int, mid: str) -> MessageRow | None:
    async with tm.messaging(nid).store.read() as s:
        row: MessageRow | None = (
            await s.execute(select(MessageRow).where(MessageRow.id == mid))
        ).scalar_one_or_none()
        return row


async def _pins_of(tm: Net, nid: int, tx_id: str) -> list[PinRow]:
    async with tm.messaging(nid).store.read() as s:
        return list((await s.execute(select(PinRow).where(PinRow.tx_id == tx_id))).scalars().all())


def _balances(tm: Net, nid: int) -> dict[str, int]:
    return {b.account: b.balance for b in q.balances(tm.net.service(nid).engine, "pay")}


def _command_of(tm: Net, nid: int, tx_id: str) -> bytes:
    (tx,) = [t for t in tm.applied[nid] if t.tx_id == tx_id]
    assert tx.command is not None and tx.command.app == "tokens"
    return tx.command.body


async def test_a_private_message_is_confirmed_with_its_transfer_and_only_in_its_group(
    tm: Net,
) -> None:
    topic = "remit-" + os.urandom(4).hex()
    marker = "INV-" + os.urandom(6).hex()
    before = _balances(tm, 1)
    r = await _pay(tm, "25", _remittance(topic, to=["member-2"], marker=marker))
    assert r.status_code == 200, r.text
    doc = r.json()
    tx = doc["tx_id"]
    assert doc["status"] == "Committed" and doc["amount"] == "25" and doc["to"] == "member-2"
    message = doc["message"]
    assert message["state"] == "confirmed" and message["type"] == "private"
    assert message["topic"] == topic and len(message["pin"]) == 64 and len(message["batch"]) == 64
    mid = message["id"]
    for nid in (1, 2):
        assert await tm.messaging(nid).wait_final(mid, WAIT) == "confirmed"
        got = (
            await tm.clients[nid].get(f"{API}/messages/{mid}", params={"with_data": True})
        ).json()
        assert got["pin"]["tx_id"] == tx and got["batch"] == message["batch"]
        assert got["data"][0]["value"] == {"invoice": marker, "amount": "25"}
        confirmed = [e for e in await _events(tm, nid, "message_confirmed") if e.reference == mid]
        assert [e.tx_id for e in confirmed] == [tx]
    # the outsider has the pin, nothing else
    await tm.caught_up()
    assert (await tm.clients[3].get(f"{API}/messages/{mid}")).status_code == 404
    await tm.until(lambda: tm.messaging(3).aggregator.processed_seqno >= int(tx.split(".")[1]))
    (pin,) = await _pins_of(tm, 3, tx)
    assert pin.pin == message["pin"] and pin.context is None
    body = _command_of(tm, 3, tx)
    assert topic.encode() not in body and marker.encode() not in body
    assert bytes.fromhex(message["pin"]) in body and bytes.fromhex(message["batch"]) in body
    # the tokens moved on every node
    for nid in (1, 2, 3):
        after = _balances(tm, nid)
        assert after["member-1"] == before["member-1"] - 25
        assert after.get("member-2", 0) == before.get("member-2", 0) + 25
    history = (await tm.clients[3].get(f"{API}/tokens/transfers", params={"pool": "pay"})).json()
    (row,) = [h for h in history if h["tx_id"] == tx]
    assert row["pin"] == message["pin"] and row["message_batch"] == message["batch"]

    # the token event names the message where the node holds it
    async def token_event(nid: int) -> dict[str, Any] | None:
        r = await tm.clients[nid].get(
            f"{API}/events", params={"type": "token_transfer_confirmed", "limit": 1000}
        )
        found = [e for e in r.json() if e["tx_id"] == tx]
        return found[0] if found else None

    for nid in (1, 2, 3):
        async with asyncio.timeout(WAIT):
            while (event := await token_event(nid)) is None:  # noqa: ASYNC110 (an API, polled)
                await asyncio.sleep(0.05)
        assert event["correlator"] == message["pin"]
        assert event.get("message_id") == (mid if nid != 3 else None)
    r = await tm.clients[2].get(
        f"{API}/events",
        params={"type": "token_transfer_confirmed", "with_data": True, "limit": 1000},
    )
    (full,) = [e for e in r.json() if e["tx_id"] == tx]
    assert full["message"]["id"] == mid and full["data"][0]["value"]["invoice"] == marker


async def test_a_refused_transfer_fails_its_message_on_every_group_node(tm: Net) -> None:
    topic = "remit-" + os.urandom(4).hex()
    before = {nid: _balances(tm, nid) for nid in (1, 2, 3)}
    r = await _pay(tm, "1000000", _remittance(topic, to=["member-2"], marker="too-much"))
    assert r.status_code == 409 and r.headers["content-type"].startswith(PROBLEM_JSON)
    problem = r.json()
    assert problem["code"] == "tokens.balance" and problem["tx_status"] == "Invalid"
    tx = problem["tx_id"]
    mid = problem["message"]["id"]
    assert problem["message"]["state"] == "failed"
    for nid in (1, 2):
        assert await tm.messaging(nid).wait_final(mid, WAIT) == "failed"
        row = await _message(tm, nid, mid)
        assert row is not None and row.pin_tx_id == tx
        assert (row.reason or "").startswith("tokens.balance:")
        r = await tm.clients[nid].get(f"{API}/events", params={"type": "message_failed"})
        (event,) = [e for e in r.json() if e["reference"] == mid]
        assert event["tx_id"] == tx and event["reason"].startswith("tokens.balance:")
    await tm.caught_up()
    await tm.until(lambda: tm.messaging(3).aggregator.processed_seqno >= int(tx.split(".")[1]))
    for nid in (1, 2, 3):
        assert not [e for e in await _events(tm, nid, "message_confirmed") if e.reference == mid]
        assert _balances(tm, nid) == before[nid]
        assert await _pins_of(tm, nid, tx) == []  # a refused pin is never placed
    assert await _message(tm, 3, mid) is None


async def test_the_batch_arriving_after_the_refusal_still_fails(tm: Net) -> None:
    transfer = tm.component(1).transfer
    assert transfer is not None
    send_batch = transfer.send_batch
    withheld: list[tuple[Any, ...]] = []

    async def without_member_2(
        recipients: Any, batch: bytes, batch_hash: bytes | None = None, *, blobs: Any = ()
    ) -> bytes:
        withheld.append((batch, batch_hash, blobs))
        recipients = [r for r in recipients if r != "member-2"]
        return await send_batch(recipients, batch, batch_hash, blobs=blobs)

    known = "remit-known-" + os.urandom(4).hex()
    r = await _pay(tm, "1", _remittance(known, to=["member-2"], marker="first"))
    assert r.status_code == 200, r.text  # member-2 now knows this context
    assert await tm.messaging(2).wait_final(r.json()["message"]["id"], WAIT) == "confirmed"
    transfer.send_batch = without_member_2  # type: ignore[method-assign]
    try:
        refused = []
        for topic in (known, "remit-new-" + os.urandom(4).hex()):
            r = await _pay(tm, "1000000", _remittance(topic, to=["member-2"], marker="late"))
            assert r.status_code == 409, r.text
            refused.append((r.json()["tx_id"], r.json()["message"]["id"]))
    finally:
        transfer.send_batch = send_batch  # type: ignore[method-assign]
    m2 = tm.messaging(2)
    last = max(int(tx.split(".")[1]) for tx, _ in refused)
    await tm.until(lambda: m2.aggregator.processed_seqno >= last)
    for _tx, mid in refused:
        assert await _message(tm, 2, mid) is None  # the refusals came first
    assert len(withheld) == 2
    for batch, batch_hash, blobs in withheld:
        await send_batch(["member-2"], batch, batch_hash, blobs=blobs)
    for tx, mid in refused:
        assert await m2.wait_final(mid, WAIT) == "failed"
        row = await _message(tm, 2, mid)
        assert row is not None and row.pin_tx_id == tx
        assert (row.reason or "").startswith("tokens.balance:")
        events = [e for e in await _events(tm, 2, "message_failed") if e.reference == mid]
        assert [e.tx_id for e in events] == [tx]
        assert not [e for e in await _events(tm, 2, "message_confirmed") if e.reference == mid]


async def test_a_broadcast_bound_to_a_transfer_reaches_every_node(tm: Net) -> None:
    r = await _pay(tm, "3", _remittance("notices", to=None, marker="everyone"), to="member-3")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["message"]["type"] == "broadcast"
    for nid in (1, 2, 3):
        assert await tm.messaging(nid).wait_final(doc["message"]["id"], WAIT) == "confirmed"
        row = await _message(tm, nid, doc["message"]["id"])
        assert row is not None and row.pin_tx_id == doc["tx_id"] and row.type == "broadcast"


async def test_a_mint_and_a_burn_carry_messages_too(tm: Net) -> None:
    c1 = tm.clients[1]
    minted = await c1.post(
        f"{API}/tokens/mint",
        params=C,
        json={
            "pool": "pay",
            "to": "member-1",
            "amount": "5",
            "message": _remittance("issuance", to=None, marker="mint"),
        },
    )
    assert minted.status_code == 200, minted.text
    burned = await c1.post(
        f"{API}/tokens/burn",
        params=C,
        json={
            "pool": "pay",
            "from": "member-1",
            "amount": "5",
            "message": _remittance("issuance", to=["member-3"], marker="burn"),
        },
    )
    assert burned.status_code == 200, burned.text
    for doc, group in ((minted.json(), (1, 2, 3)), (burned.json(), (1, 3))):
        assert doc["message"]["state"] == "confirmed"
        for nid in group:
            assert await tm.messaging(nid).wait_final(doc["message"]["id"], WAIT) == "confirmed"
            row = await _message(tm, nid, doc["message"]["id"])
            assert row is not None and row.pin_tx_id == doc["tx_id"]
    assert await _message(tm, 2, burned.json()["message"]["id"]) is None


async def test_bound_and_ordinary_messages_of_one_context_are_delivered_in_ledger_order(
    tm: Net,
) -> None:
    """member-2 gets an ordinary message's batch late: the transfer's message and the
    ordinary one after it wait behind it, then all three arrive in ledger order."""
    topic = "order-" + os.urandom(4).hex()
    group = {"members": ["member-2"]}
    transfer = tm.component(1).transfer
    assert transfer is not None
    send_batch = transfer.send_batch
    withheld: list[tuple[Any, ...]] = []

    async def first_not_to_member_2(
        recipients: Any, batch: bytes, batch_hash: bytes | None = None, *, blobs: Any = ()
    ) -> bytes:
        if not withheld:
            withheld.append((batch, batch_hash, blobs))
            recipients = [r for r in recipients if r != "member-2"]
        return await send_batch(recipients, batch, batch_hash, blobs=blobs)

    async def ordinary(value: int) -> str:
        r = await tm.clients[1].post(
            f"{API}/messages/private",
            params={"wait": "confirmed"},
            json={"header": {"topic": topic}, "group": group, "data": [{"value": value}]},
        )
        assert r.status_code == 200, r.text
        mid: str = r.json()["id"]
        return mid

    transfer.send_batch = first_not_to_member_2  # type: ignore[method-assign]
    try:
        first = await ordinary(1)
    finally:
        transfer.send_batch = send_batch  # type: ignore[method-assign]
    paid = await _pay(tm, "2", _remittance(topic, to=["member-2"], marker="in-order"))
    assert paid.status_code == 200, paid.text
    bound = paid.json()["message"]["id"]
    last = await ordinary(3)
    m2 = tm.messaging(2)
    await tm.until(lambda: m2.aggregator.blocked_by(last) is not None)
    blocked = (await tm.clients[2].get(f"{API}/messages/{bound}/blocked-by")).json()
    assert blocked["blocked"] and blocked["waiting_for"] == "earlier"
    assert blocked["blocker"]["batch"] is not None
    batch, batch_hash, blobs = withheld[0]
    await send_batch(["member-2"], batch, batch_hash, blobs=blobs)
    for mid in (first, bound, last):
        assert await m2.wait_final(mid, WAIT) == "confirmed"

    async def order(nid: int) -> list[str | None]:
        wanted = {first, bound, last}
        return [
            e.reference
            for e in await _events(tm, nid, "message_confirmed")
            if e.reference in wanted
        ]

    assert await order(2) == await order(1) == [first, bound, last]
    rows = [await _message(tm, 2, mid) for mid in (first, bound, last)]
    seqnos = [row.pin_seqno for row in rows if row is not None]
    assert seqnos == sorted(seqnos) and len(set(seqnos)) == 3
    assert rows[1] is not None and rows[1].pin_tx_id == paid.json()["tx_id"]


async def test_bad_message_input_is_refused_before_anything_is_submitted(tm: Net) -> None:
    c1 = tm.clients[1]
    r = await c1.post(
        f"{API}/datatypes",
        json={
            "name": "remittance",
            "version": "1",
            "schema": {"type": "object", "required": ["invoice"]},
        },
    )
    assert r.status_code == 201, r.text
    ok_message = _remittance("bad", to=["member-2"], marker="x")
    transfer = {"pool": "pay", "from": "member-1", "to": "member-2", "amount": "1"}
    cases: list[tuple[dict[str, Any], int, str]] = [
        (
            {**transfer, "message": {**ok_message, "group": {"members": ["nobody"]}}},
            400,
            "mp.message.invalid",
        ),
        ({**transfer, "message": {**ok_message, "data": []}}, 400, "mp.message.invalid"),
        (
            {
                **transfer,
                "message": {
                    **ok_message,
                    "data": [{"value": 1, "datatype": {"name": "none", "version": "1"}}],
                },
            },
            400,
            "mp.datatype.unknown",
        ),
        (
            {
                **transfer,
                "message": {
                    **ok_message,
                    "data": [
                        {"value": {"paid": 1}, "datatype": {"name": "remittance", "version": "1"}}
                    ],
                },
            },
            400,
            "mp.data.schema",
        ),
        (
            {**transfer, "message": {**ok_message, "data": [{"id": "no-such-data"}]}},
            400,
            "mp.data.not_found",
        ),
        ({**transfer, "message": {**ok_message, "idempotency_key": "k"}}, 422, "api.validation"),
        ({**transfer, "pin": "ab" * 32, "message": ok_message}, 422, "tokens.message"),
        ({**transfer, "to": "a|b", "message": ok_message}, 422, "tokens.account"),
        (
            {**transfer, "from": "member-1", "to": "member-1", "message": ok_message},
            422,
            "tokens.transfer.self",
        ),
    ]

    async def stored() -> int:
        async with tm.messaging(1).store.read() as s:
            return int((await s.execute(select(func.count()).select_from(MessageRow))).scalar_one())

    messages = await stored()
    commands = sum(1 for t in tm.applied[1] if t.command is not None)
    for body, status, code in cases:
        r = await c1.post(f"{API}/tokens/transfers", params=C, json=body)
        assert r.status_code == status, (body, r.text)
        assert r.headers["content-type"].startswith(PROBLEM_JSON)
        assert r.json()["code"] == code, r.text
        assert "tx_id" not in r.json()
    r = await c1.post(
        f"{API}/tokens/transfers/batch",
        params=C,
        json={"transfers": [{**transfer, "message": ok_message}]},
    )
    assert r.status_code == 422 and r.json()["code"] == "api.validation"
    await asyncio.sleep(0.2)
    assert await stored() == messages
    assert sum(1 for t in tm.applied[1] if t.command is not None) == commands


async def test_a_restarted_member_catches_up_and_delivers_each_message_once(tm: Net) -> None:
    """Runs last: it restarts member-2 (whose REST client then serves the old node)."""
    topic = "restart-" + os.urandom(4).hex()
    await tm.net.stop(2)
    paid = await _pay(tm, "4", _remittance(topic, to=["member-2"], marker="while-down"))
    assert paid.status_code == 200, paid.text
    refused = await _pay(tm, "1000000", _remittance(topic, to=["member-2"], marker="refused"))
    assert refused.status_code == 409, refused.text
    await tm.net.restart(2)
    await tm.ready(2)
    m2 = tm.messaging(2)
    ok_id, bad_id = paid.json()["message"]["id"], refused.json()["message"]["id"]
    assert await m2.wait_final(ok_id, WAIT) == "confirmed"
    assert await m2.wait_final(bad_id, WAIT) == "failed"
    # once more: the ledger replays everything it applied, nothing is delivered twice
    await tm.net.stop(2)
    await tm.net.restart(2)
    await tm.ready(2)
    m2 = tm.messaging(2)
    await tm.until(
        lambda: m2.aggregator.processed_seqno >= tm.messaging(1).aggregator.processed_seqno
    )
    finals = await _events(tm, 2, "message_confirmed", "message_failed")
    counted: dict[str, int] = {}
    for e in finals:
        if e.reference is not None:
            counted[e.reference] = counted.get(e.reference, 0) + 1
    assert counted.get(ok_id) == 1 and counted.get(bad_id) == 1
    assert all(n == 1 for n in counted.values()), counted
    assert [e.type for e in finals if e.reference == ok_id] == ["message_confirmed"]
