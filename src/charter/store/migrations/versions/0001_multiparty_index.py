"""The multi-party index and the event log: messages, data, datatypes, groups, batches,
pins, blobs, events, subscriptions, deliveries; the event offset counter starts at 0.

Revision ID: 0001
Revises:
Create Date: 2026-11-22 07:32:23.740267
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("node", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("group_hash", sa.String(length=64), nullable=True),
        sa.Column("payload", sa.LargeBinary(), nullable=True),
        sa.Column("payload_ref", sa.String(length=256), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("tx_id", sa.String(length=64), nullable=True),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("confirmed_us", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'sealed', 'sent', 'pinned', 'confirmed', 'failed')",
            name=op.f("ck_batches_state"),
        ),
        sa.CheckConstraint(
            "type IN ('broadcast', 'private', 'requestreply')", name=op.f("ck_batches_type")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batches")),
    )
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_batches_author"), ["author"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_batches_state_created_us"), ["state", "created_us"], unique=False
        )

    op.create_table(
        "blobs",
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("received", sa.BigInteger(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("state IN ('partial', 'complete')", name=op.f("ck_blobs_state")),
        sa.PrimaryKeyConstraint("hash", name=op.f("pk_blobs")),
    )
    op.create_table(
        "counters",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_counters")),
    )
    op.create_table(
        "datatypes",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("schema", sa.JSON(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=True),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_datatypes")),
        sa.UniqueConstraint("id", name=op.f("uq_datatypes_id")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_datatypes_name_version")),
    )
    op.create_table(
        "events",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("reference", sa.String(length=128), nullable=True),
        sa.Column("correlator", sa.String(length=128), nullable=True),
        sa.Column("topic", sa.String(length=256), nullable=True),
        sa.Column("author", sa.String(length=200), nullable=True),
        sa.Column("group_hash", sa.String(length=64), nullable=True),
        sa.Column("tx_id", sa.String(length=64), nullable=True),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_events")),
        sa.UniqueConstraint("id", name=op.f("uq_events_id")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_events_reference"), ["reference"], unique=False)
        batch_op.create_index(batch_op.f("ix_events_topic_seq"), ["topic", "seq"], unique=False)
        batch_op.create_index(batch_op.f("ix_events_type_seq"), ["type", "seq"], unique=False)

    op.create_table(
        "groups",
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("members", sa.JSON(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("hash", name=op.f("pk_groups")),
    )
    op.create_table(
        "messages",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("member", sa.String(length=200), nullable=False),
        sa.Column("node", sa.String(length=200), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("topic", sa.String(length=256), nullable=False),
        sa.Column("group_hash", sa.String(length=64), nullable=True),
        sa.Column("context", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=True),
        sa.Column("batch_id", sa.String(length=64), nullable=True),
        sa.Column("pin_seqno", sa.BigInteger(), nullable=True),
        sa.Column("pin_tx_id", sa.String(length=64), nullable=True),
        sa.Column("cid", sa.String(length=36), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("confirmed_us", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'sent', 'pinned', 'confirmed', 'failed', 'rejected')",
            name=op.f("ck_messages_state"),
        ),
        sa.CheckConstraint(
            "type IN ('broadcast', 'private', 'requestreply')", name=op.f("ck_messages_type")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_messages")),
        sa.UniqueConstraint("id", name=op.f("uq_messages_id")),
        sa.UniqueConstraint(
            "member", "idempotency_key", name=op.f("uq_messages_member_idempotency_key")
        ),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_messages_batch_id"), ["batch_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_messages_cid"), ["cid"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_messages_context_pin_seqno"), ["context", "pin_seqno"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_messages_group_hash_seq"), ["group_hash", "seq"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_messages_member_seq"), ["member", "seq"], unique=False)
        batch_op.create_index(batch_op.f("ix_messages_state_seq"), ["state", "seq"], unique=False)
        batch_op.create_index(batch_op.f("ix_messages_topic_seq"), ["topic", "seq"], unique=False)

    op.create_table(
        "pins",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("ledger_seqno", sa.BigInteger(), nullable=False),
        sa.Column("tx_id", sa.String(length=64), nullable=False),
        sa.Column("pin", sa.String(length=64), nullable=False),
        sa.Column("batch_hash", sa.String(length=64), nullable=True),
        sa.Column("context", sa.String(length=64), nullable=True),
        sa.Column("index_in_batch", sa.Integer(), nullable=False),
        sa.Column("dispatched", sa.Boolean(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_pins")),
        sa.UniqueConstraint("tx_id", "index_in_batch", name=op.f("uq_pins_tx_id_index_in_batch")),
    )
    with op.batch_alter_table("pins", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pins_batch_hash"), ["batch_hash"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_pins_context_ledger_seqno"), ["context", "ledger_seqno"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_pins_dispatched_ledger_seqno"),
            ["dispatched", "ledger_seqno"],
            unique=False,
        )

    op.create_table(
        "subscriptions",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("transport", sa.String(length=16), nullable=False),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("webhook_url", sa.String(length=2048), nullable=True),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("read_ahead", sa.Integer(), nullable=False),
        sa.Column("stored_offset", sa.BigInteger(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "transport IN ('websocket', 'webhook')", name=op.f("ck_subscriptions_transport")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_subscriptions")),
        sa.UniqueConstraint("id", name=op.f("uq_subscriptions_id")),
        sa.UniqueConstraint("name", name=op.f("uq_subscriptions_name")),
    )
    op.create_table(
        "data",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("value", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("datatype_name", sa.String(length=200), nullable=True),
        sa.Column("datatype_version", sa.String(length=64), nullable=True),
        sa.Column("blob_hash", sa.String(length=64), nullable=True),
        sa.Column("blob_size", sa.BigInteger(), nullable=True),
        sa.Column("blob_name", sa.String(length=256), nullable=True),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_data_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_data")),
        sa.UniqueConstraint("id", name=op.f("uq_data_id")),
    )
    with op.batch_alter_table("data", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_data_blob_hash"), ["blob_hash"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_data_message_id_position"), ["message_id", "position"], unique=False
        )

    op.create_table(
        "deliveries",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "subscription_seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("event_seq", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "state IN ('dead', 'redeliver', 'delivered')", name=op.f("ck_deliveries_state")
        ),
        sa.ForeignKeyConstraint(
            ["event_seq"],
            ["events.seq"],
            name=op.f("fk_deliveries_event_seq_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subscription_seq"],
            ["subscriptions.seq"],
            name=op.f("fk_deliveries_subscription_seq_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_deliveries")),
        sa.UniqueConstraint(
            "subscription_seq", "event_seq", name=op.f("uq_deliveries_subscription_seq_event_seq")
        ),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_deliveries_subscription_seq_state_event_seq"),
            ["subscription_seq", "state", "event_seq"],
            unique=False,
        )
    op.execute("INSERT INTO counters (name, value) VALUES ('events', 0)")


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deliveries_subscription_seq_state_event_seq"))

    op.drop_table("deliveries")
    with op.batch_alter_table("data", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_data_message_id_position"))
        batch_op.drop_index(batch_op.f("ix_data_blob_hash"))

    op.drop_table("data")
    op.drop_table("subscriptions")
    with op.batch_alter_table("pins", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pins_dispatched_ledger_seqno"))
        batch_op.drop_index(batch_op.f("ix_pins_context_ledger_seqno"))
        batch_op.drop_index(batch_op.f("ix_pins_batch_hash"))

    op.drop_table("pins")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_topic_seq"))
        batch_op.drop_index(batch_op.f("ix_messages_state_seq"))
        batch_op.drop_index(batch_op.f("ix_messages_member_seq"))
        batch_op.drop_index(batch_op.f("ix_messages_group_hash_seq"))
        batch_op.drop_index(batch_op.f("ix_messages_context_pin_seqno"))
        batch_op.drop_index(batch_op.f("ix_messages_cid"))
        batch_op.drop_index(batch_op.f("ix_messages_batch_id"))

    op.drop_table("messages")
    op.drop_table("groups")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_type_seq"))
        batch_op.drop_index(batch_op.f("ix_events_topic_seq"))
        batch_op.drop_index(batch_op.f("ix_events_reference"))

    op.drop_table("events")
    op.drop_table("datatypes")
    op.drop_table("counters")
    op.drop_table("blobs")
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_batches_state_created_us"))
        batch_op.drop_index(batch_op.f("ix_batches_author"))

    op.drop_table("batches")
