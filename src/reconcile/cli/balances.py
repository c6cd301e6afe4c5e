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
    config_for,
    engine_for,
    handles_errors,
    print_json,
    print_table,
)
from reconcile.collectors.balances import Collections, balances, bucket_labels
from reconcile.config import Config
from reconcile.core.errors import ReconcileError
from reconcile.services.exports import decimal_text


def parse_day(text: str | None) -> date:
    if not text:
        return date.today()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ReconcileError(f"--as-of {text!r} is not a date: use YYYY-MM-DD") from None


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
    frame = balances(engine, day, rules.edges, customer=customer, broken_after_days=rules.broken_after_days)
    if overdue_only:
        frame = frame.filter(pl.col("overdue") > 0)
    text = balances_text(frame, rules.edges)
    if fmt == "csv":
        text.write_csv(sys.stdout)
    elif fmt == "json":
        print_json({"as_of": day.isoformat(), "customers": text.to_dicts()})
    else:
        labels = bucket_labels(rules.edges)
        shown = text.select(
            pl.col("customer_id").alias("customer"), "name", pl.col("currency").alias("cur"), "open", *labels,
            pl.col("on_account").alias("credit"), pl.col("pending_application").alias("unapplied"),
            pl.concat_str([pl.col("last_payment_date").cast(pl.String), pl.col("last_payment")], separator=" ")
            .alias("last payment"),
            pl.concat_str([pl.col("plan_status"), pl.col("plan_missed")], separator=": ")
            .fill_null(pl.col("plan_status")).alias("plan"),
            pl.when(pl.col("hold_calls")).then(pl.lit("HOLD")).otherwise(pl.lit("")).alias("calls"),
        )
        print_table(f"balances as of {day} ({frame.height} customer rows)", shown.columns, shown.iter_rows(),
                    right=["open", *labels, "credit", "unapplied"])


def register(app: typer.Typer) -> None:
    @app.command("balances")
    @handles_errors
    def balances_command(
        as_of: Annotated[str | None, typer.Option("--as-of", help="Aging date (YYYY-MM-DD), default today")] = None,
        customer: Annotated[str | None, typer.Option("--customer", help="Only this customer")] = None,
        overdue_only: Annotated[bool, typer.Option("--overdue-only", help="Only customers with something overdue")] = False,
        fmt: Annotated[str, typer.Option("--format", help="table, csv or json")] = "table",
        db_url: DbOption = None,
        config_dir: ConfigOption = None,
    ) -> None:
        """Customer balances: aging, credit on account, unapplied cash, last payment, plans, hold calls."""
        show_balances(engine_for(db_url), config_for(config_dir), as_of, customer, fmt, overdue_only)
