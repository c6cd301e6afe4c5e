"""Payments in another currency than their invoices: the bank's instructed amount, a configured rate table with
an FX gain/loss row, both databases; the ledger check and balances handle two currencies per line."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
from sqlalchemy import Engine

from reconcile.collectors.balances import balances
from reconcile.config import load_config
from reconcile.services import daily as service
from reconcile.services import ledger
from reconcile.store import db, tables
from tests.builders import bank_line, ingest_lines, write_snapshot

REPO = Path(__file__).resolve().parents[2]
DAY = date(2026, 3, 2)
NOW = datetime(2026, 3, 2, 7, tzinfo=UTC)


def _book(engine: Engine, tmp_path: Path) -> None:
    service.load_ar(engine, write_snapshot(tmp_path / "ar", [{"customer_id": "C1", "name": "Globex Corporation"},
                                                              {"customer_id": "C2", "name": "Initech AG"}], [
        {"invoice_number": "US-1001", "customer_id": "C1", "amount": "1000.00", "currency": "USD",
         "issue_date": "2026-02-01", "due_date": "2026-03-01"},
        {"invoice_number": "EU-2001", "customer_id": "C2", "amount": "1000.00", "currency": "EUR",
         "issue_date": "2026-02-01", "due_date": "2026-03-01"},
    ]), as_of=DAY)


def _rows(engine: Engine) -> list[tuple]:
    with db.transaction(engine) as session:
        al, bl = tables.Allocation, tables.BankLine
        return [tuple(r) for r in session.execute(
            __import__("sqlalchemy").select(bl.source_ref, al.kind, al.invoice_number, al.amount_minor, al.currency,
                                            al.settled_amount_minor, al.settled_currency)
            .join(bl, bl.id == al.bank_line_id).order_by(al.id)).all()]


def test_the_banks_instructed_amount_settles_an_invoice_in_its_own_currency(engine: Engine, tmp_path: Path) -> None:
    _book(engine, tmp_path)
    ingest_lines(engine, [bank_line("FX1", "920.00", currency="EUR", name="GLOBEX CORP", remittance="US-1001",
                                    booking_date="2026-03-02", instructed_amount_minor=100000,
                                    instructed_currency="USD", exchange_rate="1.0869565")])
    summary = service.run_posting(engine, config=load_config(REPO / "config"), as_of=DAY, now=NOW)
    assert (summary.lines_posted, summary.violations) == (1, [])
    assert _rows(engine) == [("FX1", "invoice", "US-1001", 92000, "EUR", 100000, "USD")]
    assert balances(engine, DAY).filter(pl.col("customer_id") == "C1").height == 0   # settled in USD
    assert ledger.check(engine) == []
    # unapplying gives the 1000.00 USD back to the invoice
    ledger.unapply(engine, "FX1", reason="test", actor="alice", now=NOW, business_date=DAY)
    # the invoice is open again in USD; the 920.00 EUR waits in the queue as the customer's unapplied cash
    assert balances(engine, DAY).filter(pl.col("customer_id") == "C1").select(
        "currency", "open", "pending_application").rows() == [("EUR", 0, 92000), ("USD", 100000, 0)]
    assert ledger.check(engine) == []


def test_a_configured_rate_books_the_difference_as_an_fx_row(engine: Engine, tmp_path: Path) -> None:
    _book(engine, tmp_path)
    folder = tmp_path / "config"
    shutil.copytree(REPO / "config", folder)
    with (folder / "reconcile.toml").open("a") as fh:
        fh.write('\n[fx]\ntolerance = "0.01"\n[fx.rates]\n"CHF/EUR" = "1.05"\n')
    ingest_lines(engine, [bank_line("FX2", "955.00", currency="CHF", name="INITECH AG", remittance="EU-2001",
                                    booking_date="2026-03-02")], account="CH9300762011623852957")
    summary = service.run_posting(engine, config=load_config(folder), as_of=DAY, now=NOW)
    assert (summary.lines_posted, summary.violations) == (1, [])
    # 955.00 CHF x 1.05 = 1002.75 EUR: the invoice settles in full; 1000.00 EUR is 952.38 CHF, 2.62 CHF is FX
    assert _rows(engine) == [("FX2", "invoice", "EU-2001", 95238, "CHF", 100000, "EUR"),
                             ("FX2", "fx", None, 262, "CHF", None, None)]
    assert balances(engine, DAY).filter(pl.col("customer_id") == "C2").height == 0
    assert ledger.check(engine) == []


def test_a_person_applies_a_payment_to_an_invoice_in_another_currency(engine: Engine, tmp_path: Path) -> None:
    from reconcile.core.errors import ReconcileError
    from reconcile.queue.actions import Decision, resolve

    _book(engine, tmp_path)
    config = load_config(REPO / "config")
    ingest_lines(engine, [bank_line("FX3", "955.00", currency="CHF", name="Somebody", remittance="thanks",
                                    booking_date="2026-03-02")], account="CH9300762011623852957")
    service.run_posting(engine, config=config, as_of=DAY, now=NOW)
    try:
        resolve(engine, "FX3", Decision("allocate", parts=(("EU-2001", None),)), actor="alice", now=NOW,
                config=config.queue)
    except ReconcileError as exc:
        assert "invoice EU-2001 is in EUR, the payment in CHF: give the rate (--rate)" in str(exc)
    else:
        raise AssertionError("a payment in another currency needs a rate")
    done = resolve(engine, "FX3", Decision("allocate", parts=(("EU-2001", None),), rate="1.05"), actor="alice",
                   now=NOW, config=config.queue)
    assert done["status"] == "resolved"
    assert _rows(engine) == [("FX3", "invoice", "EU-2001", 95238, "CHF", 100000, "EUR"),
                             ("FX3", "fx", None, 262, "CHF", None, None)]
    assert ledger.check(engine) == []
