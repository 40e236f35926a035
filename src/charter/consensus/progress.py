"""The leader's view of each follower: how far it matches, what to send next, and how much.

A follower is in one of three states (as in etcd): PROBE (one append in flight until it
answers, used after a rejection or an unreachable report), REPLICATE (appends pipelined
optimistically, bounded by the inflight window in messages and bytes) and SNAPSHOT
(a chunked snapshot is being sent; appends wait until it is installed).
"""

from __future__ import annotations

from collections import deque
from enum import Enum

from charter.consensus.types import Snapshot


class ProgressState(Enum):
    PROBE = "probe"
    REPLICATE = "replicate"
    SNAPSHOT = "snapshot"


class Inflights:
    """Appends sent but not acknowledged, as (last index, bytes); a sliding window."""

    __slots__ = ("_queue", "bytes", "max_bytes", "max_count")

    def __init__(self, max_count: int, max_bytes: int = 0) -> None:
        self.max_count = max_count
        self.max_bytes = max_bytes
        self._queue: deque[tuple[int, int]] = deque()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, last_index: int, size: int) -> None:
        self._queue.append((last_index, size))
        self.bytes += size

    def free_le(self, index: int) -> None:
        """Release every append whose last entry is at or below ``index``."""
        q = self._queue
        while q and q[0][0] <= index:
            self.bytes -= q.popleft()[1]

    def free_first(self) -> None:
        """Release the oldest append, so a window stuck on lost replies can move again."""
        if self._queue:
            self.bytes -= self._queue.popleft()[1]

    def full(self) -> bool:
        return len(self._queue) >= self.max_count or (
            self.max_bytes > 0 and self.bytes >= self.max_bytes
        )

    def reset(self) -> None:
        self._queue.clear()
        self.bytes = 0


class Progress:
    """Replication state of one follower (or learner) on the leader."""

    __slots__ = (
        "inflights",
        "is_learner",
        "match",
        "next",
        "probe_sent",
        "recent_active",
        "sent_commit",
        "snap",
        "snap_acked",
        "snap_dup_offset",
        "snap_dups",
        "snap_rewind",
        "snap_sent",
        "snap_stall",
        "state",
    )

    def __init__(self, next_index: int, inflights: Inflights, *, is_learner: bool = False) -> None:
        self.match = 0
        self.next = next_index
        self.state = ProgressState.PROBE
        self.probe_sent = False
        self.recent_active = False
        self.is_learner = is_learner
        self.inflights = inflights
        self.sent_commit = 0
        self.snap: Snapshot | None = None
        self.snap_sent = 0
        self.snap_acked = 0
        self.snap_rewind = -1
        self.snap_stall = 0
        self.snap_dups = 0
        self.snap_dup_offset = -1

    def __repr__(self) -> str:
        return f"Progress({self.state.name} match={self.match} next={self.next})"

    def _reset(self, state: ProgressState) -> None:
        self.probe_sent = False
        self.state = state
        self.inflights.reset()
        self.snap = None
        self.snap_sent = self.snap_acked = self.snap_stall = self.snap_dups = 0
        self.snap_rewind = self.snap_dup_offset = -1

    def become_probe(self) -> None:
        if self.state is ProgressState.SNAPSHOT and self.snap is not None:
            pending = self.snap.metadata.index
            self._reset(ProgressState.PROBE)
            self.next = max(self.match + 1, pending + 1)
        else:
            self._reset(ProgressState.PROBE)
            self.next = self.match + 1

    def become_replicate(self) -> None:
        self._reset(ProgressState.REPLICATE)
        self.next = self.match + 1

    def become_snapshot(self, snap: Snapshot) -> None:
        self._reset(ProgressState.SNAPSHOT)
        self.snap = snap

    def snapshot_rewind(self, offset: int) -> None:
        """Resend the snapshot from ``offset``, the first byte the follower lacks."""
        self.snap_acked = self.snap_sent = offset
        self.snap_rewind = offset
        self.snap_stall = self.snap_dups = 0

    def maybe_update(self, n: int) -> bool:
        """Record that the follower holds entries up to ``n``; whether that is news."""
        updated = False
        if self.match < n:
            self.match = n
            updated = True
            self.probe_sent = False
        if self.next < n + 1:
            self.next = n + 1
        return updated

    def optimistic_update(self, last: int) -> None:
        self.next = last + 1

    def maybe_decr_to(self, rejected: int, match_hint: int) -> bool:
        """Step ``next`` back after a rejection of the append after ``rejected``.

        Returns False for a stale rejection (one about an append already superseded).
        """
        if self.state is ProgressState.REPLICATE:
            if rejected <= self.match:
                return False
            self.next = self.match + 1
            return True
        if self.next - 1 != rejected:
            return False
        self.next = max(min(rejected, match_hint + 1), self.match + 1)
        self.probe_sent = False
        return True

    def is_paused(self) -> bool:
        if self.state is ProgressState.PROBE:
            return self.probe_sent
        if self.state is ProgressState.REPLICATE:
            return self.inflights.full()
        return True
