"""The one place the simulator touches the consensus core's API.

Everything else in the simulator speaks in plain records, so a change of the core's names
is absorbed here.
"""

from __future__ import annotations

import random

from charter.consensus.raft import Config, RaftNode
from charter.consensus.sim.invariants import EntryRecord
from charter.consensus.storage import MemoryStorage
from charter.consensus.types import (
    ConfChange,
    ConfState,
    Entry,
    EntryKind,
    Ready,
    Role,
)

__all__ = [
    "ConfChange",
    "ConfState",
    "Entry",
    "EntryKind",
    "MemoryStorage",
    "RaftNode",
    "Ready",
    "Role",
    "conf_change_of",
    "entry_record",
    "new_node",
    "new_storage",
]


def entry_record(e: Entry) -> EntryRecord:
    """(index, term, payload) with the kind folded into the payload's first byte."""
    tag = b"C" if e.kind is EntryKind.CONF_CHANGE else b"N"
    return (e.index, e.term, tag + e.data)


def conf_change_of(e: Entry) -> ConfChange | None:
    if e.kind is not EntryKind.CONF_CHANGE or not e.data:
        return None
    return ConfChange.decode(e.data)


def new_storage(voters: frozenset[int] | None) -> MemoryStorage:
    """Durable state of a founding member (``voters`` given) or of a joining node (None)."""
    if voters is None:
        return MemoryStorage()
    return MemoryStorage.bootstrap(ConfState(voters=voters, learners=frozenset()))


def new_node(
    node_id: int,
    storage: MemoryStorage,
    rng: random.Random,
    *,
    election_ticks: int,
    heartbeat_ticks: int,
    pre_vote: bool = True,
    check_quorum: bool = True,
    node_class: type[RaftNode] = RaftNode,
    max_entries_per_msg: int = 8,
) -> RaftNode:
    """A node with small message limits, so batching and chunking are exercised."""
    cfg = Config(
        node_id=node_id,
        election_ticks=election_ticks,
        heartbeat_ticks=heartbeat_ticks,
        rng=rng,
        pre_vote=pre_vote,
        check_quorum=check_quorum,
        max_entries_per_msg=max_entries_per_msg,
        snapshot_chunk_size=64,
    )
    return node_class(cfg, storage)


def persist(storage: MemoryStorage, rd: Ready) -> None:
    """Make a Ready's durable parts durable (the simulated fsync)."""
    storage.persist(rd)
