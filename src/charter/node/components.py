"""What a node runs besides its ledger: governance, multi-party data, tokens.

Each area plugs into a node the same way, through a ``Component``:

1. built from a ``NodeContext`` (who this node is, its runtime, data directory,
   network file and config), before the ledger service exists;
2. asked for its engine ``handlers`` (pure command handlers, the same on every node),
   which the ledger service's engine is built with;
3. ``bind``-ed to the running ``LedgerService`` (submit commands, add apply listeners,
   register OCapN capabilities on ``ctx.runtime``);
4. asked for its REST ``routers`` (FastAPI ``APIRouter``s mounted under ``/api/v1``);
5. ``run`` as a task next to the ledger service until the node stops, then ``close``-d.

``charter.node.process`` (separate processes) and ``charter.node.ledger_local`` users
(in-process tests) assemble components the same way, through ``assemble``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from charter.crypto.keys import Ed25519PrivateKey
from charter.ledger.engine import CommandHandler
from charter.ocapn.runtime import Runtime

if TYPE_CHECKING:
    from fastapi import APIRouter

    from charter.node.ledger_service import LedgerService
    from charter.node.network import Network


@dataclass(frozen=True)
class NodeContext:
    """Who and where this node is, for building components."""

    name: str
    """The node's name (its batches' submitter id)."""
    member: str
    """The member who owns this node."""
    raft_id: int
    runtime: Runtime
    identity: Ed25519PrivateKey
    """The node's Ed25519 key (TLS identity and batch signer)."""
    data_dir: Path | None
    """Where the node keeps its files; None for a purely in-memory test node."""
    network: Network | None = None
    """The public network file (None in in-process tests that build no file)."""
    store_url: str | None = None
    """SQLAlchemy URL of the node's index database (None: SQLite under ``data_dir``)."""
    settings: Mapping[str, Any] = field(default_factory=dict)
    """Per-component settings by component name (tests tune timeouts through this)."""


class Component(Protocol):
    """One area of a node; see the module notes for its life cycle."""

    name: str

    def handlers(self) -> Mapping[str, CommandHandler]: ...

    def bind(self, service: LedgerService) -> None: ...

    def routers(self) -> Sequence[APIRouter]: ...

    async def run(self) -> None: ...

    async def close(self) -> None: ...


ComponentFactory = Callable[[NodeContext], Component]


def default_factories() -> list[ComponentFactory]:
    """The components every Charter node runs, in start order."""
    # Imported here: each area imports the node layer, not the other way round.
    from charter.governance.component import governance_component
    from charter.multiparty.component import multiparty_component
    from charter.node.membership import membership_component
    from charter.tokens.component import tokens_component

    return [governance_component, membership_component, tokens_component, multiparty_component]


def assemble(
    ctx: NodeContext, factories: Sequence[ComponentFactory] | None = None
) -> list[Component]:
    """Build the components; their handlers must not claim the same app name twice."""
    components = [f(ctx) for f in (default_factories() if factories is None else factories)]
    seen: dict[str, str] = {}
    for c in components:
        for app in c.handlers():
            if app in seen:
                raise ValueError(f"components {seen[app]!r} and {c.name!r} both handle {app!r}")
            seen[app] = c.name
    return components


def merged_handlers(components: Sequence[Component]) -> dict[str, CommandHandler]:
    out: dict[str, CommandHandler] = {}
    for c in components:
        out.update(c.handlers())
    return out


__all__ = [
    "Component",
    "ComponentFactory",
    "NodeContext",
    "assemble",
    "default_factories",
    "merged_handlers",
]
