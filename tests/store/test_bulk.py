"""Bulk inserts and updates store exactly what SQLAlchemy's own statements store."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import JSON, bindparam, insert, select, update

from charter.store import Store, bulk
from charter.store.bulk import insert_many, update_many
from charter.store.models import DataRow, GroupRow, MessageRow, PinRow

MESSAGES = MessageRow.__table__
DATA = DataRow.__table__
PINS = PinRow.__table__


def _message(i: int) -> dict[str, Any]:
    return {
        "id": f"m{i}",
        "member": "member-1",
        "node": "node-1",
        "idempotency_key": None if i % 2 else f"k{i}",
        "type": "private",
        "topic": f"topic-{i % 3}",
        "group_hash": "ab" * 32,
        "context": "cd" * 32,
        "state": "pending",
        "hash": None,
        "batch_id": None,
        "cid": None,
        "created_us": 1_700_000_000_000_000 + i,
        "tag": None,
    }


def _data(i: int) -> dict[str, Any]:
    values: list[Any] = [{"text": f"é{i}", "n": [1, 2.5, None]}, JSON.NULL, "plain", 0, True]
    return {
        "id": f"d{i}",
        "message_id": f"m{i}",
        "position": 0,
        "value": values[i % len(values)],
        "datatype_name": None,
        "datatype_version": None,
        "blob_hash": None,
        "blob_size": None,
        "blob_name": None,
        "hash": "ef" * 32,
        "created_us": 5,
    }


def _columns(table: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k in table.c} for r in rows]


async def _dump(store: Store, table: Any, order: Any) -> list[tuple[Any, ...]]:
    async with store.read() as s:
        cols = [c for c in table.c if c.key != "seq"]
        return [tuple(r) for r in await s.execute(select(*cols).order_by(order))]


async def _both_ways(store: Store, table: Any, rows: list[dict[str, Any]], order: Any) -> None:
    """Insert with insert_many, read back, delete, insert with executemany, compare."""
    async with store.transaction() as s:
        await insert_many(s, table, rows)
    ours = await _dump(store, table, order)
    async with store.transaction() as s:
        await s.execute(table.delete())
    async with store.transaction() as s:
        await s.execute(insert(table), rows)
    theirs = await _dump(store, table, order)
    assert ours == theirs
    assert len(ours) == len(rows)


async def test_inserts_match_executemany_with_json_values_and_chunks(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "_MAX_ROWS", 7)  # several chunks and a short last one
    async with store.transaction() as s:
        await s.execute(
            insert(GroupRow.__table__).values(hash="ab" * 32, members=["a"], created_us=1)
        )
    messages = _columns(MESSAGES, [_message(i) for i in range(30)])
    async with store.transaction() as s:
        await insert_many(s, MESSAGES, messages)
    await _both_ways(store, DATA, [_data(i) for i in range(30)], DataRow.id)
    async with store.read() as s:
        got = dict((await s.execute(select(DataRow.id, DataRow.value))).all())
    assert got["d0"] == {"text": "é0", "n": [1, 2.5, None]}
    assert got["d1"] is None and got["d2"] == "plain" and got["d3"] == 0 and got["d4"] is True


async def test_inserts_of_booleans_and_big_integers(store: Store) -> None:
    rows = [
        {
            "ledger_seqno": 2**40 + i,
            "tx_id": f"2.{i}",
            "pin": f"{i:064x}",
            "batch_hash": None,
            "context": "cd" * 32 if i % 2 else None,
            "index_in_batch": i,
            "dispatched": bool(i % 2),
            "created_us": 1,
        }
        for i in range(12)
    ]
    await _both_ways(store, PINS, _columns(PINS, rows), PinRow.pin)


async def test_a_row_with_other_columns_is_refused(store: Store) -> None:
    rows = _columns(MESSAGES, [_message(1), _message(2)])
    del rows[1]["cid"]
    async with store.transaction() as s:
        with pytest.raises((ValueError, KeyError)):
            await insert_many(s, MESSAGES, rows)


async def test_updates_match_executemany_and_the_last_values_of_a_key_win(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "_MAX_ROWS", 4)
    async with store.transaction() as s:
        await s.execute(
            insert(GroupRow.__table__).values(hash="ab" * 32, members=["a"], created_us=1)
        )
        await insert_many(s, MESSAGES, _columns(MESSAGES, [_message(i) for i in range(10)]))
    changes = [
        {"b_id": f"m{i}", "state": "confirmed", "pin_seqno": 2**35 + i, "reason": None}
        for i in range(0, 10, 2)
    ]
    changes.append({"b_id": "m4", "state": "failed", "pin_seqno": 7, "reason": "late"})
    async with store.transaction() as s:
        await update_many(s, MESSAGES, "id", changes)
    ours = await _dump(store, MESSAGES, MessageRow.id)
    async with store.transaction() as s:
        await s.execute(update(MESSAGES).values(state="pending", pin_seqno=None, reason=None))
        await s.execute(
            update(MESSAGES)
            .where(MESSAGES.c.id == bindparam("b_id"))
            .values({c: bindparam(c) for c in ("state", "pin_seqno", "reason")}),
            changes,
        )
    assert ours == await _dump(store, MESSAGES, MessageRow.id)
    async with store.read() as s:
        got = dict((await s.execute(select(MessageRow.id, MessageRow.state))).all())
    assert got == {f"m{i}": ("pending" if i % 2 else "confirmed") for i in range(10)} | {
        "m4": "failed"
    }


async def test_inserts_answer_the_returning_columns_of_every_row(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "_MAX_ROWS", 4)  # the rows of every chunk are answered
    messages = _columns(MESSAGES, [_message(i) for i in range(10)])
    async with store.transaction() as s:
        got = await insert_many(s, MESSAGES, messages, returning=("id", "seq"))
        assert await insert_many(s, MESSAGES, [], returning=("id",)) == []
    async with store.read() as s:
        stored = [tuple(r) for r in await s.execute(select(MessageRow.id, MessageRow.seq))]
    assert sorted(got) == sorted(stored) and len(got) == 10


async def test_named_states_are_saved_in_one_statement_new_or_not(store: Store) -> None:
    from sqlalchemy import event

    from charter.multiparty.state import load_state, save_state, save_states

    statements: list[str] = []

    def note(_c: Any, _cur: Any, statement: str, *_a: Any) -> None:
        statements.append(statement.split()[0])

    event.listen(store.engine.sync_engine, "before_cursor_execute", note)
    async with store.transaction() as s:
        await save_states(s, {"a": b"1", "b": b"2"})  # both new
        await save_states(s, {})
    async with store.transaction() as s:
        await save_states(s, {"a": b"3", "c": b"4"})  # one there, one new
        await save_state(s, "b", b"5")
    assert [st for st in statements if st not in ("BEGIN", "COMMIT")] == ["INSERT"] * 3
    async with store.read() as s:
        values = [await load_state(s, n) for n in ("a", "b", "c", "d")]
    assert values == [b"3", b"5", b"4", None]
