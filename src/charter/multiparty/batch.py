"""Signed batches: how messages travel from their author's node to the group's nodes.

A batch body is the Syrup record
``<charter-mp-batch id kind author-member author-node group-members created-us [msg...]>``;
the signed batch is ``<charter-mp-signed body-bytes signature>`` where the signature is the
author node's Ed25519 signature over ``body-bytes`` exactly. The batch hash is ``sha256``
of the signed bytes: that is what the ledger's pin command names, and a receiver checks
the bytes it got against it, never a re-encoding.

All messages of a batch share its author node, kind and group (so they share recipients).

A batch whose pin travels in another app's transaction (a token operation carrying a
message) says so: its body has an eighth field, the Symbol of that app (``tokens``), and it
holds exactly one message. Receivers confirm such a message only at a valid transaction of
that app, never at an ``mp`` pin command (and an ordinary batch never at another app's).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from charter.codec.syrup import Record, Symbol, SyrupError, decode, encode
from charter.crypto.keys import Ed25519PrivateKey, Ed25519PublicKey
from charter.multiparty.errors import MalformedBatch
from charter.multiparty.model import Group, Message

__all__ = ["MAX_BATCH_BYTES", "PINNED_BY", "Batch", "BatchKind", "SignedBatch", "seal"]

BatchKind = Literal["broadcast", "private"]
MAX_BATCH_BYTES = 16 << 20
PINNED_BY = ("mp", "tokens")
"""The apps whose transactions may carry a batch's pins: ``mp`` (a pin command) or a token
operation carrying a message."""

_BATCH = Symbol("charter-mp-batch")
_SIGNED = Symbol("charter-mp-signed")


@dataclass(frozen=True, slots=True)
class Batch:
    id: str
    kind: BatchKind
    author_member: str
    author_node: str
    group: Group
    created_us: int
    messages: tuple[Message, ...]
    pinned_by: str = "mp"
    """The app whose transaction carries this batch's pins."""

    def __post_init__(self) -> None:
        if self.kind not in ("broadcast", "private"):
            raise MalformedBatch(f"unknown batch kind {self.kind!r}")
        if not self.messages:
            raise MalformedBatch("a batch holds at least one message")
        if self.pinned_by not in PINNED_BY:
            raise MalformedBatch(f"no app {self.pinned_by[:32]!r} pins batches")
        if self.pinned_by != "mp" and len(self.messages) != 1:
            raise MalformedBatch(f"a batch pinned by {self.pinned_by} holds one message")
        pins = set()
        for m in self.messages:
            if (m.type == "broadcast") != (self.kind == "broadcast"):
                raise MalformedBatch("a batch mixes broadcast and private messages")
            if m.author_node != self.author_node or m.author_member != self.author_member:
                raise MalformedBatch("a batch holds a message of another author")
            if m.group != self.group:
                raise MalformedBatch("a batch holds a message of another group")
            pins.add(m.pin)
        if len(pins) != len(self.messages):
            raise MalformedBatch("two messages of a batch have the same pin")

    @property
    def pins(self) -> list[bytes]:
        return [m.pin for m in self.messages]

    def body(self) -> bytes:
        fields: list[object] = [
            self.id,
            Symbol(self.kind),
            self.author_member,
            self.author_node,
            list(self.group.members),
            self.created_us,
            [m.to_record() for m in self.messages],
        ]
        if self.pinned_by != "mp":  # ordinary batches keep their seven fields
            fields.append(Symbol(self.pinned_by))
        return encode(Record(_BATCH, *fields))

    @classmethod
    def from_body(cls, body: bytes) -> Batch:
        try:
            rec = decode(body)
        except SyrupError as exc:
            raise MalformedBatch(f"batch body is not canonical Syrup: {exc.message}") from None
        if not isinstance(rec, Record) or rec.label != _BATCH or len(rec.fields) not in (7, 8):
            raise MalformedBatch("not a batch record")
        bid, kind, member, node, members, created, msgs = rec.fields[:7]
        pinned_by = "mp"
        if len(rec.fields) == 8:
            app = rec.fields[7]
            if not isinstance(app, Symbol) or app.name == "mp":
                raise MalformedBatch("a batch names the app pinning it as a Symbol other than mp")
            pinned_by = app.name
        if (
            type(bid) is not str
            or not isinstance(kind, Symbol)
            or type(member) is not str
            or type(node) is not str
            or type(members) is not list
            or any(type(m) is not str for m in members)
            or type(created) is not int
            or type(msgs) is not list
        ):
            raise MalformedBatch("a batch has fields of the wrong type")
        try:
            group = Group(tuple(members))
        except Exception as exc:
            raise MalformedBatch(f"bad batch group: {exc}") from None
        return cls(
            bid,
            kind.name,  # type: ignore[arg-type]
            member,
            node,
            group,
            created,
            tuple(Message.from_record(m) for m in msgs),
            pinned_by,
        )


@dataclass(frozen=True, slots=True)
class SignedBatch:
    """A batch as received: its exact bytes, body bytes, signature and parsed batch."""

    raw: bytes
    body: bytes
    signature: bytes
    batch: Batch
    hash: bytes = field(init=False, compare=False, repr=False)
    """``sha256`` of ``raw``: what the pin command names."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "hash", hashlib.sha256(self.raw).digest())

    @classmethod
    def decode(cls, raw: bytes) -> SignedBatch:
        """Parse untrusted bytes (signature not yet checked: see ``verify``)."""
        if len(raw) > MAX_BATCH_BYTES:
            raise MalformedBatch(f"a batch is at most {MAX_BATCH_BYTES} bytes")
        try:
            rec = decode(raw)
        except SyrupError as exc:
            raise MalformedBatch(f"batch is not canonical Syrup: {exc.message}") from None
        if not isinstance(rec, Record) or rec.label != _SIGNED or len(rec.fields) != 2:
            raise MalformedBatch("not a signed batch record")
        body, signature = rec.fields
        if type(body) is not bytes or type(signature) is not bytes or len(signature) != 64:
            raise MalformedBatch("a signed batch holds body bytes and a 64-byte signature")
        return cls(raw, body, signature, Batch.from_body(body))

    def verify(self, key: Ed25519PublicKey) -> None:
        if not key.is_valid(self.signature, self.body):
            raise MalformedBatch(f"batch signature is not {self.batch.author_node}'s")


def seal(batch: Batch, key: Ed25519PrivateKey) -> SignedBatch:
    body = batch.body()
    signature = key.sign(body)
    raw = encode(Record(_SIGNED, body, signature))
    return SignedBatch(raw, body, signature, batch)


def check_messages(messages: Sequence[Message]) -> None:
    """Raise unless ``messages`` could form one batch (same author, kind and group)."""
    if messages:
        m = messages[0]
        Batch(
            "check",
            "broadcast" if m.type == "broadcast" else "private",
            m.author_member,
            m.author_node,
            m.group,
            0,
            tuple(messages),
        )
