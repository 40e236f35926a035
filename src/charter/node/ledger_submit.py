"""The ``ledger-submit`` capability: followers hand their signed batches to the leader.

Like the raft gate, each node exports a gate under a swiss number every member can
compute (``submit_swiss``). A caller ``introduce``s itself with a reference it exports;
the gate reads the session's authenticated peer designator, maps it to a node id of the
network and returns a **submit facet** bound to that id. Only network members get one.

The facet does not check whose batch it carries: every engine verifies the submitter's
Ed25519 signature over the batch body, so a leader (or a member forwarding) can delay or
drop another member's writes but never forge them. The reply is a plain value, never a
broken promise, for the outcomes a caller acts on: ``[ok index]``, ``[not-leader id]``
(0 when the leader is unknown) or ``[busy reason]``.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from charter.codec.syrup import Record, Symbol, encode
from charter.errors import CharterError
from charter.node.raft_transport import RaftNetworkConfig
from charter.ocapn.runtime import PeerSession, RemoteRef

__all__ = [
    "BUSY",
    "INTRODUCE",
    "NOT_LEADER",
    "OK",
    "SUBMIT",
    "SubmitGate",
    "SubmitRefused",
    "submit_swiss",
]

INTRODUCE = Symbol("introduce")
SUBMIT = Symbol("submit")
OK = "ok"
NOT_LEADER = "not-leader"
BUSY = "busy"
_SWISS_LABEL = Symbol("charter-ledger-submit-v1")
MAX_ENTRY_BYTES = 4 << 20
"""A forwarded batch larger than this is refused (the runtime's messages are bounded too)."""

Propose = Callable[[bytes], Awaitable[list[Any]]]
"""The leader-side handler: propose an entry, reply ``[ok index]``/``[not-leader id]``/..."""


class SubmitRefused(CharterError):
    """A caller of the submit gate is not a member, or sent something that is no batch."""

    code = "node.ledger.submit_refused"


def submit_swiss(network_id: bytes, node_id: int) -> bytes:
    """SHA-256 of ``<charter-ledger-submit-v1 network-id node-id>`` as 64 hex digits."""
    digest = hashlib.sha256(encode(Record(_SWISS_LABEL, network_id, node_id))).hexdigest()
    return digest.encode("ascii")


class _SubmitFacet:
    """What one authenticated member holds; it dies with the session it was made on."""

    def __init__(self, propose: Propose, peer_id: int, session: PeerSession) -> None:
        self._propose = propose
        self.peer_id = peer_id
        self._session = weakref.ref(session)

    async def submit(self, entry: Any) -> list[Any]:
        session = self._session()
        if session is None or session.closed.is_set():
            raise SubmitRefused("the session this facet was introduced on has ended")
        if type(entry) is not bytes or not entry or len(entry) > MAX_ENTRY_BYTES:
            raise SubmitRefused(f"a batch is 1 to {MAX_ENTRY_BYTES} bytes")
        return await self._propose(entry)


class SubmitGate:
    """Registered under the node's submit swiss number; hands out facets to members."""

    def __init__(self, config: RaftNetworkConfig, node_id: int, propose: Propose) -> None:
        self._config = config
        self._node_id = node_id
        self._propose = propose
        self.refused = 0
        self._facets: weakref.WeakKeyDictionary[PeerSession, _SubmitFacet] = (
            weakref.WeakKeyDictionary()
        )

    def introduce(self, token: Any) -> _SubmitFacet:
        if type(token) is not RemoteRef:
            self.refused += 1
            raise SubmitRefused("introduce takes a reference the caller exports")
        session = token.peer
        designator = session.conn.peer_designator
        if designator is None or not session.usable:
            self.refused += 1
            raise SubmitRefused("the session's peer is not authenticated")
        peer_id = self._config.node_for(session.transport, designator)
        if peer_id is None or peer_id == self._node_id:
            self.refused += 1
            raise SubmitRefused(f"key {designator} is not a member of this network")
        facet = self._facets.get(session)
        if facet is None:
            facet = _SubmitFacet(self._propose, peer_id, session)
            self._facets[session] = facet
        return facet
