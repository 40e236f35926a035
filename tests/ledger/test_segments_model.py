"""Segment storage against a plain list, under random appends, truncations, commits,
compactions and reopens (a stateful property test)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from charter.ledger.segments import SegmentLog

MAX_SEGMENT_BYTES = 160


class SegmentLogModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        # Durability is tested elsewhere; here fsync would only make the run slow.
        self._real_fsync = os.fsync
        os.fsync = lambda fd: None
        self.dir = Path(tempfile.mkdtemp(prefix="charter-seg-model-"))
        self.log = SegmentLog(self.dir, max_segment_bytes=MAX_SEGMENT_BYTES)
        self.model: dict[int, bytes] = {}
        self.first = 1
        self.last = 0
        self.commit = 0
        self.counter = 0

    def teardown(self) -> None:
        self.log.close()
        os.fsync = self._real_fsync
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(sizes=st.lists(st.integers(min_value=0, max_value=60), min_size=1, max_size=12))
    def append_batch(self, sizes: list[int]) -> None:
        batch = []
        for size in sizes:
            self.counter += 1
            batch.append(f"{self.counter}:".encode() + b"x" * size)
        indices = self.log.append_batch(batch)
        assert indices == range(self.last + 1, self.last + 1 + len(batch))
        for index, record in zip(indices, batch, strict=True):
            self.model[index] = record
        self.last += len(batch)

    @precondition(lambda self: self.last > self.commit)
    @rule(data=st.data())
    def truncate(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(min_value=self.commit, max_value=self.last))
        self.log.truncate_after(index)
        for i in range(index + 1, self.last + 1):
            del self.model[i]
        self.last = index

    @precondition(lambda self: self.last > self.commit)
    @rule(data=st.data())
    def commit_to(self, data: st.DataObject) -> None:
        self.commit = data.draw(st.integers(min_value=self.commit + 1, max_value=self.last))
        self.log.mark_committed(self.commit)

    @precondition(lambda self: self.commit >= self.first)
    @rule(data=st.data())
    def compact(self, data: st.DataObject) -> None:
        snapshot = data.draw(st.integers(min_value=self.first, max_value=self.commit))
        self.log.compact(snapshot)
        assert self.log.first_index <= snapshot + 1
        for i in range(self.first, self.log.first_index):
            del self.model[i]
        self.first = self.log.first_index

    @rule()
    def reopen(self) -> None:
        self.log.close()
        self.log = SegmentLog(self.dir, max_segment_bytes=MAX_SEGMENT_BYTES)
        assert self.log.recovery.torn_tail is None
        # Only sealed segments record the commit index across a restart.
        assert self.log.commit_index <= self.commit
        self.log.mark_committed(self.commit)  # as Raft's persisted state would

    @invariant()
    def matches_model(self) -> None:
        assert self.log.first_index == self.first
        assert self.log.last_index == self.last
        assert list(self.log) == [self.model[i] for i in range(self.first, self.last + 1)]
        for path in self.dir.glob("*.committed"):
            assert int(path.name.split(".")[0]) <= self.commit


SegmentLogModel.TestCase.settings = settings(max_examples=80, stateful_step_count=25, deadline=None)
TestSegmentLogModel = SegmentLogModel.TestCase
