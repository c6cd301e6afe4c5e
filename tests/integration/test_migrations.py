"""Upgrading a database made by an earlier revision keeps its data and ends at the current schema."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from reconcile.services import ledger
from reconcile.store import db
from reconcile.store.migrations.references import compared
from reconcile.store.tables import Base

EARLIER = "0001"


def _fill_at_0001(engine: Engine) -> None:
    """Rows a team would have after a day on revision 0001, written with that revision's SQL."""
    with engine.begin() as c:
        c.execute(text("INSERT INTO customers (customer_id, name, updated_at) VALUES ('C1', 'Acme', '2026-11-01')"))
        c.execute(text(
            "INSERT INTO invoices (invoice_number, customer_id, issue_date, due_date, currency, amount_minor,"
            " snapshot_open_minor, open_amount_minor, payment_reference, updated_at) VALUES"
            " ('INV-1', 'C1', '2026-10-01', '2026-10-31', 'EUR', 10000, 10000, 0, NULL, '2026-11-01')"))
        c.execute(text(
            "INSERT INTO statement_files (sha256, filename, format, imported_at, line_count, new_line_count)"
            " VALUES ('abc', 'day1.xml', 'camt053', '2026-11-01', 1, 1)"))
        c.execute(text("INSERT INTO statements (file_id, account, currency) VALUES (1, 'NL01', 'EUR')"))
        c.execute(text(
            "INSERT INTO bank_lines (account, source_ref, statement_id, booking_date, amount_minor, currency,"
            " direction, is_reversal, status, generation, ingested_at) VALUES"
            " ('NL01', 'REF1', 1, '2026-11-01', 10000, 'EUR', 'credit', false, 'posted', 0, '2026-11-01'),"
            " ('NL01', 'REF2', 1, '2026-11-01', 2500, 'EUR', 'credit', false, 'unmatched', 0, '2026-11-01')"))
        c.execute(text(
            "INSERT INTO posting_runs (run_id, started_at, as_of, status, dry_run, actor)"
            " VALUES ('run-1', '2026-11-01', '2026-11-01', 'completed', false, 'system')"))
        c.execute(text(
            "INSERT INTO postings (bank_line_id, generation, run_id, posted_at, posted_by)"
            " VALUES (1, 0, 'run-1', '2026-11-01', 'system')"))
        c.execute(text(
            "INSERT INTO allocations (posting_id, bank_line_id, run_id, kind, customer_id, invoice_number,"
            " amount_minor, currency, rule, confidence, posted_at) VALUES"
            " (1, 1, 'run-1', 'invoice', 'C1', 'INV-1', 10000, 'EUR', 'exact_reference', 1.0, '2026-11-01')"))


def test_upgrade_from_the_previous_revision_keeps_the_ledger(db_url: str) -> None:
    engine = db.make_engine(db_url)
    try:
        db.upgrade(engine, EARLIER)
        _fill_at_0001(engine)
        db.upgrade(engine)
        with engine.connect() as c:
            assert c.execute(text("SELECT source_ref, status FROM bank_lines ORDER BY id")).all() == [
                ("REF1", "posted"), ("REF2", "unmatched")]
            # 0010: the unmatched line is listed for the next run, the posted one is not
            assert c.execute(text("SELECT b.source_ref FROM open_lines o JOIN bank_lines b ON b.id = o.bank_line_id"
                                  )).scalars().all() == ["REF2"]
            assert c.execute(text("SELECT sum(amount_minor) FROM allocations")).scalar_one() == 10000
            context = MigrationContext.configure(c, opts={"compare_type": True,
                                                       "include_object": compared(c.dialect.name)})
            assert compare_metadata(context, Base.metadata) == []
        indexes = {ix["name"] for ix in inspect(engine).get_indexes("bank_lines")}
        assert "ix_bank_lines_account_amount" in indexes
        assert ledger.check(engine) == []
    finally:
        engine.dispose()
