"""Who the member nodes are: name, owning member, where to reach them, and their key.

The transfer never trusts a name a peer sends: it maps the session's *authenticated*
(transport, designator) to a node here, and checks batch signatures against the node's
key here. ``update`` replaces the set when the node directory changes (a node joins or
is retired); sessions already introduced keep the name they were given.
``LedgerPeers`` does that by itself for a node's ledger: genesis nodes from the network
file, nodes governance trusted from the engine's directory, locations from the Raft
configuration the membership layer keeps current (re-read whenever its version moves).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from charter.crypto.keys import Ed25519PublicKey
from charter.ledger.engine.nodes import NodeStatus
from charter.multiparty.transfer.errors import TransferError
from charter.node.network import raft_id_for_key
from charter.ocapn.locator import PeerLocation

if TYPE_CHECKING:
    from charter.node.ledger_service import LedgerNetwork, LedgerService

__all__ = ["LedgerPeers", "PeerDirectory", "PeerNode"]

log = logging.getLogger(__name__)


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


class LedgerPeers(PeerDirectory):
    """The member nodes as a running node's ledger knows them now.

    A node is listed while the ledger trusts it (a genesis node unless governance wrote
    it since, or a directory entry with status ``trusted``) and the Raft configuration
    knows where it is; the list is rebuilt when the configuration's ``version`` moves.
    """

    def __init__(self, service: LedgerService) -> None:
        self._service = service
        self._version: int | None = None
        super().__init__(service.network.raft.network_id, ())
        self.refresh()

    def refresh(self, *, force: bool = False) -> None:
        raft = self._service.network.raft
        version = raft.version
        if version == self._version and not force:
            return
        peers = raft.peers
        nodes: dict[str, PeerNode] = {}
        for nid, m in self._service.network.members.items():
            loc = peers.get(nid)
            if loc is not None:
                nodes[m.name] = PeerNode(m.name, m.member, loc, m.batch_key)
        for name, entry in sorted(self._service.engine.directory().items()):
            loc = peers.get(raft_id_for_key(entry.batch_key))
            if entry.status is not NodeStatus.TRUSTED or loc is None:
                nodes.pop(name, None)
                continue
            nodes[name] = PeerNode(name, entry.member, loc, entry.batch_key)
        try:
            self.update(nodes.values())
        except TransferError as exc:  # keep the last consistent view
            log.error("transfer: the ledger's node list is inconsistent: %s", exc.message)
        self._version = version

    def get(self, name: str) -> PeerNode | None:
        self.refresh()
        return super().get(name)

    def node_for(self, transport: str, designator: str) -> PeerNode | None:
        self.refresh()
        return super().node_for(transport, designator)

    def names(self) -> list[str]:
        self.refresh()
        return super().names()
