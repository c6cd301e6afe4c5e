"""`reconcile balances`: customer balances as a table, CSV or JSON."""

from __future__ import annotations

import sys
from datetime import date
from typing import Annotated

import polars as pl
import typer
from sqlalchemy import Engine

from reconcile.cli.common import (
    ConfigOption,
    DbOption,
    JsonOption,
    amount,
    config_for,
    engine_for,
    handles_errors,
    parse_as_of,
    print_json,
    print_table,
)
from reconcile.cli.progress import Reporter
from reconcile.collectors.balances import Collections, balances, bucket_labels
from reconcile.config import Config
from reconcile.core.errors import ReconcileError
from reconcile.services.exports import decimal_text


def parse_day(text: str | None) -> date:
    return parse_as_of(text) or date.today()


def balances_text(frame: pl.DataFrame, edges: tuple[int, ...]) -> pl.DataFrame:
    """Minor units as decimal strings in each row's currency (exact), for CSV, JSON and tables."""
    money = ["open", *bucket_labels(edges), "overdue", "on_account", "pending_application", "last_payment"]
    return frame.with_columns([decimal_text(pl.col(c), pl.col("currency")).alias(c) for c in money])


def show_balances(engine: Engine, config: Config, as_of: str | None, customer: str | None, fmt: str,
                  overdue_only: bool = False) -> None:
    if fmt not in ("table", "csv", "json"):
        raise ReconcileError(f"unknown format {fmt!r}: use table, csv or json")
    day = parse_day(as_of)
    rules = Collections.from_config(config)
    with Reporter() as progress, progress.phase("computing balances"):
        frame = balances(engine, day, rules.edges, customer=customer, broken_after_days=rules.broken_after_days)
    if overdue_only:
        frame = frame.filter(pl.col("overdue") > 0)
    if fmt == "csv":
        balances_text(frame, rules.edges).write_csv(sys.stdout)
    elif fmt == "json":
        print_json({"as_of": day.isoformat(), "customers": balances_text(frame, rules.edges).to_dicts()})
    else:
        labels = bucket_labels(rules.edges)
        money = ["open", *labels, "on_account", "pending_application"]
        rows = []
        for r in frame.iter_rows(named=True):
            ccy = r["currency"]
            last = f"{r['last_payment_date']} {amount(r['last_payment'], ccy)}" if r["last_payment_date"] else ""
            plan = (f"{r['plan_status']}: {r['plan_missed']}" if r["plan_status"] and r["plan_missed"]
                    else r["plan_status"])
            rows.append((r["customer_id"], r["name"], ccy, *[amount(r[c], ccy) for c in money], last, plan,
                         "HOLD" if r["hold_calls"] else ""))
        print_table(f"balances as of {day} ({frame.height} customer rows)",
                    ["customer", "name", "cur", "open", *labels, "credit", "unapplied", "last payment", "plan",
                     "calls"], rows, right=["open", *labels, "credit", "unapplied", "last payment"])


def register(app: typer.Typer) -> None:
    @app.command("balances")
    @handles_errors
    def balances_command(
        as_of: Annotated[str | None, typer.Option("--as-of", help="Aging date (YYYY-MM-DD), default today")] = None,
        customer: Annotated[str | None, typer.Option("--customer", help="Only this customer")] = None,
        overdue_only: Annotated[bool, typer.Option("--overdue-only",
                                                   help="Only customers with something overdue")] = False,
        fmt: Annotated[str, typer.Option("--format", help="table, csv or json")] = "table",
        as_json: JsonOption = False,
        db_url: DbOption = None,
        config_dir: ConfigOption = None,
    ) -> None:
        """Customer balances: aging, credit on account, unapplied cash, last payment, plans, hold calls."""
        parse_as_of(as_of)  # a bad date is refused before the database is opened
        show_balances(engine_for(db_url), config_for(config_dir), as_of, customer, "json" if as_json else fmt,
                      overdue_only)
