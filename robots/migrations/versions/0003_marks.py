"""What a flow counts by the hour (客服质检: each word class's hits): one row per item and
what it counts as, with the time it counts at; an item done again never counts twice.

Revision ID: 0003_marks
Revises: 0002_cap_days
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_marks"
down_revision = "0002_cap_days"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "marks",
        sa.Column("robot", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("item_key", sa.String(200), primary_key=True),
        sa.Column("at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_marks_at", "marks", ["robot", "name", "at"])


def downgrade() -> None:
    op.drop_index("ix_marks_at", "marks")
    op.drop_table("marks")
