"""What the API says about the node it serves."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NodeInfo"]


@dataclass(frozen=True)
class NodeInfo:
    name: str
    """The node's name in the network configuration."""
    member: str
    """The member (organization) that runs it."""
    node_id: str
    """The node's ledger identity, hex."""
    raft_id: int
    api_url: str
    version: str
