"""Claims and open-amount moves rewrite rows in place: bank_lines.status is no longer indexed; the lines a run
may still decide are listed in open_lines, kept by triggers; on PostgreSQL, bank_lines, invoices and
installments leave half of each page free for the new versions of their rows.

Before, every claim of a line (unmatched -> posted) added an entry to each of bank_lines' five indexes, and
every open-amount move one to each of invoices' three: 2.7-2.9 s of the 6.4-6.5 s of server time that
posting 100k allocations took over one connection (bench/post.py). A row whose indexed columns do not
change, and whose page has room for its new version, is updated without touching any index (a HOT update).
Two indexes no query needs go too: bank_lines.statement_id, and allocations.posting_id (a posting's rows
are read by their line first).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

OPEN = "('unmatched', 'exception')"  # LineStatus values a run may still decide (core/codes.OPEN_LINE_STATUSES)
ROOMY = ("bank_lines", "invoices", "installments")

POSTGRESQL_TRIGGERS = [
    f"""CREATE FUNCTION open_lines_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM open_lines o USING changed c WHERE o.bank_line_id = c.id AND c.status NOT IN {OPEN};
    INSERT INTO open_lines (bank_line_id) SELECT c.id FROM changed c WHERE c.status IN {OPEN}
        ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$""",
    # once per statement, from its rows (a column list, UPDATE OF status, cannot have a transition table)
    ("CREATE TRIGGER open_lines_on_insert AFTER INSERT ON bank_lines REFERENCING NEW TABLE AS changed "
     "FOR EACH STATEMENT EXECUTE FUNCTION open_lines_follow()"),
    ("CREATE TRIGGER open_lines_on_update AFTER UPDATE ON bank_lines REFERENCING NEW TABLE AS changed "
     "FOR EACH STATEMENT EXECUTE FUNCTION open_lines_follow()"),
]
SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER open_lines_on_insert AFTER INSERT ON bank_lines WHEN NEW.status IN {OPEN}
BEGIN
    INSERT OR IGNORE INTO open_lines (bank_line_id) VALUES (NEW.id);
END""",
    f"""CREATE TRIGGER open_lines_on_update AFTER UPDATE OF status ON bank_lines
BEGIN
    DELETE FROM open_lines WHERE bank_line_id = NEW.id AND NEW.status NOT IN {OPEN};
    INSERT OR IGNORE INTO open_lines (bank_line_id) SELECT NEW.id WHERE NEW.status IN {OPEN};
END""",
]


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.create_table("open_lines", sa.Column("bank_line_id", sa.Integer(), autoincrement=False, nullable=False),
                    sa.PrimaryKeyConstraint("bank_line_id", name=op.f("pk_open_lines")))
    op.execute(f"INSERT INTO open_lines (bank_line_id) SELECT id FROM bank_lines WHERE status IN {OPEN}")
    for statement in POSTGRESQL_TRIGGERS if postgresql else SQLITE_TRIGGERS:
        op.execute(statement)
    op.drop_index("ix_bank_lines_status", table_name="bank_lines")
    op.drop_index("ix_bank_lines_statement_id", table_name="bank_lines")  # no query reads lines by statement
    op.drop_index("ix_allocations_posting_id", table_name="allocations")  # a posting's rows are read by line
    if postgresql:  # rows already stored keep their pages; new pages get the room
        for table in ROOMY:
            op.execute(f"ALTER TABLE {table} SET (fillfactor = 50)")


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        for table in ROOMY:
            op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
    op.create_index("ix_allocations_posting_id", "allocations", ["posting_id"])
    op.create_index("ix_bank_lines_statement_id", "bank_lines", ["statement_id"])
    op.create_index("ix_bank_lines_status", "bank_lines", ["status"])
    op.execute("DROP TRIGGER open_lines_on_insert" + (" ON bank_lines" if postgresql else ""))
    op.execute("DROP TRIGGER open_lines_on_update" + (" ON bank_lines" if postgresql else ""))
    if postgresql:
        op.execute("DROP FUNCTION open_lines_follow()")
    op.drop_table("open_lines")
