"""Remittance advices received apart from the payment, and the bank lines they are linked to.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "advices",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("advice_ref", sa.String(length=255), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=32), nullable=False),
        sa.Column("payer_name", sa.String(length=255), nullable=True),
        sa.Column("payer_id", sa.String(length=140), nullable=True),
        sa.Column("payee_name", sa.String(length=255), nullable=True),
        sa.Column("payment_method", sa.String(length=32), nullable=True),
        sa.Column("payment_amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("payment_date", sa.Date(), nullable=True),
        sa.Column("trace_number", sa.String(length=140), nullable=True),
        sa.Column("end_to_end_id", sa.String(length=140), nullable=True),
        sa.Column("remittance", sa.Text(), nullable=True),
        sa.Column("balanced", sa.Boolean(), nullable=False),
        sa.Column("location", sa.Text(), nullable=True),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("bank_line_id", sa.Integer(), nullable=True),
        sa.Column("linked_by", sa.String(length=64), nullable=True),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["bank_line_id"], ["bank_lines.id"], name=op.f("fk_advices_bank_line_id_bank_lines")),
        sa.ForeignKeyConstraint(["file_id"], ["statement_files.id"], name=op.f("fk_advices_file_id_statement_files")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_advices")),
        sa.UniqueConstraint("advice_ref", name=op.f("uq_advices_advice_ref")),
    )
    for column in ("file_id", "trace_number", "end_to_end_id", "bank_line_id"):
        op.create_index(op.f(f"ix_advices_{column}"), "advices", [column])
    op.create_table(
        "advice_lines",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("advice_id", sa.Integer(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("line_kind", sa.String(length=16), nullable=False),
        sa.Column("reference_qualifier", sa.String(length=16), nullable=True),
        sa.Column("invoice_number", sa.String(length=64), nullable=True),
        sa.Column("document_date", sa.Date(), nullable=True),
        sa.Column("amount_paid_minor", sa.BigInteger(), nullable=True),
        sa.Column("invoice_total_minor", sa.BigInteger(), nullable=True),
        sa.Column("discount_minor", sa.BigInteger(), nullable=True),
        sa.Column("adjustment_minor", sa.BigInteger(), nullable=True),
        sa.Column("adjustment_reasons", sa.String(length=255), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("location", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["advice_id"], ["advices.id"], name=op.f("fk_advice_lines_advice_id_advices")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_advice_lines")),
        sa.UniqueConstraint("advice_id", "line_no", name="uq_advice_lines_advice_line"),
    )
    op.create_index(op.f("ix_advice_lines_advice_id"), "advice_lines", ["advice_id"])
    op.create_index(op.f("ix_advice_lines_invoice_number"), "advice_lines", ["invoice_number"])


def downgrade() -> None:
    op.drop_table("advice_lines")
    op.drop_table("advices")
