"""The values exchanged between the Raft core and its caller.

Everything here is plain data: the core never does I/O, so these are its whole
interface to disks, networks and the application. Records use slotted dataclasses
(cheap to build on the hot path); callers must treat them as immutable.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum, IntEnum

from charter.consensus.errors import ConfChangeInvalid

NO_NODE = 0
"""The node id meaning "nobody" (no vote cast, no known leader); real ids are positive."""


class EntryKind(IntEnum):
    NORMAL = 0
    CONF_CHANGE = 1


@dataclass(slots=True)
class Entry:
    """One log entry. A new leader appends an empty NORMAL entry to commit its term."""

    term: int
    index: int
    kind: EntryKind = EntryKind.NORMAL
    data: bytes = b""


@dataclass(slots=True, frozen=True)
class HardState:
    """What must be durable before any message that depends on it is sent."""

    term: int = 0
    vote: int = NO_NODE
    commit: int = 0


@dataclass(slots=True, frozen=True)
class ConfState:
    """Cluster membership: voters form quorums, learners only receive the log."""

    voters: frozenset[int] = frozenset()
    learners: frozenset[int] = frozenset()


@dataclass(slots=True, frozen=True)
class SnapshotMeta:
    index: int = 0
    term: int = 0
    conf: ConfState = ConfState()


@dataclass(slots=True, frozen=True)
class Snapshot:
    """The application state as of ``metadata.index``, replacing the log up to it."""

    metadata: SnapshotMeta = SnapshotMeta()
    data: bytes = b""


class ConfChangeKind(IntEnum):
    ADD_LEARNER = 1
    PROMOTE = 2
    REMOVE = 3


_CC = struct.Struct(">BQ")


@dataclass(slots=True, frozen=True)
class ConfChange:
    """One single-server membership change, carried in a CONF_CHANGE entry."""

    kind: ConfChangeKind
    node_id: int

    def encode(self) -> bytes:
        return _CC.pack(int(self.kind), self.node_id)

    @classmethod
    def decode(cls, data: bytes) -> ConfChange:
        if len(data) != _CC.size:
            raise ConfChangeInvalid(f"conf change record of {len(data)} bytes")
        kind, node_id = _CC.unpack(data)
        try:
            k = ConfChangeKind(kind)
        except ValueError:
            raise ConfChangeInvalid(f"unknown conf change kind {kind}") from None
        if node_id <= NO_NODE:
            raise ConfChangeInvalid("conf change of node id 0")
        return cls(k, node_id)


class MessageType(IntEnum):
    PRE_VOTE = 1
    PRE_VOTE_RESP = 2
    VOTE = 3
    VOTE_RESP = 4
    APPEND = 5
    APPEND_RESP = 6
    HEARTBEAT = 7
    HEARTBEAT_RESP = 8
    SNAPSHOT = 9
    SNAPSHOT_RESP = 10
    TIMEOUT_NOW = 11
    READ_INDEX = 12
    READ_INDEX_RESP = 13


CAMPAIGN_TRANSFER = b"transfer"
"""Context of a VOTE sent on TIMEOUT_NOW: voters set aside their leader lease for it."""


@dataclass(slots=True)
class Message:
    """One Raft message. Which fields are meaningful depends on ``type``:

    - votes: ``log_term``/``index`` are the candidate's last entry; responses set ``reject``;
    - APPEND: ``log_term``/``index`` locate the entry before ``entries``; ``commit``;
    - APPEND_RESP: ``index`` is the matched last index, or on ``reject`` the rejected
      ``index`` with the follower's hint (``reject_hint`` index and its ``log_term``);
    - HEARTBEAT(_RESP): ``commit``, and ``context`` of the read index being confirmed;
    - SNAPSHOT: a chunk ``data`` at ``offset`` of the snapshot ``snapshot``; ``done`` on
      the last; SNAPSHOT_RESP acknowledges the first ``offset`` bytes as held contiguously
      (a repeated ``offset`` tells the leader the chunk there was lost);
    - READ_INDEX(_RESP): ``context`` names the read, ``index`` is its read index.
    """

    type: MessageType
    frm: int
    to: int
    term: int
    log_term: int = 0
    index: int = 0
    entries: Sequence[Entry] = ()
    commit: int = 0
    reject: bool = False
    reject_hint: int = 0
    context: bytes = b""
    snapshot: SnapshotMeta | None = None
    data: bytes = b""
    offset: int = 0
    done: bool = False


class Role(Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"
    LEARNER = "learner"


@dataclass(slots=True, frozen=True)
class SoftState:
    """Volatile state worth reporting; never persisted. ``leader`` is NO_NODE if unknown."""

    role: Role
    leader: int


@dataclass(slots=True, frozen=True)
class ReadState:
    """A linearizable read may be served once the application has applied ``index``."""

    index: int
    ctx: bytes


@dataclass(slots=True)
class Ready:
    """One batch of work for the caller, in this order: persist ``snapshot``, ``entries``
    and ``hard_state``; then send ``messages``; apply ``committed_entries`` (all already
    durable), calling ``RaftNode.apply_conf_change`` for each CONF_CHANGE entry; serve
    ``read_states`` once applied; finally call ``RaftNode.advance``.
    """

    hard_state: HardState | None = None
    entries: list[Entry] = field(default_factory=list)
    snapshot: Snapshot | None = None
    committed_entries: list[Entry] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    read_states: list[ReadState] = field(default_factory=list)
    soft_state: SoftState | None = None
