"""Raft as a pure state machine, with a thin asyncio driver.

Layout:
- ``types``: entries, messages, hard/soft state, snapshots, conf changes, Ready;
- ``raft``: ``RaftNode`` (election with PreVote and CheckQuorum, pipelined replication with
  flow control, fast backtracking, read index, chunked snapshots, single-server membership
  changes, leadership transfer) and its ``Config``;
- ``log``, ``progress``, ``quorum``, ``readonly``: the core's parts, each a pure data
  structure;
- ``storage``: the ``RaftStorage`` protocol and ``MemoryStorage``, the durable state a
  restarted node is rebuilt from;
- ``driver``: ``RaftDriver`` and ``MemoryNetwork`` (asyncio timers, storage and transport);
- ``local``: ``LocalCluster``, cores wired synchronously for tests and benchmarks;
- ``sim``: the deterministic fault simulator.

The contract with the caller is etcd's: feed ``tick``/``step``/client calls, take a
``Ready``, persist its snapshot, entries and hard state, send its messages, apply its
committed entries (calling ``apply_conf_change`` for CONF_CHANGE entries), then
``advance``. Committed entries are only ever entries already reported durable, and a
leader counts itself toward a quorum only for entries reported durable.

Membership changes are single-server (add a learner, promote it, remove a member), one at
a time, effective when applied; a new cluster starts from a snapshot at index 1 holding
the founding voters (``MemoryStorage.bootstrap``), so joining nodes learn the
configuration through the same snapshot path as any lagging follower.
"""

from charter.consensus.errors import (
    ConfChangeInProgress,
    ConfChangeInvalid,
    ConsensusError,
    InvalidConfig,
    InvalidTransfer,
    LearnerNotCaughtUp,
    NotLeader,
    ProposalDropped,
    TransferInProgress,
)
from charter.consensus.raft import Config, RaftNode
from charter.consensus.storage import MemoryStorage, RaftStorage
from charter.consensus.types import (
    ConfChange,
    ConfChangeKind,
    ConfState,
    Entry,
    EntryKind,
    HardState,
    Message,
    MessageType,
    ReadState,
    Ready,
    Role,
    Snapshot,
    SnapshotMeta,
    SoftState,
)

__all__ = [
    "ConfChange",
    "ConfChangeInProgress",
    "ConfChangeInvalid",
    "ConfChangeKind",
    "ConfState",
    "Config",
    "ConsensusError",
    "Entry",
    "EntryKind",
    "HardState",
    "InvalidConfig",
    "InvalidTransfer",
    "LearnerNotCaughtUp",
    "MemoryStorage",
    "Message",
    "MessageType",
    "NotLeader",
    "ProposalDropped",
    "RaftNode",
    "RaftStorage",
    "ReadState",
    "Ready",
    "Role",
    "Snapshot",
    "SnapshotMeta",
    "SoftState",
    "TransferInProgress",
]
