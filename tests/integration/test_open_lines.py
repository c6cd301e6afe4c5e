"""The lines a run may still decide are found through open_lines, which triggers keep in step with the
lines' statuses (migration 0010), and on PostgreSQL a run's claims and open-amount moves rewrite rows in
place (HOT updates: no new index entries), which is what makes posting cost what the rows cost.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from reconcile.config import load_config
from reconcile.core.codes import OPEN_LINE_STATUSES, LineStatus
from reconcile.ledger.open_items import move_open
from reconcile.ledger.post import claim_lines
from reconcile.services import daily as service
from reconcile.services import ledger
from reconcile.store import db, tables
from tests.builders import NOW, bank_line, ingest_lines, write_snapshot

CONFIG = load_config(Path(__file__).resolve().parents[2] / "config")


def _open_lines(engine: Engine) -> dict[str, str]:
    """source_ref -> status of every line listed in open_lines."""
    bl, ol = tables.BankLine, tables.OpenLine
    with engine.connect() as c:
        return dict(c.execute(select(bl.source_ref, bl.status).join(ol, ol.bank_line_id == bl.id)).all())


def _statuses(engine: Engine) -> dict[str, str]:
    bl = tables.BankLine
    with engine.connect() as c:
        return dict(c.execute(select(bl.source_ref, bl.status)).all())


def _listed_as_their_status_says(engine: Engine) -> None:
    expected = {ref: status for ref, status in _statuses(engine).items() if status in OPEN_LINE_STATUSES}
    assert _open_lines(engine) == expected
    assert ledger.check(engine) == []


def _with_invoices(engine: Engine, tmp_path: Path) -> Engine:
    service.load_ar(engine, write_snapshot(
        tmp_path / "ar", customers=[{"customer_id": "C1", "name": "Acme Trading"}],
        invoices=[{"invoice_number": f"INV-{n}", "customer_id": "C1", "amount": "100.00"} for n in (1, 2, 3)]))
    return engine


@pytest.fixture
def day(engine: Engine, tmp_path: Path) -> Engine:
    return _with_invoices(engine, tmp_path)


def test_open_lines_follow_every_change_of_status(day: Engine) -> None:
    ingest_lines(day, [bank_line("B1", "100.00", remittance="INV-1"), bank_line("B2", "100.00", remittance="INV-2"),
                       bank_line("B3", "12.34", remittance="no idea")])
    assert _open_lines(day) == {"B1": "unmatched", "B2": "unmatched", "B3": "unmatched"}

    assert service.run_posting(day, config=CONFIG, now=NOW).status == "completed"
    assert _open_lines(day) == {"B3": "exception"}  # posted lines leave, the queued one stays
    _listed_as_their_status_says(day)

    ledger.unapply(day, "B1", reason="wrong customer", actor="alice", now=NOW)  # back to the queue
    ledger.unapply(day, "B2", reason="re-match", actor="alice", now=NOW, rematch=True)  # back to the run
    assert _open_lines(day) == {"B1": "exception", "B2": "unmatched", "B3": "exception"}
    _listed_as_their_status_says(day)

    # the next run sees exactly those lines again; B2 is posted once more
    assert service.run_posting(day, config=CONFIG, now=NOW).status == "completed"
    assert _statuses(day)["B2"] == "posted"
    _listed_as_their_status_says(day)


def test_a_line_missing_from_open_lines_is_reported_by_check(day: Engine) -> None:
    ingest_lines(day, [bank_line("B1", "100.00", remittance="INV-1"), bank_line("B2", "100.00", remittance="INV-2")])
    with day.begin() as c:  # what a hand edit or a disabled trigger would leave
        c.execute(text("DELETE FROM open_lines WHERE bank_line_id = "
                       "(SELECT id FROM bank_lines WHERE source_ref = 'B2')"))
    found = [str(v) for v in ledger.check(day)]
    assert found == [("open_lines: bank line NL91ABNA0417164300/B2: status unmatched but not in open_lines: "
                      "no run would see it")]
    # the run works from open_lines: the unlisted line is left alone, never half-posted
    service.run_posting(day, config=CONFIG, now=NOW)
    assert _statuses(day) == {"B1": "posted", "B2": "unmatched"}

    with day.begin() as c:
        c.execute(text("INSERT INTO open_lines (bank_line_id) SELECT id FROM bank_lines WHERE source_ref = 'B1'"))
    assert "B1: status posted but listed in open_lines" in "\n".join(str(v) for v in ledger.check(day))


@pytest.mark.pg
def test_claims_and_open_amount_moves_rewrite_rows_in_place(pg_url: str, tmp_path: Path) -> None:
    """Without an index on status, and with room left in each page, PostgreSQL updates the row where it is:
    the ledger writer's own claim and open-amount statements, counted inside their transaction."""
    engine = db.make_engine(pg_url)
    db.upgrade(engine)
    day = _with_invoices(engine, tmp_path)
    ingest_lines(day, [bank_line(f"B{n}", "100.00", remittance=f"INV-{n}") for n in (1, 2, 3)])
    with day.connect() as connection, Session(bind=connection) as session:
        ids = list(session.execute(select(tables.BankLine.id)).scalars())
        claim_lines(session, ids, LineStatus.POSTED, OPEN_LINE_STATUSES)
        move_open(session, pl.DataFrame({
            "kind": ["invoice"] * 3, "invoice_number": ["INV-1", "INV-2", "INV-3"], "installment_id": [None] * 3,
            "amount_minor": [6000, 7000, 10000]}, schema_overrides={"installment_id": pl.Int64()}))
        counts = session.execute(text(
            "SELECT pg_stat_get_xact_tuples_updated('bank_lines'::regclass),"
            " pg_stat_get_xact_tuples_hot_updated('bank_lines'::regclass),"
            " pg_stat_get_xact_tuples_updated('invoices'::regclass),"
            " pg_stat_get_xact_tuples_hot_updated('invoices'::regclass)")).one()
        assert _open_lines_in(session) == []  # the claimed lines left open_lines in the same transaction
        # the open-amount update probes keys with hash and merge joins off (repo.probing_by_key), for itself only
        assert session.execute(text("SHOW enable_hashjoin")).scalar() == "on"
        assert session.execute(text("SHOW enable_mergejoin")).scalar() == "on"
        session.rollback()
    assert tuple(counts) == (3, 3, 3, 3)
    assert set(_open_lines(day)) == {"B1", "B2", "B3"}  # rolled back with the claim
    engine.dispose()


def _open_lines_in(session: Session) -> list[int]:
    return list(session.execute(select(tables.OpenLine.bank_line_id)).scalars())
