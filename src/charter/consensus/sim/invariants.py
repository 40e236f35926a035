"""Raft's safety properties, checked incrementally against what the simulator observes.

The checker knows nothing of the consensus core: it is fed plain records (index, term,
payload) as nodes persist, commit and apply them, so tests can feed it broken histories
directly. Every check is incremental (amortised O(1) per observed entry) except leader
completeness, which runs once per (leader, term) over the committed prefix.

Properties (Raft paper, figure 3, plus what a client is promised):
- election safety: at most one leader per term;
- vote safety: a node's persisted vote never changes within a term, its term never falls;
- log matching: entries with the same index and term have the same payload and the same
  predecessor term, which by induction gives identical prefixes;
- commit quorum: an index becomes committed only when a majority of the committing node's
  voters hold it durably;
- leader completeness: a leader's log holds every entry known committed when it was elected;
- state machine safety: no two nodes apply different entries at one index, and a node only
  applies entries it persisted;
- durability: a committed (hence any acknowledged) entry is never overwritten in a durable log;
- applied order: a node applies consecutive indices and never goes back within a lifetime.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from charter.consensus.sim.errors import InvariantViolation

EntryRecord = tuple[int, int, bytes]
"""(index, term, payload) of one log entry; payload tags the entry kind and its data."""

_UNKNOWN_TERM = -1


@dataclass(slots=True)
class LogMirror:
    """The terms and payloads of one node's log after ``snap_index`` (a compacted prefix)."""

    snap_index: int = 0
    snap_term: int = 0
    entries: list[tuple[int, bytes]] = field(default_factory=list)

    @property
    def last_index(self) -> int:
        return self.snap_index + len(self.entries)

    def term_at(self, index: int) -> int | None:
        """Term at ``index``; None past the end, ``_UNKNOWN_TERM`` inside the compacted prefix."""
        if index == self.snap_index:
            return self.snap_term
        if index < self.snap_index:
            return _UNKNOWN_TERM
        off = index - self.snap_index - 1
        if off >= len(self.entries):
            return None
        return self.entries[off][0]

    def payload_at(self, index: int) -> bytes | None:
        off = index - self.snap_index - 1
        if off < 0 or off >= len(self.entries):
            return None
        return self.entries[off][1]

    def append(self, records: Sequence[EntryRecord]) -> None:
        """Write ``records`` (consecutive), truncating any suffix they replace."""
        if not records:
            return
        first = records[0][0]
        if first <= self.snap_index:
            skip = self.snap_index - first + 1
            records = records[skip:]
            if not records:
                return
            first = records[0][0]
        if first > self.last_index + 1:
            raise InvariantViolation(
                "log-matching",
                f"persisted entries start at {first} past the log end {self.last_index}",
            )
        del self.entries[first - self.snap_index - 1 :]
        self.entries.extend((t, p) for _, t, p in records)

    def install(self, index: int, term: int) -> None:
        """Replace the prefix up to ``index`` by a snapshot, keeping a matching suffix."""
        if self.term_at(index) == term and index <= self.last_index:
            del self.entries[: index - self.snap_index]
        else:
            self.entries.clear()
        self.snap_index = index
        self.snap_term = term

    def compact(self, index: int) -> None:
        if index <= self.snap_index:
            return
        term = self.term_at(index)
        if term is None or term == _UNKNOWN_TERM:
            return
        self.install(index, term)


@dataclass(slots=True)
class _NodeState:
    durable: LogMirror = field(default_factory=LogMirror)
    pending: dict[int, tuple[int, bytes]] = field(default_factory=dict)
    pending_from: int = 0
    term: int = 0
    vote: int = 0
    commit: int = 0
    applied: int = 0
    leader_check: tuple[int, int] | None = None  # (term, committed index when elected)
    leader_term: int = 0  # the last term this node was seen leading (armed once per term)

    def visible_term(self, index: int) -> int | None:
        if self.pending_from and index >= self.pending_from:
            got = self.pending.get(index)
            return got[0] if got is not None else None
        return self.durable.term_at(index)

    def visible_payload(self, index: int) -> bytes | None:
        if self.pending_from and index >= self.pending_from:
            got = self.pending.get(index)
            return got[1] if got is not None else None
        return self.durable.payload_at(index)


class Checker:
    """Accumulates observations of a cluster and raises ``InvariantViolation`` at the first lapse."""

    def __init__(self) -> None:
        self._nodes: dict[int, _NodeState] = {}
        self._leaders: dict[int, int] = {}
        self._entry_ids: dict[tuple[int, int], tuple[bytes, int]] = {}
        self.committed: dict[int, tuple[int, bytes]] = {}
        self.max_committed = 0
        self.acknowledged: dict[int, tuple[int, bytes]] = {}
        self.checks = 0

    # --- bookkeeping -------------------------------------------------------------------------

    def _node(self, node: int) -> _NodeState:
        st = self._nodes.get(node)
        if st is None:
            st = self._nodes[node] = _NodeState()
        return st

    def durable_log(self, node: int) -> LogMirror:
        return self._node(node).durable

    def applied_index(self, node: int) -> int:
        return self._node(node).applied

    def leader_of(self, term: int) -> int | None:
        return self._leaders.get(term)

    # --- observations ------------------------------------------------------------------------

    def on_role(self, node: int, term: int, is_leader: bool) -> None:
        """Election safety, and arming the leader-completeness check for a new leader."""
        if not is_leader:
            return
        self.checks += 1
        known = self._leaders.get(term)
        if known is None:
            self._leaders[term] = node
        elif known != node:
            raise InvariantViolation(
                "election-safety", f"nodes {known} and {node} are both leaders of term {term}"
            )
        st = self._node(node)
        if term > st.leader_term:
            st.leader_term = term
            st.leader_check = (term, self.max_committed)

    def on_hard_state(self, node: int, term: int, vote: int, commit: int) -> None:
        """A node persisted its hard state: term monotone, one vote per term, commit monotone."""
        self.checks += 1
        st = self._node(node)
        if term < st.term:
            raise InvariantViolation(
                "vote-safety", f"node {node} persisted term {term} after term {st.term}"
            )
        if term == st.term and st.vote and vote != st.vote:
            raise InvariantViolation(
                "vote-safety",
                f"node {node} voted for {st.vote} then for {vote} in term {term}",
            )
        if commit < st.commit:
            raise InvariantViolation(
                "commit-monotonic",
                f"node {node} persisted commit {commit} after commit {st.commit}",
            )
        st.term, st.vote, st.commit = term, vote, commit

    def on_pending(self, node: int, records: Sequence[EntryRecord]) -> None:
        """Entries handed out for persistence but not yet durable (visible, not yet counted)."""
        st = self._node(node)
        st.pending.clear()
        st.pending_from = records[0][0] if records else 0
        for idx, term, payload in records:
            st.pending[idx] = (term, payload)
        self._check_ids(node, st, records, pending=True)

    def on_persist(self, node: int, records: Sequence[EntryRecord]) -> None:
        """Entries became durable on ``node``; checks log matching and committed durability."""
        st = self._node(node)
        st.pending.clear()
        st.pending_from = 0
        if not records:
            return
        self._check_ids(node, st, records, pending=False)
        durable = st.durable
        for idx, term, payload in records:
            got = self.committed.get(idx)
            if (
                got is not None
                and got != (term, payload)
                and durable.term_at(idx) == got[0]
                and durable.payload_at(idx) == got[1]
            ):
                # A stale node may append junk at a committed index it never held; losing
                # a committed entry it did hold is what must never happen.
                raise InvariantViolation(
                    "durability",
                    f"node {node} overwrote committed entry {idx} (term {got[0]}) with term {term}",
                )
        # Writing at an index truncates everything after it: no committed entry may go.
        for idx in range(records[-1][0] + 1, min(durable.last_index, self.max_committed) + 1):
            got = self.committed.get(idx)
            if got is not None and durable.term_at(idx) == got[0]:
                raise InvariantViolation(
                    "durability",
                    f"node {node} truncated its log below committed entry {idx} (term {got[0]})",
                )
        durable.append(records)

    def _check_ids(
        self, node: int, st: _NodeState, records: Sequence[EntryRecord], *, pending: bool
    ) -> None:
        self.checks += len(records)
        if not records:
            return
        prev_index = records[0][0] - 1
        prev_term = st.durable.term_at(prev_index) if prev_index >= 0 else 0
        if prev_index == 0:
            prev_term = 0
        for idx, term, payload in records:
            if idx != prev_index + 1:
                raise InvariantViolation(
                    "log-matching", f"node {node} got non-consecutive entries at {idx}"
                )
            if prev_term is not None and prev_term != _UNKNOWN_TERM and term < prev_term:
                raise InvariantViolation(
                    "log-matching",
                    f"node {node} entry {idx} has term {term} below its predecessor's {prev_term}",
                )
            key = (idx, term)
            known = self._entry_ids.get(key)
            pt = prev_term if prev_term is not None else _UNKNOWN_TERM
            if known is None:
                self._entry_ids[key] = (payload, pt)
            else:
                kp, kprev = known
                if kp != payload:
                    raise InvariantViolation(
                        "log-matching",
                        f"node {node} holds a different entry at index {idx} term {term}",
                    )
                if pt != _UNKNOWN_TERM and kprev != _UNKNOWN_TERM and pt != kprev:
                    raise InvariantViolation(
                        "log-matching",
                        f"node {node} entry {idx}/{term} follows term {pt}, elsewhere term {kprev}",
                    )
                if kprev == _UNKNOWN_TERM and pt != _UNKNOWN_TERM:
                    self._entry_ids[key] = (payload, pt)
            prev_index, prev_term = idx, term
        del pending

    def on_snapshot(
        self, node: int, index: int, term: int, applied: Sequence[EntryRecord] | None
    ) -> None:
        """A snapshot became durable on ``node`` (installed from the leader or taken locally)."""
        self.checks += 1
        st = self._node(node)
        got = self.committed.get(index)
        if got is not None and got[0] != term:
            raise InvariantViolation(
                "state-machine-safety",
                f"node {node} snapshot at {index} has term {term}, committed term is {got[0]}",
            )
        if applied is not None:
            self._check_applied_prefix(node, applied, index)
        st.durable.install(index, term)
        st.pending.clear()
        st.pending_from = 0

    def on_compact(self, node: int, index: int) -> None:
        self._node(node).durable.compact(index)

    def on_snapshot_applied(self, node: int, index: int, applied: Sequence[EntryRecord]) -> None:
        """The application state jumped to a snapshot at ``index`` (state = applied records)."""
        st = self._node(node)
        if index < st.applied:
            raise InvariantViolation(
                "applied-order", f"node {node} restored snapshot {index} below applied {st.applied}"
            )
        self._check_applied_prefix(node, applied, index)
        st.applied = index

    def _check_applied_prefix(self, node: int, applied: Sequence[EntryRecord], index: int) -> None:
        last = 0
        for idx, term, payload in applied:
            if idx <= last:
                raise InvariantViolation(
                    "applied-order", f"node {node} snapshot state out of order at {idx}"
                )
            last = idx
            self._record_applied(node, idx, term, payload)
        if last > index:
            raise InvariantViolation(
                "state-machine-safety", f"node {node} snapshot {index} holds applied entry {last}"
            )

    def _record_applied(self, node: int, index: int, term: int, payload: bytes) -> None:
        got = self.committed.get(index)
        if got is None:
            self.committed[index] = (term, payload)
            self.max_committed = max(self.max_committed, index)
        elif got != (term, payload):
            raise InvariantViolation(
                "state-machine-safety",
                f"node {node} applied term {term} at index {index}; committed was term {got[0]}",
            )

    def on_commit(self, node: int, commit: int, voters: Iterable[int]) -> None:
        """``node`` reports commit index ``commit``; new indices need a durable quorum.

        Call it right after the step that moved the commit index: ``voters`` must be the
        configuration the node committed under (conf changes take effect when applied).
        """
        self.checks += 1
        st = self._node(node)
        if commit <= self.max_committed:
            return
        voter_list = list(voters)
        need = len(voter_list) // 2 + 1
        checked = self.max_committed
        for idx in range(self.max_committed + 1, commit + 1):
            if idx <= st.durable.snap_index:
                checked = idx  # inside a snapshot: committed state, judged as applied state
                continue
            term = st.visible_term(idx)
            if term is None or term == _UNKNOWN_TERM:
                # Not visible yet (a follower told of a commit covering entries still in
                # its unstable tail): judge it when it is, or at the leader.
                break
            checked = idx
            payload = st.visible_payload(idx)
            have = 0
            for v in voter_list:
                vs = self._nodes.get(v)
                if vs is None:
                    continue
                t = vs.durable.term_at(idx)
                if t == term or (t == _UNKNOWN_TERM and idx in self.committed):
                    have += 1
            if have < need:
                raise InvariantViolation(
                    "commit-quorum",
                    f"node {node} committed index {idx} (term {term}) held durably by "
                    f"{have} of {len(voter_list)} voters",
                )
            if payload is not None and idx not in self.committed:
                self.committed[idx] = (term, payload)
        self.max_committed = max(self.max_committed, checked)

    def on_apply(self, node: int, index: int, term: int, payload: bytes) -> None:
        """``node`` applied one committed entry: order, persistence first, one value per index."""
        self.checks += 1
        st = self._node(node)
        if index != st.applied + 1:
            raise InvariantViolation(
                "applied-order", f"node {node} applied index {index} after {st.applied}"
            )
        dterm = st.durable.term_at(index)
        if dterm != term and not (dterm == _UNKNOWN_TERM):
            raise InvariantViolation(
                "state-machine-safety",
                f"node {node} applied entry {index} (term {term}) that it had not persisted",
            )
        self._record_applied(node, index, term, payload)
        st.applied = index

    def on_ready_taken(self, node: int, is_leader: bool, term: int) -> None:
        """The node's whole log is visible: run the leader-completeness check if one is armed."""
        st = self._node(node)
        check = st.leader_check
        if check is None:
            return
        if not is_leader or term != check[0]:
            st.leader_check = None
            return
        st.leader_check = None
        self.checks += 1
        upto = check[1]
        start = max(1, st.durable.snap_index + 1)
        for idx in range(start, upto + 1):
            got = self.committed.get(idx)
            if got is None:
                continue
            t = st.visible_term(idx)
            if t != got[0]:
                raise InvariantViolation(
                    "leader-completeness",
                    f"leader {node} of term {term} lacks committed entry {idx} (term {got[0]})",
                )

    def on_crash(self, node: int) -> None:
        st = self._node(node)
        st.pending.clear()
        st.pending_from = 0
        st.leader_check = None

    def on_restart(self, node: int) -> None:
        """A new lifetime: the application state restarts from the durable snapshot."""
        st = self._node(node)
        st.applied = 0

    def acknowledge(self, index: int, term: int, payload: bytes) -> None:
        self.acknowledged[index] = (term, payload)

    def max_acknowledged(self) -> int:
        return max(self.acknowledged, default=0)
