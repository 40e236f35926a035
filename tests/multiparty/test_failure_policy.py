"""A batch that does not arrive: its context is held (blocked-by says by what), other
contexts flow, and under ``fail_after_s`` the head fails at a ledger time every node
shares, the context moves on, and the batch arriving late fails its message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from tests.multiparty.netfix import WAIT, mp_network

from charter.store.models import EventRow

API = "/api/v1"


async def test_a_missing_batch_fails_after_the_ledger_timeout(tmp_path: Path) -> None:
    async with mp_network(tmp_path, {"multiparty": {"fail_after_s": 1.0}}) as mp:
        transfer = mp.component(1).transfer
        assert transfer is not None
        send_batch = transfer.send_batch
        withheld: list[tuple[Any, ...]] = []

        async def without_member_2(
            recipients: Any, batch: bytes, batch_hash: bytes | None = None, *, blobs: Any = ()
        ) -> bytes:
            if not withheld:
                withheld.append((recipients, batch, batch_hash, blobs))
                recipients = [r for r in recipients if r != "member-2"]
            return await send_batch(recipients, batch, batch_hash, blobs=blobs)

        transfer.send_batch = without_member_2  # type: ignore[method-assign]

        async def send(topic: str, value: int) -> str:
            r = await mp.clients[1].post(
                f"{API}/messages/private",
                params={"wait": "confirmed"},
                json={
                    "header": {"topic": topic},
                    "group": {"members": ["member-2"]},
                    "data": [{"value": value}],
                },
            )
            assert r.status_code == 200, r.text
            mid: str = r.json()["id"]
            return mid

        lost = await send("held", 1)
        behind = await send("held", 2)
        other = await send("free", 3)
        m2 = mp.messaging(2)
        assert await m2.wait_final(other, WAIT) == "confirmed"  # another context flows
        blocked = (await mp.clients[2].get(f"{API}/messages/{behind}/blocked-by")).json()
        if blocked["blocked"]:  # unless the deadline already passed
            assert blocked["waiting_for"] == "earlier"
            assert blocked["blocker"]["batch"] is not None
            assert blocked["deadline_us"] is not None
        assert await m2.wait_final(behind, WAIT) == "confirmed"
        async with m2.store.read() as s:
            failed = list(
                (
                    await s.execute(select(EventRow).where(EventRow.type == "message_failed"))
                ).scalars()
            )
        assert len(failed) == 1 and failed[0].reference is None
        # the withheld batch arrives late: its message fails, with its id
        _recipients, batch, batch_hash, blobs = withheld[0]
        await send_batch(["member-2"], batch, batch_hash, blobs=blobs)
        assert await m2.wait_final(lost, WAIT) == "failed"
        got = (await mp.clients[2].get(f"{API}/messages/{lost}")).json()
        assert got["state"] == "failed" and "after" in (got["reason"] or "")
        assert await mp.messaging(1).wait_final(lost, WAIT) == "confirmed"  # the author had it
