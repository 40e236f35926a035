"""How tokens plug into a node: the ``tokens`` handler and the ``/api/v1/tokens`` routes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from charter.ledger.engine import CommandHandler
from charter.tokens.handler import TokensHandler
from charter.tokens.model import APP

if TYPE_CHECKING:
    from fastapi import APIRouter

    from charter.node.components import NodeContext
    from charter.node.ledger_service import LedgerService


class TokensComponent:
    """Tokens on one node: a fresh handler per node, routes over its ledger service."""

    name = "tokens"

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self.handler = TokensHandler()
        self.service: LedgerService | None = None
        settings = ctx.settings.get("tokens", {})
        self.request_timeout = float(settings.get("request_timeout", 30.0))

    def handlers(self) -> Mapping[str, CommandHandler]:
        return {APP: self.handler}

    def bind(self, service: LedgerService) -> None:
        self.service = service

    def routers(self) -> Sequence[APIRouter]:
        from charter.api.tokens import tokens_router

        if self.service is None:
            raise RuntimeError("the tokens component is not bound to a ledger service")
        return [tokens_router(self.service, request_timeout=self.request_timeout)]

    async def run(self) -> None:
        return None

    async def close(self) -> None:
        return None


def tokens_component(ctx: NodeContext) -> TokensComponent:
    return TokensComponent(ctx)


__all__ = ["TokensComponent", "tokens_component"]
