"""The Raft log as the core sees it: durable entries in storage plus an unstable tail.

Entries the core has accepted but the caller has not yet reported durable live in the
unstable tail (and possibly an unstable snapshot ahead of them). Only durable entries are
ever handed out for application, and only durable entries count toward the node's own
acknowledgement as leader.
"""

from __future__ import annotations

from collections.abc import Sequence

from charter.consensus.errors import Compacted, ConsensusError, Unavailable
from charter.consensus.storage import RaftStorage, limit_size
from charter.consensus.types import Entry, Snapshot


class LogInvariantError(ConsensusError):
    """An operation would break the log's own invariants (a bug in the caller or peer)."""

    code = "consensus.log.invariant"


class RaftLog:
    """Stable storage + unstable tail, with commit and applied indices."""

    __slots__ = (
        "applied",
        "committed",
        "storage",
        "unstable",
        "unstable_offset",
        "unstable_snapshot",
    )

    def __init__(self, storage: RaftStorage) -> None:
        self.storage = storage
        self.unstable: list[Entry] = []
        self.unstable_offset = storage.last_index() + 1
        self.unstable_snapshot: Snapshot | None = None
        first = storage.first_index()
        self.committed = first - 1
        self.applied = first - 1

    # --- bounds and terms -------------------------------------------------------------------

    def first_index(self) -> int:
        if self.unstable_snapshot is not None:
            return self.unstable_snapshot.metadata.index + 1
        return self.storage.first_index()

    def last_index(self) -> int:
        if self.unstable:
            return self.unstable_offset + len(self.unstable) - 1
        if self.unstable_snapshot is not None:
            return self.unstable_snapshot.metadata.index
        return self.storage.last_index()

    def term(self, index: int) -> int | None:
        """Term of the entry at ``index``; None if it is compacted or past the end."""
        off = index - self.unstable_offset
        if off >= 0:
            return self.unstable[off].term if off < len(self.unstable) else None
        snap = self.unstable_snapshot
        if snap is not None:
            if index == snap.metadata.index:
                return snap.metadata.term
            if index < snap.metadata.index:
                return None
        try:
            return self.storage.term(index)
        except (Compacted, Unavailable):
            return None

    def last_term(self) -> int:
        t = self.term(self.last_index())
        if t is None:  # pragma: no cover - the last index always has a term
            raise LogInvariantError("no term at the last index")
        return t

    def match_term(self, index: int, term: int) -> bool:
        return self.term(index) == term

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Whether a candidate's log (ending at the given entry) is at least as new as ours."""
        ours = self.last_term()
        return last_term > ours or (last_term == ours and last_index >= self.last_index())

    def stable_last_index(self) -> int:
        """The last index the caller has reported durable and that is not being replaced."""
        if self.unstable_snapshot is not None:
            return 0  # nothing is appliable until the snapshot itself is durable
        return min(self.storage.last_index(), self.unstable_offset - 1)

    # --- appending --------------------------------------------------------------------------

    def append(self, entries: Sequence[Entry]) -> int:
        """Append ``entries`` (consecutive), truncating any unstable or stable suffix."""
        if not entries:
            return self.last_index()
        after = entries[0].index - 1
        if after < self.committed:
            raise LogInvariantError(
                f"append after {after} would rewrite committed {self.committed}"
            )
        off = self.unstable_offset
        if after + 1 == off + len(self.unstable):
            self.unstable.extend(entries)
        elif after + 1 <= off:
            # Replaces everything unstable, and the stable suffix from ``after + 1`` on.
            self.unstable_offset = after + 1
            self.unstable = list(entries)
        else:
            del self.unstable[after + 1 - off :]
            self.unstable.extend(entries)
        return self.last_index()

    def find_conflict(self, entries: Sequence[Entry]) -> int:
        """Index of the first entry that is new or conflicts with ours; 0 if all match."""
        last = self.last_index()
        for e in entries:
            if e.index > last:
                return e.index
            if self.term(e.index) != e.term:
                return e.index
        return 0

    def find_conflict_by_term(self, index: int, term: int) -> tuple[int, int]:
        """Largest index <= ``index`` whose term is <= ``term``, with that term.

        Used both by a follower building a rejection hint and by the leader reading one, so
        that a whole run of conflicting entries is skipped in one round trip.
        """
        index = min(index, self.last_index())
        first = self.first_index() - 1
        while index > first:
            t = self.term(index)
            if t is None or t <= term:
                break
            index -= 1
        t = self.term(index)
        return index, (t if t is not None else 0)

    def maybe_append(
        self, prev_index: int, prev_term: int, commit: int, entries: Sequence[Entry]
    ) -> int | None:
        """Accept an APPEND if it matches our log at ``prev_index``; the new last index."""
        if not self.match_term(prev_index, prev_term):
            return None
        last_new = prev_index + len(entries)
        if entries:
            conflict = self.find_conflict(entries)
            if conflict:
                if conflict <= self.committed:
                    raise LogInvariantError(
                        f"entry {conflict} conflicts with the committed prefix {self.committed}"
                    )
                skip = conflict - entries[0].index
                self.append(entries[skip:] if skip else entries)
        self.commit_to(min(commit, last_new))
        return last_new

    def commit_to(self, index: int) -> bool:
        if index > self.committed:
            if index > self.last_index():
                raise LogInvariantError(f"commit {index} is past the last index")
            self.committed = index
            return True
        return False

    # --- reading ----------------------------------------------------------------------------

    def slice(self, lo: int, hi: int, max_bytes: int = 0) -> list[Entry]:
        """Entries ``[lo, hi)`` limited to ``max_bytes``; raises Compacted below the log."""
        if lo >= hi:
            return []
        if lo < self.first_index():
            raise Compacted(f"index {lo} is compacted")
        off = self.unstable_offset
        if lo >= off:
            return limit_size(self.unstable[lo - off : hi - off], max_bytes)
        if hi <= off:
            return self.storage.entries(lo, hi, max_bytes)
        head = self.storage.entries(lo, off, max_bytes)
        if len(head) < off - lo:
            return head
        return limit_size(head + self.unstable[: hi - off], max_bytes)

    def next_committed(self) -> list[Entry]:
        """Committed, durable entries not yet handed out for application."""
        hi = min(self.committed, self.stable_last_index())
        if hi <= self.applied:
            return []
        return self.slice(self.applied + 1, hi + 1)

    def has_next_committed(self) -> bool:
        return min(self.committed, self.stable_last_index()) > self.applied

    def applied_to(self, index: int) -> None:
        if index > self.applied:
            self.applied = index

    # --- durability -------------------------------------------------------------------------

    def stable_to(self, index: int, term: int) -> None:
        """The caller made entries up to ``index`` (of ``term``) durable."""
        off = index - self.unstable_offset
        if off < 0 or off >= len(self.unstable) or self.unstable[off].term != term:
            return
        del self.unstable[: off + 1]
        self.unstable_offset = index + 1

    def stable_snapshot_to(self, index: int) -> None:
        if self.unstable_snapshot is not None and self.unstable_snapshot.metadata.index == index:
            self.unstable_snapshot = None

    def restore(self, snap: Snapshot) -> None:
        """Replace the whole log by ``snap`` (to be made durable by the caller)."""
        idx = snap.metadata.index
        self.committed = idx
        self.unstable_snapshot = snap
        self.unstable = []
        self.unstable_offset = idx + 1

    def snapshot(self) -> Snapshot:
        if self.unstable_snapshot is not None:
            return self.unstable_snapshot
        return self.storage.snapshot()
