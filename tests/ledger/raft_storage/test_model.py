"""DurableRaftStorage against MemoryStorage: the same Raft-valid operations, the same reads,
including across reopens (a stateful property test)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from charter.consensus.errors import StorageError
from charter.consensus.storage import MemoryStorage
from charter.consensus.types import (
    ConfState,
    Entry,
    EntryKind,
    HardState,
    Ready,
    Snapshot,
    SnapshotMeta,
)
from charter.ledger.raft_storage import DurableRaftStorage

MAX_SEGMENT_BYTES = 200
CACHE_ENTRIES = 3


def outcome(fn: Callable[[], object]) -> object:
    try:
        return fn()
    except StorageError as exc:
        return type(exc)


class RaftStorageModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        # Durability is tested elsewhere; here fsync would only make the run slow.
        self._real_fsync = os.fsync
        os.fsync = lambda fd: None
        self.dir = Path(tempfile.mkdtemp(prefix="charter-raftstore-model-"))
        self.memory = MemoryStorage.bootstrap(ConfState(voters=frozenset({1, 2, 3})), b"genesis")
        self.durable = self._open(bootstrap=True)
        self.counter = 0

    def _open(self, *, bootstrap: bool = False) -> DurableRaftStorage:
        return DurableRaftStorage(
            self.dir / "raft",
            bootstrap=ConfState(voters=frozenset({1, 2, 3})) if bootstrap else None,
            bootstrap_data=b"genesis",
            max_segment_bytes=MAX_SEGMENT_BYTES,
            cache_entries=CACHE_ENTRIES,
        )

    def teardown(self) -> None:
        self.durable.close()
        os.fsync = self._real_fsync
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- helpers ---------------------------------------------------------------------------

    @property
    def commit(self) -> int:
        return self.memory.hard_state.commit

    def _entries(self, data: st.DataObject) -> list[Entry]:
        m = self.memory
        start = data.draw(st.integers(min_value=self.commit + 1, max_value=m.last_index() + 1))
        prev = m.term(start - 1) if start - 1 >= m.first_index() - 1 else m.hard_state.term
        term = max(prev, self.memory.hard_state.term) + data.draw(st.integers(0, 1))
        sizes = data.draw(st.lists(st.integers(0, 40), min_size=1, max_size=8))
        out = []
        for i, size in enumerate(sizes, start):
            self.counter += 1
            kind = EntryKind.CONF_CHANGE if self.counter % 7 == 0 else EntryKind.NORMAL
            out.append(Entry(term, i, kind, f"{self.counter}:".encode() + b"x" * size))
        return out

    def _hard_state(self, data: st.DataObject, last: int) -> HardState:
        hs = self.memory.hard_state
        term = hs.term + data.draw(st.integers(0, 1))
        vote = data.draw(st.integers(0, 3))
        commit = data.draw(st.integers(min_value=hs.commit, max_value=max(hs.commit, last)))
        return HardState(term, vote, commit)

    # --- rules -----------------------------------------------------------------------------

    @rule(data=st.data())
    def append(self, data: st.DataObject) -> None:
        ents = self._entries(data)
        self.memory.append(ents)
        self.durable.append(ents)

    @rule(data=st.data())
    def set_hard_state(self, data: st.DataObject) -> None:
        hs = self._hard_state(data, self.memory.last_index())
        self.memory.set_hard_state(hs)
        self.durable.set_hard_state(hs)

    @rule(data=st.data())
    def persist(self, data: st.DataObject) -> None:
        ents = self._entries(data) if data.draw(st.booleans()) else []
        last = ents[-1].index if ents else self.memory.last_index()
        hs = self._hard_state(data, last) if data.draw(st.booleans()) else None
        rd = Ready(entries=ents, hard_state=hs)
        self.memory.persist(rd)
        self.durable.persist(rd)

    @rule(data=st.data())
    def install_snapshot(self, data: st.DataObject) -> None:
        m = self.memory
        lo = max(self.commit, m.snapshot_index())
        index = data.draw(st.integers(min_value=lo, max_value=m.last_index() + 3))
        term = m.hard_state.term + data.draw(st.integers(0, 1))
        voters = frozenset(data.draw(st.sets(st.integers(1, 5), min_size=1, max_size=3)))
        learners = frozenset(data.draw(st.sets(st.integers(6, 7), max_size=1)))
        snap = Snapshot(
            SnapshotMeta(index, term, ConfState(voters, learners)),
            data.draw(st.binary(max_size=30)),
        )
        hs = HardState(max(term, m.hard_state.term), m.hard_state.vote, index)
        if data.draw(st.booleans()):
            ents = [Entry(term, index + 1, data=b"after")] if data.draw(st.booleans()) else []
            rd = Ready(snapshot=snap, entries=ents, hard_state=hs)
            m.persist(rd)
            self.durable.persist(rd)
        else:
            m.apply_snapshot(snap)
            self.durable.apply_snapshot(snap)

    @precondition(lambda self: self.commit > self.memory.snapshot_index())
    @rule(data=st.data())
    def create_snapshot(self, data: st.DataObject) -> None:
        m = self.memory
        index = data.draw(st.integers(min_value=m.snapshot_index() + 1, max_value=self.commit))
        conf = ConfState(voters=frozenset({1, 2}))
        blob = data.draw(st.binary(max_size=30))
        a = m.create_snapshot(index, conf, blob)
        b = self.durable.create_snapshot(index, conf, blob)
        assert a == b

    @rule(data=st.data())
    def compact(self, data: st.DataObject) -> None:
        m = self.memory
        index = data.draw(st.integers(min_value=m.first_index() - 2, max_value=m.snapshot_index()))
        m.compact(index)
        self.durable.compact(index)

    @rule()
    def reopen(self) -> None:
        self.durable.close()
        self.durable = self._open()
        assert self.durable.recovery.log.torn_tail is None
        assert not self.durable.recovery.created
        # The commit index is volatile: it may come back behind, never ahead. A restarted
        # node then learns the current one from its leader, as here.
        got, want = self.durable.hard_state, self.memory.hard_state
        assert (got.term, got.vote) == (want.term, want.vote)
        assert got.commit <= want.commit
        self.durable.set_hard_state(want)

    @rule(data=st.data())
    def read_entries(self, data: st.DataObject) -> None:
        m = self.memory
        lo = data.draw(st.integers(m.first_index() - 1, m.last_index() + 2))
        hi = data.draw(st.integers(lo, m.last_index() + 2))
        max_bytes = data.draw(st.sampled_from([0, 1, 20, 60]))
        assert outcome(lambda: m.entries(lo, hi, max_bytes)) == outcome(
            lambda: self.durable.entries(lo, hi, max_bytes)
        )

    # --- invariants ------------------------------------------------------------------------

    @invariant()
    def agree(self) -> None:
        m, d = self.memory, self.durable
        assert d.hard_state == m.hard_state
        assert d.initial_state() == m.initial_state()
        assert d.snapshot() == m.snapshot()
        assert d.snapshot_index() == m.snapshot_index()
        assert d.first_index() == m.first_index()
        assert d.last_index() == m.last_index()
        for i in range(m.first_index() - 2, m.last_index() + 2):
            assert outcome(lambda i=i: m.term(i)) == outcome(lambda i=i: d.term(i)), i
        lo, hi = m.first_index(), m.last_index() + 1
        assert d.entries(lo, hi) == m.entries(lo, hi)


RaftStorageModel.TestCase.settings = settings(
    max_examples=120, stateful_step_count=35, deadline=None
)
TestRaftStorageModel = RaftStorageModel.TestCase
