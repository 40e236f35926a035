"""The genesis constitution: derived deterministically from the network file.

Members (name, key, roles) and nodes (identity, ledger certificate, address, all
trusted) come from the file's ``members`` and ``nodes``; the rules come from its
``constitution`` section (written by ``charter stack init``)::

    "constitution": {
      "thresholds": {"default": {"rule": "majority"}, "remove_member": {"rule": "all"}},
      "measurements": ["<hex sha-256>", ...],
      "request_window_ms": 300000,
      "token_pools": "any-member"
    }

A file without the section gets the defaults: majority for everything, no allowed
measurement (so no node can join until members add one), a five-minute window.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from charter.crypto.keys import Ed25519PublicKey
from charter.errors import CharterError
from charter.governance.errors import GenesisError
from charter.governance.model import Constitution, Genesis, GovNode, MemberInfo
from charter.ledger.engine.commands import Command
from charter.ledger.engine.nodes import NodeStatus
from charter.ledger.trust import NodeCert

if TYPE_CHECKING:
    from charter.node.ledger_service import LedgerNetwork
    from charter.node.network import Network


def constitution_section(measurements: Iterable[str] = ()) -> dict[str, Any]:
    """The section ``charter stack init`` writes: defaults plus allowed measurements."""
    return Constitution(measurements=tuple(sorted(set(measurements)))).to_json()


def parse_section(section: Mapping[str, Any] | None) -> Constitution:
    try:
        return Constitution.from_json(dict(section) if section is not None else {})
    except CharterError as exc:
        raise GenesisError(f"network file constitution: {exc.message}") from None


def genesis_from_network(network: Network) -> Genesis:
    """The genesis every node of ``network`` derives from the same file."""
    constitution = parse_section(network.constitution)
    members = tuple(
        MemberInfo(m.name, m.public_key, tuple(sorted(m.roles))) for m in network.members
    )
    nodes = tuple(
        GovNode(
            n.name,
            n.member,
            n.identity,
            n.cert,
            n.host,
            n.port,
            n.api_url,
            "",
            NodeStatus.TRUSTED,
        )
        for n in network.nodes
    )
    return _checked(Genesis(network.network_id, constitution, members, nodes))


def genesis_from_ledger(
    ledger: LedgerNetwork,
    members: Mapping[str, Ed25519PublicKey],
    section: Mapping[str, Any] | None = None,
    roles: Mapping[str, Iterable[str]] | None = None,
) -> Genesis:
    """The genesis of an in-process network (no network file): its nodes, given members."""
    constitution = parse_section(section)
    roles = roles or {}
    infos = tuple(
        MemberInfo(name, key, tuple(sorted(roles.get(name, ("member",)))))
        for name, key in sorted(members.items())
    )
    nodes = tuple(
        GovNode(
            m.name,
            m.member or m.name,
            m.batch_key,
            NodeCert.from_x509(m.ledger_cert.x509),
            "",
            0,
            "",
            "",
            NodeStatus.TRUSTED,
        )
        for m in sorted(ledger.members.values(), key=lambda m: m.name)
    )
    return _checked(Genesis(ledger.raft.network_id, constitution, infos, nodes))


def _checked(genesis: Genesis) -> Genesis:
    names = {m.name for m in genesis.members}
    for n in genesis.nodes:
        if n.member not in names:
            raise GenesisError(f"node {n.name!r} belongs to {n.member!r}, who is not a member")
    for kind, t in genesis.constitution.thresholds.items():
        if not t.satisfiable(len(genesis.members)):
            raise GenesisError(f"the {kind} threshold cannot be met by the genesis members")
    return genesis


def bootstrap_command(genesis: Genesis) -> Command:
    from charter.governance.handler import bootstrap_body

    return Command("gov", bootstrap_body(genesis), "gov:bootstrap")


__all__ = [
    "bootstrap_command",
    "constitution_section",
    "genesis_from_ledger",
    "genesis_from_network",
    "parse_section",
]
