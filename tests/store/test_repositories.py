"""The multi-party repositories: uniqueness rules, listing filters, state changes."""

from __future__ import annotations

import pytest

from charter.store import Store, StoreConflict
from charter.store.batches import (
    get_blob,
    insert_batch,
    insert_pins,
    mark_pins_dispatched,
    pending_pins,
    set_batch_state,
    upsert_blob,
)
from charter.store.data import get_datatype, insert_datatype, list_datatypes
from charter.store.groups import ensure_group, get_group, groups_of_member
from charter.store.messages import (
    MessageFilter,
    by_idempotency_key,
    get_message,
    insert_message,
    list_messages,
    set_message_state,
)
from charter.store.models import BatchRow, DatatypeRow, MessageRow, PinRow


def _msg(i: int, **kw: object) -> MessageRow:
    fields: dict[str, object] = {
        "id": f"00000000-0000-4000-8000-{i:012d}",
        "member": "member-1",
        "node": "member-1",
        "type": "broadcast",
        "topic": "t",
        "context": "c" * 64,
        "state": "pending",
        **kw,
    }
    return MessageRow(**fields)


async def test_messages_idempotency_filters_and_states(store: Store) -> None:
    async with store.transaction() as s:
        await insert_message(s, _msg(1, idempotency_key="k1"))
        await insert_message(s, _msg(2, topic="u", idempotency_key="k2"))
        await insert_message(s, _msg(3, member="member-2", idempotency_key="k1"))
        with pytest.raises(StoreConflict) as caught:
            await insert_message(s, _msg(4, idempotency_key="k1"))
        assert caught.value.code == "store.message.conflict"
    async with store.transaction() as s:
        found = await by_idempotency_key(s, "member-1", "k1")
        assert found is not None and found.id.endswith("1")
        assert [m.id[-1] for m in await list_messages(s, MessageFilter(topic="t"))] == ["1", "3"]
        assert [m.id[-1] for m in await list_messages(s, MessageFilter(), after=1, limit=1)] == [
            "2"
        ]
        assert await set_message_state(s, _msg(1).id, "confirmed", pin_seqno=7, pin_tx_id="2.7")
        assert not await set_message_state(s, "nope", "failed")
        with pytest.raises(ValueError):
            await set_message_state(s, _msg(1).id, "lost")
    async with store.read() as s:
        m = await get_message(s, _msg(1).id)
        assert m is not None and (m.state, m.pin_seqno, m.pin_tx_id) == ("confirmed", 7, "2.7")
        assert m.confirmed_us is not None
        confirmed = await list_messages(s, MessageFilter(state="confirmed"))
        assert [x.id for x in confirmed] == [m.id]


async def test_datatypes_groups_batches_pins_blobs(store: Store) -> None:
    async with store.transaction() as s:
        row = DatatypeRow(id="d1", name="invoice", version="1", schema={"type": "object"}, hash="0")
        await insert_datatype(s, row)
        with pytest.raises(StoreConflict):
            await insert_datatype(
                s, DatatypeRow(id="d2", name="invoice", version="1", schema={}, hash="1")
            )
        g = await ensure_group(s, "a" * 64, ["member-2", "member-1", "member-2"])
        assert g.members == ["member-1", "member-2"]
        await insert_batch(
            s,
            BatchRow(
                id="b" * 64,
                hash="b" * 64,
                author="member-1",
                node="member-1",
                type="private",
                payload=b"\x00\x01",
                state="sealed",
            ),
        )
        assert await set_batch_state(s, "b" * 64, "pinned", tx_id="2.9")
        await insert_pins(
            s,
            [
                PinRow(ledger_seqno=9, tx_id="2.9", pin="p1", context="x", index_in_batch=1),
                PinRow(ledger_seqno=9, tx_id="2.9", pin="p0", context="y", index_in_batch=0),
                PinRow(ledger_seqno=5, tx_id="2.5", pin="p2", context="x", index_in_batch=0),
            ],
        )
        await upsert_blob(s, "f" * 64, size=10, path="blobs/ff", received=4)
    async with store.transaction() as s:
        assert (await get_datatype(s, "invoice", "1")) is not None
        assert [d.name for d in await list_datatypes(s, name="invoice")] == ["invoice"]
        assert (await get_group(s, "a" * 64)) is not None
        assert [x.hash for x in await groups_of_member(s, "member-2")] == ["a" * 64]
        pins = await pending_pins(s)
        assert [p.pin for p in pins] == ["p2", "p0", "p1"]
        assert [p.pin for p in await pending_pins(s, context="x")] == ["p2", "p1"]
        await mark_pins_dispatched(s, [pins[0].seq])
        blob = await get_blob(s, "f" * 64)
        assert blob is not None and blob.state == "partial"
        await upsert_blob(s, "f" * 64, size=10, path="blobs/ff", received=10)
    async with store.read() as s:
        assert [p.pin for p in await pending_pins(s)] == ["p0", "p1"]
        blob = await get_blob(s, "f" * 64)
        assert blob is not None and (blob.state, blob.received) == ("complete", 10)
