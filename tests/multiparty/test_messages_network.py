"""Three in-process members running the multi-party component: broadcast, private with a
blob, ordering across authors, idempotency, and refusals that store nothing (SQLite; one
PostgreSQL run at the end)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import func, select
from tests.conftest import fresh_postgres_database
from tests.multiparty.netfix import WAIT, MpNet, mp_network

from charter.api.fastpath import FastPaths
from charter.multiparty.model import Group
from charter.store.models import DataRow, EventRow, MessageRow

pytestmark = pytest.mark.asyncio(loop_scope="module")

API = "/api/v1"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mp(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[MpNet]:
    async with mp_network(tmp_path_factory.mktemp("mp")) as net:
        yield net


async def _final(mp: MpNet, nid: int, mid: str) -> dict[str, Any]:
    """The message as member ``nid`` knows it once it is confirmed or failed there."""
    async with asyncio.timeout(WAIT):
        while True:
            state = await mp.messaging(nid).wait_final(mid, WAIT)
            if state is not None:
                break
    r = await mp.clients[nid].get(f"{API}/messages/{mid}", params={"with_data": "true"})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def _counts(mp: MpNet, nid: int) -> tuple[int, int]:
    async with mp.messaging(nid).store.read() as s:
        messages = (await s.execute(select(func.count()).select_from(MessageRow))).scalar_one()
        data = (await s.execute(select(func.count()).select_from(DataRow))).scalar_one()
    return int(messages), int(data)


async def test_broadcast_reaches_every_member_with_its_data(mp: MpNet) -> None:
    c1 = mp.clients[1]
    r = await c1.post(
        f"{API}/datatypes",
        json={
            "name": "order",
            "version": "1",
            "schema": {
                "type": "object",
                "required": ["qty"],
                "properties": {"qty": {"type": "integer"}},
            },
        },
    )
    assert r.status_code == 201, r.text
    r = await c1.post(
        f"{API}/messages/broadcast",
        params={"wait": "confirmed"},
        json={
            "header": {"topic": "orders", "tag": "new"},
            "data": [
                {"datatype": {"name": "order", "version": "1"}, "value": {"qty": 3}},
                {"value": "note"},
            ],
            "idempotency_key": "bc-1",
        },
    )
    assert r.status_code == 200, r.text
    sent = r.json()
    assert sent["state"] == "confirmed"
    assert sent["tag"] == ("new" if hasattr(MessageRow, "tag") else "")
    for nid in (1, 2, 3):
        got = await _final(mp, nid, sent["id"])
        assert got["state"] == "confirmed"
        assert got["pin"] == sent["pin"]
        assert [d.get("value") for d in got["data"]] == [{"qty": 3}, "note"]
        assert got["author"] == {"member": "member-1", "node": "member-1"}
    # the same idempotency key answers the same message and stores nothing new
    before = await _counts(mp, 1)
    again = await c1.post(
        f"{API}/messages/broadcast",
        json={"header": {"topic": "orders"}, "data": [{"value": 1}], "idempotency_key": "bc-1"},
    )
    assert again.status_code == 200 and again.json()["id"] == sent["id"]
    assert await _counts(mp, 1) == before
    blocked = await c1.get(f"{API}/messages/{sent['id']}/blocked-by")
    assert blocked.json()["blocked"] is False


async def test_private_reaches_exactly_the_group_and_the_outsider_keeps_nothing(
    mp: MpNet,
) -> None:
    c1, c2, c3 = mp.clients[1], mp.clients[2], mp.clients[3]
    marker = "payload-" + os.urandom(8).hex()
    topic = "secret-topic-" + os.urandom(4).hex()
    blob = os.urandom(200_000)
    up = await c1.post(f"{API}/data/blob", params={"name": "report.bin"}, content=blob)
    assert up.status_code == 201, up.text
    blob_id = up.json()["id"]
    r = await c1.post(
        f"{API}/messages/private",
        params={"wait": "confirmed"},
        json={
            "header": {"topic": topic},
            "group": {"members": ["member-2"]},
            "data": [{"value": {"text": marker}}, {"id": blob_id}],
        },
    )
    assert r.status_code == 200, r.text
    mid = r.json()["id"]
    got = await _final(mp, 2, mid)
    assert got["state"] == "confirmed"
    assert got["data"][0]["value"] == {"text": marker}
    assert got["data"][1]["blob"]["hash"] == up.json()["blob"]["hash"]
    dl = await c2.get(f"{API}/data/{blob_id}/blob")
    assert dl.status_code == 200 and dl.content == blob
    # the outsider: no message, no data, no blob, no group
    assert (await c3.get(f"{API}/messages/{mid}")).status_code == 404
    assert (await c3.get(f"{API}/data/{blob_id}")).status_code == 404
    listed = await c3.get(f"{API}/messages", params={"topic": topic})
    assert listed.json()["items"] == []
    await mp.until(lambda: mp.messaging(3).aggregator.processed_seqno >= got_seqno(got))
    group = Group.of(["member-1", "member-2"])
    needles = [
        marker.encode(),
        topic.encode(),
        blob[1000:1064],
        group.hash,
        group.hash.hex().encode(),
        bytes.fromhex(got["context"]),
        got["context"].encode(),
        mid.encode(),
    ]
    outsider = mp.root / "member-3"
    files = [p for p in outsider.rglob("*") if p.is_file()]
    assert files, "the outsider has a data directory with files"
    for path in files:
        content = path.read_bytes()
        for n in needles:
            assert n not in content, f"{n[:16]!r} found in {path}"
    storage = mp.net.service(3).driver.storage
    log = b"".join(e.data for e in storage.entries(storage.first_index(), storage.last_index() + 1))
    assert log, "the outsider holds the ledger"
    for n in needles:
        assert n not in log
    # the member in the group has it on disk (the scan would find it)
    inside = b"".join(p.read_bytes() for p in (mp.root / "member-2").rglob("*") if p.is_file())
    assert blob[1000:1064] in inside


def got_seqno(message: dict[str, Any]) -> int:
    return int(message["pin"]["seqno"])


async def test_every_member_releases_one_context_in_the_same_order(mp: MpNet) -> None:
    async def burst(nid: int) -> list[str]:
        ids = []
        for i in range(8):
            r = await mp.clients[nid].post(
                f"{API}/messages/broadcast",
                json={"header": {"topic": "race"}, "data": [{"value": [nid, i]}]},
            )
            assert r.status_code == 202, r.text
            ids.append(r.json()["id"])
        return ids

    sent = await asyncio.gather(*(burst(n) for n in (1, 2, 3)))
    every = [m for ids in sent for m in ids]
    for nid in (1, 2, 3):
        for mid in every:
            await _final(mp, nid, mid)
    orders = []
    for nid in (1, 2, 3):
        async with mp.messaging(nid).store.read() as s:
            rows = (
                await s.execute(
                    select(EventRow.reference)
                    .where(EventRow.type == "message_confirmed", EventRow.topic == "race")
                    .order_by(EventRow.seq)
                )
            ).scalars()
            orders.append(list(rows))
    assert sorted(orders[0]) == sorted(every)
    assert orders[0] == orders[1] == orders[2]
    for ids in sent:  # one author's messages keep their order
        assert [m for m in orders[0] if m in ids] == ids


async def test_the_fast_submit_answers_like_fastapi(mp: MpNet) -> None:
    """``?timeout=`` makes the fast handler decline: the same submit through FastAPI."""
    c1 = mp.clients[1]
    (fast,) = [m for m in mp.apps[1].user_middleware if m.cls is FastPaths]
    assert ("POST", f"{API}/messages/private") in fast.kwargs["routes"]
    body = {"header": {"topic": "fast"}, "group": {"members": ["member-2"]}, "data": [{"value": 1}]}
    answers = []
    for query in ("", "?timeout=30", "?wait=confirmed", "?wait=confirmed&timeout=30"):
        r = await c1.post(f"{API}/messages/private{query}", json=body)
        assert r.status_code == (200 if "wait" in query else 202), r.text
        assert r.headers["content-type"] == "application/json"
        answers.append(r.json())
    for a in answers[1:]:
        assert set(a) == set(answers[0])
        assert {k: type(v) for k, v in a.items()} | {"pin": None, "confirmed_us": None} == {
            k: type(v) for k, v in answers[0].items()
        } | {"pin": None, "confirmed_us": None}
    assert answers[2]["state"] == answers[3]["state"] == "confirmed"
    again = await c1.post(f"{API}/messages/private", json={**body, "idempotency_key": "fast-1"})
    same = await c1.post(
        f"{API}/messages/private?timeout=5", json={**body, "idempotency_key": "fast-1"}
    )
    assert (again.status_code, same.status_code) == (202, 200)
    assert same.json()["id"] == again.json()["id"]
    # bodies the model refuses, or that are not JSON, get FastAPI's 422 problem either way
    for content, ctype in (
        (b'{"data": [{"value": 1}], "extra": 1}', "application/json"),
        (b'{"data": [{"value": 1}]', "application/json"),
        (b'{"data": [{"value": 1}]}', "text/plain"),
    ):
        r = await c1.post(
            f"{API}/messages/broadcast", content=content, headers={"content-type": ctype}
        )
        assert r.status_code == 422, (content, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("/messages/broadcast", {"header": {"topic": "x"}, "data": []}, "mp.message.invalid"),
        (
            "/messages/broadcast",
            {"header": {"topic": "x"}, "data": [{"value": 1}], "extra": 1},
            None,
        ),
        (
            "/messages/private",
            {"header": {"topic": "x"}, "data": [{"value": 1}]},
            "mp.message.invalid",
        ),
        (
            "/messages/private",
            {"group": {"members": ["nobody"]}, "data": [{"value": 1}]},
            "mp.message.invalid",
        ),
        (
            "/messages/broadcast",
            {"data": [{"datatype": {"name": "order", "version": "1"}, "value": {"qty": "many"}}]},
            "mp.data.schema",
        ),
        (
            "/messages/broadcast",
            {"data": [{"datatype": {"name": "nope", "version": "1"}, "value": 1}]},
            "mp.datatype.unknown",
        ),
        (
            "/messages/broadcast",
            {"data": [{"id": "00000000-0000-0000-0000-000000000000"}]},
            "mp.data.not_found",
        ),
        ("/data", {"datatype": {"name": "order", "version": "1"}, "value": {}}, "mp.data.schema"),
        (
            "/datatypes",
            {"name": "bad", "version": "1", "schema": {"type": 12}},
            "mp.datatype.schema",
        ),
    ],
)
async def test_refusals_are_problems_and_store_nothing(
    mp: MpNet, path: str, body: dict[str, Any], code: str | None
) -> None:
    before = await _counts(mp, 1)
    r = await mp.clients[1].post(API + path, json=body)
    assert 400 <= r.status_code < 500, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    if code is not None:
        assert r.json()["code"] == code
    assert await _counts(mp, 1) == before
    bad = await mp.clients[1].post(
        f"{API}/messages/broadcast",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert bad.status_code == 422 or bad.status_code == 400
    assert bad.headers["content-type"].startswith("application/problem+json")


async def test_postgresql_members(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    admin = request.getfixturevalue("postgres_url")
    urls = {f"member-{n}": await fresh_postgres_database(admin) for n in (1, 2, 3)}
    async with mp_network(tmp_path, {"multiparty": {"store_urls": urls}}) as net:
        assert all(net.messaging(n).store.dialect == "postgresql" for n in (1, 2, 3))
        r = await net.clients[1].post(
            f"{API}/messages/private",
            params={"wait": "confirmed"},
            json={
                "group": {"members": ["member-3"]},
                "header": {"topic": "pg"},
                "data": [{"value": 7}],
            },
        )
        assert r.status_code == 200, r.text
        got = await _final(net, 3, r.json()["id"])
        assert got["data"][0]["value"] == 7
        assert (await net.clients[2].get(f"{API}/messages/{r.json()['id']}")).status_code == 404


async def test_a_submit_answers_the_message_as_stored(mp: MpNet) -> None:
    """The answer is built from the rows the round wrote (read back only when the message
    took up stored data): it must equal what a later read of the message gives."""
    c1 = mp.clients[1]
    up = await c1.post(f"{API}/data", json={"value": {"kept": True}})
    assert up.status_code == 201, up.text
    moving = ("state", "pin", "confirmed_us")
    bodies = [
        {"data": [{"value": None}, {"value": [1, "two"]}, {"value": {"a": 1.5}}]},
        {"data": [{"value": "first"}, {"id": up.json()["id"]}]},
    ]
    for body in bodies:
        body = {
            "header": {"topic": "as-stored", "tag": "t"},
            "group": {"members": ["member-2"]},
            **body,
        }
        r = await c1.post(f"{API}/messages/private", json=body)
        assert r.status_code == 202, r.text
        sent = r.json()
        assert sent["state"] == "sent" and sent["batch"] and sent["hash"]
        got = await c1.get(f"{API}/messages/{sent['id']}", params={"with_data": "true"})
        assert got.status_code == 200, got.text
        stored = got.json()
        assert {k: v for k, v in sent.items() if k not in moving} == {
            k: v for k, v in stored.items() if k not in moving
        }
        assert [d.get("value") for d in sent["data"]] == [d.get("value") for d in stored["data"]]
