"""Crashes in the middle of a write: every crash point of every kind of operation leaves a
state that some prefix of the operation's steps produces, and never less than the state the
last completed operation returned. The commit index is the exception the storage documents:
it is volatile in Raft, so what survives may trail the one of that state (never exceed it)."""

from __future__ import annotations

import contextlib
import copy
import os
import random
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from charter.consensus.storage import MemoryStorage
from charter.consensus.types import (
    ConfState,
    Entry,
    HardState,
    Ready,
    Snapshot,
    SnapshotMeta,
)
from charter.ledger.hardstate import STATE_NAME
from charter.ledger.raft_storage import DurableRaftStorage

VOTERS = ConfState(voters=frozenset({1, 2, 3}))
View = tuple[Any, ...]


class Crash(BaseException):
    """The process dies here: nothing after this point runs, no cleanup handler either."""


class DiskImage:
    """What a power cut would leave: each file's contents as of its last fsync, and each
    directory's entries as of its last fsync (by inode, so a rename counts only once its
    directory is synced). Data written but never synced is assumed lost."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.contents: dict[int, bytes] = {}
        self.listings: dict[str, dict[str, int]] = {}
        self.dirs: set[int] = set()
        self.held: list[int] = []

    def hold(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Keep a file about to be unlinked or replaced open, so that its inode number is
        not reused while this image refers to it."""
        if name == "rename":
            target, dir_fd = args[1], kwargs.get("dst_dir_fd")
        else:
            target, dir_fd = args[0], kwargs.get("dir_fd")
        with contextlib.suppress(FileNotFoundError):
            self.held.append(os.open(target, os.O_RDONLY, dir_fd=dir_fd))

    def release(self) -> None:
        for fd in self.held:
            os.close(fd)
        self.held.clear()

    def synced(self, fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        if not path.startswith(str(self.root)):
            return
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            self.dirs.add(st.st_ino)
            listing = {}
            for e in os.scandir(path):
                listing[e.name] = e.inode()
                if e.is_dir():
                    self.dirs.add(e.inode())
            self.listings[path] = listing
        else:
            with open(f"/proc/self/fd/{fd}", "rb") as f:
                self.contents[st.st_ino] = f.read()

    def restore(self, target: Path) -> None:
        """Write the surviving tree of ``root`` under ``target``."""
        self._restore(str(self.root), target)

    def _restore(self, path: str, target: Path) -> None:
        target.mkdir(parents=True)
        for name, ino in self.listings.get(path, {}).items():
            if ino in self.dirs:
                self._restore(os.path.join(path, name), target / name)
            else:
                (target / name).write_bytes(self.contents.get(ino, b""))


class Syscalls:
    """Counts the calls that change files; raises Crash before the ``crash_at``-th one."""

    NAMES = ("write", "pwrite", "fsync", "rename", "ftruncate", "unlink", "rmdir", "chmod", "mkdir")

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        self.crash_at = 0
        self.image: DiskImage | None = None
        for name in self.NAMES:
            monkeypatch.setattr(os, name, self._wrap(name, getattr(os, name)))

    def _wrap(self, name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            if self.count == self.crash_at:
                raise Crash(name)
            if self.image is not None and name in ("unlink", "rename", "rmdir"):
                self.image.hold(name, args, kwargs)
            if name == "fsync":
                if self.image is not None:
                    self.image.synced(args[0])
                return None  # the page cache outlives a process crash; DiskImage models power
            return real(*args, **kwargs)

        return call

    def arm(self, crash_at: int) -> None:
        self.count = 0
        self.crash_at = crash_at


def view(s: MemoryStorage) -> View:
    first, last = s.first_index(), s.last_index()
    ents = tuple((e.term, e.index, int(e.kind), e.data) for e in s.entries(first, last + 1))
    return (s.hard_state, s.snapshot(), first, s.term(first - 1), ents)


def loose(v: View) -> View:
    """``v`` without its commit index."""
    hs = v[0]
    return (HardState(hs.term, hs.vote, 0), *v[1:])


def recovered_as(got: View, allowed: list[View]) -> bool:
    """``got`` is one of the ``allowed`` states, except that its commit index may trail."""
    return any(loose(got) == loose(a) and got[0].commit <= a[0].commit for a in allowed)


def persist_steps(before: View, rd: Ready) -> list[View]:
    """The states a persist passes through: snapshot, truncation, each entry, hard state.

    Losing any part of an overwritten suffix is safe: it follows an entry that conflicts
    with the new leader's log, so none of it is committed."""
    hs, snap, first, base_term, ents = before
    out = [before]
    if rd.snapshot is not None:
        meta = rd.snapshot.metadata
        snap, first, base_term, ents = rd.snapshot, meta.index + 1, meta.term, ()
        out.append((hs, snap, first, base_term, ents))
    new = [(e.term, e.index, int(e.kind), e.data) for e in rd.entries if e.index >= first]
    if new:
        # Truncation drops the overwritten suffix from its end, one segment file at a time.
        keep = new[0][1] - first
        for n in range(len(ents) - 1, keep - 1, -1):
            out.append((hs, snap, first, base_term, ents[:n]))
        ents = ents[:keep]
        for k in range(1, len(new) + 1):
            out.append((hs, snap, first, base_term, ents + tuple(new[:k])))
        ents = out[-1][4]
    if rd.hard_state is not None:
        out.append((rd.hard_state, snap, first, base_term, ents))
    return out


class Workload:
    """A plausible Raft history: appends with overwrites above the commit index, hard states,
    installed snapshots, and local snapshots with compaction."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.model = MemoryStorage.bootstrap(VOTERS, b"genesis")
        self.ops: list[tuple[str, Any]] = []
        self.n = 0

    def build(self, count: int) -> list[tuple[str, Any]]:
        for _ in range(count):
            op = self._next()
            self.ops.append(op)
            apply_op(self.model, op)
        return self.ops

    def _next(self) -> tuple[str, Any]:
        m, rng = self.model, self.rng
        hs = m.hard_state
        roll = rng.random()
        if roll < 0.1:
            index = max(hs.commit, m.snapshot_index()) + rng.randint(0, 4)
            term = hs.term + 1
            snap = Snapshot(SnapshotMeta(index, term, VOTERS), rng.randbytes(rng.randint(0, 40)))
            ents = [Entry(term, index + 1, data=b"next")] if rng.random() < 0.5 else []
            last = index + len(ents)
            return "persist", Ready(
                snapshot=snap, entries=ents, hard_state=HardState(term, 0, rng.randint(index, last))
            )
        if roll < 0.2 and hs.commit > m.snapshot_index():
            return "snapshot", rng.randint(m.snapshot_index() + 1, hs.commit)
        if roll < 0.25 and m.snapshot_index() >= m.first_index():
            return "compact", rng.randint(m.first_index(), m.snapshot_index())
        start = rng.randint(hs.commit + 1, m.last_index() + 1)
        term = max(hs.term, m.term(start - 1)) + (1 if rng.random() < 0.3 else 0)
        ents = []
        for i in range(start, start + rng.randint(0, 5)):
            self.n += 1
            ents.append(Entry(term, i, data=f"{self.n}".encode() * rng.randint(1, 8)))
        last = ents[-1].index if ents else m.last_index()
        new_hs: HardState | None = HardState(
            term, rng.choice([0, 1, 2]), rng.randint(hs.commit, max(hs.commit, last))
        )
        if rng.random() < 0.2:
            new_hs = None
        return "persist", Ready(entries=ents, hard_state=new_hs)


def apply_op(s: MemoryStorage, op: tuple[str, Any]) -> None:
    kind, arg = op
    if kind == "persist":
        s.persist(arg)
    elif kind == "snapshot":
        s.create_snapshot(arg, VOTERS, b"state@%d" % arg)
    else:
        s.compact(arg)


def allowed_after_crash(before: MemoryStorage, op: tuple[str, Any]) -> list[View]:
    after = copy.deepcopy(before)
    apply_op(after, op)
    if op[0] == "persist":
        states = persist_steps(view(before), op[1])
        assert states[-1] == view(after)
        return states
    return [view(before), view(after)]


def open_storage(directory: Path, *, bootstrap: bool = False) -> DurableRaftStorage:
    return DurableRaftStorage(
        directory,
        bootstrap=VOTERS if bootstrap else None,
        bootstrap_data=b"genesis",
        max_segment_bytes=120,
        cache_entries=2,
    )


def run_prefix(directory: Path, ops: list[tuple[str, Any]], upto: int) -> DurableRaftStorage:
    s = open_storage(directory, bootstrap=True)
    for op in ops[:upto]:
        apply_op(s, op)
    return s


@pytest.mark.parametrize("seed", range(20))
def test_every_crash_point_leaves_a_prefix_state(
    seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sys = Syscalls(monkeypatch)
    ops = Workload(seed).build(14)
    rng = random.Random(seed)
    crashes = 0
    for j in sorted(rng.sample(range(len(ops)), 5)):
        model = MemoryStorage.bootstrap(VOTERS, b"genesis")
        for op in ops[:j]:
            apply_op(model, op)
        allowed = allowed_after_crash(model, ops[j])
        # Count the operation's syscalls once, then crash before each of them in turn.
        d = tmp_path / f"count-{j}"
        s = run_prefix(d, ops, j)
        sys.arm(0)
        apply_op(s, ops[j])
        total = sys.count
        s.close()
        for n in range(1, total + 1):
            d = tmp_path / f"{j}-{n}"
            s = run_prefix(d, ops, j)
            sys.arm(n)
            with pytest.raises(Crash):
                apply_op(s, ops[j])
            sys.arm(0)
            s.close()
            crashes += 1
            with open_storage(d) as r:
                got = view(r)
                assert recovered_as(got, allowed), (j, n, ops[j])
                # The recovered storage keeps working: redo the operation's outcome.
                assert r.last_index() >= r.hard_state.commit
    assert crashes > 0


@pytest.mark.parametrize("seed", range(6))
def test_torn_append_recovers_a_prefix_of_the_batch(seed: int, tmp_path: Path) -> None:
    """A power cut during the entries write: some bytes of the batch reached the disk and
    the state file was never replaced."""
    rng = random.Random(seed)
    d = tmp_path / "raft"
    model = MemoryStorage.bootstrap(VOTERS, b"genesis")
    with open_storage(d, bootstrap=True) as s:
        for i in range(2, 6):
            rd = Ready(
                entries=[Entry(2, i, data=b"e%d" % i)], hard_state=HardState(2, 1, min(i, 3))
            )
            s.persist(rd)
            model.persist(rd)
    # Large segments: the batch lands in one file.
    s = DurableRaftStorage(d, max_segment_bytes=1 << 20)
    seg = s.directory / "log.2"
    before_state = (d / STATE_NAME).read_bytes()
    segs = sorted(seg.glob("*.seg"))
    size_before = segs[-1].stat().st_size
    ents = [Entry(3, i, data=rng.randbytes(rng.randint(1, 30))) for i in range(6, 6 + 5)]
    rd = Ready(entries=ents, hard_state=HardState(3, 2, 9))
    allowed = persist_steps(view(model), rd)[:-1]  # the state file was never replaced
    s.persist(rd)
    s.close()
    last_seg = sorted(seg.glob("*.seg"))[-1]
    size_after = last_seg.stat().st_size
    assert last_seg == segs[-1] and size_after > size_before
    cut = rng.randint(size_before, size_after - 1)
    with open(last_seg, "r+b") as f:
        f.truncate(cut)
    (d / STATE_NAME).write_bytes(before_state)
    with open_storage(d) as r:
        assert recovered_as(view(r), allowed)
        hs = r.hard_state
        assert (hs.term, hs.vote) == (model.hard_state.term, model.hard_state.vote)
        assert hs.commit <= model.hard_state.commit
        assert r.last_index() >= 5


def test_zero_filled_tail_is_cut(tmp_path: Path) -> None:
    d = tmp_path / "raft"
    with open_storage(d, bootstrap=True) as s:
        s.persist(Ready(entries=[Entry(2, 2, data=b"x")], hard_state=HardState(2, 0, 2)))
        seg = sorted((d / "log.2").glob("*.seg"))[-1]
    with open(seg, "ab") as f:
        f.write(bytes(64))
    with open_storage(d) as r:
        assert r.recovery.log.torn_tail is not None
        assert r.last_index() == 2 and r.entries(2, 3)[0].data == b"x"


# Seed 16 cuts power while an overwrite removes a later segment and shortens the one before.
@pytest.mark.parametrize("seed", [*range(10), 16])
def test_power_cut_keeps_only_synced_state_and_it_is_consistent(
    seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Power fails at a random file-changing call: what survives is only what fsync made
    durable, and that is still a state some prefix of the operations produced, never less
    than what completed operations returned."""
    sys = Syscalls(monkeypatch)
    ops = Workload(1000 + seed).build(16)
    rng = random.Random(seed)
    for attempt in range(6):
        j = rng.randrange(len(ops))
        model = MemoryStorage.bootstrap(VOTERS, b"genesis")
        for op in ops[:j]:
            apply_op(model, op)
        allowed = allowed_after_crash(model, ops[j])
        root = tmp_path / f"live-{attempt}"
        root.mkdir()
        sys.image = DiskImage(root)
        d = root / "r"
        s = run_prefix(d, ops, j)
        sys.arm(0)
        apply_op(s, ops[j])
        total = sys.count
        s.close()
        sys.image.release()
        if total == 0:
            continue  # nothing to write (an unchanged hard state)
        # The same history again in a fresh directory, cut at a random call of op j.
        root = tmp_path / f"cut-{attempt}"
        root.mkdir()
        sys.image = image = DiskImage(root)
        s = run_prefix(root / "r", ops, j)
        sys.arm(rng.randint(1, total))
        with pytest.raises(Crash):
            apply_op(s, ops[j])
        sys.arm(0)
        sys.image = None
        s.close()
        survived = tmp_path / f"after-{attempt}"
        image.restore(survived)
        image.release()
        with open_storage(survived / "r") as r:
            assert recovered_as(view(r), allowed), (j, ops[j])
