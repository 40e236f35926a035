"""The consensus wire codec: round trips of every message type, hostile input, fuzz."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.codec.syrup import Record, Symbol, encode
from charter.consensus.types import (
    CAMPAIGN_TRANSFER,
    ConfChange,
    ConfChangeKind,
    ConfState,
    Entry,
    EntryKind,
    Message,
    MessageType,
    SnapshotMeta,
)
from charter.errors import CharterError
from charter.node.raft_wire import (
    MAX_UINT,
    RaftWireError,
    decode_message,
    encode_message,
    message_to_record,
)

MT = MessageType
u64 = st.integers(0, MAX_UINT)
small = st.integers(0, 1000)
node_ids = st.integers(1, 50)
ctx = st.binary(max_size=64)


@st.composite
def conf_states(draw: st.DrawFn) -> ConfState:
    voters = draw(st.frozensets(node_ids, min_size=1, max_size=5))
    learners = draw(st.frozensets(node_ids, max_size=3)) - voters
    return ConfState(voters, learners)


@st.composite
def entry_runs(draw: st.DrawFn, prev: int, log_term: int, term: int) -> list[Entry]:
    entries: list[Entry] = []
    t = max(log_term, 1)
    index = prev
    for _ in range(draw(st.integers(0, 4))):
        t = draw(st.integers(t, max(t, term)))
        for _ in range(draw(st.integers(1, 4))):
            index += 1
            if draw(st.booleans()):
                cc = ConfChange(draw(st.sampled_from(list(ConfChangeKind))), draw(node_ids))
                entries.append(Entry(t, index, EntryKind.CONF_CHANGE, cc.encode()))
            else:
                entries.append(Entry(t, index, EntryKind.NORMAL, draw(st.binary(max_size=40))))
    return entries


@st.composite
def messages(draw: st.DrawFn) -> Message:
    t = draw(st.sampled_from(list(MessageType)))
    frm = draw(node_ids)
    to = draw(node_ids.filter(lambda n: n != frm))
    term = draw(st.integers(1, 10**6))
    if t in (MT.PRE_VOTE, MT.VOTE):
        return Message(
            t,
            frm,
            to,
            term,
            log_term=draw(st.integers(0, term)),
            index=draw(u64),
            context=draw(st.sampled_from([b"", CAMPAIGN_TRANSFER])),
        )
    if t in (MT.PRE_VOTE_RESP, MT.VOTE_RESP):
        return Message(t, frm, to, term, reject=draw(st.booleans()))
    if t is MT.APPEND:
        prev = draw(small)
        log_term = 0 if prev == 0 else draw(st.integers(0, term))
        entries = draw(entry_runs(prev, log_term, term))
        return Message(t, frm, to, term, log_term, prev, entries, commit=draw(u64))
    if t is MT.APPEND_RESP:
        if draw(st.booleans()):
            return Message(
                t,
                frm,
                to,
                term,
                index=draw(u64),
                reject=True,
                reject_hint=draw(u64),
                log_term=draw(u64),
            )
        return Message(t, frm, to, term, index=draw(u64))
    if t is MT.HEARTBEAT:
        return Message(t, frm, to, term, commit=draw(u64), context=draw(ctx))
    if t in (MT.HEARTBEAT_RESP, MT.READ_INDEX):
        return Message(t, frm, to, term, context=draw(ctx))
    if t is MT.SNAPSHOT:
        meta = SnapshotMeta(draw(u64), draw(st.integers(0, term)), draw(conf_states()))
        return Message(
            t,
            frm,
            to,
            term,
            snapshot=meta,
            offset=draw(u64),
            data=draw(st.binary(max_size=100)),
            done=draw(st.booleans()),
        )
    if t is MT.SNAPSHOT_RESP:
        return Message(
            t, frm, to, term, index=draw(u64), offset=draw(u64), reject=draw(st.booleans())
        )
    if t is MT.TIMEOUT_NOW:
        return Message(t, frm, to, term)
    return Message(t, frm, to, term, index=draw(u64), context=draw(ctx))


def same(a: Message, b: Message) -> bool:
    return (a.type, a.frm, a.to, a.term, a.log_term, a.index, list(a.entries), a.commit) == (
        b.type,
        b.frm,
        b.to,
        b.term,
        b.log_term,
        b.index,
        list(b.entries),
        b.commit,
    ) and (a.reject, a.reject_hint, a.context, a.snapshot, a.data, a.offset, a.done) == (
        b.reject,
        b.reject_hint,
        b.context,
        b.snapshot,
        b.data,
        b.offset,
        b.done,
    )


@settings(max_examples=400, deadline=None)
@given(messages())
def test_round_trip_every_type(m: Message) -> None:
    data = encode_message(m)
    back = decode_message(data)
    assert same(back, m)
    assert encode_message(back) == data  # one encoding per message


@pytest.mark.parametrize("t", list(MessageType))
def test_every_type_has_an_encoding(t: MessageType) -> None:
    m = Message(t, 1, 2, 3)
    if t is MT.SNAPSHOT:
        m.snapshot = SnapshotMeta(1, 1, ConfState(frozenset({1, 2})))
    assert same(decode_message(encode_message(m)), m)


def test_entries_are_packed_in_runs() -> None:
    entries = [Entry(4, i, EntryKind.NORMAL, b"x" * 100) for i in range(11, 75)]
    m = Message(MT.APPEND, 1, 2, 4, 4, 10, entries, commit=9)
    data = encode_message(m)
    # 64 entries of 100 bytes: the per-entry overhead is the length prefix and nothing else
    assert len(data) < 64 * 105 + 40
    assert data.count(b"[4+[") == 1  # one run for the whole term


def test_encode_refuses_fields_the_type_does_not_carry() -> None:
    with pytest.raises(RaftWireError, match="does not carry commit"):
        encode_message(Message(MT.VOTE, 1, 2, 3, commit=5))
    with pytest.raises(RaftWireError, match="does not carry entries"):
        encode_message(Message(MT.HEARTBEAT, 1, 2, 3, entries=[Entry(1, 1)]))
    with pytest.raises(RaftWireError, match="needs snapshot metadata"):
        encode_message(Message(MT.SNAPSHOT, 1, 2, 3))
    with pytest.raises(RaftWireError, match="does not follow"):
        encode_message(Message(MT.APPEND, 1, 2, 3, 1, 1, [Entry(1, 3)]))
    with pytest.raises(RaftWireError, match="unsigned"):
        encode_message(Message(MT.HEARTBEAT, 1, 2, -1))


def rec(*fields: Any) -> bytes:
    return encode(Record(Symbol("raft-msg"), *fields))


HOSTILE = {
    "not a record": encode([5, 1, 2, 3]),
    "wrong label": encode(Record(Symbol("raft-msh"), 11, 1, 2, 3)),
    "unknown type": rec(99, 1, 2, 3),
    "type as symbol": rec(Symbol("append"), 1, 2, 3),
    "negative term": rec(11, 1, 2, -3),
    "huge number": rec(11, 1, 2, 1 << 64),
    "from zero": rec(11, 0, 2, 3),
    "to self": rec(11, 2, 2, 3),
    "too few fields": rec(7, 1, 2, 3, 0),
    "too many fields": rec(11, 1, 2, 3, 0),
    "reject as int": rec(4, 1, 2, 3, 1),
    "context as str": rec(8, 1, 2, 3, "ctx"),
    "context too long": rec(8, 1, 2, 3, b"x" * 2000),
    "vote context": rec(3, 1, 2, 3, 1, 5, b"other"),
    "vote log term ahead": rec(3, 1, 2, 3, 4, 5, b""),
    "accept with hint": rec(6, 1, 2, 3, 5, False, 2, 1),
    "entries not a list": rec(5, 1, 2, 3, 1, 1, 1, b"x"),
    "empty run": rec(5, 1, 2, 3, 1, 1, 1, [[1, []]]),
    "run terms not increasing": rec(5, 1, 2, 3, 1, 1, 1, [[2, [b"a"]], [2, [b"b"]]]),
    "run term below prev": rec(5, 1, 2, 3, 2, 1, 1, [[1, [b"a"]]]),
    "entry from a later term": rec(5, 1, 2, 3, 1, 1, 1, [[4, [b"a"]]]),
    "entry of unknown shape": rec(5, 1, 2, 3, 1, 1, 1, [[1, ["a"]]]),
    "bad conf change": rec(5, 1, 2, 3, 1, 1, 1, [[1, [Record(Symbol("cc"), b"\x09" * 9)]]]),
    "prev 0 with a term": rec(5, 1, 2, 3, 1, 0, 1, []),
    "snapshot not a record": rec(9, 1, 2, 3, [1, 1], 0, b"", True),
    "voter and learner": rec(
        9, 1, 2, 3, Record(Symbol("raft-snap"), 1, 1, {1, 2}, {2}), 0, b"", True
    ),
    "no voters": rec(9, 1, 2, 3, Record(Symbol("raft-snap"), 1, 1, set(), set()), 0, b"", True),
    "voters as list": rec(9, 1, 2, 3, Record(Symbol("raft-snap"), 1, 1, [1], set()), 0, b"", 1),
    "snapshot from later term": rec(
        9, 1, 2, 3, Record(Symbol("raft-snap"), 1, 9, {1}, set()), 0, b"", True
    ),
    "trailing bytes": rec(11, 1, 2, 3) + b"0+",
    "truncated": rec(11, 1, 2, 3)[:-1],
    "not canonical": b"<8'raft-msg11+01+2+3+>",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_raises_a_typed_error(name: str) -> None:
    with pytest.raises(RaftWireError) as info:
        decode_message(HOSTILE[name])
    assert info.value.code == "node.raft_wire"


def test_decode_takes_only_bytes() -> None:
    with pytest.raises(RaftWireError):
        decode_message("<>")  # type: ignore[arg-type]


def test_fuzz_only_typed_errors_escape() -> None:
    """Mutated valid encodings: each decodes to a message that re-encodes, or raises ours."""
    rng = random.Random(20261122)
    seeds = [
        encode_message(m)
        for m in (
            Message(MT.APPEND, 1, 2, 5, 4, 10, [Entry(5, 11, data=b"abc")], commit=9),
            Message(MT.HEARTBEAT, 2, 1, 7, commit=3, context=b"r1"),
            Message(
                MT.SNAPSHOT,
                1,
                3,
                2,
                snapshot=SnapshotMeta(9, 2, ConfState(frozenset({1, 2}), frozenset({3}))),
                data=b"snap",
                done=True,
            ),
            Message(MT.APPEND_RESP, 3, 1, 2, index=4, reject=True, reject_hint=3, log_term=1),
            Message(MT.VOTE, 3, 1, 2, log_term=1, index=7, context=CAMPAIGN_TRANSFER),
        )
    ]
    alphabet = b"<>[]{}#0123456789+-:'\"tfD"
    decoded = 0
    for _ in range(4000):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            op = rng.randrange(3)
            pos = rng.randrange(len(data) + 1)
            if op == 0 and data:
                del data[min(pos, len(data) - 1)]
            elif op == 1:
                data.insert(pos, rng.choice(alphabet))
            elif data:
                data[min(pos, len(data) - 1)] = rng.randrange(256)
        try:
            m = decode_message(bytes(data))
        except RaftWireError:
            continue
        except CharterError as exc:  # pragma: no cover - the assertion below names it
            pytest.fail(f"untyped escape {exc.code}: {exc}")
        decoded += 1
        message_to_record(m)  # whatever decodes is a message we could send
    assert decoded > 0
