"""Exception queue: decisions awaiting approval, categories, what a resolution taught the matcher.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COLUMNS = (
    ("category", sa.String(length=32)),
    ("proposal", sa.Text()),
    ("proposed_by", sa.String(length=64)),
    ("proposed_at", sa.DateTime(timezone=True)),
    ("approved_by", sa.String(length=64)),
    ("learned", sa.Text()),
)


def upgrade() -> None:
    # nullable columns: a plain ADD COLUMN on both SQLite and PostgreSQL
    for name, type_ in COLUMNS:
        op.add_column("exception_items", sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("exception_items") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
