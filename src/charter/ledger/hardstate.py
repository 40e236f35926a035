"""On-disk records of durable Raft storage besides its log: the state file and snapshots.

The state file is the root of a Raft storage directory. Besides Raft's hard state (term,
vote, commit) it names the compaction point of the log (index and term) and which
snapshot file and which log directory are current, so that replacing any of them (a
snapshot installed from the leader resets the log) is one atomic rename of this file.
It is small and fixed-size, checksummed with CRC32C, and only ever replaced whole:
write a temporary file, fsync it, rename it over the old one, fsync the directory.
Its commit index is a lower bound: the storage rewrites the file for a new term or vote
(and for snapshots and compaction), not for every commit (``raft_storage`` says why).

A snapshot file holds the snapshot's metadata (index, term, voters, learners) and the
application's data under one CRC32C. It is written under a fresh name, fsynced, and only
then referenced by a new state file; until that rename it is an orphan that opening the
directory removes.

All I/O here is blocking; callers run it from a worker thread, never the event loop.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from crc32c import crc32c

from charter.consensus.types import ConfState, HardState, Snapshot, SnapshotMeta
from charter.ledger.errors import LedgerCorruptionError

STATE_NAME = "state"
STATE_TMP_NAME = "state.tmp"

_STATE_MAGIC = b"CHRS"
_SNAP_MAGIC = b"CHSN"
_VERSION = 1
_STATE = struct.Struct(">4sB7Q")
_CRC = struct.Struct(">I")
_SNAP_HEAD = struct.Struct(">4sBQQII")
_U64 = struct.Struct(">Q")


@dataclass(frozen=True, slots=True)
class StateRecord:
    """What the state file holds; ``snapshot_seq`` 0 means no snapshot file (empty snapshot)."""

    hard_state: HardState
    base: int
    base_term: int
    snapshot_seq: int
    log_seq: int


def encode_state(rec: StateRecord) -> bytes:
    hs = rec.hard_state
    body = _STATE.pack(
        _STATE_MAGIC,
        _VERSION,
        hs.term,
        hs.vote,
        hs.commit,
        rec.base,
        rec.base_term,
        rec.snapshot_seq,
        rec.log_seq,
    )
    return body + _CRC.pack(crc32c(body))


def decode_state(data: bytes, path: Path) -> StateRecord:
    if len(data) != _STATE.size + _CRC.size:
        raise LedgerCorruptionError(path, 0, f"state record of {len(data)} bytes")
    body = data[: _STATE.size]
    (crc,) = _CRC.unpack_from(data, _STATE.size)
    if crc32c(body) != crc:
        raise LedgerCorruptionError(path, 0, "state record CRC mismatch")
    magic, version, term, vote, commit, base, base_term, snap_seq, log_seq = _STATE.unpack(body)
    if magic != _STATE_MAGIC or version != _VERSION:
        raise LedgerCorruptionError(path, 0, f"not a state record (version {version})")
    return StateRecord(HardState(term, vote, commit), base, base_term, snap_seq, log_seq)


def encode_snapshot(snap: Snapshot) -> list[bytes]:
    """The snapshot file as parts to write in turn (the data is not copied)."""
    meta = snap.metadata
    voters = sorted(meta.conf.voters)
    learners = sorted(meta.conf.learners)
    head = b"".join(
        [
            _SNAP_HEAD.pack(
                _SNAP_MAGIC, _VERSION, meta.index, meta.term, len(voters), len(learners)
            ),
            *(_U64.pack(v) for v in voters),
            *(_U64.pack(v) for v in learners),
            _U64.pack(len(snap.data)),
        ]
    )
    return [head, snap.data, _CRC.pack(crc32c(snap.data, crc32c(head)))]


def decode_snapshot(data: bytes, path: Path) -> Snapshot:
    if len(data) < _SNAP_HEAD.size + _U64.size + _CRC.size:
        raise LedgerCorruptionError(path, 0, f"snapshot file of {len(data)} bytes")
    end = len(data) - _CRC.size
    (crc,) = _CRC.unpack_from(data, end)
    if crc32c(memoryview(data)[:end]) != crc:
        raise LedgerCorruptionError(path, 0, "snapshot CRC mismatch")
    magic, version, index, term, nvoters, nlearners = _SNAP_HEAD.unpack_from(data, 0)
    if magic != _SNAP_MAGIC or version != _VERSION:
        raise LedgerCorruptionError(path, 0, f"not a snapshot file (version {version})")
    pos = _SNAP_HEAD.size
    ids = []
    for _ in range(nvoters + nlearners):
        if pos + _U64.size > end:
            raise LedgerCorruptionError(path, pos, "snapshot membership runs past the end")
        ids.append(_U64.unpack_from(data, pos)[0])
        pos += _U64.size
    if pos + _U64.size > end:
        raise LedgerCorruptionError(path, pos, "snapshot data length missing")
    (size,) = _U64.unpack_from(data, pos)
    pos += _U64.size
    if pos + size != end:
        raise LedgerCorruptionError(path, pos, f"snapshot data of {size} bytes does not fit")
    conf = ConfState(voters=frozenset(ids[:nvoters]), learners=frozenset(ids[nvoters:]))
    return Snapshot(SnapshotMeta(index=index, term=term, conf=conf), data[pos:end])


def write_synced(dir_fd: int, name: str, parts: Sequence[bytes]) -> None:
    """Create (or replace the contents of) ``name`` and fsync it; the caller syncs the dir."""
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644, dir_fd=dir_fd)
    try:
        for part in parts:
            view = memoryview(part)
            while view:
                view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_atomically(dir_fd: int, name: str, tmp_name: str, data: bytes) -> None:
    """Write ``tmp_name``, fsync it, rename it over ``name``, fsync the directory."""
    write_synced(dir_fd, tmp_name, [data])
    os.rename(tmp_name, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    os.fsync(dir_fd)
