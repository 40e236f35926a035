"""Messages, groups, contexts and pins: the values the multi-party layer hashes and signs.

Everything hashed is canonical Syrup. A JSON data value travels as its canonical JSON
bytes (sorted keys, no spaces, UTF-8) inside the Syrup record, so the bytes a node
hashes are the bytes it received, never a re-encoding.

- A **group** is a sorted set of member names; its hash is ``sha256`` of the Syrup
  record ``<charter-mp-group [names...]>``. A broadcast's group is every member.
- A **context** is the unit of ordering: ``sha256(<charter-mp-context topic group-hash>)``.
- A **pin** is what the ledger orders for one message:
  ``sha256(<charter-mp-pin context author-node nonce>)``, where ``nonce`` counts the
  messages that author node sent in that context (0, 1, 2, ...). A group member knows
  the context, so it can tell which pins are its own before the batch arrives (and hold
  the context back); a node that does not know topic and group cannot tell which context,
  group or topic a pin belongs to (see ``docs/ordering.md`` for what it can guess).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from charter.codec.syrup import Record, Symbol, encode
from charter.multiparty.errors import InvalidMessage, MalformedBatch

__all__ = [
    "MAX_TOPIC_BYTES",
    "DataItem",
    "Group",
    "Message",
    "MessageType",
    "canonical_json",
    "context_of",
    "pin_of",
]

MessageType = Literal["broadcast", "private", "requestreply"]
MESSAGE_TYPES: tuple[MessageType, ...] = ("broadcast", "private", "requestreply")
MAX_TOPIC_BYTES = 256
MAX_NAME_BYTES = 200
MAX_DATA_ITEMS = 64

_GROUP = Symbol("charter-mp-group")
_CONTEXT = Symbol("charter-mp-context")
_PIN = Symbol("charter-mp-pin")
_MSG = Symbol("charter-mp-msg")
_DATA = Symbol("charter-mp-data")


def canonical_json(value: Any) -> bytes:
    """One byte string per JSON value: sorted keys, no whitespace, UTF-8, no NaN."""
    try:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise InvalidMessage(f"not a JSON value: {exc}") from None


def _check_name(name: object, what: str) -> str:
    if type(name) is not str or not name or len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise InvalidMessage(f"{what} must be a non-empty string of at most {MAX_NAME_BYTES} bytes")
    return name


@dataclass(frozen=True, slots=True)
class Group:
    """Sorted, unique member names."""

    members: tuple[str, ...]
    hash: bytes = field(init=False, compare=False, repr=False)

    @classmethod
    def of(cls, members: Iterable[str]) -> Group:
        names = sorted({_check_name(m, "a member name") for m in members})
        if not names:
            raise InvalidMessage("a group has at least one member")
        return cls(tuple(names))

    def __post_init__(self) -> None:
        object.__setattr__(self, "hash", _group_hash(self.members))


@functools.lru_cache(maxsize=4096)
def _group_hash(members: tuple[str, ...]) -> bytes:
    """Checked and hashed once per distinct group: every message names its group."""
    if type(members) is not tuple or list(members) != sorted(set(members)) or not members:
        raise InvalidMessage("group members must be sorted, unique and non-empty")
    return hashlib.sha256(encode(Record(_GROUP, list(members)))).digest()


@functools.lru_cache(maxsize=4096)
def context_of(topic: str, group_hash: bytes) -> bytes:
    return hashlib.sha256(encode(Record(_CONTEXT, topic, group_hash))).digest()


def pin_of(context: bytes, author_node: str, nonce: int) -> bytes:
    return hashlib.sha256(encode(Record(_PIN, context, author_node, nonce))).digest()


@dataclass(frozen=True, slots=True)
class DataItem:
    """One data item: a JSON value (canonical bytes) with an optional datatype, and/or a blob.

    Empty strings / bytes and ``-1`` mean "absent" on the wire (Syrup has no null).
    """

    id: str
    value: bytes | None = None
    """Canonical JSON bytes of the value (``canonical_json``)."""
    datatype_name: str = ""
    datatype_version: str = ""
    blob_hash: bytes = b""
    blob_size: int = -1
    blob_name: str = ""

    @property
    def hash(self) -> bytes:
        return hashlib.sha256(encode(self.to_record())).digest()

    def json_value(self) -> Any:
        return None if self.value is None else json.loads(self.value)

    def to_record(self) -> Record:
        return Record(
            _DATA,
            self.id,
            b"" if self.value is None else self.value,
            self.value is not None,
            self.datatype_name,
            self.datatype_version,
            self.blob_hash,
            self.blob_size,
            self.blob_name,
        )

    @classmethod
    def from_record(cls, rec: object) -> DataItem:
        if not isinstance(rec, Record) or rec.label != _DATA or len(rec.fields) != 8:
            raise MalformedBatch("not a data item record")
        did, value, has_value, dt_name, dt_version, blob_hash, blob_size, blob_name = rec.fields
        types_ok = (
            type(did) is str
            and type(value) is bytes
            and type(has_value) is bool
            and type(dt_name) is str
            and type(dt_version) is str
            and type(blob_hash) is bytes
            and type(blob_size) is int
            and type(blob_name) is str
        )
        if not types_ok or (blob_hash and len(blob_hash) != 32) or (not has_value and value):
            raise MalformedBatch("a data item has fields of the wrong type")
        if not has_value and not blob_hash:
            raise MalformedBatch("a data item holds a value or a blob")
        if has_value:
            try:
                json.loads(value)
            except ValueError:
                raise MalformedBatch("a data item's value is not JSON") from None
        return cls(
            did,
            value if has_value else None,
            dt_name,
            dt_version,
            blob_hash,
            blob_size,
            blob_name,
        )


@dataclass(frozen=True, slots=True)
class Message:
    """A message as its author's node sealed it into a batch."""

    id: str
    type: MessageType
    author_member: str
    author_node: str
    topic: str
    tag: str
    cid: str
    """For a reply, the id of the request it answers ("" otherwise)."""
    group: Group
    nonce: int
    created_us: int
    data: tuple[DataItem, ...]
    context: bytes = field(init=False, compare=False, repr=False)
    pin: bytes = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.type not in MESSAGE_TYPES:
            raise InvalidMessage(f"unknown message type {self.type!r}")
        if type(self.topic) is not str or len(self.topic.encode("utf-8")) > MAX_TOPIC_BYTES:
            raise InvalidMessage(f"a topic is a string of at most {MAX_TOPIC_BYTES} bytes")
        if len(self.data) > MAX_DATA_ITEMS:
            raise InvalidMessage(f"a message holds at most {MAX_DATA_ITEMS} data items")
        if self.nonce < 0:
            raise InvalidMessage("a nonce is not negative")
        context = context_of(self.topic, self.group.hash)
        object.__setattr__(self, "context", context)
        object.__setattr__(self, "pin", pin_of(context, self.author_node, self.nonce))

    @property
    def group_hash(self) -> bytes:
        return self.group.hash

    @property
    def blobs(self) -> tuple[bytes, ...]:
        return tuple(d.blob_hash for d in self.data if d.blob_hash)

    @property
    def hash(self) -> bytes:
        return hashlib.sha256(encode(self.to_record())).digest()

    def to_record(self) -> Record:
        return Record(
            _MSG,
            self.id,
            Symbol(self.type),
            self.author_member,
            self.author_node,
            self.topic,
            self.tag,
            self.cid,
            list(self.group.members),
            self.nonce,
            self.created_us,
            [d.to_record() for d in self.data],
        )

    @classmethod
    def from_record(cls, rec: object) -> Message:
        if not isinstance(rec, Record) or rec.label != _MSG or len(rec.fields) != 11:
            raise MalformedBatch("not a message record")
        mid, mtype, member, node, topic, tag, cid, members, nonce, created, data = rec.fields
        strings = (mid, member, node, topic, tag, cid)
        if (
            any(type(s) is not str for s in strings)
            or not isinstance(mtype, Symbol)
            or type(members) is not list
            or any(type(m) is not str for m in members)
            or type(nonce) is not int
            or type(created) is not int
            or type(data) is not list
        ):
            raise MalformedBatch("a message has fields of the wrong type")
        if mtype.name not in MESSAGE_TYPES:
            raise MalformedBatch(f"unknown message type {mtype.name!r}")
        try:
            return cls(
                mid,
                mtype.name,
                member,
                node,
                topic,
                tag,
                cid,
                Group(tuple(members)),
                nonce,
                created,
                tuple(DataItem.from_record(d) for d in data),
            )
        except InvalidMessage as exc:
            raise MalformedBatch(exc.message) from None


def message_records(messages: Sequence[Message]) -> list[Record]:
    return [m.to_record() for m in messages]
