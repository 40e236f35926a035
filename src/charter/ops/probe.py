"""Reading what health and metrics need from a running ``LedgerService``.

Only public attributes are read: the Raft node's role, log and per-follower progress
(``service.driver.node``) and the transport's links (``service.member.transport``).
"""

from __future__ import annotations

from charter.consensus.types import Role
from charter.node.ledger_service import LedgerService
from charter.ops.health import Probe

__all__ = ["peer_ids", "probe_service"]


def peer_ids(service: LedgerService) -> list[int]:
    """The other members of the consensus group, by Raft id."""
    return sorted(n for n in service.network.raft.peers if n != service.node_id)


def probe_service(service: LedgerService) -> Probe:
    node = service.driver.node
    conf = node.conf_state
    transport = service.member.transport
    peers = peer_ids(service)
    lag: dict[int, int] = {}
    if node.role is Role.LEADER:
        last = node.last_index
        for peer in peers:
            progress = node.progress(peer)
            if progress is not None:
                lag[peer] = max(0, last - progress.match)
    return Probe(
        running=service.running,
        voter=service.node_id in conf.voters,
        learner=service.node_id in conf.learners,
        last_index=node.last_index,
        peers_total=len(peers),
        peers_connected=sum(1 for p in peers if transport.connected(p)),
        follower_lag=lag,
    )
