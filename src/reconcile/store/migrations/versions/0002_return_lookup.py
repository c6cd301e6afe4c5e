"""Bank returns look up posted credits by account and amount.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_bank_lines_account_amount", "bank_lines", ["account", "amount_minor"])


def downgrade() -> None:
    op.drop_index("ix_bank_lines_account_amount", table_name="bank_lines")
