"""Messages get a tag; the multi-party layer's named state blobs get a table.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 07:56:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tag", sa.String(length=256), nullable=True))
    op.create_table(
        "named_state",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_named_state")),
    )


def downgrade() -> None:
    op.drop_table("named_state")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("tag")
