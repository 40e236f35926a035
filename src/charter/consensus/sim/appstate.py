"""The simulated application: it records every applied entry, and snapshots that record.

Making the state machine's state *be* its applied history lets the checker verify a snapshot
installed on a lagging follower entry by entry, not just by index and term.
"""

from __future__ import annotations

import struct

from charter.consensus.sim.errors import SimError
from charter.consensus.sim.invariants import EntryRecord

_HEAD = struct.Struct(">QQI")


def encode_applied(records: list[EntryRecord]) -> bytes:
    """Serialise applied records as (index, term, length, payload) frames."""
    parts: list[bytes] = []
    for idx, term, payload in records:
        parts.append(_HEAD.pack(idx, term, len(payload)))
        parts.append(payload)
    return b"".join(parts)


def decode_applied(data: bytes) -> list[EntryRecord]:
    out: list[EntryRecord] = []
    pos = 0
    end = len(data)
    while pos < end:
        if pos + _HEAD.size > end:
            raise SimError("truncated snapshot state", code="consensus.sim.snapshot")
        idx, term, n = _HEAD.unpack_from(data, pos)
        pos += _HEAD.size
        if pos + n > end:
            raise SimError("truncated snapshot payload", code="consensus.sim.snapshot")
        out.append((idx, term, data[pos : pos + n]))
        pos += n
    return out
