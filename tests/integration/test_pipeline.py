"""The whole path through the service layer on SQLite and PostgreSQL: load, ingest, run, export."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from reconcile.config import load_config
from reconcile.receivables.snapshot import SnapshotError
from reconcile.services import daily as service
from reconcile.services import exports as export
from reconcile.store import db, tables
from tests.builders import NOW, bank_line, ingest_lines, write_snapshot

CONFIG = load_config(Path(__file__).resolve().parents[2] / "config")
AS_OF = date(2026, 11, 24)


def _snapshot(folder: Path) -> Path:
    return write_snapshot(
        folder,
        customers=[
            {"customer_id": "C1", "name": "Acme Trading BV", "aliases": "Acme",
             "accounts": "DE89 3704 0044 0532 0130 00"},
            {"customer_id": "C2", "name": "Bakker & Zonen", "aliases": "", "accounts": ""},
        ],
        invoices=[
            {"invoice_number": "INV-1001", "customer_id": "C1", "amount": "100.00"},
            {"invoice_number": "INV-1002", "customer_id": "C1", "amount": "250.50", "due_date": "2026-11-30"},
            {"invoice_number": "INV-2001", "customer_id": "C2", "amount": "75.25",
             "payment_reference": "RF18539007547034"},
            {"invoice_number": "INV-2002", "customer_id": "C2", "amount": "40.00", "open_amount": "15.00"},
        ],
    )


LINES = [
    bank_line("L1", "100.00", name="ACME TRADING", remittance="Payment INV-1001"),
    bank_line("L2", "75.25", name="Bakker", reference="RF18539007547034"),
    bank_line("L3", "300.00", name="ACME", remittance="inv-1002 and advance"),
    bank_line("L4", "19.99", name="Someone", remittance="no idea"),
    bank_line("L5", "-12.50", name="BANK", remittance="fee"),
]


def _run(engine) -> service.RunSummary:  # type: ignore[no-untyped-def]
    return service.run_posting(engine, config=CONFIG, as_of=AS_OF, now=NOW, run_id="run-1")


def test_path_posts_queues_and_skips(engine, tmp_path: Path) -> None:
    service.load_ar(engine, _snapshot(tmp_path / "ar"))
    assert ingest_lines(engine, LINES).new_lines == 5

    summary = _run(engine)

    assert (summary.lines_posted, summary.lines_exception, summary.lines_skipped) == (3, 1, 1)
    assert summary.posted == {"EUR": "425.75"}
    assert summary.on_account == {"EUR": "49.50"}
    allocations = export.allocations_frame(engine)
    got = sorted(allocations.select("source_ref", "kind", "invoice_number", "amount").iter_rows(), key=str)
    assert got == sorted([
        ("L1", "invoice", "INV-1001", "100.00"),
        ("L2", "invoice", "INV-2001", "75.25"),
        ("L3", "invoice", "INV-1002", "250.50"),
        ("L3", "on_account", None, "49.50"),
    ], key=str)
    queued = export.exceptions_frame(engine)
    assert queued.select("source_ref", "amount", "reason", "status").rows() == [("L4", "19.99", "no_candidate", "open")]
    with db.transaction(engine) as session:
        open_amounts = dict(session.execute(select(tables.Invoice.invoice_number,
                                                   tables.Invoice.open_amount_minor)).all())
    assert open_amounts == {"INV-1001": 0, "INV-1002": 0, "INV-2001": 0, "INV-2002": 1500}


def test_rerunning_and_reimporting_change_nothing(engine, tmp_path: Path) -> None:
    snapshot = _snapshot(tmp_path / "ar")
    service.load_ar(engine, snapshot)
    ingest_lines(engine, LINES)
    _run(engine)
    before = export.allocations_frame(engine)

    again = service.load_ar(engine, snapshot)
    assert (again.customers_new, again.invoices_new, again.invoices_changed) == (0, 0, 0)
    assert ingest_lines(engine, LINES).already_imported
    assert ingest_lines(engine, LINES, digest="another file, same lines").new_lines == 0
    second = service.run_posting(engine, config=CONFIG, as_of=AS_OF)

    assert second.lines_posted == 0
    assert export.allocations_frame(engine).equals(before)
    with db.transaction(engine) as session:
        assert session.execute(select(func.count()).select_from(tables.BankLine)).scalar_one() == 5


def test_bad_snapshot_names_file_and_line_and_stores_nothing(engine, tmp_path: Path) -> None:
    folder = write_snapshot(
        tmp_path / "bad",
        customers=[{"customer_id": "C1", "name": "Acme"}],
        invoices=[
            {"invoice_number": "INV-1", "customer_id": "C1", "amount": "10.00"},
            {"invoice_number": "INV-2", "customer_id": "C9", "amount": "1O.00"},
        ],
    )
    with pytest.raises(SnapshotError) as caught:
        service.load_ar(engine, folder)
    message = str(caught.value)
    assert "invoices.csv: line 3: unknown customer 'C9'" in message
    assert "invoices.csv: line 3: amount '1O.00' is not a decimal amount" in message
    with db.transaction(engine) as session:
        assert session.execute(select(func.count()).select_from(tables.Customer)).scalar_one() == 0


def test_same_results_on_sqlite_and_postgresql(tmp_path: Path) -> None:
    from tests.conftest import PG_URL, _fresh_pg_schema

    if not PG_URL:
        pytest.skip("PostgreSQL not reachable (see tests/conftest.py)")
    exports = []
    schema_gen = _fresh_pg_schema()
    pg_url = next(schema_gen)
    try:
        for url in (f"sqlite:///{tmp_path / 'r.db'}", pg_url):
            engine = db.make_engine(url)
            db.upgrade(engine)
            service.load_ar(engine, _snapshot(tmp_path / "ar"))
            ingest_lines(engine, LINES)
            _run(engine)
            exports.append((export.allocations_frame(engine), export.exceptions_frame(engine)))
            engine.dispose()
    finally:
        schema_gen.close()
    assert exports[0][0].equals(exports[1][0])
    assert exports[0][1].equals(exports[1][1])


def test_ingest_books_utc_times_on_the_configured_accounts_day(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.parsers.test_camt import LATE_UTC

    config = tmp_path / "config"
    shutil.copytree(Path(__file__).resolve().parents[2] / "config", config)
    toml = config / "reconcile.toml"
    toml.write_text(toml.read_text().replace('timezone = ""', 'timezone = "Europe/Amsterdam"'))
    statement = tmp_path / "late.xml"
    statement.write_bytes(LATE_UTC)
    service.ingest_file(engine, statement, load_config(config).parse_options())
    with db.transaction(engine) as session:
        days = dict(session.execute(select(tables.BankLine.source_ref, tables.BankLine.booking_date)).all())
    assert days == {"TZ-REF-1": date(2026, 11, 24), "TZ-REF-2": date(2026, 11, 23)}
