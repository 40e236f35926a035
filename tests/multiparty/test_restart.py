"""A member that was down catches up: batches held in the sender's outbox arrive, the ledger
replays its pins, and every message is delivered there exactly once, in pin order."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from sqlalchemy import select
from tests.multiparty.netfix import WAIT, mp_network

from charter.store.models import EventRow

API = "/api/v1"


async def _confirmed(mp: object, nid: int) -> list[str]:
    service = mp.messaging(nid)  # type: ignore[attr-defined]
    async with service.store.read() as s:
        rows = await s.execute(
            select(EventRow.reference)
            .where(EventRow.type == "message_confirmed", EventRow.topic == "restart")
            .order_by(EventRow.seq)
        )
        return [r for (r,) in rows]


async def test_a_member_restarts_and_receives_everything_once(tmp_path: Path) -> None:
    async with mp_network(tmp_path) as mp:

        async def send(n: int) -> str:
            r = await mp.clients[1].post(
                f"{API}/messages/private",
                json={
                    "header": {"topic": "restart"},
                    "group": {"members": ["member-2"]},
                    "data": [{"value": n}],
                },
            )
            assert r.status_code == 202, r.text
            mid: str = r.json()["id"]
            return mid

        before = [await send(i) for i in range(3)]
        for mid in before:
            assert await mp.messaging(2).wait_final(mid, WAIT) == "confirmed"
        await mp.net.stop(2)
        during = [await send(10 + i) for i in range(3)]
        for mid in during:
            assert await mp.messaging(1).wait_final(mid, WAIT) == "confirmed"
        await mp.net.restart(2)
        async with asyncio.timeout(WAIT):
            await mp.component(2).started.wait()
            await mp.messaging(2).ready.wait()
        for mid in during:
            assert await mp.messaging(2).wait_final(mid, WAIT) == "confirmed"
        at2 = await _confirmed(mp, 2)
        assert Counter(at2) == Counter(before + during)  # each exactly once
        assert at2 == await _confirmed(mp, 1)  # and in the same order as the author
        # the outsider keeps the pins it cannot place across a restart too
        outsider = mp.messaging(3)
        await mp.until(
            lambda: (
                outsider.aggregator.processed_seqno >= mp.messaging(1).aggregator.processed_seqno
            )
        )
        held_back = len(outsider.aggregator._unknown)
        assert held_back >= len(before + during)
        await mp.net.stop(3)
        await mp.net.restart(3)
        async with asyncio.timeout(WAIT):
            await mp.component(3).started.wait()
            await mp.messaging(3).ready.wait()
        assert len(mp.messaging(3).aggregator._unknown) == held_back
