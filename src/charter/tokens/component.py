"""How tokens plug into a node: the ``tokens`` handler, the ``/api/v1/tokens`` routes and
the token events appended to the node's index store (``charter.tokens.events``). A token
operation carrying a message uses the node's multi-party component (found through the
ledger service), so a node running tokens alone refuses those with ``mp.not_ready``.

Settings (``NodeContext.settings["tokens"]``): ``request_timeout``
(seconds a write may wait, 30), ``events`` (true: append token events; a node without a
data directory or store URL appends none), ``migrate_after`` (seconds to wait for another
component to bring the index schema up to date before migrating it here, 5).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from charter.errors import CharterError
from charter.ledger.engine import CommandHandler
from charter.tokens.events import TokenEventFeed
from charter.tokens.handler import TokensHandler
from charter.tokens.model import APP

if TYPE_CHECKING:
    from fastapi import APIRouter

    from charter.node.components import NodeContext
    from charter.node.ledger_service import LedgerService
    from charter.store import Store

log = logging.getLogger(__name__)
_MIGRATION_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)
_SCHEMA_POLL = 0.1


class TokensComponent:
    """Tokens on one node: a fresh handler per node, routes over its ledger service."""

    name = "tokens"

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self.handler = TokensHandler()
        self.service: LedgerService | None = None
        settings = ctx.settings.get("tokens", {})
        self.request_timeout = float(settings.get("request_timeout", 30.0))
        self.events_enabled = bool(settings.get("events", True)) and (
            ctx.store_url is not None or ctx.data_dir is not None
        )
        self.migrate_after = float(settings.get("migrate_after", 5.0))
        self.feed: TokenEventFeed | None = None
        self.store: Store | None = None
        self._unlisten: Callable[[], None] | None = None

    def handlers(self) -> Mapping[str, CommandHandler]:
        return {APP: self.handler}

    def bind(self, service: LedgerService) -> None:
        self.service = service
        if self.events_enabled:
            self.feed = TokenEventFeed(lambda: service.engine)
            self._unlisten = service.add_listener(self.feed.on_apply)

    def routers(self) -> Sequence[APIRouter]:
        from charter.api.tokens import tokens_router
        from charter.multiparty.component import messaging_for

        service = self.service
        if service is None:
            raise RuntimeError("the tokens component is not bound to a ledger service")
        return [
            tokens_router(
                service,
                request_timeout=self.request_timeout,
                messaging=lambda: messaging_for(service),
            )
        ]

    async def run(self) -> None:
        """Append token events to the node's index store (when it has one)."""
        if self.feed is None:
            return
        try:
            self.store = await self._open_store()
        except CharterError as exc:
            log.error("tokens.events.store_unavailable", extra={"error": exc.message})
            self._stop_listening()
            return
        await self.feed.run(self.store)

    async def _open_store(self) -> Store:
        """The node's index store, once its schema is current.

        The multi-party component migrates the same database when it starts; two
        migrations at once in one process trip over alembic's module-global state, so
        this waits up to ``migrate_after`` seconds for the schema to be current and only
        then migrates itself (one component at a time in this process).
        """
        from charter.store import open_store
        from charter.store.migrate import current_revision, head_revision

        store = await open_store(self.ctx.store_url, self.ctx.data_dir, migrate=False)
        try:
            head = head_revision()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.migrate_after
            while await current_revision(store) != head:
                if loop.time() >= deadline:
                    lock = _MIGRATION_LOCKS.setdefault(loop, asyncio.Lock())
                    async with lock:
                        await store.close()
                        store = await open_store(self.ctx.store_url, self.ctx.data_dir)
                    break
                await asyncio.sleep(_SCHEMA_POLL)
        except BaseException:
            await store.close()
            raise
        return store

    def _stop_listening(self) -> None:
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None

    async def close(self) -> None:
        self._stop_listening()
        if self.store is not None:
            await self.store.close()
            self.store = None


def tokens_component(ctx: NodeContext) -> TokensComponent:
    return TokensComponent(ctx)


__all__ = ["TokensComponent", "tokens_component"]
