"""The token event writer: committed prefix only, in order, and once across restarts."""

from __future__ import annotations

from pathlib import Path

from charter.store import open_store
from charter.store.events import NewEvent, list_events
from charter.tokens.events import append_committed


def ev(n: int) -> tuple[int, NewEvent]:
    return n, NewEvent("token_transfer_confirmed", reference="p", topic="tokens/p", tx_id=f"1.{n}")


async def test_the_cursor_makes_a_replayed_batch_append_nothing(tmp_path: Path) -> None:
    store = await open_store(None, tmp_path)
    try:
        assert await append_committed(store, [ev(3), ev(5)]) == 2
        # a restarted node re-applies the log and offers the same and later seqnos again
        assert await append_committed(store, [ev(3), ev(5), ev(8)]) == 1
        assert await append_committed(store, [ev(5)]) == 0
        async with store.read() as s:
            rows = await list_events(s, topic="tokens/p")
        assert [r.tx_id for r in rows] == ["1.3", "1.5", "1.8"]
    finally:
        await store.close()
