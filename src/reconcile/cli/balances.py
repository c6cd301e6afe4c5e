"""`reconcile balances`: customer balances as a table, CSV or JSON."""

from __future__ import annotations

import sys
from datetime import date
from typing import Annotated

import polars as pl
import typer
from sqlalchemy import Engine

from reconcile.balances import balances, bucket_labels
from reconcile.cli.common import (
    ConfigOption,
    DbOption,
    engine_for,
    handles_errors,
    print_json,
    print_table,
    settings_for,
)
from reconcile.config import Settings
from reconcile.errors import ReconcileError
from reconcile.export import decimal_text


def show_balances(engine: Engine, settings: Settings, as_of: str | None, customer: str | None, fmt: str) -> None:
    day = date.fromisoformat(as_of) if as_of else date.today()
    edges = [int(e) for e in settings.section("aging").get("buckets", [0, 30, 60, 90])]
    frame = balances(engine, day, edges)
    if customer:
        frame = frame.filter(pl.col("customer_id") == customer)
    money = ["open", *bucket_labels(edges), "on_account", "pending_application"]
    text = frame.with_columns([decimal_text(pl.col(c), pl.col("currency")).alias(c) for c in money])
    if fmt == "csv":
        text.write_csv(sys.stdout)
    elif fmt == "json":
        print_json({"as_of": day.isoformat(), "customers": text.to_dicts()})
    elif fmt == "table":
        print_table(f"balances as of {day}", text.columns, text.iter_rows(), right=money)
    else:
        raise ReconcileError(f"unknown format {fmt!r}: use table, csv or json")


def register(app: typer.Typer) -> None:
    @app.command("balances")
    @handles_errors
    def balances_command(
        as_of: Annotated[str | None, typer.Option("--as-of", help="Aging date (YYYY-MM-DD), default today")] = None,
        customer: Annotated[str | None, typer.Option("--customer", help="Only this customer")] = None,
        fmt: Annotated[str, typer.Option("--format", help="table, csv or json")] = "table",
        db_url: DbOption = None,
        config_dir: ConfigOption = None,
    ) -> None:
        """Customer balances with aging buckets, credit on account and unapplied cash."""
        show_balances(engine_for(db_url), settings_for(config_dir), as_of, customer, fmt)
