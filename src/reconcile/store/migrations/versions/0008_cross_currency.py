"""Payments in another currency than their invoices: what a row settles in the invoice's currency, and FX rows.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

KINDS = "kind in ('invoice', 'installment', 'on_account', 'write_off', 'reversal'{})"


def upgrade() -> None:
    with op.batch_alter_table("allocations") as batch:
        batch.add_column(sa.Column("settled_amount_minor", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("settled_currency", sa.String(length=3), nullable=True))
        batch.drop_constraint(op.f("ck_allocations_kind_known"), type_="check")
        batch.create_check_constraint("kind_known", KINDS.format(", 'fx'"))


def downgrade() -> None:
    with op.batch_alter_table("allocations") as batch:
        batch.drop_constraint(op.f("ck_allocations_kind_known"), type_="check")
        batch.create_check_constraint("kind_known", KINDS.format(""))
        batch.drop_column("settled_currency")
        batch.drop_column("settled_amount_minor")
