"""The multi-party component of a node: store, transfer, events and the messaging service.

Built from the ``NodeContext``; ``bind`` creates the transfer (its inbox and blob
routes) and registers the ledger listener; ``run`` opens the index store, then runs the
transfer, the events service and the messaging service under one task group.
Settings come from ``ctx.settings["multiparty"]`` (``MessagingSettings`` fields) and
``ctx.settings["transfer"]``.

Other components of the same node reach its messaging service through
``messaging_for(ledger_service)`` (the tokens routes do, for a transfer carrying a message):
components know their node's ledger service, not each other.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from charter.ledger.engine import CommandHandler
from charter.multiparty.events import EventsService
from charter.multiparty.model import DataItem
from charter.multiparty.pins import APP, MpHandler
from charter.multiparty.service import MessagingService, MessagingSettings, now_us
from charter.node.components import NodeContext
from charter.node.ledger_service import NotAvailable
from charter.store.ids import new_id

if TYPE_CHECKING:
    from fastapi import APIRouter

    from charter.api.blobs import BlobRecord
    from charter.multiparty.transfer import BlobInfo, Transfer
    from charter.node.ledger_service import LedgerService
    from charter.store import Store

__all__ = ["MultipartyComponent", "messaging_for", "multiparty_component"]


class _StoreBlobRecords:
    """Uploaded blobs become data rows, so a message can reference them by data id."""

    def __init__(self, component: MultipartyComponent) -> None:
        self._c = component

    async def add_blob(
        self, info: BlobInfo, name: str | None, content_type: str | None
    ) -> BlobRecord:
        from sqlalchemy import JSON

        from charter.api.blobs import BlobRecord
        from charter.store.models import DataRow

        store = self._c.store_or_503()
        did = new_id()
        item = DataItem(did, None, blob_hash=info.hash, blob_size=info.size, blob_name=name or "")
        stamp = now_us()
        async with store.transaction() as s:
            s.add(
                DataRow(
                    id=did,
                    message_id=None,
                    position=0,
                    value=JSON.NULL,
                    blob_hash=info.hash.hex(),
                    blob_size=info.size,
                    blob_name=name,
                    hash=item.hash.hex(),
                    created_us=stamp,
                )
            )
        return BlobRecord(did, info.hash, info.size, name, content_type, stamp)

    async def get_blob(self, data_id: str) -> BlobRecord | None:
        from charter.api.blobs import BlobRecord
        from charter.store.data import get_data

        store = self._c.store_or_503()
        async with store.read() as s:
            row = await get_data(s, data_id)
        if row is None or not row.blob_hash:
            return None
        return BlobRecord(
            row.id,
            bytes.fromhex(row.blob_hash),
            row.blob_size or 0,
            row.blob_name,
            None,
            row.created_us,
        )


class MultipartyComponent:
    name = "multiparty"

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        raw: Any = ctx.settings.get("multiparty")
        if isinstance(raw, Mapping) and "store_urls" in raw:
            # in-process networks: one index database URL per node name
            raw = dict(raw)
            urls = raw.pop("store_urls")
            self.store_url: str | None = ctx.store_url or urls.get(ctx.name)
        else:
            self.store_url = ctx.store_url
        self.settings = (
            raw if isinstance(raw, MessagingSettings) else MessagingSettings.from_mapping(raw)
        )
        self.store: Store | None = None
        self.transfer: Transfer | None = None
        self.messaging: MessagingService | None = None
        self.events = EventsService(_LazyStore(self))  # type: ignore[arg-type]
        self._ledger: LedgerService | None = None
        self._unlisten: Any = None
        self.started = asyncio.Event()

    def handlers(self) -> Mapping[str, CommandHandler]:
        return {APP: MpHandler()}

    def bind(self, service: LedgerService) -> None:
        from charter.multiparty.transfer import Transfer

        self._ledger = service
        self.messaging = MessagingService(
            node=service.name,
            member=self.ctx.member,
            identity=self.ctx.identity,
            store=None,
            ledger=service,
            transfer=None,
            settings=self.settings,
        )
        m = self.messaging
        self.transfer = Transfer.for_node(self.ctx, service, on_batch=m.on_batch, on_blob=m.on_blob)
        m.transfer = self.transfer
        self._unlisten = service.add_listener(m.on_apply)
        _BOUND[service] = self

    def store_or_503(self) -> Store:
        if self.store is None:
            raise LookupError("store not open")
        return self.store

    def service(self) -> MessagingService:
        if self.messaging is None or self.store is None or not self.messaging.ready.is_set():
            raise LookupError("messaging not running")
        return self.messaging

    def routers(self) -> Sequence[APIRouter]:
        from charter.api.messages import messages_router

        out: list[APIRouter] = [messages_router(self.service)]
        if self.transfer is not None:
            out.extend(self.transfer.routers(_StoreBlobRecords(self)))
        out.extend(self.events.routers())
        return out

    async def run(self) -> None:
        from charter.store import open_store

        assert self.messaging is not None and self.transfer is not None
        async with _opening_lock():  # alembic's module-global proxies: one migration at a time
            self.store = await open_store(self.store_url, self.ctx.data_dir)
        self.messaging.store = self.store
        self.events.store = self.store
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.transfer.run())
            tg.create_task(self.events.run())
            tg.create_task(self.messaging.run())
            self.started.set()

    async def close(self) -> None:
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        if self.transfer is not None:
            await self.transfer.close()
        await self.events.close()
        if self.store is not None:
            await self.store.close()
            self.store = None


_BOUND: weakref.WeakKeyDictionary[LedgerService, MultipartyComponent] = weakref.WeakKeyDictionary()


def messaging_for(service: LedgerService) -> MessagingService:
    """The running messaging service of the node whose ledger service this is; raises
    ``LookupError`` if the node runs none, or it has not started yet."""
    component = _BOUND.get(service)
    if component is None:
        raise LookupError("this node runs no multi-party component")
    return component.service()


_OPENING: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _opening_lock() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    lock = _OPENING.get(loop)
    if lock is None:
        lock = _OPENING[loop] = asyncio.Lock()
    return lock


class _LazyStore:
    """Stands for the index store until ``run`` opens it (routes answer 503 meanwhile)."""

    def __init__(self, component: MultipartyComponent) -> None:
        self._c = component

    def __getattr__(self, name: str) -> Any:
        store = self._c.store
        if store is None:
            raise NotAvailable("the index store is opening")
        return getattr(store, name)


def multiparty_component(ctx: NodeContext) -> MultipartyComponent:
    return MultipartyComponent(ctx)
