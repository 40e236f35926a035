"""Three Raft cores on durable storage: nodes crash (objects dropped, files closed, nothing
flushed) and come back from their directories, and no committed entry is ever lost."""

from __future__ import annotations

from pathlib import Path

from charter.consensus.local import LocalCluster
from charter.consensus.types import ConfState, Role
from charter.ledger.raft_storage import DurableRaftStorage

IDS = (1, 2, 3)
VOTERS = ConfState(voters=frozenset(IDS))
SEGMENT_BYTES = 1024


class DurableCluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.c = LocalCluster(IDS, seed=7)
        self.committed: dict[int, bytes] = {}
        self.counter = 0
        for nid in IDS:
            self.c.crash(nid)
            self.c.storages[nid] = self._open(nid, bootstrap=True)
            self.c.restart(nid)

    def _open(self, nid: int, *, bootstrap: bool = False) -> DurableRaftStorage:
        return DurableRaftStorage(
            self.root / f"node{nid}",
            bootstrap=VOTERS if bootstrap else None,
            max_segment_bytes=SEGMENT_BYTES,
            cache_entries=8,
        )

    def storage(self, nid: int) -> DurableRaftStorage:
        s = self.c.storages[nid]
        assert isinstance(s, DurableRaftStorage)
        return s

    def crash(self, nid: int) -> None:
        self.c.crash(nid)
        self.storage(nid).close()

    def reopen(self, nid: int) -> None:
        s = self._open(nid)
        assert not s.recovery.created and s.recovery.log.torn_tail is None
        self.c.storages[nid] = s
        self.c.restart(nid)

    def propose(self, n: int) -> None:
        leader = self.c.leader()
        assert leader is not None
        for _ in range(n):
            self.counter += 1
            leader.propose(b"value-%d" % self.counter)
            self.c.pump()
        applied = self.c.applied[leader.node_id]
        for index, data in applied:
            if index <= leader.commit_index:
                self.committed[index] = data

    def await_leader(self, max_ticks: int = 300) -> int:
        """Tick every live node until one of them leads (followers' leases must run out)."""
        for _ in range(max_ticks):
            leader = self.c.leader()
            if leader is not None and leader.node_id in self.c.nodes:
                self.c.pump()
                return leader.node_id
            self.c.tick(1)
        raise AssertionError("no leader elected")

    def settle(self, ticks: int = 30) -> None:
        self.c.tick(ticks)
        self.c.pump()

    def check(self) -> None:
        """Every live node holds every entry known committed, in the same place."""
        for nid in self.c.nodes:
            applied = dict(self.c.applied[nid])
            for index, data in self.committed.items():
                assert applied.get(index) == data, (nid, index)


def test_committed_entries_survive_crashes_and_snapshots(tmp_path: Path) -> None:
    dc = DurableCluster(tmp_path)
    c = dc.c
    c.elect(1)
    dc.propose(20)
    dc.check()

    # A follower crashes and comes back.
    dc.crash(3)
    dc.propose(10)
    dc.reopen(3)
    dc.settle()
    dc.check()

    # The leader crashes; another node takes over; the old leader rejoins as a follower.
    dc.crash(1)
    assert dc.await_leader() in (2, 3)
    dc.propose(15)
    dc.reopen(1)
    dc.settle()
    assert c.nodes[1].role is Role.FOLLOWER
    dc.check()

    # Everyone crashes at once and the cluster resumes from disk alone.
    for nid in IDS:
        dc.crash(nid)
    for nid in IDS:
        dc.reopen(nid)
    c.elect(3)
    dc.propose(10)
    dc.check()

    # A lagging node is brought up to date by a snapshot after the leader compacts.
    c.isolate(1)
    dc.propose(40)
    at = c.compact(3)
    c.compact(2)
    assert dc.storage(3).first_index() == at + 1
    c.heal()
    dc.settle()
    assert dc.storage(1).snapshot_index() >= at
    dc.check()
    dc.crash(1)
    dc.reopen(1)
    dc.settle()
    dc.check()
    dc.propose(5)
    dc.check()

    # Terms and entries agree across the nodes' storages wherever their logs overlap.
    stores = [dc.storage(nid) for nid in IDS]
    lo = max(s.first_index() for s in stores)
    hi = min(s.last_index() for s in stores)
    assert hi > lo
    assert len({tuple((e.term, e.data) for e in s.entries(lo, hi + 1)) for s in stores}) == 1
    for nid in IDS:
        dc.crash(nid)
