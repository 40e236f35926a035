"""Governance state in the ledger, and typed readers over any ``StateView``.

Tables (all written only by the governance handler; values are the records of
``model``):

- ``charter.gov.constitution``: ``current`` -> the ``Constitution``;
- ``charter.gov.members``: member name -> ``MemberInfo`` (removed members stay, marked);
- ``charter.gov.nodes``: node name -> ``GovNode`` (the engine's ``charter.nodes``
  directory is kept in step for every node governance writes);
- ``charter.gov.users``: ``member/user`` -> ``AppUser``;
- ``charter.gov.proposals``: proposal id (the proposing transaction's id) -> ``Proposal``;
- ``charter.gov.nonces``: member (or ``node:NAME`` for join requests) -> seen nonces;
- ``charter.gov.intents``: ``leadership`` / ``snapshot`` -> the latest ``Intent``;
- ``charter.gov.log``: the log seqno (12 digits) -> every governance command that
  applied, with its signed bytes (``audit`` replays them);
- ``charter.gov.meta``: ``network`` (network id), ``genesis`` (SHA-256 of the genesis
  record), ``clock`` (ledger time in ms).

The readers take the engine (``service.engine``) or a handler's ``CommandContext``.
Before the bootstrap command has run there is no governance state; readers then fall
back to the ``genesis`` they are given, or answer as for an empty network.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from charter.codec.syrup import SyrupError, decode
from charter.governance.errors import RequestFormatError
from charter.governance.model import (
    AppUser,
    Constitution,
    Genesis,
    GovNode,
    Intent,
    MemberInfo,
    Proposal,
    user_key,
)
from charter.ledger.engine.engine import parse_tx_id

PREFIX = "charter.gov."
CONSTITUTION_TABLE = "charter.gov.constitution"
MEMBERS_TABLE = "charter.gov.members"
NODES_TABLE = "charter.gov.nodes"
USERS_TABLE = "charter.gov.users"
PROPOSALS_TABLE = "charter.gov.proposals"
NONCES_TABLE = "charter.gov.nonces"
INTENTS_TABLE = "charter.gov.intents"
META_TABLE = "charter.gov.meta"
LOG_TABLE = "charter.gov.log"
CURRENT = "current"
CLOCK = "clock"
NETWORK = "network"
GENESIS_DIGEST = "genesis"


class StateView(Protocol):
    def get(self, table: str, key: str) -> bytes | None: ...

    def items(self, table: str) -> Iterator[tuple[str, bytes]]: ...


def bootstrapped(view: StateView) -> bool:
    return view.get(CONSTITUTION_TABLE, CURRENT) is not None


def constitution(view: StateView, genesis: Genesis | None = None) -> Constitution:
    data = view.get(CONSTITUTION_TABLE, CURRENT)
    if data is None:
        return genesis.constitution if genesis is not None else Constitution()
    try:
        return Constitution.from_record(decode(data))
    except SyrupError as exc:
        raise RequestFormatError(f"constitution: {exc.message}") from None


def member(view: StateView, name: str, genesis: Genesis | None = None) -> MemberInfo | None:
    if not bootstrapped(view) and genesis is not None:
        return next((m for m in genesis.members if m.name == name), None)
    data = view.get(MEMBERS_TABLE, name)
    return None if data is None else MemberInfo.decode(name, data)


def members(view: StateView, genesis: Genesis | None = None) -> list[MemberInfo]:
    """Every member, removed ones included (check ``.active``), by name."""
    if not bootstrapped(view) and genesis is not None:
        return sorted(genesis.members, key=lambda m: m.name)
    return [MemberInfo.decode(k, v) for k, v in view.items(MEMBERS_TABLE)]


def active_members(view: StateView, genesis: Genesis | None = None) -> list[MemberInfo]:
    return [m for m in members(view, genesis) if m.active]


def node_info(view: StateView, name: str, genesis: Genesis | None = None) -> GovNode | None:
    if not bootstrapped(view) and genesis is not None:
        return next((n for n in genesis.nodes if n.name == name), None)
    data = view.get(NODES_TABLE, name)
    return None if data is None else GovNode.decode(name, data)


def nodes(view: StateView, genesis: Genesis | None = None) -> list[GovNode]:
    if not bootstrapped(view) and genesis is not None:
        return sorted(genesis.nodes, key=lambda n: n.name)
    return [GovNode.decode(k, v) for k, v in view.items(NODES_TABLE)]


def user(
    view: StateView, member_name: str, name: str, genesis: Genesis | None = None
) -> AppUser | None:
    if not bootstrapped(view) and genesis is not None:
        return next((u for u in genesis.users if u.member == member_name and u.name == name), None)
    key = user_key(member_name, name)
    data = view.get(USERS_TABLE, key)
    return None if data is None else AppUser.decode(key, data)


def users(view: StateView, genesis: Genesis | None = None) -> list[AppUser]:
    if not bootstrapped(view) and genesis is not None:
        return sorted(genesis.users, key=lambda u: u.key)
    return [AppUser.decode(k, v) for k, v in view.items(USERS_TABLE)]


def _proposal_order(pid: str) -> tuple[int, int]:
    return parse_tx_id(pid) or (0, 0)


def proposal(view: StateView, pid: str) -> Proposal | None:
    data = view.get(PROPOSALS_TABLE, pid)
    return None if data is None else Proposal.decode(pid, data)


def proposals(view: StateView, *, state: str | None = None) -> list[Proposal]:
    """Every proposal in log order (optionally only those in ``state``)."""
    rows = sorted(view.items(PROPOSALS_TABLE), key=lambda kv: _proposal_order(kv[0]))
    out = [Proposal.decode(k, v) for k, v in rows]
    return out if state is None else [p for p in out if p.state == state]


def intent(view: StateView, kind: str) -> Intent | None:
    data = view.get(INTENTS_TABLE, kind)
    return None if data is None else Intent.decode(data)


def ledger_ms(view: StateView) -> int:
    """Governance's ledger time: see ``handler`` for how it advances."""
    data = view.get(META_TABLE, CLOCK)
    if data is None:
        return 0
    try:
        value = decode(data)
    except SyrupError as exc:
        raise RequestFormatError(f"ledger clock: {exc.message}") from None
    if type(value) is not int:
        raise RequestFormatError("ledger clock: expected an integer")
    return value


def network_id(view: StateView) -> bytes | None:
    return view.get(META_TABLE, NETWORK)


__all__ = [
    "CONSTITUTION_TABLE",
    "INTENTS_TABLE",
    "LOG_TABLE",
    "MEMBERS_TABLE",
    "META_TABLE",
    "NODES_TABLE",
    "NONCES_TABLE",
    "PREFIX",
    "PROPOSALS_TABLE",
    "USERS_TABLE",
    "StateView",
    "active_members",
    "bootstrapped",
    "constitution",
    "intent",
    "ledger_ms",
    "member",
    "members",
    "network_id",
    "node_info",
    "nodes",
    "proposal",
    "proposals",
    "user",
    "users",
]
