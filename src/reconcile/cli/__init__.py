"""The `reconcile` command: the composition root.

Each command parses its options, builds the engine and configuration, calls one
service function and prints the result. Command groups live in their own
modules (exceptions, export, profiles); this module wires them together.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any, cast

import typer

from reconcile import __version__
from reconcile.cli import advices_cmd as advices_cli
from reconcile.cli import balances as balances_cli
from reconcile.cli import config_cmd as config_cli
from reconcile.cli import daily_loop as daily_loop_cli
from reconcile.cli import exceptions as exceptions_cli
from reconcile.cli import explain_cmd as explain_cli
from reconcile.cli import export as export_cli
from reconcile.cli import ledger as ledger_cli
from reconcile.cli import profiles as profiles_cli
from reconcile.cli import replay_cmd as replay_cli
from reconcile.cli import reports as reports_cli
from reconcile.cli import serve as serve_cli
from reconcile.cli import web as web_cli
from reconcile.cli.common import (
    ConfigOption,
    DbOption,
    JsonOption,
    amount,
    config_for,
    console,
    echo,
    engine_for,
    fail,
    handles_errors,
    parse_as_of,
    print_json,
    print_table,
    quiet_prefect,
    safe,
    state,
)
from reconcile.cli.summary import print_run_summary
from reconcile.core.errors import ReconcileError
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
daily_loop_cli.register_export(export_cli.app)
app.add_typer(profiles_cli.app, name="profiles")


def _version(value: bool) -> None:
    if value:
        console.print(f"reconcile {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    db_url: DbOption = None,
    config_dir: ConfigOption = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version")] = False,
) -> None:
    state.db_url = db_url
    state.config_dir = config_dir


@app.command()
@handles_errors
def init(as_json: JsonOption = False, db_url: DbOption = None) -> None:
    """Create or upgrade the database schema."""
    engine = engine_for(db_url, must_exist=False)
    service.init_database(engine)
    where = engine.url.render_as_string(hide_password=True)
    if as_json:
        print_json({"database": where, "schema": "ready"})
    else:
        echo(f"schema ready: {where}")


@app.command("load-ar")
@handles_errors
def load_ar(
    directory: Annotated[Path, typer.Argument(help="Folder with customers, invoices [, installments] "
                                                   ".csv or .parquet")],
    as_of: Annotated[str | None, typer.Option("--as-of", help="Business day of a snapshot whose snapshot.toml "
                                              "has no taken_at (YYYY-MM-DD), default today")] = None,
    actor: Annotated[str, typer.Option(help="Who is loading it (audit trail)")] = "load-ar",
    as_json: JsonOption = False,
    db_url: DbOption = None,
    config_dir: ConfigOption = None,
) -> None:
    """Load or refresh the open receivables snapshot (all or nothing); snapshot.toml says which posting batches
    it already includes (CONTRACTS section 5)."""
    from reconcile.cli.daily_loop import parse_day, print_load
    from reconcile.cli.progress import Reporter

    config = config_for(config_dir)
    with Reporter() as progress, progress.phase("loading the receivables snapshot"):
        counts = service.load_ar(engine_for(db_url), directory, actor=actor, as_of=parse_day(as_of),
                                 closed_elsewhere=config.receivables.closed_elsewhere)
    if as_json:
        print_json(counts.to_dict())
        return
    print_load(counts)


@app.command()
@handles_errors
def ingest(
    files: Annotated[list[Path], typer.Argument(help="Statement files (OFX, CAMT.053/054, CSV, MT940, BAI2)")],
    account: Annotated[str | None, typer.Option(help="Account for files that do not name one (generic CSV)")] = None,
    profile: Annotated[str | None, typer.Option(help="CSV profile to read the files with, "
                                                     "instead of detecting it")] = None,
    as_json: JsonOption = False,
    db_url: DbOption = None,
    config_dir: ConfigOption = None,
) -> None:
    """Parse statement files and store their lines; re-importing adds nothing.

    Every file is reported (stored, already imported, or refused with the reason); a refused
    file does not stop the others, and the command then exits 2 naming what was stored."""
    from reconcile.cli.progress import Reporter

    engine = engine_for(db_url)
    options = config_for(config_dir).parse_options(profile)
    outcomes = []
    with Reporter() as progress, ThreadPoolExecutor(max_workers=1) as reader:
        for number, (path, read) in enumerate(_read_ahead(reader, files, options), 1):
            outcomes.append(ingest_outcome(engine, path, read, account))
            progress("ingest", number, len(files))
    refused = [o for o in outcomes if o["status"] == "refused"]
    if as_json:
        print_json({"files": outcomes, **{k.replace(" ", "_"): sum(o["status"] == k for o in outcomes)
                                          for k in ("stored", "already imported", "refused")}})
    else:
        print_table("ingested", ["file", "status", "format", "statements", "lines", "new", "note"], [
            (o["file"], o["status"], o["format"], o["statements"], o["lines"], o["new_lines"],
             o["reason"] or "; ".join(o["warnings"])) for o in outcomes
        ], right=("statements", "lines", "new"))
    if refused:
        stored = [o["file"] for o in outcomes if o["status"] == "stored"]
        fail(f"{len(refused)} of {len(outcomes)} file(s) refused: "
             + "; ".join(f"{o['path']}: {o['reason']}" for o in refused)
             + (f" (stored: {', '.join(stored)})" if stored else " (nothing stored)"))


def _read_ahead(reader: ThreadPoolExecutor, files: list[Path], options: Any) -> Iterator[tuple[Path, Future[Any]]]:
    """Each file with its read and parse. The next file's read starts before this one is handed out, so it
    parses in the reader's thread while this one is stored; files are still stored one at a time, in the
    order given, and at most two are in memory."""
    pending = reader.submit(service.read_file, files[0], options) if files else None
    for number, path in enumerate(files):
        current = cast(Future[Any], pending)
        pending = reader.submit(service.read_file, files[number + 1], options) if number + 1 < len(files) else None
        yield path, current


def ingest_outcome(engine: Any, path: Path, read: Future[Any], account: str | None) -> dict[str, Any]:
    """One file's fate for `ingest`: stored, already imported, or refused with the reason (a bad
    file is reported and the next one is read; a database error still stops the command)."""
    base: dict[str, Any] = {"file": path.name, "path": str(path), "format": None, "statements": 0, "lines": 0,
                            "new_lines": 0, "warnings": [], "reason": None}
    try:
        result = service.store_file(engine, read.result(), account=account)
    except ReconcileError as exc:
        return {**base, "status": "refused", "reason": str(exc).removeprefix(f"{path}: ")}
    except OSError as exc:
        return {**base, "status": "refused", "reason": exc.strerror or str(exc)}
    return {**base, "status": "already imported" if result.already_imported else "stored",
            "format": result.format, "statements": result.statements, "lines": result.lines,
            "new_lines": result.new_lines, "warnings": list(result.warnings)}


@app.command()
@handles_errors
def run(
    as_of: Annotated[str | None, typer.Option("--as-of",
                                              help="Business date of the run (YYYY-MM-DD), default today")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run",
                                          help="Show what would be posted; store, post and move nothing")] = False,
    flow: Annotated[bool | None, typer.Option(
        "--flow/--no-flow", show_default=False,
        help="Through the Prefect flow, or the same steps without Prefect (default: the flow when a Prefect server "
             "is there, PREFECT_API_URL or a `reconcile serve` on this machine; else without)")] = None,
    inbox: Annotated[str | None, typer.Option(
        "--inbox", help="Statement inbox folder (default: config \\[inbox] path)", show_default=False)] = None,
    dask: Annotated[str | None, typer.Option(
        "--dask", help="Match on a Dask cluster: tcp://HOST:8786, or local for a local one "
                       "(default: config \\[scale] dask_address)", show_default=False)] = None,
    actor: Annotated[str, typer.Option(help="Who is running it (audit trail)")] = "system",
    as_json: JsonOption = False,
    db_url: DbOption = None,
    config_dir: ConfigOption = None,
) -> None:
    """The daily posting run: ingest the inbox, match every unmatched credit, post, queue exceptions, archive."""
    from reconcile.cli.progress import Reporter
    from reconcile.statements import inbox as inbox_lib

    day = parse_as_of(as_of)
    engine = engine_for(db_url)
    config = config_for(config_dir)
    if dask and flow is False:
        raise ReconcileError("--dask matches through the flow: drop --no-flow (e.g. reconcile run --dask local)")
    if flow is None and not dask:
        from reconcile.cli.prefect_api import server_available

        flow = server_available()
        if not flow:
            echo("no Prefect server here (PREFECT_API_URL unset, no `reconcile serve` running): the run goes "
                 "without Prefect, recorded in the ledger's posting runs; --flow starts a temporary one", err=True)
    if not flow and not dask:
        try:
            with Reporter() as progress:
                summary = inbox_lib.run_day(engine, config, inbox=inbox, as_of=day, dry_run=dry_run,
                                            actor=actor, progress=progress).to_dict()
        except ReconcileError as exc:
            _notify_no_flow(config, str(exc), None)
            raise
        if summary["status"] != "completed":
            _notify_no_flow(config, "; ".join(summary.get("violations", [])) or summary["status"], summary)
    else:
        from reconcile.cli.prefect_api import prefect_api

        quiet_prefect()
        with Reporter() as progress, prefect_api() as temporary:
            from reconcile.flows.daily import reporting, run_posting_flow

            if temporary is not None:
                with progress.phase("starting Prefect's temporary server (set PREFECT_API_URL, or keep a "
                                    "`reconcile serve` running, to skip this)", announce=True):
                    temporary.wait()
            with reporting(progress):
                # the URL as given (or None: the flow reads $RECONCILE_DB_URL), never rendered with its password
                final = run_posting_flow(
                    db_url=db_url or state.db_url, config_dir=str(config.directory), inbox=inbox,
                    as_of=day.isoformat() if day else None, dry_run=dry_run, actor=actor, dask=dask,
                    return_state=True,
                )
        result = cast(Any, final).result(raise_on_failure=False)
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


def _notify_no_flow(config: Any, message: str, report: dict[str, Any] | None) -> None:
    from reconcile.flows.notify import failure_payload, notify_failure

    if config.notify.webhook_url or config.notify.prefect_block:
        notify_failure(config.notify, failure_payload(state="Failed", message=message, report=report))


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
    console.print(f"[bold]{safe(file)}[/bold]: {safe(document['format'])}, {len(document['statements'])} statement(s)",
                  highlight=False)
    for st in document["statements"]:
        ccy = st["currency"] or ""
        console.print(
            f"account {st['account']} {ccy}  period {st['period_start']} .. {st['period_end']}  "
            f"opening {amount(st['opening_balance'], ccy)}  closing {amount(st['closing_balance'], ccy)}",
            markup=False, highlight=False,
        )
        for warning in st["warnings"]:
            console.print(f"[yellow]warning:[/yellow] {safe(warning)}", highlight=False)
        print_table(None, ["source_ref", "booking", "amount", "ccy", "counterparty", "remittance"], [
            (ln["source_ref"], ln["booking_date"], amount(ln["amount"], ln["currency"] or ccy), ln["currency"],
             ln["counterparty_name"], ln["remittance"])
            for ln in st["lines"]
        ], right=("amount",))


@app.command()
@handles_errors
def demo(
    directory: Annotated[Path, typer.Option(
        "--dir", help="Where to write the sample data and database")] = Path("reconcile-demo"),
    flow: Annotated[bool | None, typer.Option(
        "--flow/--no-flow", show_default=False,
        help="Through the Prefect flow or without Prefect (default: the flow when a Prefect server is there)")] = None,
) -> None:
    """Make sample data, then load, ingest and run the whole job on embedded SQLite."""
    from reconcile.cli.demo import run_demo
    from reconcile.cli.prefect_api import server_available

    run_demo(directory, use_flow=server_available() if flow is None else flow)


def main() -> None:
    app()


# Modules that add top-level commands register them last, so `--help` lists the daily path first.
for module in (ledger_cli, explain_cli, balances_cli, reports_cli, serve_cli, web_cli, config_cli, daily_loop_cli,
               replay_cli, advices_cli):
    module.register(app)
