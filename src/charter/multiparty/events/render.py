"""The JSON form of events (REST listings, WebSocket pushes, webhook bodies).

Two members are read from the index as an event is rendered, not stored with it: a
``message_failed`` event's ``reason`` (the message's), and a ``token_transfer_confirmed``
event's ``message_id``, when the operation carried a message this node holds (its author,
and the group's nodes once the batch arrived; another node never learns it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from charter.multiparty.events.types import EventType
from charter.store.messages import data_of, get_messages
from charter.store.models import DataRow, EventRow, MessageRow, PinRow

__all__ = ["data_json", "event_json", "iso_us", "message_json", "render_events"]


def iso_us(us: int | None) -> str | None:
    """RFC 3339 UTC with microseconds, from microseconds since the epoch."""
    if us is None:
        return None
    stamp = datetime.fromtimestamp(us / 1_000_000, tz=UTC)
    return stamp.isoformat(timespec="microseconds").replace("+00:00", "Z")


def event_json(event: EventRow) -> dict[str, Any]:
    """An event; its offset is a decimal string like every big number in the API."""
    return {
        "id": event.id,
        "offset": str(event.seq),
        "type": event.type,
        "reference": event.reference,
        "correlator": event.correlator,
        "topic": event.topic,
        "author": event.author,
        "group": event.group_hash,
        "tx_id": event.tx_id,
        "created": iso_us(event.created_us),
    }


def message_json(m: MessageRow) -> dict[str, Any]:
    """A message in the shape ``GET /api/v1/messages`` answers."""
    return {
        "id": m.id,
        "type": m.type,
        "author": {"member": m.member, "node": m.node},
        "topic": m.topic,
        "tag": m.tag or "",
        "cid": m.cid or "",
        "group": m.group_hash,
        "context": m.context,
        "state": m.state,
        "hash": m.hash,
        "batch": m.batch_id,
        "pin": None if m.pin_seqno is None else {"seqno": str(m.pin_seqno), "tx_id": m.pin_tx_id},
        "reason": m.reason,
        "created_us": str(m.created_us),
        "confirmed_us": None if m.confirmed_us is None else str(m.confirmed_us),
        "offset": str(m.seq),
        "idempotency_key": m.idempotency_key,
    }


def data_json(d: DataRow) -> dict[str, Any]:
    """A data item in the shape ``GET /api/v1/messages?with_data=true`` answers."""
    out: dict[str, Any] = {"id": d.id, "hash": d.hash, "message_id": d.message_id}
    if d.blob_hash is None or d.value is not None:
        out["value"] = d.value
    if d.datatype_name:
        out["datatype"] = {"name": d.datatype_name, "version": d.datatype_version}
    if d.blob_hash:
        out["blob"] = {"hash": d.blob_hash, "size": str(d.blob_size), "name": d.blob_name}
    return out


async def carried_messages(session: AsyncSession, tx_ids: Sequence[str]) -> dict[str, str]:
    """Transaction id -> id of the message it carried, for the messages held here."""
    if not tx_ids:
        return {}
    pins = await session.execute(
        select(PinRow.tx_id, PinRow.batch_hash).where(PinRow.tx_id.in_(sorted(set(tx_ids))))
    )
    by_batch = {bh: tx for tx, bh in pins if bh is not None}
    if not by_batch:
        return {}
    rows = await session.execute(
        select(MessageRow.id, MessageRow.batch_id).where(MessageRow.batch_id.in_(sorted(by_batch)))
    )
    return {by_batch[bh]: mid for mid, bh in rows if bh in by_batch}


async def render_events(
    session: AsyncSession, events: Sequence[EventRow], *, with_data: bool
) -> list[dict[str, Any]]:
    """Events as JSON; with ``with_data``, events about a message carry it and its data."""
    out = [event_json(e) for e in events]
    token_txs = [
        e.tx_id
        for e in events
        if e.type == EventType.TOKEN_TRANSFER_CONFIRMED and e.tx_id and e.correlator
    ]
    carried = await carried_messages(session, token_txs)
    failed = {e.reference for e in events if e.type == EventType.MESSAGE_FAILED and e.reference}
    refs = set(failed) | set(carried.values())
    if with_data:
        refs |= {e.reference for e in events if e.reference is not None}
    if not refs:
        return out
    messages = await get_messages(session, sorted(refs))
    data = await data_of(session, list(messages)) if with_data else {}
    for rendered, event in zip(out, events, strict=True):
        mid = event.reference or ""
        if event.type == EventType.TOKEN_TRANSFER_CONFIRMED:
            mid = carried.get(event.tx_id or "", "")
            if mid:
                rendered["message_id"] = mid
        message = messages.get(mid)
        if message is None:
            continue
        if event.type == EventType.MESSAGE_FAILED:
            rendered["reason"] = message.reason
        if with_data:
            rendered["message"] = message_json(message)
            rendered["data"] = [data_json(d) for d in data[message.id]]
    return out
