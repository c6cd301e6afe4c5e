"""The collectors' commands as a user runs them on the demo data: balances, customer, kpis, report."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from reconcile.config import load_config
from reconcile.parsers.base import ParseOptions
from reconcile.services import daily as service
from reconcile.services.demo_data import write_demo_data
from reconcile.store import db
from tests.e2e.test_cli import reconcile

# the run stamps its postings with the clock: as of today (UTC) every posting counts
AS_OF = datetime.now(UTC).date().isoformat()


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """The demo's day, loaded and posted in-process (fast); the tests below run the commands."""
    tmp = tmp_path_factory.mktemp("collectors")
    files = write_demo_data(tmp / "data")
    engine = db.make_engine(f"sqlite:///{tmp / 'r.db'}")
    service.init_database(engine)
    service.load_ar(engine, files.snapshot_dir)
    for statement in files.statements:
        service.ingest_file(engine, statement, ParseOptions.builtin())
    service.run_posting(engine, config=load_config(), as_of=files.as_of)
    engine.dispose()
    return tmp, ["--db", f"sqlite:///{tmp / 'r.db'}"]


def _sum_by_currency(conn: sqlite3.Connection, sql: str) -> dict[str, int]:
    return {cur: int(total) for cur, total in conn.execute(sql)}


def test_report_is_one_self_contained_file_whose_totals_match_the_ledger(demo_db: tuple[Path, list[str]]) -> None:
    tmp, db = demo_db
    done = reconcile("report", "-o", "report.html", "--as-of", AS_OF, *db, cwd=tmp)
    assert "wrote report.html" in done.stdout
    html = (tmp / "report.html").read_text(encoding="utf-8")
    # nothing to fetch: no scripts, stylesheets, images or fonts from anywhere
    assert "<script" not in html and "<link" not in html and "<img" not in html and "@import" not in html
    assert not re.search(r"(src|href)=|url\(", html)
    assert html.count("<svg") >= 5 and "@media print" in html
    for title in ("Aging distribution", "Cash applied per day", "automatic-posting rate per run",
                  "Exception backlog by reason and age", "Top overdue customers", "DSO = "):
        assert title in html

    shown = {field: int(minor) for field, minor in re.findall(r'data-field="(\w+)" data-minor="(-?\d+)"', html)}
    with sqlite3.connect(tmp / "r.db") as conn:
        open_total = _sum_by_currency(conn, "select currency, sum(open_amount_minor) from invoices group by currency")
        applied = _sum_by_currency(conn, "select currency, sum(amount_minor) from allocations group by currency")
        credit = _sum_by_currency(conn, "select currency, sum(amount_minor) from allocations "
                                        "where kind = 'on_account' group by currency")
    assert list(open_total) == ["EUR"]
    assert shown["open"] == open_total["EUR"]
    assert shown["cash_applied"] == applied["EUR"]
    assert shown["on_account"] == credit["EUR"]


def test_balances_csv_and_overdue_only(demo_db: tuple[Path, list[str]]) -> None:
    tmp, db = demo_db
    every = list(csv.DictReader(io.StringIO(
        reconcile("balances", "--format", "csv", "--as-of", AS_OF, *db, cwd=tmp).stdout)))
    overdue = list(csv.DictReader(io.StringIO(
        reconcile("balances", "--format", "csv", "--overdue-only", "--as-of", AS_OF, *db, cwd=tmp).stdout)))
    assert {"open", "current", "1-30", "over_90", "on_account", "pending_application", "last_payment_date",
            "last_payment", "plan_status", "plan_missed", "hold_calls"} <= set(every[0])
    assert overdue and all(Decimal(r["overdue"]) > 0 for r in overdue)
    assert len(overdue) < len(every) or all(Decimal(r["overdue"]) > 0 for r in every)
    with sqlite3.connect(tmp / "r.db") as conn:
        (total,) = conn.execute("select sum(open_amount_minor) from invoices").fetchone()
    assert sum(Decimal(r["open"]) for r in every) * 100 == total
    plan = next(r for r in every if r["customer_id"] == "C0003")
    assert plan["plan_status"] in ("on track", "late", "broken")


def test_customer_statement_ends_at_its_balance(demo_db: tuple[Path, list[str]]) -> None:
    tmp, db = demo_db
    st = json.loads(reconcile("customer", "C0003", "--format", "json", "--as-of", AS_OF, *db, cwd=tmp).stdout)
    assert st["name"] == "Nordlicht GmbH" and st["installments"]
    row = st["balances"][0]
    assert Decimal(st["entries"][-1]["balance"]) == Decimal(row["open"]) - Decimal(row["on_account"])
    table = reconcile("customer", "C0003", "--as-of", AS_OF, *db, cwd=tmp)
    assert "statement of account: C0003 Nordlicht GmbH" in table.stdout
    missing = reconcile("customer", "NOPE", *db, cwd=tmp, check=False)
    assert missing.returncode == 2 and "NOPE" in missing.stderr and "Traceback" not in missing.stderr


def test_kpis_state_their_formula_and_period(demo_db: tuple[Path, list[str]]) -> None:
    tmp, db = demo_db
    k = json.loads(reconcile("kpis", "--as-of", AS_OF, *db, cwd=tmp).stdout)
    assert k["formulas"]["dso"].startswith("DSO = ") and k["period"]["days"] == 90
    assert k["runs"] and k["runs"][0]["lines_posted"] > 0
