"""The node's events service: the event log's readers, subscriptions and their delivery.

The multi-party component owns one ``EventsService`` on the node's ``Store``, mounts its
``routers()`` and runs ``run()`` (the webhook workers) next to the node; writers append
events with ``charter.store.events.append_event`` inside their own transactions, and the
commit wakes delivery.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from charter.multiparty.events.errors import SubscriptionExists, SubscriptionNotFound
from charter.multiparty.events.render import iso_us, render_events
from charter.multiparty.events.spec import SubscriptionSpec
from charter.multiparty.events.webhooks import WebhookWorker
from charter.multiparty.events.websocket import WsSession, WsSettings
from charter.store import Pulse, Store, StoreConflict
from charter.store import subscriptions as subs
from charter.store.clock import now_us
from charter.store.events import last_offset, list_events
from charter.store.ids import new_id
from charter.store.models import SubscriptionRow

if TYPE_CHECKING:
    from fastapi import APIRouter
    from starlette.websockets import WebSocket

__all__ = ["EventsService", "EventsSettings", "subscription_json"]

log = logging.getLogger("charter.events")

REDACTED = "(set)"


@dataclass(frozen=True)
class EventsSettings:
    poll_interval: float = 5.0
    """Longest a delivery loop waits without a commit pulse before looking again."""
    ws_start_timeout: float = 30.0


def subscription_json(row: SubscriptionRow, dead: int | None = None) -> dict[str, Any]:
    """A subscription as the API shows it (webhook header values are not echoed)."""
    options = dict(row.options)
    out: dict[str, Any] = {
        "id": row.id,
        "name": row.name,
        "transport": row.transport,
        "filter": row.filters,
        "read_ahead": row.read_ahead,
        "ack_timeout": options.get("ack_timeout"),
        "with_data": bool(options.get("with_data")),
        "offset": str(row.stored_offset),
        "created": iso_us(row.created_us),
        "updated": iso_us(row.updated_us),
    }
    webhook = options.get("webhook")
    if webhook is not None:
        out["webhook"] = {
            **webhook,
            "headers": {k: REDACTED for k in webhook.get("headers", {})},
        }
    if dead is not None:
        out["dead_letters"] = dead
    return out


class EventsService:
    """Subscriptions and delivery over one node's index database."""

    def __init__(self, store: Store, settings: EventsSettings | None = None) -> None:
        self.store = store
        self.settings = settings or EventsSettings()
        self._changed = Pulse()
        self._ws_owners: dict[str, WsSession] = {}
        self._client: httpx.AsyncClient | None = None

    # -- the API's operations ----------------------------------------------------------

    async def events(
        self,
        *,
        after: int = 0,
        limit: int = 100,
        types: Sequence[str] | None = None,
        topic: str | None = None,
        with_data: bool = False,
    ) -> list[dict[str, Any]]:
        async with self.store.read() as session:
            rows = await list_events(session, after=after, limit=limit, types=types, topic=topic)
            return await render_events(session, rows, with_data=with_data)

    async def create(self, spec: SubscriptionSpec) -> dict[str, Any]:
        stamp = now_us()
        try:
            async with self.store.transaction() as session:
                if await subs.get_subscription(session, spec.name) is not None:
                    raise SubscriptionExists(f"a subscription named {spec.name!r} already exists")
                row = SubscriptionRow(
                    id=new_id(),
                    name=spec.name,
                    transport=spec.transport,
                    filters=spec.filter.model_dump(exclude_none=True),
                    webhook_url=None if spec.webhook is None else spec.webhook.url,
                    options=spec.options(),
                    read_ahead=spec.read_ahead,
                    stored_offset=spec.start_offset(await last_offset(session)),
                    created_us=stamp,
                    updated_us=stamp,
                )
                await subs.insert_subscription(session, row)
        except StoreConflict:
            raise SubscriptionExists(f"a subscription named {spec.name!r} already exists") from None
        self._changed.fire()
        return subscription_json(row, 0)

    async def subscriptions(self, *, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        async with self.store.read() as session:
            rows = await subs.list_subscriptions(session, after=after, limit=limit)
        return [subscription_json(r) for r in rows]

    async def get(self, name: str) -> dict[str, Any]:
        async with self.store.read() as session:
            row = await self._required(session, name)
            return subscription_json(row, await subs.count_dead(session, row.seq))

    async def delete(self, name: str) -> None:
        async with self.store.transaction() as session:
            if not await subs.delete_subscription(session, name):
                raise SubscriptionNotFound(f"no subscription named {name!r}")
        owner = self._ws_owners.get(name)
        if owner is not None:
            owner.stop("events.subscription.deleted", f"subscription {name!r} was deleted")
        self._changed.fire()

    async def dead_letters(
        self, name: str, *, after: int = 0, limit: int = 100, with_data: bool = False
    ) -> list[dict[str, Any]]:
        async with self.store.read() as session:
            row = await self._required(session, name)
            found = await subs.dead_letters(session, row.seq, after=after, limit=limit)
            rendered = await render_events(session, [e for _, e in found], with_data=with_data)
        return [
            {
                "event": event,
                "attempts": d.attempts,
                "last_error": d.last_error,
                "state": d.state,
                "updated": iso_us(d.updated_us),
            }
            for (d, _), event in zip(found, rendered, strict=True)
        ]

    async def redeliver(self, name: str, event_ids: list[str] | None) -> int:
        async with self.store.transaction() as session:
            row = await self._required(session, name)
            count = await subs.mark_redeliver(session, row.seq, event_ids)
        self.store.pulse.fire()
        return count

    async def websocket(self, ws: WebSocket) -> None:
        settings = WsSettings(self.settings.poll_interval, self.settings.ws_start_timeout)
        await WsSession(self.store, ws, settings, self._ws_owners).serve()

    async def _required(self, session: Any, name: str) -> SubscriptionRow:
        row = await subs.get_subscription(session, name)
        if row is None:
            raise SubscriptionNotFound(f"no subscription named {name!r}")
        return row

    # -- life cycle --------------------------------------------------------------------

    def routers(self) -> list[APIRouter]:
        from charter.api.events import events_router

        return [events_router(self)]

    async def run(self) -> None:
        """Run one webhook worker per webhook subscription until cancelled."""
        self._client = httpx.AsyncClient(follow_redirects=False)
        workers: dict[int, asyncio.Task[None]] = {}
        try:
            async with asyncio.TaskGroup() as tg:
                while True:
                    changed = self._changed.current()
                    async with self.store.read() as session:
                        wanted = {
                            r.seq
                            for r in await subs.list_subscriptions(session, transport="webhook")
                        }
                    for seq in set(workers) - wanted:
                        workers.pop(seq).cancel()
                    for seq, task in list(workers.items()):
                        if task.done():
                            del workers[seq]
                    for seq in wanted - set(workers):
                        worker = WebhookWorker(
                            self.store, seq, self._client, self.settings.poll_interval
                        )
                        workers[seq] = tg.create_task(worker.run(), name=f"webhook-{seq}")
                    try:
                        async with asyncio.timeout(self.settings.poll_interval):
                            await changed.wait()
                    except TimeoutError:
                        pass
        finally:
            client, self._client = self._client, None
            await client.aclose()

    async def close(self) -> None:
        for owner in list(self._ws_owners.values()):
            owner.stop("events.ws.shutdown", "the node is stopping")
        if self._client is not None:
            await self._client.aclose()
