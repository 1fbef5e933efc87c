"""routing: the address on predictions, and returns (退回)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("district", sa.Text(), nullable=True))
        batch.add_column(sa.Column("street", sa.Text(), nullable=True))
        batch.add_column(sa.Column("community", sa.Text(), nullable=True))
    op.create_table(
        "returns",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("prediction_id", sa.Integer(), nullable=True),
        sa.Column("unit", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], name="fk_returns_ticket_id_tickets",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["prediction_id"], ["predictions.id"],
                                name="fk_returns_prediction_id_predictions", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_returns"),
    )
    op.create_index("ix_returns_ticket_id", "returns", ["ticket_id"])
    op.create_index("ix_returns_prediction_id", "returns", ["prediction_id"])


def downgrade() -> None:
    op.drop_index("ix_returns_prediction_id", table_name="returns")
    op.drop_index("ix_returns_ticket_id", table_name="returns")
    op.drop_table("returns")
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("community")
        batch.drop_column("street")
        batch.drop_column("district")
