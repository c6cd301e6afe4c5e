"""The `reconcile` command: the composition root.

Each command parses its options, builds the engine and configuration, calls one
service function and prints the result. Command groups live in their own
modules (exceptions, export, profiles); this module wires them together.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from reconcile import __version__
from reconcile.cli import balances as balances_cli
from reconcile.cli import config_cmd as config_cli
from reconcile.cli import exceptions as exceptions_cli
from reconcile.cli import export as export_cli
from reconcile.cli import ledger as ledger_cli
from reconcile.cli import profiles as profiles_cli
from reconcile.cli import reports as reports_cli
from reconcile.cli import serve as serve_cli
from reconcile.cli import web as web_cli
from reconcile.cli.common import (
    ConfigOption,
    DbOption,
    JsonOption,
    config_for,
    console,
    engine_for,
    handles_errors,
    print_json,
    print_table,
    quiet_prefect,
    state,
)
from reconcile.cli.summary import print_run_summary
from reconcile.services import daily as service

app = typer.Typer(
    name="reconcile",
    help="Cash application and bank reconciliation: parse statements, match payments, post, review.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(exceptions_cli.app, name="exceptions")
app.add_typer(export_cli.app, name="export")
app.add_typer(profiles_cli.app, name="profiles")


def _version(value: bool) -> None:
    if value:
        console.print(f"reconcile {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    db_url: DbOption = None,
    config_dir: ConfigOption = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version")] = False,
) -> None:
    state.db_url = db_url
    state.config_dir = config_dir


@app.command()
@handles_errors
def init(db_url: DbOption = None) -> None:
    """Create or upgrade the database schema."""
    engine = engine_for(db_url, must_exist=False)
    service.init_database(engine)
    console.print(f"schema ready: {engine.url.render_as_string(hide_password=True)}")


@app.command("load-ar")
@handles_errors
def load_ar(
    directory: Annotated[Path, typer.Argument(help="Folder with customers, invoices [, installments] .csv or .parquet")],
    db_url: DbOption = None,
    config_dir: ConfigOption = None,
) -> None:
    """Load or refresh the open receivables snapshot (all or nothing)."""
    counts = service.load_ar(engine_for(db_url), directory)
    print_table(
        "receivables snapshot loaded",
        ["", "new", "changed"],
        [
            ("customers", counts.customers_new, counts.customers_changed),
            ("invoices", counts.invoices_new, counts.invoices_changed),
            ("installments", counts.installments_new, counts.installments_changed),
            ("aliases", counts.aliases_new, ""),
            ("payer accounts", counts.accounts_new, ""),
        ],
        right=("new", "changed"),
    )


@app.command()
@handles_errors
def ingest(
    files: Annotated[list[Path], typer.Argument(help="Statement files (OFX, CAMT.053/054, CSV, MT940, BAI2)")],
    account: Annotated[str | None, typer.Option(help="Account for files that do not name one (generic CSV)")] = None,
    profile: Annotated[str | None, typer.Option(help="CSV profile to read the files with, instead of detecting it")] = None,
    db_url: DbOption = None,
    config_dir: ConfigOption = None,
) -> None:
    """Parse statement files and store their lines; re-importing adds nothing."""
    engine = engine_for(db_url)
    options = config_for(config_dir).parse_options(profile)
    rows = []
    for path in files:
        result = service.ingest_file(engine, path, options, account=account)
        note = "already imported" if result.already_imported else "; ".join(result.warnings)
        rows.append((path.name, result.format, result.statements, result.lines, result.new_lines, note))
    print_table("ingested", ["file", "format", "statements", "lines", "new", "note"], rows,
                right=("statements", "lines", "new"))


@app.command()
@handles_errors
def run(
    as_of: Annotated[str | None, typer.Option("--as-of", help="Business date of the run (YYYY-MM-DD), default today")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be posted; store, post and move nothing")] = False,
    no_flow: Annotated[bool, typer.Option("--no-flow", help="Run the same steps without Prefect")] = False,
    inbox: Annotated[str | None, typer.Option("--inbox", help="Statement inbox folder (default: config [inbox] path)")] = None,
    actor: Annotated[str, typer.Option(help="Who is running it (audit trail)")] = "system",
    as_json: JsonOption = False,
    db_url: DbOption = None,
    config_dir: ConfigOption = None,
) -> None:
    """The daily posting run: ingest the inbox, match every unmatched credit, post, queue exceptions, archive."""
    from reconcile.statements import inbox as inbox_lib
    engine = engine_for(db_url)
    day = date.fromisoformat(as_of) if as_of else None
    config = config_for(config_dir)
    if no_flow:
        summary = inbox_lib.run_day(engine, config, inbox=inbox, as_of=day, dry_run=dry_run, actor=actor).to_dict()
    else:
        quiet_prefect()
        from reconcile.flows.daily import posting_run_flow

        # the URL as given (or None: the flow reads $RECONCILE_DB_URL), never rendered with its password
        final = posting_run_flow(
            db_url=db_url or state.db_url, config_dir=str(config.directory), inbox=inbox,
            as_of=day.isoformat() if day else None, dry_run=dry_run, actor=actor, return_state=True,
        )
        result = final.result(raise_on_failure=False)
        if isinstance(result, inbox_lib.RunFailed):
            summary = result.report
        elif isinstance(result, BaseException):
            raise result
        else:
            summary = result
    if as_json:
        print_json(summary)
    else:
        if summary.get("files"):
            print_table(f"inbox {summary['inbox']}", ["file", "status", "format", "lines", "new", "note"], [
                (f["file"], f["status"], f["format"], f["lines"], f["new_lines"], f["reason"] or f["moved_to"])
                for f in summary["files"]
            ], right=("lines", "new"))
        print_run_summary(summary)
    if summary["status"] != "completed":
        raise typer.Exit(1)


@app.command()
@handles_errors
def parse(
    file: Annotated[Path, typer.Argument(help="A statement file")],
    profile: Annotated[str | None, typer.Option(help="CSV profile to read it with, instead of detecting it")] = None,
    as_json: JsonOption = False,
    config_dir: ConfigOption = None,
) -> None:
    """Show what a statement file parses to, without touching the database."""
    from reconcile.parsers import parse_file
    from reconcile.statements.parse_json import parsed_to_json

    document = parsed_to_json(parse_file(file, config_for(config_dir).parse_options(profile)))
    if as_json:
        print_json(document)
        return
    console.print(f"[bold]{file}[/bold]: {document['format']}, {len(document['statements'])} statement(s)")
    for st in document["statements"]:
        console.print(
            f"account {st['account']} {st['currency'] or ''}  period {st['period_start']} .. {st['period_end']}  "
            f"opening {st['opening_balance']}  closing {st['closing_balance']}"
        )
        for warning in st["warnings"]:
            console.print(f"[yellow]warning:[/yellow] {warning}")
        print_table(None, ["source_ref", "booking", "amount", "ccy", "counterparty", "remittance"], [
            (ln["source_ref"], ln["booking_date"], ln["amount"], ln["currency"], ln["counterparty_name"],
             (ln["remittance"] or "")[:60])
            for ln in st["lines"]
        ], right=("amount",))


@app.command()
@handles_errors
def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Where to write the sample data and database")] = Path("reconcile-demo"),
    no_flow: Annotated[bool, typer.Option("--no-flow", help="Run without Prefect")] = False,
) -> None:
    """Make sample data, then load, ingest and run the whole job on embedded SQLite."""
    from reconcile.cli.demo import run_demo

    run_demo(directory, use_flow=not no_flow)


def main() -> None:
    app()


# Modules that add top-level commands register them last, so `--help` lists the daily path first.
for module in (ledger_cli, balances_cli, reports_cli, serve_cli, web_cli, config_cli):
    module.register(app)
