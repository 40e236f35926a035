"""The node's index database: the multi-party layer's tables, one schema for SQLite and PostgreSQL.

The index is node-local and derived: what this node sent, received, pinned and told its
applications. The shared ledger stays the source of truth for order; these tables make
it queryable. Times are integer microseconds since the Unix epoch (one representation on
both databases, no time-zone surprises); hashes are lowercase hex SHA-256.

Migrations in ``charter.store.migrations`` must produce exactly this schema: a test
compares them (alembic's autogenerate diff must be empty).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "BATCH_STATES",
    "BLOB_STATES",
    "DELIVERY_STATES",
    "MESSAGE_STATES",
    "MESSAGE_TYPES",
    "TRANSPORTS",
    "Base",
    "BatchRow",
    "BlobRow",
    "CounterRow",
    "DataRow",
    "DatatypeRow",
    "DeliveryRow",
    "EventRow",
    "GroupRow",
    "MessageRow",
    "PinRow",
    "StateRow",
    "SubscriptionRow",
]

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite makes only a column declared exactly INTEGER PRIMARY KEY an auto-assigned rowid;
# PostgreSQL wants BIGINT for sequences that may pass 2**31. Same column, two spellings.
SeqType = BigInteger().with_variant(Integer(), "sqlite")

MESSAGE_TYPES = ("broadcast", "private", "requestreply")
MESSAGE_STATES = ("pending", "sent", "pinned", "confirmed", "failed", "rejected")
BATCH_STATES = ("pending", "sealed", "sent", "pinned", "confirmed", "failed")
BLOB_STATES = ("partial", "complete")
TRANSPORTS = ("websocket", "webhook")
DELIVERY_STATES = ("dead", "redeliver", "delivered")

NAME = 200
"""Longest member, node, datatype or subscription name."""
HASH = 64
UUID = 36
TOPIC = 256


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class CounterRow(Base):
    """Named counters advanced under a row lock (the event offset is one)."""

    __tablename__ = "counters"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, nullable=False)


class StateRow(Base):
    """A named state blob of the multi-party layer (the aggregator's snapshot, nonce counters),
    written in the same transaction as the rows it accounts for."""

    __tablename__ = "named_state"
    name: Mapped[str] = mapped_column(String(NAME), primary_key=True)
    value: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    updated_us: Mapped[int] = mapped_column(BigInteger, nullable=False)


class GroupRow(Base):
    """A private group, known by the hash of its sorted member names."""

    __tablename__ = "groups"
    hash: Mapped[str] = mapped_column(String(HASH), primary_key=True)
    members: Mapped[list[Any]] = mapped_column(JSON, nullable=False)
    """Member names, sorted, unique."""
    created_us: Mapped[int] = mapped_column(BigInteger, nullable=False)


class MessageRow(Base):
    """A broadcast, private or request/reply message, as this node knows it."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("member", "idempotency_key"),
        CheckConstraint(_one_of("type", MESSAGE_TYPES), name="type"),
        CheckConstraint(_one_of("state", MESSAGE_STATES), name="state"),
        Index(None, "topic", "seq"),
        Index(None, "group_hash", "seq"),
        Index(None, "context", "pin_seqno"),
        Index(None, "state", "seq"),
        Index(None, "member", "seq"),
        Index(None, "batch_id"),
        Index(None, "cid"),
    )
    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    """Local insertion order: what ``after=OFFSET`` pages over."""
    id: Mapped[str] = mapped_column(String(UUID), nullable=False, unique=True)
    member: Mapped[str] = mapped_column(String(NAME), nullable=False)
    """The authoring member."""
    node: Mapped[str] = mapped_column(String(NAME), nullable=False)
    """The authoring member's node that sent it."""
    idempotency_key: Mapped[str | None] = mapped_column(String(NAME))
    type: Mapped[str] = mapped_column(String(16), nullable=False)
    topic: Mapped[str] = mapped_column(String(TOPIC), nullable=False)
    group_hash: Mapped[str | None] = mapped_column(String(HASH))
    context: Mapped[str] = mapped_column(String(HASH), nullable=False)
    """Hash of topic and group: the unit of ordering."""
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    hash: Mapped[str | None] = mapped_column(String(HASH))
    batch_id: Mapped[str | None] = mapped_column(String(HASH))
    pin_seqno: Mapped[int | None] = mapped_column(BigInteger)
    pin_tx_id: Mapped[str | None] = mapped_column(String(64))
    tag: Mapped[str | None] = mapped_column(String(TOPIC))
    """The application's label for what the message is (free text, not for ordering)."""
    cid: Mapped[str | None] = mapped_column(String(UUID))
    """For a reply: the id of the request it answers."""
    reason: Mapped[str | None] = mapped_column(Text)
    """Why it failed or was rejected."""
    created_us: Mapped[int] = mapped_column(BigInteger, nullable=False)
    confirmed_us: Mapped[int | None] = mapped_column(BigInteger)


class DataRow(Base):
    """One data item of a message: a JSON value and/or a blob reference."""

    __tablename__ = "data"
    __table_args__ = (
        Index(None, "message_id", "position"),
        Index(None, "blob_hash"),
    )
    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(UUID), nullable=False, unique=True)
    message_id: Mapped[str | None] = mapped_column(
        String(UUID), ForeignKey("messages.id", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    value: Mapped[Any] = mapped_column(JSON(none_as_null=True))
    datatype_name: Mapped[str | None] = mapped_column(String(NAME))
    datatype_version: Mapped[str | None] = mapped_column(String(64))
    blob_hash: Mapped[str | None] = mapped_column(String(HASH))
    blob_size: Mapped[int | None] = mapped_column(BigInteger)
    blob_name: Mapped[str | None] = mapped_column(String(TOPIC))
    hash: Mapped[str] = mapped_column(String(HASH), nullable=False)
    created_us: Mapped[int] = mapped_column(BigInteger, nullable=False)


class DatatypeRow(Base):
    """A JSON Schema data items may be validated against, by name and version."""

    __tablename__ = "datatypes"
    __table_args__ = (UniqueConstraint("name", "version"),)
    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(UUID), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(NAME), nullable=False)
    version: Mapped[str] = mapped_column(String(64), nullable=False)
    schema: Mapped[Any] = mapped_column(JSON, nullable=False)
    hash: Mapped[str] = mapped_column(String(HASH), nullable=False)
    message_id: Mapped[str | None] = mapped_column(String(UUID))
    """The broadcast that defined it, when it came from the network."""
    created_us: Mapped[int] = mapped_column(BigInteger, nullable=False)


class BatchRow(Base):
    """A signed batch of messages, sent or received."""

    __tablename__ = "batches"
    __table_args__ = (
        CheckConstraint(_one_of("type", MESSAGE_TYPES), name="type"),
        CheckConstraint(_one_of("state", BATCH_STATES), name="state"),
        Index(None, "state", "created_us"),
        Index(None, "author"),
    )
    id: Mapped[str] = mapped_column(String(HASH), primary_key=True)
    hash: Mapped[str] = mapped_column(String(HASH), nullable=False)
    author: Mapped[str] = mapped_column(String(NAME), nullable=False)
    """The member whose node signed it."""
    node: Mapped[str] = mapped_column(String(NAME), nullable=False)
    type: Mapped[str] = mapped_column(String(16), nullable=False)
    group_hash: Mapped[str | None] = mapped_column(String(HASH))
    payload: Mapped[bytes | None] = mapped_column(LargeBinary)
    payload_ref: Mapped[str | None] = mapped_column(String(TOPIC))
    """Where the payload is kept when it is not inline (a file name under the data dir)."""
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    tx_id: Mapped[str | None] = mapped_column(String(64))
    created_us: Mapped[int] = mapped_column(BigInteger, nullable=False)
    confirmed_us: Mapped[int | None] = mapped_column(BigInteger)


class PinRow(Base):
    """A salted pin seen in the ledger: the ordering point of one message context."""

    __tablename__ = "pins"
    __table_args__ = (
        UniqueConstraint("tx_id", "index_in_batch"),
        Index(None, "context", "ledger_seqno"),
        Index(None, "batch_hash"),
        Index(None, "dispatched", "ledger_seqno"),
    )
    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    ledger_seqno: Mapped[int] = mapped_column(BigInteger, nullable=False)
    tx_id: Mapped[str] = mapped_column(String(64), nullable=False)
    pin: Mapped[str] = mapped_column(String(HASH), nullable=False)
    """The salted hash as it appears in the ledger."""
    batch_hash: Mapped[str | None] = mapped_column(String(HASH))
    context: Mapped[str | None] = mapped_column(String(HASH))
    """Known only to group members (an outsider cannot unsalt the pin)."""
    index_in_batch: Mapped[int] = mapped_column(Integer, nullable=False)
    dispatched: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_us: Mapped[int] = mapped_column(BigInteger, nullable=False)


class BlobRow(Base):
    """A blob file, complete or still arriving."""

    __tablename__ = "blobs"
    __table_args__ = (CheckConstraint(_one_of("state", BLOB_STATES), name="state"),)
    hash: Mapped[str] = mapped_column(String(HASH), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    path: Mapped[str] = mapped_column(String(1024), nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    received: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    created_us: Mapped[int] = mapped_column(BigInteger, nullable=False)
    updated_us: Mapped[int] = mapped_column(BigInteger, nullable=False)


class EventRow(Base):
    """One entry of the node's event log; ``seq`` is its offset (strictly increasing)."""

    __tablename__ = "events"
    __table_args__ = (
        Index(None, "type", "seq"),
        Index(None, "topic", "seq"),
        Index(None, "reference"),
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    id: Mapped[str] = mapped_column(String(UUID), nullable=False, unique=True)
    type: Mapped[str] = mapped_column(String(64), nullable=False)
    reference: Mapped[str | None] = mapped_column(String(128))
    """Id of the object the event is about (a message, data item, blob hash, tx id)."""
    correlator: Mapped[str | None] = mapped_column(String(128))
    """A second id that ties it to something else (e.g. the request of a reply)."""
    topic: Mapped[str | None] = mapped_column(String(TOPIC))
    author: Mapped[str | None] = mapped_column(String(NAME))
    group_hash: Mapped[str | None] = mapped_column(String(HASH))
    tx_id: Mapped[str | None] = mapped_column(String(64))
    created_us: Mapped[int] = mapped_column(BigInteger, nullable=False)


class SubscriptionRow(Base):
    """A durable subscription: filters, transport and how far delivery has got."""

    __tablename__ = "subscriptions"
    __table_args__ = (CheckConstraint(_one_of("transport", TRANSPORTS), name="transport"),)
    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(UUID), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(NAME), nullable=False, unique=True)
    transport: Mapped[str] = mapped_column(String(16), nullable=False)
    filters: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    webhook_url: Mapped[str | None] = mapped_column(String(2048))
    options: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    read_ahead: Mapped[int] = mapped_column(Integer, nullable=False)
    stored_offset: Mapped[int] = mapped_column(BigInteger, nullable=False)
    """Every event at or below this offset is acknowledged or dead-lettered."""
    created_us: Mapped[int] = mapped_column(BigInteger, nullable=False)
    updated_us: Mapped[int] = mapped_column(BigInteger, nullable=False)


class DeliveryRow(Base):
    """An event a subscription could not deliver (dead letter) and its redelivery."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_seq", "event_seq"),
        CheckConstraint(_one_of("state", DELIVERY_STATES), name="state"),
        Index(None, "subscription_seq", "state", "event_seq"),
    )
    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    subscription_seq: Mapped[int] = mapped_column(
        SeqType, ForeignKey("subscriptions.seq", ondelete="CASCADE"), nullable=False
    )
    event_seq: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("events.seq", ondelete="CASCADE"), nullable=False
    )
    attempts: Mapped[int] = mapped_column(Integer, nullable=False)
    last_error: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    created_us: Mapped[int] = mapped_column(BigInteger, nullable=False)
    updated_us: Mapped[int] = mapped_column(BigInteger, nullable=False)
