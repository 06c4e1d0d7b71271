"""A row per robot and shop day that every reservation against the daily cap locks first:
workers on many machines reserving the last of the cap take turns, so two cannot both win.

Revision ID: 0002_cap_days
Revises: 0001_ledger
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_cap_days"
down_revision = "0001_ledger"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cap_days",
        sa.Column("robot", sa.String(64), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
    )
    op.create_index("ix_work_items_cap", "work_items", ["robot", "acted_on"])


def downgrade() -> None:
    op.drop_index("ix_work_items_cap", "work_items")
    op.drop_table("cap_days")
