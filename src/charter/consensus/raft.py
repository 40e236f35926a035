"""RaftNode: the Raft protocol as a pure state machine.

Inputs are ``tick()``, ``step(message)`` and the client calls (``propose``,
``propose_conf_change``, ``transfer_leadership``, ``read_index``); outputs are collected
into a ``Ready`` that the caller persists, sends and applies before calling ``advance``.
There are no sockets, files, clocks or randomness inside: time is the caller's ticks and
the election jitter comes from the caller's seeded ``random.Random``.

Ordering contract for the caller: persist a Ready's snapshot, entries and hard state, then
send its messages. (Messages from a leader that carry only its own new entries could be
sent in parallel with its own persistence: a leader counts itself toward a commit quorum
only for entries reported durable through ``advance``. The simple order is always safe.)

Membership changes are single-server changes, one at a time, taking effect when applied
(as in etcd): a new node joins as a learner, is promoted once it holds every committed
entry, and voters are removed one by one. Any two majorities of configurations that differ
by one voter intersect, so no joint consensus is needed, provided a change is proposed only
when the previous one is applied and the leader has committed an entry of its own term
(the fix from Ongaro's thesis for the single-server change bug).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from charter.consensus.errors import (
    Compacted,
    ConfChangeInProgress,
    ConfChangeInvalid,
    InvalidConfig,
    InvalidTransfer,
    LearnerNotCaughtUp,
    NotLeader,
    ProposalDropped,
    ReadyOutstanding,
    TransferInProgress,
)
from charter.consensus.log import RaftLog
from charter.consensus.progress import Inflights, Progress, ProgressState
from charter.consensus.quorum import VoteResult, committed_index, has_quorum, vote_result
from charter.consensus.readonly import ReadOnly
from charter.consensus.storage import RaftStorage
from charter.consensus.types import (
    CAMPAIGN_TRANSFER,
    NO_NODE,
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

_MT = MessageType

_SNAPSHOT_STALL_HEARTBEATS = 3
"""Heartbeat replies without a snapshot acknowledgement before the chunks are resent."""

_SNAPSHOT_DUP_ACKS = 3
"""Repeated acknowledgements of one offset that show a chunk was lost (not just late)."""

_MAX_EARLY_CHUNKS = 1024
"""Chunks a follower keeps that arrived ahead of a missing one."""


@dataclass(slots=True)
class Config:
    """Tuning of one node. Ticks are the caller's unit of time."""

    node_id: int
    election_ticks: int = 10
    heartbeat_ticks: int = 1
    rng: random.Random = field(kw_only=True)
    """The caller's seeded source of election jitter; the core has no randomness of its own."""
    pre_vote: bool = True
    check_quorum: bool = True
    max_entries_per_msg: int = 4096
    max_bytes_per_msg: int = 1 << 20
    max_inflight_msgs: int = 256
    max_inflight_bytes: int = 32 << 20
    snapshot_chunk_size: int = 1 << 20
    max_uncommitted_entries: int = 1 << 20
    """Proposals are refused (ProposalDropped) while this many entries await commit."""

    def validate(self) -> None:
        if self.node_id <= NO_NODE:
            raise InvalidConfig("node ids must be positive")
        if self.heartbeat_ticks < 1 or self.election_ticks <= self.heartbeat_ticks:
            raise InvalidConfig("election_ticks must exceed heartbeat_ticks >= 1")
        if self.max_entries_per_msg < 1 or self.max_inflight_msgs < 1:
            raise InvalidConfig("message and inflight limits must be >= 1")
        if self.max_uncommitted_entries < 1:
            raise InvalidConfig("max_uncommitted_entries must be >= 1")
        if self.snapshot_chunk_size < 1:
            raise InvalidConfig("snapshot_chunk_size must be >= 1")


@dataclass(slots=True)
class _SnapshotReceive:
    """Chunks of one snapshot being received from one leader in one term.

    ``size`` bytes are contiguous from the start; chunks that arrive early (reordered by
    the network) wait in ``early`` so that reordering costs no retransmission.
    """

    frm: int
    term: int
    meta: SnapshotMeta
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0
    early: dict[int, bytes] = field(default_factory=dict)
    total: int | None = None


class RaftNode:
    """One Raft participant. Not thread-safe; drive it from one task."""

    def __init__(self, config: Config, storage: RaftStorage) -> None:
        config.validate()
        self._cfg = config
        self._id = config.node_id
        self._storage = storage
        self._log = RaftLog(storage)
        hs, conf = storage.initial_state()
        snap_index = storage.snapshot_index()
        self._log.committed = max(hs.commit, snap_index)
        self._log.applied = snap_index
        self._term = hs.term
        self._vote = hs.vote
        self._conf = conf
        self._leader = NO_NODE
        self._role = Role.FOLLOWER
        self._progress: dict[int, Progress] = {}
        self._votes: dict[int, bool] = {}
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._randomized_timeout = 0
        self._transferee = NO_NODE
        self._pending_conf_index = 0
        self._msgs: list[Message] = []
        self._read_states: list[ReadState] = []
        self._read_only = ReadOnly()
        self._pending_reads: list[tuple[int, bytes]] = []
        self._snap_recv: _SnapshotReceive | None = None
        self._needs_bcast = False
        self._outstanding: Ready | None = None
        self._prev_hs = hs
        self._prev_ss = SoftState(self.role, NO_NODE)
        self._reset_randomized_timeout()

    # --- read-only properties -----------------------------------------------------------------

    @property
    def node_id(self) -> int:
        return self._id

    @property
    def role(self) -> Role:
        if self._role is Role.FOLLOWER and self._id not in self._conf.voters:
            return Role.LEARNER
        return self._role

    @property
    def term(self) -> int:
        return self._term

    @property
    def leader_id(self) -> int | None:
        return self._leader if self._leader != NO_NODE else None

    @property
    def commit_index(self) -> int:
        return self._log.committed

    @property
    def applied_index(self) -> int:
        return self._log.applied

    @property
    def last_index(self) -> int:
        return self._log.last_index()

    @property
    def conf_state(self) -> ConfState:
        return self._conf

    @property
    def transferee(self) -> int | None:
        return self._transferee if self._transferee != NO_NODE else None

    def progress(self, node_id: int) -> Progress | None:
        """The leader's replication state of ``node_id`` (None off the leader)."""
        return self._progress.get(node_id)

    # --- time ---------------------------------------------------------------------------------

    def tick(self) -> None:
        if self._role is Role.LEADER:
            self._tick_heartbeat()
        else:
            self._tick_election()

    def _tick_election(self) -> None:
        self._election_elapsed += 1
        if self._promotable() and self._election_elapsed >= self._randomized_timeout:
            self._election_elapsed = 0
            self._hup(transfer=False)

    def _tick_heartbeat(self) -> None:
        self._heartbeat_elapsed += 1
        self._election_elapsed += 1
        if self._election_elapsed >= self._cfg.election_ticks:
            self._election_elapsed = 0
            if self._cfg.check_quorum and not self._quorum_active():
                self._become_follower(self._term, NO_NODE)
                return
            self._transferee = NO_NODE
        if self._heartbeat_elapsed >= self._cfg.heartbeat_ticks:
            self._heartbeat_elapsed = 0
            self._bcast_heartbeat(self._read_only.last_ctx())

    def _reset_randomized_timeout(self) -> None:
        n = self._cfg.election_ticks
        self._randomized_timeout = self._cfg.rng.randrange(n, 2 * n)

    def _quorum_active(self) -> bool:
        active = {self._id}
        for nid, pr in self._progress.items():
            if nid != self._id:
                if pr.recent_active:
                    active.add(nid)
                pr.recent_active = False
        return has_quorum(self._conf.voters, active)

    # --- role changes -------------------------------------------------------------------------

    def _promotable(self) -> bool:
        return self._id in self._conf.voters

    def _reset(self, term: int) -> None:
        if term != self._term:
            self._term = term
            self._vote = NO_NODE
        self._leader = NO_NODE
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._reset_randomized_timeout()
        self._transferee = NO_NODE
        self._votes = {}
        self._progress = {}
        self._read_only.clear()
        self._pending_reads = []
        self._needs_bcast = False

    def _become_follower(self, term: int, leader: int) -> None:
        self._reset(term)
        self._leader = leader
        self._role = Role.FOLLOWER

    def _become_pre_candidate(self) -> None:
        # A pre-candidate changes neither its term nor its vote: a lost pre-election
        # leaves no trace, which is what keeps a partitioned node from disrupting others.
        self._votes = {}
        self._leader = NO_NODE
        self._role = Role.PRE_CANDIDATE

    def _become_candidate(self) -> None:
        self._reset(self._term + 1)
        self._vote = self._id
        self._role = Role.CANDIDATE

    def _become_leader(self) -> None:
        self._reset(self._term)
        self._leader = self._id
        self._role = Role.LEADER
        last = self._log.last_index()
        for nid in self._conf.voters | self._conf.learners:
            pr = self._new_progress(last + 1, nid in self._conf.learners)
            pr.recent_active = True
            self._progress[nid] = pr
        me = self._progress.get(self._id)
        if me is not None:
            me.become_replicate()
            me.maybe_update(self._log.stable_last_index())
        # Any conf change still in the uncommitted log blocks new ones until applied.
        self._pending_conf_index = last
        self._log.append([Entry(self._term, last + 1)])
        self._needs_bcast = True

    def _new_progress(self, next_index: int, is_learner: bool) -> Progress:
        cfg = self._cfg
        return Progress(
            next_index,
            Inflights(cfg.max_inflight_msgs, cfg.max_inflight_bytes),
            is_learner=is_learner,
        )

    def _hup(self, *, transfer: bool) -> None:
        # Only followers and candidates get here (ticks and TIMEOUT_NOW on a follower).
        if not self._promotable():
            return
        if self._has_unapplied_conf_change():
            return
        if self._cfg.pre_vote and not transfer:
            self._campaign(pre=True, transfer=False)
        else:
            self._campaign(pre=False, transfer=transfer)

    def _has_unapplied_conf_change(self) -> bool:
        log = self._log
        if log.committed <= log.applied:
            return False
        try:
            ents = log.slice(log.applied + 1, log.committed + 1)
        except Compacted:  # pragma: no cover - applied never trails the log start
            return False
        return any(e.kind is EntryKind.CONF_CHANGE for e in ents)

    def _campaign(self, *, pre: bool, transfer: bool) -> None:
        if pre:
            self._become_pre_candidate()
            mtype, term = _MT.PRE_VOTE, self._term + 1
        else:
            self._become_candidate()
            mtype, term = _MT.VOTE, self._term
        if self._poll(self._id, granted=True) is VoteResult.WON:
            # A single voter wins at once.
            if pre:
                self._campaign(pre=False, transfer=transfer)
            else:
                self._become_leader()
            return
        ctx = CAMPAIGN_TRANSFER if transfer else b""
        last = self._log.last_index()
        last_term = self._log.last_term()
        for v in sorted(self._conf.voters):
            if v != self._id:
                self._msgs.append(
                    Message(mtype, self._id, v, term, log_term=last_term, index=last, context=ctx)
                )

    def _poll(self, frm: int, *, granted: bool) -> VoteResult:
        self._votes.setdefault(frm, granted)
        return vote_result(self._conf.voters, self._votes)

    # --- messages -----------------------------------------------------------------------------

    def _send(
        self,
        mtype: MessageType,
        to: int,
        *,
        index: int = 0,
        log_term: int = 0,
        commit: int = 0,
        reject: bool = False,
        reject_hint: int = 0,
        context: bytes = b"",
        snapshot: SnapshotMeta | None = None,
        data: bytes = b"",
        offset: int = 0,
        done: bool = False,
    ) -> None:
        self._msgs.append(
            Message(
                mtype,
                self._id,
                to,
                self._term,
                log_term=log_term,
                index=index,
                commit=commit,
                reject=reject,
                reject_hint=reject_hint,
                context=context,
                snapshot=snapshot,
                data=data,
                offset=offset,
                done=done,
            )
        )

    def step(self, m: Message) -> None:
        """Feed one message received from a peer."""
        if m.to != self._id:
            return
        if m.term > self._term:
            if m.type is _MT.VOTE or m.type is _MT.PRE_VOTE:
                force = m.context == CAMPAIGN_TRANSFER
                in_lease = (
                    self._cfg.check_quorum
                    and self._leader != NO_NODE
                    and self._election_elapsed < self._cfg.election_ticks
                )
                if in_lease and not force:
                    # Heard from a live leader recently: do not let a stray candidate
                    # (or a rejoining node) depose it.
                    return
            if m.type is _MT.PRE_VOTE or (m.type is _MT.PRE_VOTE_RESP and not m.reject):
                pass  # pre-votes never change terms
            elif m.type in (_MT.APPEND, _MT.HEARTBEAT, _MT.SNAPSHOT):
                self._become_follower(m.term, m.frm)
            else:
                self._become_follower(m.term, NO_NODE)
        elif m.term < self._term:
            if (self._cfg.check_quorum or self._cfg.pre_vote) and m.type in (
                _MT.APPEND,
                _MT.HEARTBEAT,
            ):
                # A stale leader (cut off, or whose term we passed while pre-voting is on)
                # learns the current term from this and steps down.
                self._send(_MT.APPEND_RESP, m.frm)
            elif m.type is _MT.PRE_VOTE:
                self._send(_MT.PRE_VOTE_RESP, m.frm, reject=True)
            return

        if m.type is _MT.VOTE or m.type is _MT.PRE_VOTE:
            self._handle_vote(m)
        elif self._role is Role.LEADER:
            self._step_leader(m)
        elif self._role is Role.FOLLOWER:
            self._step_follower(m)
        else:
            self._step_candidate(m)

    def _handle_vote(self, m: Message) -> None:
        pre = m.type is _MT.PRE_VOTE
        can_vote = (
            self._vote == m.frm
            or (self._vote == NO_NODE and self._leader == NO_NODE)
            or (pre and m.term > self._term)
        )
        resp = _MT.PRE_VOTE_RESP if pre else _MT.VOTE_RESP
        if can_vote and self._log.is_up_to_date(m.index, m.log_term):
            self._msgs.append(Message(resp, self._id, m.frm, m.term))
            if not pre:
                self._election_elapsed = 0
                self._vote = m.frm
        else:
            self._send(resp, m.frm, reject=True)

    def _step_candidate(self, m: Message) -> None:
        t = m.type
        if t in (_MT.APPEND, _MT.HEARTBEAT, _MT.SNAPSHOT):
            self._become_follower(m.term, m.frm)
            self._step_follower(m)
            return
        pre = self._role is Role.PRE_CANDIDATE
        if (pre and t is _MT.PRE_VOTE_RESP) or (not pre and t is _MT.VOTE_RESP):
            result = self._poll(m.frm, granted=not m.reject)
            if result is VoteResult.WON:
                if pre:
                    self._campaign(pre=False, transfer=False)
                else:
                    self._become_leader()
            elif result is VoteResult.LOST:
                self._become_follower(self._term, NO_NODE)

    def _step_follower(self, m: Message) -> None:
        t = m.type
        if t is _MT.APPEND:
            self._election_elapsed = 0
            self._leader = m.frm
            self._handle_append(m)
        elif t is _MT.HEARTBEAT:
            self._election_elapsed = 0
            self._leader = m.frm
            self._log.commit_to(min(m.commit, self._log.last_index()))
            self._send(_MT.HEARTBEAT_RESP, m.frm, context=m.context)
        elif t is _MT.SNAPSHOT:
            self._election_elapsed = 0
            self._leader = m.frm
            self._handle_snapshot_chunk(m)
        elif t is _MT.TIMEOUT_NOW:
            self._hup(transfer=True)
        elif t is _MT.READ_INDEX_RESP:
            self._read_states.append(ReadState(m.index, m.context))

    def _handle_append(self, m: Message) -> None:
        log = self._log
        if m.index < log.committed:
            self._send(_MT.APPEND_RESP, m.frm, index=log.committed)
            return
        last_new = log.maybe_append(m.index, m.log_term, m.commit, m.entries)
        if last_new is not None:
            self._send(_MT.APPEND_RESP, m.frm, index=last_new)
            return
        hint, hint_term = log.find_conflict_by_term(m.index, m.log_term)
        self._send(
            _MT.APPEND_RESP, m.frm, index=m.index, reject=True, reject_hint=hint, log_term=hint_term
        )

    # --- snapshots ----------------------------------------------------------------------------

    def _handle_snapshot_chunk(self, m: Message) -> None:
        meta = m.snapshot
        if meta is None:
            return
        if meta.index <= self._log.committed:
            # Already installed (our answer was lost) or outdated: say how far we are.
            self._snap_recv = None
            self._send(_MT.APPEND_RESP, m.frm, index=self._log.committed)
            return
        buf = self._snap_recv
        if buf is None or buf.frm != m.frm or buf.term != m.term or buf.meta != meta:
            if buf is not None and (m.term, meta.index) < (buf.term, buf.meta.index):
                return  # a late chunk of a transfer that a newer one replaced
            # Every chunk names its snapshot, so any chunk (not only the first) starts it.
            buf = self._snap_recv = _SnapshotReceive(m.frm, m.term, meta)
        if m.done:
            buf.total = m.offset + len(m.data)
        if m.offset >= buf.size and len(buf.early) < _MAX_EARLY_CHUNKS:
            buf.early.setdefault(m.offset, m.data)
        while (chunk := buf.early.pop(buf.size, None)) is not None:
            buf.chunks.append(chunk)
            buf.size += len(chunk)
            if not chunk:
                break
        if buf.total is not None and buf.size >= buf.total:
            self._snap_recv = None
            self._handle_snapshot(Snapshot(meta, b"".join(buf.chunks)), m.frm)
            return
        self._send(_MT.SNAPSHOT_RESP, m.frm, index=meta.index, offset=buf.size)

    def _handle_snapshot(self, snap: Snapshot, frm: int) -> None:
        log = self._log
        meta = snap.metadata
        if meta.index <= log.committed:
            self._send(_MT.APPEND_RESP, frm, index=log.committed)
            return
        if log.match_term(meta.index, meta.term):
            # Our log already holds the snapshot's last entry: just fast-forward the commit.
            log.commit_to(meta.index)
            self._send(_MT.APPEND_RESP, frm, index=log.committed)
            return
        log.restore(snap)
        self._conf = meta.conf
        self._send(_MT.APPEND_RESP, frm, index=log.last_index())

    def _send_snapshot(self, to: int, pr: Progress) -> None:
        if pr.state is not ProgressState.SNAPSHOT:
            pr.become_snapshot(self._log.snapshot())
        self._send_snapshot_chunks(to, pr)

    def _send_snapshot_chunks(self, to: int, pr: Progress) -> None:
        snap = pr.snap
        if snap is None:  # pragma: no cover - set by become_snapshot
            return
        size = len(snap.data)
        cs = self._cfg.snapshot_chunk_size
        window = cs * self._cfg.max_inflight_msgs
        if self._cfg.max_inflight_bytes > 0:
            window = max(cs, min(window, self._cfg.max_inflight_bytes))
        while pr.snap_sent <= size and pr.snap_sent - pr.snap_acked < window:
            pr.snap_sent = self._send_snapshot_chunk(to, snap, pr.snap_sent)

    def _send_snapshot_chunk(self, to: int, snap: Snapshot, off: int) -> int:
        """Send the chunk at ``off``; returns the next offset (past the end after the last)."""
        data = snap.data
        chunk = data[off : off + self._cfg.snapshot_chunk_size]
        end = off + len(chunk)
        done = end >= len(data)
        self._send(_MT.SNAPSHOT, to, snapshot=snap.metadata, data=chunk, offset=off, done=done)
        return len(data) + 1 if done else end

    def _handle_snapshot_resp(self, m: Message, pr: Progress) -> None:
        snap = pr.snap
        if pr.state is not ProgressState.SNAPSHOT or snap is None:
            return
        if m.index != snap.metadata.index:
            return
        off = m.offset
        if off > pr.snap_acked:
            pr.snap_acked = off
            pr.snap_stall = pr.snap_dups = 0
        else:
            # The same offset acknowledged again and again: the chunk there was lost (or,
            # below our ack, the follower lost what it had). Resend once per such offset.
            if off == pr.snap_dup_offset:
                pr.snap_dups += 1
            else:
                pr.snap_dup_offset, pr.snap_dups = off, 1
            if pr.snap_dups >= _SNAPSHOT_DUP_ACKS and pr.snap_rewind != off:
                if off < pr.snap_acked:
                    pr.snapshot_rewind(off)
                else:
                    pr.snap_rewind = off
                    self._send_snapshot_chunk(m.frm, snap, off)
        self._send_snapshot_chunks(m.frm, pr)

    # --- leader -------------------------------------------------------------------------------

    def _step_leader(self, m: Message) -> None:
        t = m.type
        if t is _MT.READ_INDEX:
            self._handle_read(m.frm, m.context)
            return
        pr = self._progress.get(m.frm)
        if pr is None:
            return
        if t is _MT.APPEND_RESP:
            pr.recent_active = True
            self._handle_append_resp(m, pr)
        elif t is _MT.HEARTBEAT_RESP:
            pr.recent_active = True
            self._handle_heartbeat_resp(m, pr)
        elif t is _MT.SNAPSHOT_RESP:
            pr.recent_active = True
            self._handle_snapshot_resp(m, pr)

    def _handle_append_resp(self, m: Message, pr: Progress) -> None:
        if m.reject:
            hint = m.reject_hint
            if m.log_term > 0:
                hint, _ = self._log.find_conflict_by_term(m.reject_hint, m.log_term)
            if pr.maybe_decr_to(m.index, hint):
                if pr.state is ProgressState.REPLICATE:
                    pr.become_probe()
                self._send_append(m.frm, pr)
            return
        if not pr.maybe_update(m.index) and not (
            pr.state is ProgressState.PROBE and pr.match == m.index
        ):
            return
        if pr.state is ProgressState.PROBE:
            pr.become_replicate()
        elif pr.state is ProgressState.SNAPSHOT:
            snap = pr.snap
            if snap is None or pr.match >= snap.metadata.index:
                pr.become_probe()
                pr.become_replicate()
        else:
            pr.inflights.free_le(m.index)
        if self._maybe_commit():
            self._bcast_append()
        else:
            # Also tells a follower that was paused during a commit broadcast the commit.
            self._send_append(m.frm, pr, send_if_empty=pr.sent_commit < self._log.committed)
            while self._send_append(m.frm, pr, send_if_empty=False):
                pass
        if m.frm == self._transferee and pr.match == self._log.last_index():
            self._send(_MT.TIMEOUT_NOW, m.frm)

    def _handle_heartbeat_resp(self, m: Message, pr: Progress) -> None:
        if pr.state is ProgressState.SNAPSHOT:
            # No chunk acknowledged for several heartbeats: resend from the last ack.
            pr.snap_stall += 1
            if pr.snap_stall >= _SNAPSHOT_STALL_HEARTBEATS:
                pr.snapshot_rewind(pr.snap_acked)
                self._send_snapshot_chunks(m.frm, pr)
        else:
            pr.probe_sent = False
            if pr.state is ProgressState.REPLICATE and pr.inflights.full():
                pr.inflights.free_first()
            if pr.match < self._log.last_index() or pr.state is ProgressState.PROBE:
                self._send_append(m.frm, pr)
        if m.context:
            acks = self._read_only.ack(m.frm, m.context)
            if acks is not None and has_quorum(self._conf.voters, acks):
                for r in self._read_only.release(m.context):
                    self._respond_read(r.requester, r.index, r.ctx)

    def _maybe_commit(self) -> bool:
        idx = committed_index(self._conf.voters, {k: p.match for k, p in self._progress.items()})
        log = self._log
        # Only an entry of the current term is committed by counting replicas (figure 8);
        # earlier entries are committed with it.
        if idx > log.committed and log.term(idx) == self._term:
            log.commit_to(idx)
            if self._pending_reads:
                pending, self._pending_reads = self._pending_reads, []
                for frm, ctx in pending:
                    self._handle_read(frm, ctx)
            return True
        return False

    def _send_append(self, to: int, pr: Progress, *, send_if_empty: bool = True) -> bool:
        if to == self._id or pr.is_paused():
            return False
        log = self._log
        prev = pr.next - 1
        prev_term = log.term(prev)
        if prev_term is None:
            self._send_snapshot(to, pr)
            return False
        cfg = self._cfg
        last = log.last_index()
        ents: Sequence[Entry] = ()
        if pr.next <= last:
            ents = log.slice(
                pr.next, min(last + 1, pr.next + cfg.max_entries_per_msg), cfg.max_bytes_per_msg
            )
        if not ents and not send_if_empty:
            return False
        commit = log.committed
        self._msgs.append(
            Message(_MT.APPEND, self._id, to, self._term, prev_term, prev, ents, commit)
        )
        pr.sent_commit = commit
        if ents:
            if pr.state is ProgressState.REPLICATE:
                sent_last = ents[-1].index
                pr.optimistic_update(sent_last)
                pr.inflights.add(sent_last, sum(len(e.data) for e in ents))
            else:
                pr.probe_sent = True
        elif pr.state is ProgressState.PROBE:
            pr.probe_sent = True
        return True

    def _bcast_append(self) -> None:
        commit = self._log.committed
        for nid, pr in self._progress.items():
            if nid != self._id:
                self._send_append(nid, pr, send_if_empty=pr.sent_commit < commit)
                while self._send_append(nid, pr, send_if_empty=False):
                    pass

    def _bcast_heartbeat(self, ctx: bytes) -> None:
        commit = self._log.committed
        for nid, pr in self._progress.items():
            if nid != self._id:
                self._send(_MT.HEARTBEAT, nid, commit=min(pr.match, commit), context=ctx)

    # --- client requests ----------------------------------------------------------------------

    def _check_proposable(self, count: int = 1) -> None:
        if self._role is not Role.LEADER:
            raise NotLeader(self.leader_id)
        if self._transferee != NO_NODE:
            raise TransferInProgress(f"leadership is moving to node {self._transferee}")
        log = self._log
        if log.last_index() - log.committed + count > self._cfg.max_uncommitted_entries:
            # Followers are not keeping up (or a quorum is gone): push back on clients
            # rather than grow the log without bound.
            raise ProposalDropped(
                f"{log.last_index() - log.committed} entries already await commit"
            )

    def propose(self, data: bytes) -> int:
        """Append ``data`` to the log on the leader; returns its index (not yet committed)."""
        self._check_proposable()
        idx = self._log.last_index() + 1
        self._log.unstable.append(Entry(self._term, idx, EntryKind.NORMAL, data))
        self._needs_bcast = True
        return idx

    def propose_batch(self, items: Sequence[bytes]) -> int:
        """Append many entries at once; returns the index of the last one."""
        self._check_proposable(len(items))
        term = self._term
        first = self._log.last_index() + 1
        normal = EntryKind.NORMAL
        self._log.unstable.extend([Entry(term, i, normal, d) for i, d in enumerate(items, first)])
        if items:
            self._needs_bcast = True
        return first + len(items) - 1

    def propose_conf_change(self, cc: ConfChange) -> int:
        """Propose one membership change; returns the index of its CONF_CHANGE entry."""
        self._check_proposable()
        if cc.node_id <= NO_NODE:
            raise ConfChangeInvalid("node ids must be positive")
        log = self._log
        if self._pending_conf_index > log.applied:
            raise ConfChangeInProgress(
                f"conf change at {self._pending_conf_index} is not applied yet"
            )
        if log.term(log.committed) != self._term:
            raise ConfChangeInProgress("the leader has not committed an entry of its term yet")
        voters, learners = self._conf.voters, self._conf.learners
        nid = cc.node_id
        if cc.kind is ConfChangeKind.ADD_LEARNER:
            if nid in voters or nid in learners:
                raise ConfChangeInvalid(f"node {nid} is already a member")
        elif cc.kind is ConfChangeKind.PROMOTE:
            if nid not in learners:
                raise ConfChangeInvalid(f"node {nid} is not a learner")
            pr = self._progress.get(nid)
            if pr is None or pr.match < log.committed:
                raise LearnerNotCaughtUp(f"learner {nid} does not yet hold index {log.committed}")
        else:
            if nid not in voters and nid not in learners:
                raise ConfChangeInvalid(f"node {nid} is not a member")
            if voters == {nid}:
                raise ConfChangeInvalid("cannot remove the last voter")
        idx = log.last_index() + 1
        log.append([Entry(self._term, idx, EntryKind.CONF_CHANGE, cc.encode())])
        self._pending_conf_index = idx
        self._needs_bcast = True
        return idx

    def apply_conf_change(self, cc: ConfChange) -> ConfState:
        """Make a committed membership change effective; call when its entry is applied."""
        voters, learners = set(self._conf.voters), set(self._conf.learners)
        nid = cc.node_id
        if cc.kind is ConfChangeKind.ADD_LEARNER:
            if nid not in voters:
                learners.add(nid)
        elif cc.kind is ConfChangeKind.PROMOTE:
            if nid in learners:
                learners.discard(nid)
                voters.add(nid)
        else:
            voters.discard(nid)
            learners.discard(nid)
        self._conf = ConfState(frozenset(voters), frozenset(learners))
        if self._role is Role.LEADER:
            self._update_progress_for_conf()
        elif self._role is not Role.FOLLOWER and not self._promotable():
            self._become_follower(self._term, NO_NODE)
        return self._conf

    def _update_progress_for_conf(self) -> None:
        conf = self._conf
        members = conf.voters | conf.learners
        for nid in list(self._progress):
            if nid not in members:
                del self._progress[nid]
        last = self._log.last_index()
        for nid in members:
            pr = self._progress.get(nid)
            if pr is None:
                pr = self._new_progress(last + 1, nid in conf.learners)
                pr.recent_active = True
                self._progress[nid] = pr
                self._needs_bcast = True
            else:
                pr.is_learner = nid in conf.learners
        if self._transferee != NO_NODE and self._transferee not in conf.voters:
            self._transferee = NO_NODE
        if self._id not in conf.voters:
            self._retire()
        elif self._maybe_commit():
            self._bcast_append()

    def _retire(self) -> None:
        """This leader was removed: spread the commit, hand over, and step down."""
        self._bcast_append()
        log = self._log
        best: tuple[int, int] | None = None
        for nid, pr in self._progress.items():
            if nid in self._conf.voters and (best is None or pr.match > best[0]):
                best = (pr.match, nid)
        if best is not None and best[0] == log.last_index():
            self._send(_MT.TIMEOUT_NOW, best[1])
        self._become_follower(self._term, NO_NODE)

    def transfer_leadership(self, to: int) -> None:
        """Hand leadership to voter ``to`` once it has caught up; proposals pause meanwhile."""
        if self._role is not Role.LEADER:
            raise NotLeader(self.leader_id)
        if to == self._id:
            return
        if to not in self._conf.voters:
            raise InvalidTransfer(f"node {to} is not a voter")
        if self._transferee != NO_NODE:
            if self._transferee == to:
                return
            raise TransferInProgress(f"leadership is moving to node {self._transferee}")
        self._transferee = to
        self._election_elapsed = 0
        pr = self._progress[to]
        if pr.match == self._log.last_index():
            self._send(_MT.TIMEOUT_NOW, to)
        else:
            self._send_append(to, pr)

    def read_index(self, ctx: bytes) -> None:
        """Ask for a linearizable read point; a ReadState with ``ctx`` arrives in a Ready.

        ``ctx`` must be unique among pending reads. On a follower the request is forwarded
        to the leader; with no known leader it fails at once so the caller may retry.
        """
        if self._role is Role.LEADER:
            self._handle_read(self._id, ctx)
        elif self._leader != NO_NODE:
            self._send(_MT.READ_INDEX, self._leader, context=ctx)
        else:
            raise NotLeader(None)

    def _handle_read(self, frm: int, ctx: bytes) -> None:
        log = self._log
        if log.term(log.committed) != self._term:
            # The commit index of a new leader may trail the true one until it commits
            # an entry of its own term.
            self._pending_reads.append((frm, ctx))
            return
        if self._conf.voters == {self._id}:
            self._respond_read(frm, log.committed, ctx)
            return
        if self._read_only.add(log.committed, frm, ctx):
            self._read_only.ack(self._id, ctx)
            self._bcast_heartbeat(ctx)

    def _respond_read(self, frm: int, index: int, ctx: bytes) -> None:
        if frm == self._id:
            self._read_states.append(ReadState(index, ctx))
        else:
            self._send(_MT.READ_INDEX_RESP, frm, index=index, context=ctx)

    def report_unreachable(self, node_id: int) -> None:
        """The transport failed to deliver to ``node_id``: stop pipelining to it."""
        pr = self._progress.get(node_id)
        if pr is not None and pr.state is ProgressState.REPLICATE:
            pr.become_probe()

    def report_snapshot(self, node_id: int, ok: bool) -> None:
        """The transport gave up sending a snapshot (``ok`` False) or confirms it was sent."""
        pr = self._progress.get(node_id)
        if pr is None or pr.state is not ProgressState.SNAPSHOT:
            return
        if not ok:
            pr.become_probe()
            pr.probe_sent = True  # wait for the next heartbeat before trying again

    # --- the Ready cycle ----------------------------------------------------------------------

    def _hard_state(self) -> HardState:
        return HardState(self._term, self._vote, self._log.committed)

    def has_ready(self) -> bool:
        """Whether ``ready()`` has work; always False while a Ready is not yet advanced."""
        if self._outstanding is not None:
            return False
        log = self._log
        hs = self._prev_hs
        ss = self._prev_ss
        return bool(
            self._needs_bcast
            or self._msgs
            or self._read_states
            or log.unstable
            or log.unstable_snapshot is not None
            or hs.commit != log.committed
            or hs.term != self._term
            or hs.vote != self._vote
            or ss.leader != self._leader
            or ss.role is not self.role
            or log.has_next_committed()
        )

    def ready(self) -> Ready:
        """Take the pending work. Call ``advance(ready)`` once it is persisted and applied."""
        if self._outstanding is not None:
            raise ReadyOutstanding("advance() the previous Ready first")
        if self._needs_bcast:
            self._needs_bcast = False
            self._bcast_append()
        log = self._log
        rd = Ready(
            entries=list(log.unstable),
            snapshot=log.unstable_snapshot,
            committed_entries=log.next_committed(),
            messages=self._msgs,
            read_states=self._read_states,
        )
        hs = self._hard_state()
        if hs != self._prev_hs:
            rd.hard_state = hs
        ss = SoftState(self.role, self._leader)
        if ss != self._prev_ss:
            rd.soft_state = ss
        self._msgs = []
        self._read_states = []
        self._outstanding = rd
        return rd

    def advance(self, rd: Ready) -> None:
        """The caller persisted ``rd``'s durable parts and applied its committed entries."""
        if rd is not self._outstanding:
            raise ReadyOutstanding("advance() must be given the Ready last returned")
        self._outstanding = None
        log = self._log
        if rd.hard_state is not None:
            self._prev_hs = rd.hard_state
        if rd.soft_state is not None:
            self._prev_ss = rd.soft_state
        if rd.snapshot is not None:
            idx = rd.snapshot.metadata.index
            log.stable_snapshot_to(idx)
            log.applied_to(idx)
        if rd.entries:
            e = rd.entries[-1]
            log.stable_to(e.index, e.term)
        if rd.committed_entries:
            log.applied_to(rd.committed_entries[-1].index)
        if self._role is Role.LEADER:
            me = self._progress.get(self._id)
            if me is not None and me.maybe_update(log.stable_last_index()) and self._maybe_commit():
                self._needs_bcast = True
