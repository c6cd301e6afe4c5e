"""The collectors' view on both databases: balances, plans, statement of account, KPIs, report totals.

One small book, posted by a real run and then partly unapplied, read as of
several days: every figure is asserted exactly, a past date reads the same
after later postings, and SQLite and PostgreSQL give identical frames.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import Engine, func, select

from reconcile.collectors.balances import Collections, balances
from reconcile.collectors.kpis import kpis
from reconcile.collectors.report import gather, render, write_report
from reconcile.collectors.statement import statement_of_account
from reconcile.config import load_config
from reconcile.services import daily as service
from reconcile.services import ledger
from reconcile.store import db, tables
from tests.builders import NOW, bank_line, ingest_lines, write_snapshot
from tests.conftest import _fresh_pg_schema

CONFIG = load_config(Path(__file__).resolve().parents[2] / "config")
LATER = NOW + timedelta(days=1)          # 2026-11-25: P1 is unapplied (back to the queue)
BEFORE, RUN_DAY, AFTER = date(2026, 11, 23), date(2026, 11, 24), date(2026, 11, 25)
COLUMNS = ["customer_id", "currency", "open", "current", "1-30", "31-60", "61-90", "over_90", "on_account",
           "pending_application", "open_exceptions", "last_payment", "plan_status", "hold_calls"]


def _book(engine: Engine, folder: Path) -> None:
    service.load_ar(engine, write_snapshot(
        folder,
        customers=[{"customer_id": "C1", "name": "Acme"}, {"customer_id": "C2", "name": "Brick"},
                   {"customer_id": "C3", "name": "Cedar"}, {"customer_id": "C4", "name": "Delta"}],
        invoices=[
            {"invoice_number": "INV-101", "customer_id": "C1", "amount": "600.00", "due_date": "2026-10-31"},
            {"invoice_number": "INV-102", "customer_id": "C1", "amount": "300.00", "issue_date": "2026-11-15",
             "due_date": "2026-12-15"},
            {"invoice_number": "INV-103", "customer_id": "C1", "amount": "150.00", "issue_date": "2026-07-01",
             "due_date": "2026-08-01"},
            {"invoice_number": "INV-201", "customer_id": "C2", "amount": "100.00", "issue_date": "2026-08-20",
             "due_date": "2026-09-20"},
            {"invoice_number": "INV-202", "customer_id": "C2", "amount": "80.00", "open_amount": "40.00",
             "issue_date": "2026-09-10", "due_date": "2026-10-10"},
            {"invoice_number": "INV-301", "customer_id": "C3", "amount": "1200.00", "issue_date": "2026-07-01",
             "due_date": "2026-08-01"},
            {"invoice_number": "INV-401", "customer_id": "C4", "amount": "500.00", "currency": "USD",
             "issue_date": "2026-10-21", "due_date": "2026-11-20"},
            # issued after every as-of date below: never counted
            {"invoice_number": "INV-402", "customer_id": "C4", "amount": "70.00", "issue_date": "2026-11-30",
             "due_date": "2026-12-30"},
        ],
        installments=[
            {"plan_id": "P-301", "invoice_number": "INV-301", "installment_no": n, "due_date": due,
             "amount": "400.00", "paid_amount": paid}
            for n, due, paid in [(1, "2026-09-01", "400.00"), (2, "2026-10-01", "0"), (3, "2026-11-01", "0")]
        ],
    ), as_of=BEFORE)  # the receivables system's snapshot of the 23rd
    ingest_lines(engine, [
        bank_line("P1", "600.00", name="ACME", remittance="INV-101"),
        bank_line("P2", "98.00", name="BRICK", remittance="invoice INV-201"),        # 2.00 bank fee written off
        bank_line("P3", "400.00", name="CEDAR", remittance="INV-301"),               # plan installment 2
        bank_line("P5", "55.55", name="ACME", remittance="thanks"),                  # queued, payer guessed
    ])
    ingest_lines(engine, [bank_line("P4", "520.00", currency="USD", name="DELTA", remittance="INV-401")],
                 account="US33000111")                                                # 20.00 kept on account
    summary = service.run_posting(engine, config=CONFIG, as_of=NOW.date(), now=NOW, run_id="run-1")
    assert (summary.lines_posted, summary.lines_exception, summary.violations) == (4, 1, [])
    ledger.unapply(engine, "P1", reason="wrong customer", actor="alice", now=LATER)
    assert ledger.check(engine) == []


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def book(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """The book built once per database for the read-only tests of this module."""
    folder = tmp_path_factory.mktemp(f"book-{request.param}")
    schema = _fresh_pg_schema() if request.param == "postgresql" else None
    url = next(schema) if schema else f"sqlite:///{folder / 'r.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    _book(engine, folder / "ar")
    yield engine
    engine.dispose()
    if schema:
        schema.close()


def _rows(engine: Engine, as_of: date, **kw) -> list[tuple]:  # type: ignore[no-untyped-def]
    return balances(engine, as_of, **kw).select(COLUMNS).rows()


def test_balances_as_of_each_day(book: Engine) -> None:
    # before the run: nothing posted, C3's plan broken (installment 2 is 53 days late)
    assert _rows(book, BEFORE) == [
        ("C1", "EUR", 105000, 30000, 60000, 0, 0, 15000, 0, 0, 0, None, None, False),
        ("C2", "EUR", 14000, 0, 0, 4000, 10000, 0, 0, 0, 0, None, None, False),
        ("C3", "EUR", 120000, 0, 0, 0, 0, 120000, 0, 0, 0, None, "broken", False),
        ("C4", "USD", 50000, 0, 50000, 0, 0, 0, 0, 0, 0, None, None, False),
    ]
    # the morning run: P1 paid INV-101, P5 waits in the queue with C1 as the guessed payer -> hold calls
    assert _rows(book, RUN_DAY) == [
        ("C1", "EUR", 45000, 30000, 0, 0, 0, 15000, 0, 5555, 1, 60000, None, True),
        ("C2", "EUR", 4000, 0, 0, 4000, 0, 0, 0, 0, 0, 9800, None, False),
        ("C3", "EUR", 80000, 0, 0, 0, 0, 80000, 0, 0, 0, 40000, "late", False),
        ("C4", "USD", 0, 0, 0, 0, 0, 0, 2000, 0, 0, 52000, None, False),
    ]
    # the next day P1 is unapplied: INV-101 open again, 600.00 back in the queue for C1
    assert _rows(book, AFTER)[0] == ("C1", "EUR", 105000, 30000, 60000, 0, 0, 15000, 0, 65555, 2, None, None, True)


def test_a_past_date_reads_the_same_after_later_postings(engine: Engine, tmp_path: Path) -> None:
    _book(engine, tmp_path / "ar")
    book = engine
    frame = balances(book, RUN_DAY)
    # more happens later: a new payment posted on the 26th
    ingest_lines(book, [bank_line("P9", "40.00", name="BRICK", remittance="INV-202", booking_date="2026-11-25")],
                 digest="later")
    service.run_posting(book, config=CONFIG, as_of=date(2026, 11, 26), now=LATER + timedelta(days=1))
    assert balances(book, RUN_DAY).equals(frame)
    assert balances(book, date(2026, 11, 26)).filter(pl.col("customer_id") == "C2").height == 0  # C2 paid up


def test_plan_status_names_the_missed_installment(book: Engine) -> None:
    def plan(as_of: date, days: int = 30) -> tuple:
        row = balances(book, as_of, customer="C3", broken_after_days=days).row(0, named=True)
        return row["plan_status"], row["plan_missed"]

    assert plan(BEFORE) == ("broken", "P-301 #2 due 2026-10-01, 400.00 open, 53 days late")
    assert plan(RUN_DAY) == ("late", "P-301 #3 due 2026-11-01, 400.00 open, 23 days late")
    assert plan(RUN_DAY, days=20) == ("broken", "P-301 #3 due 2026-11-01, 400.00 open, 23 days late")
    assert plan(date(2026, 10, 30)) == ("late", "P-301 #2 due 2026-10-01, 400.00 open, 29 days late")
    assert plan(date(2026, 9, 30)) == ("on track", None)   # installment 1 paid before the ledger, 2 not yet due


def test_statement_of_account_runs_to_the_balance(book: Engine) -> None:
    st = statement_of_account(book, "C2", AFTER)
    assert st.entries.select("date", "kind", "reference", "amount_minor", "balance_minor").rows() == [
        (date(2026, 8, 20), "invoice", "INV-201", 10000, 10000),
        (date(2026, 9, 10), "invoice", "INV-202", 8000, 18000),
        (date(2026, 9, 10), "settled_before_ledger", "INV-202", -4000, 14000),
        (date(2026, 11, 23), "payment", "P2", -9800, 4200),
        (date(2026, 11, 23), "write_off", "INV-201", -200, 4000),
    ]
    c1 = statement_of_account(book, "C1", AFTER).entries
    assert c1.filter(pl.col("kind") == "reversal").select("date", "amount_minor", "description").row(0) == (
        AFTER, 60000, "reversed (wrong customer): INV-101 600.00")
    for customer in ("C1", "C2", "C3", "C4"):
        for as_of in (BEFORE, RUN_DAY, AFTER):
            st = statement_of_account(book, customer, as_of)
            ends = st.entries.group_by("currency").agg(pl.col("balance_minor").last()).sort("currency").rows()
            expected = st.totals.select("currency", pl.col("open") - pl.col("on_account")).rows()
            assert [e for e in ends if e[1] != 0] == [e for e in expected if e[1] != 0], (customer, as_of)
    schedule = statement_of_account(book, "C3", AFTER).schedule
    assert schedule.select("installment_no", "open_minor", "state").rows() == [
        (1, 0, "paid"), (2, 0, "paid"), (3, 40000, "late, 24 days")]


def test_kpis_with_their_inputs(book: Engine) -> None:
    k = kpis(book, AFTER, Collections(dso_period_days=90))
    assert k.period_start == date(2026, 8, 28)
    eur = k.per_currency.filter(pl.col("currency") == "EUR").row(0, named=True)
    # start: INV-103 + INV-201 + INV-301 open on 08-27; invoiced: INV-101, -102, -202; end: C1 1050 + C2 40 + C3 800
    assert (eur["ar_start"], eur["invoiced"], eur["ar_end"], eur["current_end"]) == (145000, 98000, 189000, 30000)
    assert eur["dso"] == Decimal("173.6")            # 1890 / 980 x 90
    assert eur["cei"] == Decimal("25.4")             # (1450 + 980 - 1890) / (1450 + 980 - 300) x 100
    assert eur["days_to_pay"] == Decimal("135.0")    # (100 x 95 + 400 x 145) / 500; P1 was reversed
    assert eur["days_late"] == Decimal("55.2")       # (100 x 64 + 400 x 53) / 500 (installment's own due date)
    usd = k.per_currency.filter(pl.col("currency") == "USD").row(0, named=True)
    assert (usd["dso"], usd["cei"], usd["days_to_pay"]) == (Decimal("0.0"), Decimal("100.0"), Decimal("33.0"))
    assert k.runs.select("run_id", "lines_posted", "lines_queued", "auto_rate", "backlog_after").rows() == [
        ("run-1", 4, 1, Decimal("80.0"), 1)]
    assert k.backlog.select("reason", "age", "items", "amount_minor").rows() == [
        ("amount_mismatch", "0-3 days", 1, 5555), ("unapplied", "0-3 days", 1, 60000)]
    assert kpis(book, RUN_DAY).backlog["reason"].to_list() == ["amount_mismatch"]   # as it stood that day
    assert k.cash_per_day.rows() == [(RUN_DAY, "EUR", 109800, 0), (RUN_DAY, "USD", 52000, 0),
                                     (AFTER, "EUR", 0, -60000)]


def _ledger_totals(engine: Engine) -> dict[str, dict[str, int]]:
    """The report's totals recomputed from raw tables, independently of balances.py."""
    inv, al, ex, bl = tables.Invoice, tables.Allocation, tables.ExceptionItem, tables.BankLine
    out: dict[str, dict[str, int]] = {}
    with db.transaction(engine) as session:
        for cur, total in session.execute(select(inv.currency, func.sum(inv.open_amount_minor))
                                          .where(inv.issue_date <= AFTER).group_by(inv.currency)):
            out.setdefault(cur, {})["open"] = int(total)
        on_account_ids = select(al.id).where(al.kind == "on_account")
        for cur, total in session.execute(
            select(al.currency, func.sum(al.amount_minor))
            .where((al.kind == "on_account") | al.reverses_id.in_(on_account_ids)).group_by(al.currency)
        ):
            out.setdefault(cur, {})["on_account"] = int(total)
        for cur, total in session.execute(
            select(bl.currency, func.sum(bl.amount_minor)).join(ex, ex.bank_line_id == bl.id)
            .where(ex.status == "open", ex.customer_id.is_not(None), bl.amount_minor > 0).group_by(bl.currency)
        ):
            out.setdefault(cur, {})["pending_application"] = int(total)
        for cur, total in session.execute(select(al.currency, func.sum(al.amount_minor)).group_by(al.currency)):
            out.setdefault(cur, {})["cash_applied"] = int(total)
    return out


def test_report_totals_reconcile_with_the_ledger(book: Engine, tmp_path: Path) -> None:
    data = write_report(book, tmp_path / "report.html", AFTER, Collections.from_config(CONFIG))
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    found: dict[str, dict[str, int]] = {}
    for cur, row in re.findall(r'<tr data-currency="(\w+)">(.*?)</tr>', html):
        for field, minor in re.findall(r'data-field="(\w+)" data-minor="(-?\d+)"', row):
            found.setdefault(cur, {})[field] = int(minor)
    expected = _ledger_totals(book)
    for cur, fields in expected.items():
        for field, value in fields.items():
            assert found[cur][field] == value, (cur, field)
    assert found["EUR"]["open"] == 189000 and found["USD"]["on_account"] == 2000
    assert found["EUR"]["pending_application"] == 65555 and found["EUR"]["cash_applied"] == 49800
    assert data.totals.filter(pl.col("currency") == "EUR")["hold_customers"].item() == 1
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_same_numbers_on_sqlite_and_postgresql(tmp_path: Path, pg_url: str) -> None:
    engines = []
    for name, url in (("sqlite", f"sqlite:///{tmp_path / 'r.db'}"), ("postgresql", pg_url)):
        engine = db.make_engine(url)
        db.upgrade(engine)
        _book(engine, tmp_path / f"ar-{name}")
        engines.append(engine)
    try:
        lite, pg = engines
        for as_of in (BEFORE, RUN_DAY, AFTER):
            assert balances(lite, as_of).equals(balances(pg, as_of)), as_of
            a, b = kpis(lite, as_of), kpis(pg, as_of)
            for frame_a, frame_b in ((a.per_currency, b.per_currency), (a.runs, b.runs), (a.backlog, b.backlog),
                                     (a.cash_per_day, b.cash_per_day)):
                assert frame_a.equals(frame_b), as_of
            for customer in ("C1", "C2", "C3", "C4"):
                assert statement_of_account(lite, customer, as_of).entries.equals(
                    statement_of_account(pg, customer, as_of).entries), (customer, as_of)
        assert render(gather(lite, AFTER, Collections())) == render(gather(pg, AFTER, Collections()))
    finally:
        for engine in engines:
            engine.dispose()
