"""The ``mp-inbox`` capability: the one door through which member nodes reach this node.

Like the raft gate (``charter.node.raft_transport``), the gate is registered under a
swiss number every member can compute (``wire.inbox_swiss``); the number grants
nothing. A caller ``introduce``s itself with a reference it exports; a reference a gate
receives is bound to the session it came over, so the gate reads that session's
*authenticated* designator (the TLS netlayer proved the key), looks it up in the
``PeerDirectory`` and returns an **inbox facet** bound to that node's name. Everything
the facet does is on behalf of that name only: a peer can never speak for another node,
and a key that is no member's gets no facet at all. The facet dies with its session.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, Protocol

from charter.multiparty.transfer.errors import TransferRefused
from charter.multiparty.transfer.peers import PeerDirectory, PeerNode
from charter.ocapn.runtime import PeerSession, RemoteRef

__all__ = ["InboxFacet", "InboxGate", "authenticated_peer"]


class _Receiver(Protocol):
    async def receive_batch(
        self, sender: str, batch_hash: Any, batch: Any, signature: Any, blobs: Any
    ) -> list[Any]: ...

    def serve_blob(self, node: str, blob_hash: Any, offset: Any, length: Any) -> list[Any]: ...


def authenticated_peer(
    token: Any, peers: PeerDirectory, self_name: str
) -> tuple[PeerSession, PeerNode]:
    """The session ``token`` came over and the member node that session proved to be.

    ``token`` must be a reference the caller exports (so it names the caller's session);
    ``TransferRefused`` if it is not, if the session is not authenticated, or if its key
    is no member node's (or this node's own).
    """
    if type(token) is not RemoteRef:
        raise TransferRefused("introduce takes a reference the caller exports")
    session = token.peer
    designator = session.conn.peer_designator
    if designator is None or not session.usable:
        raise TransferRefused("the session's peer is not authenticated")
    node = peers.node_for(session.transport, designator)
    if node is None or node.name == self_name:
        raise TransferRefused(f"key {designator} is not a member node of this network")
    return session, node


class InboxFacet:
    """What one authenticated member node holds on this node."""

    def __init__(self, receiver: _Receiver, node: str, session: PeerSession) -> None:
        self._receiver = receiver
        self.node = node
        self._session = weakref.ref(session)

    def _check(self) -> None:
        session = self._session()
        if session is None or session.closed.is_set():
            raise TransferRefused("the session this inbox was introduced on has ended")

    async def deliver(self, batch_hash: Any, batch: Any, signature: Any, blobs: Any) -> list[Any]:
        """Hand a signed batch to this node; replies ``["ok"]`` or ``["refused", reason]``."""
        self._check()
        return await self._receiver.receive_batch(self.node, batch_hash, batch, signature, blobs)

    def read_blob(self, blob_hash: Any, offset: Any, length: Any) -> list[Any]:
        """``["ok", bytes]`` of a blob this node was granted, or ``["refused", reason]``."""
        self._check()
        return self._receiver.serve_blob(self.node, blob_hash, offset, length)


class InboxGate:
    """Registered under this node's inbox swiss number; hands facets to member nodes."""

    def __init__(self, receiver: _Receiver, peers: PeerDirectory, self_name: str) -> None:
        self._receiver = receiver
        self._peers = peers
        self._self_name = self_name
        self.refused = 0
        self._facets: weakref.WeakKeyDictionary[PeerSession, InboxFacet] = (
            weakref.WeakKeyDictionary()
        )

    def introduce(self, token: Any) -> InboxFacet:
        try:
            session, node = authenticated_peer(token, self._peers, self._self_name)
        except TransferRefused:
            self.refused += 1
            raise
        facet = self._facets.get(session)
        if facet is None or facet.node != node.name:
            facet = InboxFacet(self._receiver, node.name, session)
            self._facets[session] = facet
        return facet


if TYPE_CHECKING:  # the transfer is what the gate serves
    from charter.multiparty.transfer.transfer import Transfer

    _: type[_Receiver] = Transfer
