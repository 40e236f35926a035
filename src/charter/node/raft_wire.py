"""The strict Syrup encoding of consensus messages exchanged between nodes.

Every message is one record ``<raft-msg type from to term field...>`` whose trailing
fields depend on ``type`` (only the fields that type uses travel, in this order)::

    PRE_VOTE, VOTE          log-term index context
    PRE_VOTE_RESP, VOTE_RESP reject
    APPEND                  log-term index commit runs
    APPEND_RESP             index reject reject-hint log-term
    HEARTBEAT               commit context
    HEARTBEAT_RESP          context
    SNAPSHOT                <raft-snap index term #voters #learners> offset data done
    SNAPSHOT_RESP           index offset reject
    TIMEOUT_NOW             (nothing)
    READ_INDEX              context
    READ_INDEX_RESP         index context

Entries dominate the bytes, so an APPEND carries them packed: entry indexes are implied
(they follow the message's ``index``, the entry before them) and consecutive entries of
one term share a run ``[term [item...]]``, where an item is the entry's data (bytes) for
a normal entry or ``<cc data>`` for a membership change. Runs are non-empty and their
terms strictly increase, so each message has exactly one encoding.

Decoding trusts nothing: a wrong type, a negative or oversized number, an unknown
message type, a field count that does not match the type, or fields that contradict
each other (entries from a later term than the message, a member both voter and
learner, ...) raise ``RaftWireError`` and nothing else. Encoding refuses a message
whose unused fields are set, so the wire never silently drops what the core meant.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from charter.codec.syrup import Record, Symbol, SyrupError, decode, encode
from charter.consensus.errors import ConfChangeInvalid
from charter.consensus.types import (
    CAMPAIGN_TRANSFER,
    NO_NODE,
    ConfChange,
    ConfState,
    Entry,
    EntryKind,
    Message,
    MessageType,
    SnapshotMeta,
)
from charter.errors import CharterError

__all__ = [
    "MAX_CONTEXT",
    "MAX_MESSAGE_SIZE",
    "MAX_UINT",
    "RaftWireError",
    "decode_message",
    "encode_message",
    "message_from_record",
    "message_to_record",
]

RAFT_MSG = Symbol("raft-msg")
RAFT_SNAP = Symbol("raft-snap")
CONF_ITEM = Symbol("cc")

MAX_UINT = (1 << 64) - 1
"""Every number on the wire is an unsigned 64-bit integer."""

MAX_CONTEXT = 1024
"""Read-index and vote contexts are short names, never payloads."""

MAX_MESSAGE_SIZE = 64 << 20
"""Largest encoded message accepted (an append of max_bytes_per_msg fits many times)."""

_MT = MessageType


class RaftWireError(CharterError):
    """Bytes that are not a well-formed consensus message (or a message that cannot be sent)."""

    code = "node.raft_wire"


# --- field checks ------------------------------------------------------------------------------


def _uint(v: Any, what: str) -> int:
    if type(v) is not int or v < 0 or v > MAX_UINT:
        raise RaftWireError(f"{what} must be an unsigned 64-bit integer, got {_show(v)}")
    return v


def _node(v: Any, what: str) -> int:
    n = _uint(v, what)
    if n == NO_NODE:
        raise RaftWireError(f"{what} must be a node id, not {NO_NODE}")
    return n


def _bool(v: Any, what: str) -> bool:
    if type(v) is not bool:
        raise RaftWireError(f"{what} must be a boolean, got {_show(v)}")
    return v


def _bytes(v: Any, what: str) -> bytes:
    if type(v) is not bytes:
        raise RaftWireError(f"{what} must be bytes, got {_show(v)}")
    return v


def _context(v: Any) -> bytes:
    ctx = _bytes(v, "context")
    if len(ctx) > MAX_CONTEXT:
        raise RaftWireError(f"context of {len(ctx)} bytes exceeds {MAX_CONTEXT}")
    return ctx


def _show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


# --- snapshots and entries ---------------------------------------------------------------------


def _ids(ids: frozenset[int], what: str) -> frozenset[int]:
    for i in ids:
        _node(i, what)
    return ids


def _snap_to_record(meta: SnapshotMeta) -> Record:
    conf = meta.conf
    return Record(
        RAFT_SNAP,
        _uint(meta.index, "snapshot index"),
        _uint(meta.term, "snapshot term"),
        _ids(frozenset(conf.voters), "voter"),
        _ids(frozenset(conf.learners), "learner"),
    )


def _snap_from_record(v: Any) -> SnapshotMeta:
    if type(v) is not Record or v.label != RAFT_SNAP or len(v.fields) != 4:
        raise RaftWireError("snapshot metadata must be <raft-snap index term voters learners>")
    index, term, voters, learners = v.fields
    if type(voters) is not frozenset or type(learners) is not frozenset:
        raise RaftWireError("snapshot voters and learners must be sets")
    _ids(voters, "voter")
    _ids(learners, "learner")
    if voters & learners:
        raise RaftWireError("a node is both voter and learner in the snapshot")
    return SnapshotMeta(
        _uint(index, "snapshot index"),
        _uint(term, "snapshot term"),
        ConfState(voters, learners),
    )


def _pack_entries(entries: Sequence[Entry], prev: int) -> list[list[Any]]:
    runs: list[list[Any]] = []
    items: list[Any] = []
    term = -1
    expect = prev + 1
    for e in entries:
        if e.index != expect:
            raise RaftWireError(f"entry {e.index} does not follow entry {expect - 1}")
        expect += 1
        if e.term != term:
            if e.term < term:
                raise RaftWireError(f"entry {e.index} has a lower term than the one before")
            items = []
            term = _uint(e.term, "entry term")
            runs.append([term, items])
        data = _bytes(e.data, "entry data")
        if e.kind is EntryKind.NORMAL:
            items.append(data)
        elif e.kind is EntryKind.CONF_CHANGE:
            items.append(Record(CONF_ITEM, data))
        else:  # pragma: no cover - EntryKind has two members
            raise RaftWireError(f"entry kind {e.kind!r} has no encoding")
    return runs


def _unpack_entries(v: Any, prev: int, log_term: int, msg_term: int) -> list[Entry]:
    if type(v) is not list:
        raise RaftWireError("entries must be a list of runs")
    entries: list[Entry] = []
    index = prev
    last_term = log_term
    for run in v:
        if type(run) is not list or len(run) != 2:
            raise RaftWireError("an entry run must be [term items]")
        term = _uint(run[0], "entry term")
        items = run[1]
        if type(items) is not list or not items:
            raise RaftWireError("an entry run must hold a non-empty list of entries")
        if term < last_term or (entries and term == last_term):
            raise RaftWireError("entry runs must have strictly increasing terms")
        if term > msg_term:
            raise RaftWireError(f"entry of term {term} in a message of term {msg_term}")
        if term == 0:
            raise RaftWireError("entries have a positive term")
        last_term = term
        for item in items:
            index += 1
            if type(item) is bytes:
                entries.append(Entry(term, index, EntryKind.NORMAL, item))
            elif type(item) is Record and item.label == CONF_ITEM and len(item.fields) == 1:
                data = _bytes(item.fields[0], "conf change")
                try:
                    ConfChange.decode(data)
                except ConfChangeInvalid as exc:
                    raise RaftWireError(f"entry {index}: {exc.message}") from None
                entries.append(Entry(term, index, EntryKind.CONF_CHANGE, data))
            else:
                raise RaftWireError(f"entry {index} is neither bytes nor <cc data>")
    if index > MAX_UINT:
        raise RaftWireError("entry index overflows 64 bits")
    return entries


# --- messages ----------------------------------------------------------------------------------

# The fields each message type carries; the others must keep their defaults.
_USED: dict[MessageType, frozenset[str]] = {
    _MT.PRE_VOTE: frozenset({"log_term", "index", "context"}),
    _MT.VOTE: frozenset({"log_term", "index", "context"}),
    _MT.PRE_VOTE_RESP: frozenset({"reject"}),
    _MT.VOTE_RESP: frozenset({"reject"}),
    _MT.APPEND: frozenset({"log_term", "index", "commit", "entries"}),
    _MT.APPEND_RESP: frozenset({"index", "reject", "reject_hint", "log_term"}),
    _MT.HEARTBEAT: frozenset({"commit", "context"}),
    _MT.HEARTBEAT_RESP: frozenset({"context"}),
    _MT.SNAPSHOT: frozenset({"snapshot", "offset", "data", "done"}),
    _MT.SNAPSHOT_RESP: frozenset({"index", "offset", "reject"}),
    _MT.TIMEOUT_NOW: frozenset(),
    _MT.READ_INDEX: frozenset({"context"}),
    _MT.READ_INDEX_RESP: frozenset({"index", "context"}),
}

_DEFAULTS: dict[str, Any] = {
    "log_term": 0,
    "index": 0,
    "commit": 0,
    "reject": False,
    "reject_hint": 0,
    "context": b"",
    "snapshot": None,
    "data": b"",
    "offset": 0,
    "done": False,
}


def _check_unused(m: Message, used: frozenset[str]) -> None:
    for name, default in _DEFAULTS.items():
        if name not in used and getattr(m, name) != default:
            raise RaftWireError(f"{m.type.name} does not carry {name}")
    if "entries" not in used and len(m.entries) != 0:
        raise RaftWireError(f"{m.type.name} does not carry entries")


def _check_vote_context(ctx: bytes) -> bytes:
    if ctx and ctx != CAMPAIGN_TRANSFER:
        raise RaftWireError("a vote's context is empty or marks a leadership transfer")
    return ctx


def message_to_record(m: Message) -> Record:
    """The record for ``m``; raises ``RaftWireError`` if ``m`` is not a sendable message."""
    t = m.type
    try:
        t = _MT(t)
    except ValueError:
        raise RaftWireError(f"unknown message type {t!r}") from None
    _check_unused(m, _USED[t])
    frm = _node(m.frm, "from")
    to = _node(m.to, "to")
    if frm == to:
        raise RaftWireError("a node does not send messages to itself")
    head: tuple[Any, ...] = (int(t), frm, to, _uint(m.term, "term"))
    tail: tuple[Any, ...]
    if t is _MT.PRE_VOTE or t is _MT.VOTE:
        ctx = _check_vote_context(_context(m.context))
        tail = (_uint(m.log_term, "log term"), _uint(m.index, "index"), ctx)
    elif t is _MT.PRE_VOTE_RESP or t is _MT.VOTE_RESP:
        tail = (_bool(m.reject, "reject"),)
    elif t is _MT.APPEND:
        prev = _uint(m.index, "index")
        tail = (
            _uint(m.log_term, "log term"),
            prev,
            _uint(m.commit, "commit"),
            _pack_entries(m.entries, prev),
        )
    elif t is _MT.APPEND_RESP:
        tail = (
            _uint(m.index, "index"),
            _bool(m.reject, "reject"),
            _uint(m.reject_hint, "reject hint"),
            _uint(m.log_term, "log term"),
        )
    elif t is _MT.HEARTBEAT:
        tail = (_uint(m.commit, "commit"), _context(m.context))
    elif t is _MT.HEARTBEAT_RESP or t is _MT.READ_INDEX:
        tail = (_context(m.context),)
    elif t is _MT.SNAPSHOT:
        if m.snapshot is None:
            raise RaftWireError("a SNAPSHOT message needs snapshot metadata")
        tail = (
            _snap_to_record(m.snapshot),
            _uint(m.offset, "offset"),
            _bytes(m.data, "data"),
            _bool(m.done, "done"),
        )
    elif t is _MT.SNAPSHOT_RESP:
        tail = (_uint(m.index, "index"), _uint(m.offset, "offset"), _bool(m.reject, "reject"))
    elif t is _MT.TIMEOUT_NOW:
        tail = ()
    else:  # READ_INDEX_RESP
        tail = (_uint(m.index, "index"), _context(m.context))
    return Record(RAFT_MSG, *head, *tail)


_ARITY: dict[int, int] = {
    int(_MT.PRE_VOTE): 3,
    int(_MT.VOTE): 3,
    int(_MT.PRE_VOTE_RESP): 1,
    int(_MT.VOTE_RESP): 1,
    int(_MT.APPEND): 4,
    int(_MT.APPEND_RESP): 4,
    int(_MT.HEARTBEAT): 2,
    int(_MT.HEARTBEAT_RESP): 1,
    int(_MT.SNAPSHOT): 4,
    int(_MT.SNAPSHOT_RESP): 3,
    int(_MT.TIMEOUT_NOW): 0,
    int(_MT.READ_INDEX): 1,
    int(_MT.READ_INDEX_RESP): 2,
}


def message_from_record(v: Any) -> Message:
    """The message a decoded record stands for; raises ``RaftWireError`` on anything else."""
    if type(v) is not Record or v.label != RAFT_MSG:
        raise RaftWireError("a consensus message is a <raft-msg ...> record")
    fields = v.fields
    if len(fields) < 4:
        raise RaftWireError("a consensus message needs type, from, to and term")
    raw_type = fields[0]
    arity = _ARITY.get(raw_type) if type(raw_type) is int else None
    if arity is None:
        raise RaftWireError(f"unknown message type {_show(raw_type)}")
    if len(fields) != 4 + arity:
        raise RaftWireError(
            f"message type {raw_type} has {arity} fields after the term, got {len(fields) - 4}"
        )
    t = _MT(raw_type)
    frm = _node(fields[1], "from")
    to = _node(fields[2], "to")
    if frm == to:
        raise RaftWireError("a node does not send messages to itself")
    term = _uint(fields[3], "term")
    f = fields[4:]
    if t is _MT.PRE_VOTE or t is _MT.VOTE:
        log_term = _uint(f[0], "log term")
        if log_term > term:
            raise RaftWireError("a candidate's last entry is from a later term than its campaign")
        ctx = _check_vote_context(_context(f[2]))
        return Message(t, frm, to, term, log_term=log_term, index=_uint(f[1], "index"), context=ctx)
    if t is _MT.PRE_VOTE_RESP or t is _MT.VOTE_RESP:
        return Message(t, frm, to, term, reject=_bool(f[0], "reject"))
    if t is _MT.APPEND:
        log_term = _uint(f[0], "log term")
        prev = _uint(f[1], "index")
        if log_term > term:
            raise RaftWireError("the entry before an append is from a later term than the leader")
        if prev == 0 and log_term != 0:
            raise RaftWireError("entry 0 has term 0")
        entries = _unpack_entries(f[3], prev, log_term, term)
        return Message(t, frm, to, term, log_term, prev, entries, commit=_uint(f[2], "commit"))
    if t is _MT.APPEND_RESP:
        reject = _bool(f[1], "reject")
        hint = _uint(f[2], "reject hint")
        hint_term = _uint(f[3], "log term")
        if not reject and (hint or hint_term):
            raise RaftWireError("an accepting append response carries no rejection hint")
        return Message(
            t,
            frm,
            to,
            term,
            index=_uint(f[0], "index"),
            reject=reject,
            reject_hint=hint,
            log_term=hint_term,
        )
    if t is _MT.HEARTBEAT:
        return Message(t, frm, to, term, commit=_uint(f[0], "commit"), context=_context(f[1]))
    if t is _MT.HEARTBEAT_RESP or t is _MT.READ_INDEX:
        return Message(t, frm, to, term, context=_context(f[0]))
    if t is _MT.SNAPSHOT:
        meta = _snap_from_record(f[0])
        if meta.term > term:
            raise RaftWireError("a snapshot from a later term than the leader sending it")
        if not meta.conf.voters:
            raise RaftWireError("a snapshot names no voters")
        return Message(
            t,
            frm,
            to,
            term,
            snapshot=meta,
            offset=_uint(f[1], "offset"),
            data=_bytes(f[2], "data"),
            done=_bool(f[3], "done"),
        )
    if t is _MT.SNAPSHOT_RESP:
        return Message(
            t,
            frm,
            to,
            term,
            index=_uint(f[0], "index"),
            offset=_uint(f[1], "offset"),
            reject=_bool(f[2], "reject"),
        )
    if t is _MT.TIMEOUT_NOW:
        return Message(t, frm, to, term)
    return Message(t, frm, to, term, index=_uint(f[0], "index"), context=_context(f[1]))


def encode_message(m: Message) -> bytes:
    """The canonical bytes of ``m``."""
    return encode(message_to_record(m))


def decode_message(data: bytes, *, max_size: int = MAX_MESSAGE_SIZE) -> Message:
    """Parse one message; anything but a well-formed one raises ``RaftWireError``."""
    if type(data) is not bytes:
        raise RaftWireError(f"an encoded message is bytes, got {type(data).__name__}")
    try:
        # depth: record > runs > run > items > <cc> > bytes
        v = decode(data, max_depth=8, max_size=max_size, max_int_digits=20)
    except SyrupError as exc:
        raise RaftWireError(f"not canonical Syrup: {exc.message}") from None
    return message_from_record(v)
