"""Collectors' reports: `reconcile customer ID`, `reconcile kpis`, `reconcile report -o FILE.html`."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import polars as pl
import typer

from reconcile.cli.balances import balances_text, parse_day
from reconcile.cli.common import (
    ConfigOption,
    DbOption,
    config_for,
    console,
    engine_for,
    handles_errors,
    print_json,
    print_table,
)
from reconcile.collectors.balances import Collections
from reconcile.collectors.kpis import kpis, kpis_json
from reconcile.collectors.report import write_report
from reconcile.collectors.statement import statement_of_account
from reconcile.core.errors import ReconcileError
from reconcile.services.exports import decimal_text

AsOfOption = Annotated[str | None, typer.Option("--as-of", help="As of the end of this day (YYYY-MM-DD), default today")]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""

    @app.command("customer")
    @handles_errors
    def customer_command(
        customer_id: Annotated[str, typer.Argument(help="The customer's id in the receivables snapshot")],
        as_of: AsOfOption = None,
        fmt: Annotated[str, typer.Option("--format", help="table, csv (entries only) or json")] = "table",
        db_url: DbOption = None,
        config_dir: ConfigOption = None,
    ) -> None:
        """One customer's statement of account: invoices, payments, write-offs, reversals, running balance."""
        if fmt not in ("table", "csv", "json"):
            raise ReconcileError(f"unknown format {fmt!r}: use table, csv or json")
        rules = Collections.from_config(config_for(config_dir))
        st = statement_of_account(engine_for(db_url), customer_id, parse_day(as_of), rules)
        entries = st.entries.with_columns(
            decimal_text(pl.col("amount_minor"), pl.col("currency")).alias("amount"),
            decimal_text(pl.col("balance_minor"), pl.col("currency")).alias("balance"),
        ).select("date", "kind", "reference", "description", "currency", "amount", "balance")
        schedule = st.schedule.with_columns(
            decimal_text(pl.col("amount_minor"), pl.col("currency")).alias("amount"),
            decimal_text(pl.col("open_minor"), pl.col("currency")).alias("open"),
        ).select("plan_id", "installment_no", "invoice_number", "due_date", "currency", "amount", "open", "state")
        totals = balances_text(st.totals, rules.edges)
        if fmt == "csv":
            entries.write_csv(sys.stdout)
            return
        if fmt == "json":
            print_json({"customer_id": st.customer_id, "name": st.name, "as_of": st.as_of.isoformat(),
                        "entries": entries.to_dicts(), "installments": schedule.to_dicts(),
                        "balances": totals.to_dicts()})
            return
        print_table(f"statement of account: {st.customer_id} {st.name}, as of {st.as_of}", entries.columns,
                    entries.iter_rows(), right=["amount", "balance"])
        if schedule.height:
            print_table("payment plan installments", schedule.columns, schedule.iter_rows(), right=["amount", "open"])
        for r in totals.iter_rows(named=True):
            hold = "  HOLD collection calls (unapplied cash or open queue item)" if r["hold_calls"] else ""
            plan = f", plan {r['plan_status']}" + (f": {r['plan_missed']}" if r["plan_missed"] else "") if r["plan_status"] else ""
            console.print(f"{r['currency']}: open {r['open']}, overdue {r['overdue']}, credit on account "
                          f"{r['on_account']}, unapplied {r['pending_application']}{plan}{hold}",
                          highlight=False, markup=False)

    @app.command("kpis")
    @handles_errors
    def kpis_command(
        as_of: AsOfOption = None,
        db_url: DbOption = None,
        config_dir: ConfigOption = None,
    ) -> None:
        """DSO, CEI, average days to pay and posting-run figures as of a date (JSON, formulas included)."""
        rules = Collections.from_config(config_for(config_dir))
        print_json(kpis_json(kpis(engine_for(db_url), parse_day(as_of), rules)))

    @app.command("report")
    @handles_errors
    def report_command(
        output: Annotated[Path, typer.Option("-o", "--output", help="HTML file to write")] = Path("report.html"),
        as_of: AsOfOption = None,
        db_url: DbOption = None,
        config_dir: ConfigOption = None,
    ) -> None:
        """One self-contained HTML report (charts inline, no network) for collectors and managers."""
        rules = Collections.from_config(config_for(config_dir))
        started = time.perf_counter()
        data = write_report(engine_for(db_url), output, parse_day(as_of), rules)
        console.print(f"wrote {output} as of {data.as_of}: {data.balances.height} customer rows, "
                      f"{data.kpis.runs.height} run(s), {time.perf_counter() - started:.1f} s", highlight=False)
