"""Governance as a node component: the ``gov`` handler, bootstrap, intents, REST routes.

- ``handlers()``: ``{"gov": GovernanceHandler()}``, the same on every node.
- ``bind``: builds this node's genesis (from the network file; in-process tests from
  ``settings["governance"]``: ``members`` name -> Ed25519 public key, optional
  ``constitution`` section and ``roles``) and listens to applies for intents.
- ``run``: the first genesis node (by name) submits the bootstrap command once the
  network has a leader; the others do it themselves if it has not applied within
  ``BOOTSTRAP_GRACE`` seconds, and any node does it on demand (``ensure_bootstrapped``)
  before relaying a request, so governance works whichever node is up first.
- Intents: when a ``transfer_leadership`` intent applies, the node that leads at that
  moment hands leadership to the named node (``RaftDriver.transfer_leadership``); when
  this node is retired while it leads, it hands leadership to a still-trusted voter
  (its own signatures no longer count, so nothing would commit under it). A
  ``trigger_snapshot`` intent is recorded in state for the node layer (not acted on yet).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from charter.consensus.types import Role
from charter.crypto.keys import Ed25519PublicKey
from charter.errors import CharterError
from charter.governance import state
from charter.governance.genesis import bootstrap_command, genesis_from_ledger, genesis_from_network
from charter.governance.handler import GovernanceHandler
from charter.governance.model import Genesis, GovNode, Intent
from charter.ledger.engine import ApplyResult, CommandHandler
from charter.ledger.engine.nodes import NodeStatus
from charter.node.components import NodeContext

if TYPE_CHECKING:
    from fastapi import APIRouter

    from charter.node.ledger_service import LedgerService

log = logging.getLogger(__name__)

COMPONENT = "governance"
RETIRED = "retired"
BOOTSTRAP_TIMEOUT = 30.0
BOOTSTRAP_GRACE = 10.0
"""How long the other genesis nodes leave the bootstrap to the first one."""


class GovernanceComponent:
    name = COMPONENT

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self.handler = GovernanceHandler()
        self.settings: Mapping[str, Any] = ctx.settings.get(COMPONENT, {})
        self._service: LedgerService | None = None
        self.genesis: Genesis | None = None
        self._changed = asyncio.Event()
        self._intents: asyncio.Queue[Intent] = asyncio.Queue(maxsize=64)
        self._bootstrap_lock = asyncio.Lock()

    # -- component protocol ---------------------------------------------------------------

    def handlers(self) -> Mapping[str, CommandHandler]:
        return {"gov": self.handler}

    def bind(self, service: LedgerService) -> None:
        self._service = service
        self.genesis = self._genesis(service)
        service.add_listener(self._on_apply)

    def routers(self) -> Sequence[APIRouter]:
        from charter.api.gov import gov_router

        return [gov_router(self)]

    async def run(self) -> None:
        if self.genesis is not None:
            if not self._first_genesis_node():
                # Give the first genesis node a chance, so one bootstrap reaches the log;
                # then make sure of it ourselves (it may be down).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(BOOTSTRAP_GRACE):
                        while not state.bootstrapped(self.service.engine):
                            await self.wait_changed(1.0)
            with contextlib.suppress(CharterError):
                await self.ensure_bootstrapped()
        while True:
            intent = await self._intents.get()
            self._carry_out(intent)

    async def close(self) -> None:
        return None

    # -- helpers --------------------------------------------------------------------------

    @property
    def service(self) -> LedgerService:
        if self._service is None:
            raise CharterError("governance is not bound to a ledger service", code="gov.unbound")
        return self._service

    def _genesis(self, service: LedgerService) -> Genesis | None:
        if self.ctx.network is not None:
            return genesis_from_network(self.ctx.network)
        members = self.settings.get("members")
        if not members:
            return None  # an in-process network without governance settings
        keys = {
            name: key if isinstance(key, Ed25519PublicKey) else Ed25519PublicKey.from_hex(key)
            for name, key in members.items()
        }
        return genesis_from_ledger(
            service.network, keys, self.settings.get("constitution"), self.settings.get("roles")
        )

    def _first_genesis_node(self) -> bool:
        assert self.genesis is not None
        names = sorted(n.name for n in self.genesis.nodes)
        return bool(names) and names[0] == self.ctx.name

    def _on_apply(self, result: ApplyResult) -> None:
        self._changed.set()
        tables = result.tables
        if state.INTENTS_TABLE not in tables and state.NODES_TABLE not in tables:
            return
        me = self._service.name if self._service is not None else self.ctx.name
        for tx in result.applied:
            for w in tx.writes:
                intent: Intent | None = None
                with contextlib.suppress(CharterError):
                    if w.table == state.INTENTS_TABLE and w.key == "leadership" and w.value:
                        intent = Intent.decode(w.value)
                    elif (
                        w.table == state.NODES_TABLE
                        and w.key == me
                        and w.value
                        and GovNode.decode(w.key, w.value).status is NodeStatus.RETIRED
                    ):
                        intent = Intent(RETIRED, me, tx.tx_id)
                if intent is not None:
                    with contextlib.suppress(asyncio.QueueFull):
                        self._intents.put_nowait(intent)

    async def wait_changed(self, within: float) -> None:
        """Until the next apply here (or ``within`` seconds)."""
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._changed.wait()

    async def ensure_bootstrapped(self) -> None:
        """Submit the bootstrap command unless governance state exists (idempotent)."""
        if state.bootstrapped(self.service.engine):
            return
        if self.genesis is None:
            raise CharterError("this node has no genesis constitution", code="gov.genesis")
        async with self._bootstrap_lock:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(BOOTSTRAP_TIMEOUT):
                    while not state.bootstrapped(self.service.engine):
                        try:
                            ticket = await self.service.submit(
                                bootstrap_command(self.genesis), wait="accepted"
                            )
                        except CharterError as exc:  # not running or no leader yet
                            log.debug("governance bootstrap not yet submitted: %s", exc)
                            await self.wait_changed(0.5)
                            continue
                        if ticket.reason is not None and not state.bootstrapped(
                            self.service.engine
                        ):
                            raise CharterError(
                                f"the bootstrap was refused: {ticket.reason}", code="gov.bootstrap"
                            )
            if not state.bootstrapped(self.service.engine):
                raise CharterError("governance could not be bootstrapped", code="gov.bootstrap")

    def _carry_out(self, intent: Intent) -> None:
        service = self.service
        driver = service.driver
        if driver.node.role is not Role.LEADER:
            return
        if intent.kind == RETIRED:
            # A retired node's signatures are no longer accepted: while it leads, nothing
            # commits. Hand leadership to a node that is still trusted.
            target = self._successor()
        elif intent.target == service.name:
            return
        else:
            target = intent.target
        if target is None:
            log.warning("no trusted node to hand leadership to")
            return
        raft_id = self._raft_id(target)
        if raft_id is None:
            log.warning("leadership intent for unknown node %s", target)
            return
        try:
            driver.transfer_leadership(raft_id)
        except CharterError as exc:
            log.warning("leadership transfer to %s not started: %s", target, exc)

    def _successor(self) -> str | None:
        service = self.service
        voters = service.driver.node.conf_state.voters
        for raft_id, m in sorted(service.network.members.items()):
            if m.name != service.name and raft_id in voters and service.engine.node(m.name):
                return m.name
        return None

    def _raft_id(self, name: str) -> int | None:
        for raft_id, m in self.service.network.members.items():
            if m.name == name:
                return raft_id
        info = state.node_info(self.service.engine, name)
        if info is None:
            return None
        from charter.node.network import raft_id_for_key

        return raft_id_for_key(info.identity)


def governance_component(ctx: NodeContext) -> GovernanceComponent:
    return GovernanceComponent(ctx)


__all__ = ["COMPONENT", "GovernanceComponent", "governance_component"]
