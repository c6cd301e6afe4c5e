"""The daily loop with the receivables system: posting batches, versioned snapshots, credit notes.

Posting batches (allocations.batch_seq), business days on allocations and queue items, kept snapshot
loads with the invoice and installment versions they set, invoices that a full snapshot closed, credit
notes (an open amount with the sign of its invoice), and the excess of reconcile's not-yet-included
postings over what the receivables system leaves open. A database with data gets one synthetic
snapshot holding today's invoices, so balances of past days keep working.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SAME_SIGN = "(amount_minor >= 0 AND {0} >= 0) OR (amount_minor < 0 AND {0} <= 0)"


def _create_tables() -> None:
    op.create_table(
        "posting_batches",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("batch_id", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_posting_batches")),
        sa.UniqueConstraint("batch_id", name=op.f("uq_posting_batches_batch_id")),
    )
    op.create_table(
        "snapshots",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("loaded_by", sa.String(length=64), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("includes_through_seq", sa.Integer(), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_snapshots")),
    )
    op.create_index(op.f("ix_snapshots_business_date"), "snapshots", ["business_date"])
    op.create_index(op.f("ix_snapshots_content_sha256"), "snapshots", ["content_sha256"])
    op.create_table(
        "invoice_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("snapshot_id", sa.Integer(), nullable=False),
        sa.Column("invoice_number", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("issue_date", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("snapshot_open_minor", sa.BigInteger(), nullable=False),
        sa.Column("basis_seq", sa.Integer(), nullable=False),
        sa.Column("erp_status", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["snapshot_id"], ["snapshots.id"],
                                name=op.f("fk_invoice_versions_snapshot_id_snapshots")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_versions")),
    )
    op.create_index(op.f("ix_invoice_versions_snapshot_id"), "invoice_versions", ["snapshot_id"])
    op.create_index("ix_invoice_versions_number_snapshot", "invoice_versions", ["invoice_number", "snapshot_id"])
    op.create_table(
        "installment_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("snapshot_id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.String(length=64), nullable=False),
        sa.Column("installment_no", sa.Integer(), nullable=False),
        sa.Column("invoice_number", sa.String(length=64), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("snapshot_paid_minor", sa.BigInteger(), nullable=False),
        sa.Column("basis_seq", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["snapshot_id"], ["snapshots.id"],
                                name=op.f("fk_installment_versions_snapshot_id_snapshots")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_installment_versions")),
    )
    op.create_index(op.f("ix_installment_versions_snapshot_id"), "installment_versions", ["snapshot_id"])
    op.create_index("ix_installment_versions_key", "installment_versions",
                    ["plan_id", "installment_no", "snapshot_id"])


def _alter_columns() -> None:
    with op.batch_alter_table("invoices") as batch:
        batch.add_column(sa.Column("basis_seq", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("excess_minor", sa.BigInteger(), server_default="0", nullable=False))
        batch.add_column(sa.Column("erp_status", sa.String(length=16), server_default="open", nullable=False))
        batch.add_column(sa.Column("closed_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("snapshot_id", sa.Integer(), nullable=True))
        batch.drop_constraint(op.f("ck_invoices_open_not_negative"), type_="check")
        batch.drop_constraint(op.f("ck_invoices_snapshot_open_not_negative"), type_="check")
        batch.create_check_constraint("open_sign", SAME_SIGN.format("open_amount_minor"))
        batch.create_check_constraint("snapshot_open_sign", SAME_SIGN.format("snapshot_open_minor"))
        batch.create_check_constraint("excess_only_when_settled", "excess_minor = 0 OR open_amount_minor = 0")
    with op.batch_alter_table("installments") as batch:
        batch.add_column(sa.Column("basis_seq", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("excess_minor", sa.BigInteger(), server_default="0", nullable=False))
        batch.create_check_constraint("excess_only_when_settled", "excess_minor = 0 OR open_amount_minor = 0")
    with op.batch_alter_table("allocations") as batch:
        batch.add_column(sa.Column("business_date", sa.Date(), nullable=True))
        batch.add_column(sa.Column("batch_seq", sa.Integer(), nullable=True))
        batch.create_index(op.f("ix_allocations_business_date"), ["business_date"])
        batch.create_index(op.f("ix_allocations_batch_seq"), ["batch_seq"])
    with op.batch_alter_table("exception_items") as batch:
        batch.add_column(sa.Column("opened_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("closed_on", sa.Date(), nullable=True))
        batch.drop_constraint(op.f("uq_exception_items_line_generation"), type_="unique")
        batch.create_unique_constraint(op.f("uq_exception_items_line_generation"),
                                       ["bank_line_id", "generation", "reason"])


def _backfill() -> None:
    """Business days of existing rows, and one snapshot holding today's invoices (if there are any)."""
    bind = op.get_bind()
    bind.execute(sa.text(
        "UPDATE allocations SET business_date ="
        " (SELECT r.as_of FROM posting_runs r WHERE r.run_id = allocations.run_id)"
        " WHERE run_id IS NOT NULL"))
    day = "CAST(posted_at AS DATE)" if bind.dialect.name == "postgresql" else "date(posted_at)"
    bind.execute(sa.text(f"UPDATE allocations SET business_date = {day} WHERE business_date IS NULL"))
    for column, stamp in (("opened_on", "created_at"), ("closed_on", "resolved_at")):
        expr = f"CAST({stamp} AS DATE)" if bind.dialect.name == "postgresql" else f"date({stamp})"
        bind.execute(sa.text(f"UPDATE exception_items SET {column} = {expr} WHERE {stamp} IS NOT NULL"))
    first = bind.execute(sa.text("SELECT min(issue_date) FROM invoices")).scalar()
    if first is None:
        return
    bind.execute(sa.text(
        "INSERT INTO snapshots (loaded_at, loaded_by, taken_at, business_date, kind, includes_through_seq,"
        " content_sha256, source, summary) VALUES (:now, 'migration 0005', NULL, :day, 'full', 0, '', NULL, NULL)"),
        {"now": datetime.now(UTC), "day": first})
    snapshot = bind.execute(sa.text("SELECT max(id) FROM snapshots")).scalar()
    bind.execute(sa.text(
        "INSERT INTO invoice_versions (snapshot_id, invoice_number, customer_id, issue_date, due_date, currency,"
        " amount_minor, snapshot_open_minor, basis_seq, erp_status) SELECT :s, invoice_number, customer_id,"
        " issue_date, due_date, currency, amount_minor, snapshot_open_minor, 0, 'open' FROM invoices"),
        {"s": snapshot})
    bind.execute(sa.text(
        "INSERT INTO installment_versions (snapshot_id, plan_id, installment_no, invoice_number, due_date,"
        " amount_minor, snapshot_paid_minor, basis_seq) SELECT :s, plan_id, installment_no, invoice_number,"
        " due_date, amount_minor, snapshot_paid_minor, 0 FROM installments"), {"s": snapshot})
    bind.execute(sa.text("UPDATE invoices SET snapshot_id = :s"), {"s": snapshot})


def upgrade() -> None:
    _create_tables()
    _alter_columns()
    _backfill()


def downgrade() -> None:
    with op.batch_alter_table("exception_items") as batch:
        batch.drop_constraint(op.f("uq_exception_items_line_generation"), type_="unique")
        batch.create_unique_constraint(op.f("uq_exception_items_line_generation"), ["bank_line_id", "generation"])
        batch.drop_column("closed_on")
        batch.drop_column("opened_on")
    with op.batch_alter_table("allocations") as batch:
        batch.drop_index(op.f("ix_allocations_batch_seq"))
        batch.drop_index(op.f("ix_allocations_business_date"))
        batch.drop_column("batch_seq")
        batch.drop_column("business_date")
    with op.batch_alter_table("installments") as batch:
        batch.drop_constraint(op.f("ck_installments_excess_only_when_settled"), type_="check")
        batch.drop_column("excess_minor")
        batch.drop_column("basis_seq")
    with op.batch_alter_table("invoices") as batch:
        batch.drop_constraint(op.f("ck_invoices_excess_only_when_settled"), type_="check")
        batch.drop_constraint(op.f("ck_invoices_snapshot_open_sign"), type_="check")
        batch.drop_constraint(op.f("ck_invoices_open_sign"), type_="check")
        batch.create_check_constraint("open_not_negative", "open_amount_minor >= 0")
        batch.create_check_constraint("snapshot_open_not_negative", "snapshot_open_minor >= 0")
        for column in ("snapshot_id", "closed_on", "erp_status", "excess_minor", "basis_seq"):
            batch.drop_column(column)
    for table in ("installment_versions", "invoice_versions", "snapshots", "posting_batches"):
        op.drop_table(table)
