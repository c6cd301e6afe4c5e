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
    JsonOption,
    amount,
    config_for,
    echo,
    engine_for,
    handles_errors,
    print_json,
    print_table,
)
from reconcile.cli.progress import Reporter
from reconcile.collectors.balances import Collections
from reconcile.collectors.kpis import kpis, kpis_json
from reconcile.collectors.report import write_report
from reconcile.collectors.statement import statement_of_account
from reconcile.core.errors import ReconcileError
from reconcile.services.exports import decimal_text


def _amounts(frame: pl.DataFrame, money: tuple[str, ...]) -> list[list[object]]:
    """The frame's rows with its `money` columns (decimal text) formatted in the row's currency."""
    return [[amount(v, row["currency"]) if k in money else v for k, v in row.items()]
            for row in frame.iter_rows(named=True)]


AsOfOption = Annotated[str | None, typer.Option("--as-of",
                                                help="As of the end of this day (YYYY-MM-DD), default today")]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""

    @app.command("customer")
    @handles_errors
    def customer_command(
        customer_id: Annotated[str, typer.Argument(help="The customer's id in the receivables snapshot")],
        as_of: AsOfOption = None,
        fmt: Annotated[str, typer.Option("--format", help="table, csv (entries only) or json")] = "table",
        as_json: JsonOption = False,
        db_url: DbOption = None,
        config_dir: ConfigOption = None,
    ) -> None:
        """One customer's statement of account: invoices, payments, write-offs, reversals, running balance."""
        fmt = "json" if as_json else fmt
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
                    _amounts(entries, ("amount", "balance")), right=["amount", "balance"])
        if schedule.height:
            print_table("payment plan installments", schedule.columns, _amounts(schedule, ("amount", "open")),
                        right=["amount", "open"])
        for r in totals.iter_rows(named=True):
            hold = "  HOLD collection calls (unapplied cash or open queue item)" if r["hold_calls"] else ""
            plan = (f", plan {r['plan_status']}" + (f": {r['plan_missed']}" if r["plan_missed"] else "")
                    if r["plan_status"] else "")
            ccy = r["currency"]
            echo(f"{ccy}: open {amount(r['open'], ccy)}, overdue {amount(r['overdue'], ccy)}, credit on account "
                 f"{amount(r['on_account'], ccy)}, unapplied {amount(r['pending_application'], ccy)}{plan}{hold}")

    @app.command("kpis")
    @handles_errors
    def kpis_command(
        as_of: AsOfOption = None,
        as_json: Annotated[bool, typer.Option("--json",
                                              help="JSON on standard output (kpis always prints JSON)")] = False,
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
        as_json: JsonOption = False,
        db_url: DbOption = None,
        config_dir: ConfigOption = None,
    ) -> None:
        """One self-contained HTML report (charts inline, no network) for collectors and managers."""
        rules = Collections.from_config(config_for(config_dir))
        started = time.perf_counter()
        with Reporter() as progress, progress.phase("writing the report"):
            data = write_report(engine_for(db_url), output, parse_day(as_of), rules)
        took = time.perf_counter() - started
        if as_json:
            print_json({"file": str(output), "as_of": str(data.as_of), "customers": data.balances.height,
                        "runs": data.kpis.runs.height, "seconds": round(took, 2)})
            return
        echo(f"wrote {output} as of {data.as_of}: {data.balances.height} customer rows, "
             f"{data.kpis.runs.height} run(s), {took:.1f} s")
