"""Who the member nodes are: name, owning member, where to reach them, and their key.

The transfer never trusts a name a peer sends: it maps the session's *authenticated*
(transport, designator) to a node here, and checks batch signatures against the node's
key here. ``update`` replaces the set when the node directory changes (a node joins or
is retired); sessions already introduced keep the name they were given.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from charter.crypto.keys import Ed25519PublicKey
from charter.multiparty.transfer.errors import TransferError
from charter.ocapn.locator import PeerLocation

if TYPE_CHECKING:
    from charter.node.ledger_service import LedgerNetwork

__all__ = ["PeerDirectory", "PeerNode"]


@dataclass(frozen=True, slots=True)
class PeerNode:
    name: str
    member: str
    location: PeerLocation
    key: Ed25519PublicKey
    """The node's Ed25519 key: it signs the node's batches (and, over TLS, its sessions)."""


class PeerDirectory:
    """The member nodes of one network, by name and by authenticated session key."""

    def __init__(self, network_id: bytes, nodes: Iterable[PeerNode]) -> None:
        self.network_id = network_id
        self._by_name: dict[str, PeerNode] = {}
        self._by_key: dict[tuple[str, str], PeerNode] = {}
        self.update(nodes)

    @classmethod
    def from_ledger_network(cls, network: LedgerNetwork) -> PeerDirectory:
        """The nodes of a ledger network's configuration (raft locations, batch keys)."""
        return cls(
            network.raft.network_id,
            (
                PeerNode(m.name, m.member, network.raft.peers[nid], m.batch_key)
                for nid, m in network.members.items()
            ),
        )

    def update(self, nodes: Iterable[PeerNode]) -> None:
        by_name: dict[str, PeerNode] = {}
        by_key: dict[tuple[str, str], PeerNode] = {}
        for n in nodes:
            if n.name in by_name:
                raise TransferError(f"node {n.name!r} is listed twice")
            if n.location.key in by_key:
                raise TransferError(
                    f"nodes {by_key[n.location.key].name!r} and {n.name!r} share a key"
                )
            by_name[n.name] = n
            by_key[n.location.key] = n
        self._by_name, self._by_key = by_name, by_key

    def get(self, name: str) -> PeerNode | None:
        return self._by_name.get(name)

    def node_for(self, transport: str, designator: str) -> PeerNode | None:
        """The node whose authenticated key is ``designator`` on ``transport``, if any."""
        return self._by_key.get((transport, designator))

    def names(self) -> list[str]:
        return sorted(self._by_name)
