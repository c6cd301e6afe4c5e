"""PostgreSQL: the references of allocations and postings are checked once per statement (see references.py).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

from reconcile.store.migrations.references import Reference, install, uninstall

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

REFERENCES: list[Reference] = [
    ("allocations", "posting_id", "postings", "id"),
    ("allocations", "bank_line_id", "bank_lines", "id"),
    ("allocations", "run_id", "posting_runs", "run_id"),
    ("allocations", "customer_id", "customers", "customer_id"),
    ("allocations", "invoice_number", "invoices", "invoice_number"),
    ("allocations", "installment_id", "installments", "id"),
    ("allocations", "reverses_id", "allocations", "id"),
    ("postings", "bank_line_id", "bank_lines", "id"),
    ("postings", "run_id", "posting_runs", "run_id"),
]


def upgrade() -> None:
    install(REFERENCES)


def downgrade() -> None:
    uninstall(REFERENCES)
