"""The daily posting run, the receivables load and the reports as Prefect flows.

Each task is a few lines calling reconcile.service or reconcile.inbox and
passes paths, ids and counts, never frames. Caching is off for every task that
writes: exactly-once comes from the ledger, not from Prefect. Retries sit only
on the tasks that touch files or the database, and only for transient errors;
a bad file is an InputError and goes to quarantine instead. The same day
without Prefect is reconcile.inbox.run_day.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_logger
from prefect.states import Completed, Failed, State
from sqlalchemy import Engine

from reconcile.config import Config, load_config
from reconcile.flows.notify import failure_payload, notify_failure
from reconcile.flows.scale import dask_mapper, dask_setting, partitions_for
from reconcile.services import daily as service
from reconcile.statements import inbox as inbox_lib
from reconcile.store import db

RETRIES = 3
RETRY_DELAYS: list[float] = [2, 10, 30]  # seconds: a share or database coming back after a blip


@lru_cache(maxsize=8)
def _engine(db_url: str | None) -> Engine:
    """One engine per database per process; tasks run in threads and share its pool."""
    return db.make_engine(db_url)


@lru_cache(maxsize=8)
def _config(config_dir: str | None) -> Config:
    """The configuration a flow run was started with, validated once per process (tasks get the folder)."""
    return load_config(config_dir)


# --- progress: a bar in `reconcile run` on a terminal, throttled log lines everywhere else ---------

Reporter = Callable[[str, int, int], None]  # (phase, done, total): "ingest", "matching", "posting"
_reporter: Reporter | None = None
LOG_EVERY_SECONDS = 10.0


@contextmanager
def reporting(reporter: Reporter) -> Iterator[None]:
    """Send this process's flow progress to `reporter` (the CLI's bars) while the block runs."""
    global _reporter
    saved, _reporter = _reporter, reporter
    try:
        yield
    finally:
        _reporter = saved


class _LogLines:
    """Progress as plain log lines (Prefect's run log): a phase's start, its end, and every 10 s."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        with self._lock:
            if 0 < done < total and now - self._last.get(phase, 0.0) < LOG_EVERY_SECONDS:
                return
            self._last[phase] = now
        unit = {"posting": "chunks", "ingest": "files"}.get(phase, "lines")
        get_run_logger().info("%s: %d of %d %s", phase, done, total, unit)


def _progress() -> Reporter:
    return _reporter or _LogLines()


async def _notify_on_failure(flow: Any, flow_run: Any, state: State) -> None:
    """on_failure / on_crashed: tell [notify] (webhook, Prefect block); never raises."""
    try:
        from prefect.settings import PREFECT_UI_URL

        config = _config(flow_run.parameters.get("config_dir"))
        if not (config.notify.webhook_url or config.notify.prefect_block):
            return
        result = await state.aresult(raise_on_failure=False) if state.data is not None else None
        report = result.report if isinstance(result, inbox_lib.RunFailed) else None
        ui = PREFECT_UI_URL.value()
        payload = failure_payload(
            state=state.name or str(state.type), message=state.message or "", flow_run=flow_run.name,
            flow_run_id=str(flow_run.id), report=report,
            ui_url=f"{ui}/runs/flow-run/{flow_run.id}" if ui else None,
        )
        # an executor thread carries neither the run context nor a loop, so Prefect's blocks answer
        # synchronously there, as they do for a run without Prefect
        await asyncio.get_running_loop().run_in_executor(None, notify_failure, config.notify, payload)
    except Exception as exc:  # noqa: BLE001 - a notification problem never changes the run's outcome
        get_logger("reconcile.notify").warning("failure notification not sent: %s", exc)


def _transient(task: Any, task_run: Any, state: State) -> bool:
    """Retry condition: only errors inbox_lib.is_transient accepts (never a bad file)."""
    try:
        state.result(_sync=True)  # type: ignore[call-overload]  # called inside the async flow's loop
    except Exception as exc:  # noqa: BLE001 - sorting any failure into retry or not
        return inbox_lib.is_transient(exc)
    return False


@task(cache_policy=NO_CACHE, retries=RETRIES, retry_delay_seconds=RETRY_DELAYS, retry_condition_fn=_transient,
      task_run_name="ingest {path}")
async def ingest_statement(db_url: str | None, config_dir: str, path: str, quarantine: str) -> dict[str, Any]:
    options = _config(config_dir).parse_options()
    return inbox_lib.ingest_one(_engine(db_url), Path(path), Path(quarantine), options).to_dict()


@task(cache_policy=NO_CACHE, task_run_name="check {path}")
async def check_statement(config_dir: str, path: str) -> dict[str, Any]:
    return inbox_lib.check_one(Path(path), _config(config_dir).parse_options()).to_dict()


# No Prefect retries: run_posting retries a chunk whose connection dropped itself, knowing what committed.
@task(cache_policy=NO_CACHE)
async def match_and_post(
    db_url: str | None, config_dir: str, as_of: str, dry_run: bool, actor: str, new_files: list[str],
    dask: str | None = None,
) -> dict[str, Any]:
    engine, config, day = _engine(db_url), _config(config_dir), date.fromisoformat(as_of)
    if dry_run:
        return inbox_lib.preview_posting(engine, config, [Path(p) for p in new_files], day, service.utcnow()).to_dict()
    cluster = dask_setting(config, dask)
    if not cluster:
        return service.run_posting(engine, config=config, as_of=day, actor=actor, progress=_progress()).to_dict()
    get_run_logger().info("matching on the Dask cluster %s", cluster)
    with dask_mapper(cluster, config.scale.dask_workers) as mapper:
        return service.run_posting(engine, config=config, as_of=day, actor=actor, partitions=partitions_for(config),
                                   mapper=mapper, progress=_progress()).to_dict()


@task(cache_policy=NO_CACHE, retries=RETRIES, retry_delay_seconds=RETRY_DELAYS, retry_condition_fn=_transient)
async def archive_statements(
    files: list[dict[str, Any]], folder: str, archive: str, as_of: str,
) -> list[dict[str, Any]]:
    # a retry finds the files it already moved gone from the inbox, and leaves them be
    present = [inbox_lib.FileOutcome(**f) for f in files if f["status"] not in ("ingested", "already imported")
               or (Path(folder) / f["file"]).exists()]
    moved = inbox_lib.archive_outcomes(present, Path(folder), Path(archive), date.fromisoformat(as_of))
    return [f.to_dict() for f in moved]


async def _file_outcome(path: Path, state: State) -> dict[str, Any]:
    result = await state.aresult(raise_on_failure=False)
    if isinstance(result, BaseException):  # not a bad file: retried and still failing, so it waits for the next run
        return inbox_lib.FileOutcome(path.name, "left in inbox", reason=f"{type(result).__name__}: {result}").to_dict()
    return result


def _warnings(files: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f for f in files if f["status"] in ("quarantined", "would quarantine", "left in inbox")]


def _amounts(values: dict[str, str]) -> str:
    return ", ".join(f"{amount} {currency}" for currency, amount in values.items()) or "-"


def summary_rows(report: dict[str, Any]) -> list[dict[str, str]]:
    """The run in measure/value rows: the table artifact, and the head of the markdown one."""
    files = report["files"]
    rows = [
        ("files", len(files)),
        ("files quarantined", report["files_quarantined"]),
        ("files left in inbox (errors)", sum(f["status"] == "left in inbox" for f in files)),
        ("lines in files", sum(f["lines"] for f in files)),
        ("new lines stored", sum(f["new_lines"] for f in files)),
        ("lines considered", report["lines_considered"]),
        ("lines posted", report["lines_posted"]),
        ("posted amount", _amounts(report["posted"])),
        ("kept on account", _amounts(report["on_account"])),
        ("written off", _amounts(report["written_off"])),
        ("queued for review", report["lines_exception"]),
        ("queued amount", _amounts(report["exception_amounts"])),
        *((f"exceptions: {reason}", count) for reason, count in report["exceptions_by_reason"].items()),
        ("not receivables (skipped)", report["lines_skipped"]),
        ("automatic posting rate", f"{report['auto_rate'] * 100:.1f} %"),
        ("duration", f"{report['duration_seconds']:.1f} s"),
        ("status", report["status"]),
    ]
    return [{"measure": k, "value": str(v)} for k, v in rows]


def summary_markdown(report: dict[str, Any]) -> str:
    dry = " (dry run: nothing stored, posted or moved)" if report["dry_run"] else ""
    out = [f"# Posting run {report['run_id']}, as of {report['as_of']}{dry}", "", f"Inbox: `{report['inbox']}`", ""]
    warnings = _warnings(report["files"])
    if warnings:
        out += ["## Warnings", ""]
        out += [f"- **{f['file']}** {f['status']}: {f['reason']}" for f in warnings]
        out.append("")
    out += ["## Summary", "", "| measure | value |", "|---|---|"]
    out += [f"| {r['measure']} | {r['value']} |" for r in summary_rows(report)]
    if report["files"]:
        out += ["", "## Files", "", "| file | status | format | lines | new | archived to |",
                "|---|---|---|---:|---:|---|"]
        out += [f"| {f['file']} | {f['status']} | {f['format'] or ''} | {f['lines']} | {f['new_lines']} | "
                f"{f['moved_to'] or ''} |" for f in report["files"]]
    for violation in report.get("violations", []):
        out.append(f"\n**ledger check failed:** {violation}")
    return "\n".join(out)


# async: Prefect's async engine does not wait for the heartbeat thread at the end of a run (the sync
# engine joins it, which costs up to 1 s); its tasks are async so they share the flow's API client.
# Synchronous callers use run_posting_flow.
@flow(name="daily-posting-run", log_prints=True, on_failure=[_notify_on_failure],
      on_crashed=[_notify_on_failure])
async def posting_run_flow(
    db_url: str | None = None,
    config_dir: str | None = None,
    inbox: str | None = None,
    as_of: str | None = None,
    dry_run: bool = False,
    actor: str = "system",
    dask: str | None = None,
) -> Any:
    """Ingest the inbox's files (bad ones quarantined), match and post, archive, publish the summary.

    db_url and config_dir default to $RECONCILE_DB_URL / $RECONCILE_CONFIG_DIR on the
    machine that runs the flow, so no password travels as a flow parameter. `dask` (an address
    or "local") decides the matching on a Dask cluster; default [scale] dask_address.
    A failed or crashed run is announced as [notify] says.
    """
    started = time.perf_counter()
    logger = get_run_logger()
    config = _config(config_dir)
    folder = str(config.directory)
    box = inbox_lib.InboxSettings.from_config(config.inbox, inbox)
    day = as_of or service.utcnow().date().isoformat()
    if not box.path.is_dir():
        logger.warning("inbox folder %s does not exist: no statement files picked up ([inbox] path or --inbox)",
                       box.path.resolve())
    paths = inbox_lib.pending_files(box.path)

    progress = _progress()
    files = []
    for number, p in enumerate(paths, 1):
        if dry_run:
            files.append(await check_statement(folder, str(p)))
        else:
            # Prefect types an async task's State as not awaitable; at run time it is a coroutine
            state = await ingest_statement(db_url, folder, str(p), str(box.quarantine),  # type: ignore[misc]
                                           return_state=True)
            files.append(await _file_outcome(p, state))
        progress("ingest", number, len(paths))
    new_files = [str(box.path / f["file"]) for f in files if f["status"] == "would ingest"]
    posting = await match_and_post(db_url, folder, day, dry_run, actor, new_files, dask,  # type: ignore[misc]
                                   return_state=True)
    if posting.is_failed():
        error = await posting.aresult(raise_on_failure=False)
        await acreate_markdown_artifact(
            markdown=f"# Posting run as of {day} failed\n\n{type(error).__name__}: {error}\n\n"
                     "Committed chunks stay posted; the inbox files were not archived. Run again to post the rest.",
            key="posting-run-summary",
        )
        raise error if isinstance(error, BaseException) else RuntimeError(str(error))
    summary = await posting.aresult()
    if not dry_run and summary["status"] == "completed":
        files = await archive_statements(files, str(box.path), str(box.archive), day)
        # the balances follow every completed run from here rather than from a Prefect automation on the
        # run's Completed event, which Prefect 3.9's server never fired for a served deployment (tried on
        # SQLite and PostgreSQL)
        await publish_balances(db_url, folder, day)

    report = inbox_lib.day_dict(summary, str(box.path), files, time.perf_counter() - started)
    await acreate_markdown_artifact(markdown=summary_markdown(report), key="posting-run-summary")
    await acreate_table_artifact(table=summary_rows(report), key="posting-run-table")
    warnings = _warnings(files)
    for f in warnings:
        logger.warning("%s %s: %s", f["file"], f["status"], f["reason"])
    if summary["status"] != "completed":
        message = f"posting run {summary['run_id']} {summary['status']}: " + "; ".join(summary["violations"])
        return Failed(message=message, data=inbox_lib.RunFailed(message, report))
    if warnings:
        names = ", ".join(f["file"] for f in warnings)
        return Completed(message=f"completed with warnings: {len(warnings)} file(s) not ingested: {names}", data=report)
    return report


def run_posting_flow(**parameters: Any) -> Any:
    """posting_run_flow from synchronous code (the CLI, the demo, scripts): its result, or its State
    with return_state=True."""
    return asyncio.run(posting_run_flow(**parameters))


@task(cache_policy=NO_CACHE, retries=RETRIES, retry_delay_seconds=RETRY_DELAYS, retry_condition_fn=_transient)
def load_snapshot(db_url: str | None, folder: str) -> dict[str, int]:
    return asdict(service.load_ar(_engine(db_url), folder))


@flow(name="load-ar", log_prints=True)
def load_ar_flow(db_url: str | None = None, config_dir: str | None = None, folder: str | None = None) -> dict[str, int]:
    """Load the receivables snapshot (all or nothing) from `folder`, default [inbox] receivables."""
    folder = folder or str(inbox_lib.InboxSettings.from_config(_config(config_dir).inbox).receivables)
    counts = load_snapshot(db_url, folder)
    create_table_artifact(table=[{"what": k, "count": v} for k, v in counts.items()], key="receivables-load")
    return counts


@task(cache_policy=NO_CACHE)
def balance_totals(db_url: str | None, config_dir: str | None, as_of: str, output: str | None) -> dict[str, Any]:
    return _balance_totals(db_url, config_dir, as_of, output)


async def publish_balances(db_url: str | None, config_dir: str, as_of: str) -> None:
    """The day's balances and aging at the end of a completed posting run (the reports flow's table). A step
    of the flow, not a task: a task run's own events would cost more than the step at a small team's size.
    A failure is logged and leaves the run completed: its postings are in."""
    try:
        result = _balance_totals(db_url, config_dir, as_of, None)
        await acreate_table_artifact(table=result["totals"] or [{"currency": "-"}], key="receivables-balances")
    except Exception as exc:  # noqa: BLE001 - the run's outcome is its posting, not its report
        get_run_logger().warning("balances not published: %s: %s", type(exc).__name__, exc)


def _balance_totals(db_url: str | None, config_dir: str | None, as_of: str, output: str | None) -> dict[str, Any]:
    from reconcile.collectors.balances import balances, bucket_labels
    from reconcile.services.exports import decimal_text, write_csv

    edges = list(_config(config_dir).aging.buckets)
    frame = balances(_engine(db_url), date.fromisoformat(as_of), edges)
    money = ["open", *bucket_labels(edges), "on_account", "pending_application"]
    totals = frame.group_by("currency").agg(pl.col(money).sum(), pl.len().alias("customers")).sort("currency")
    text = totals.with_columns([decimal_text(pl.col(c), pl.col("currency")).alias(c) for c in money])
    written = None
    if output:
        target = Path(output) / f"balances-{as_of}.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        write_csv(frame.with_columns([decimal_text(pl.col(c), pl.col("currency")).alias(c) for c in money]), target)
        written = str(target)
    return {"as_of": as_of, "customers": frame["customer_id"].n_unique(), "totals": text.to_dicts(), "file": written}


@flow(name="reports", log_prints=True)
def reports_flow(
    db_url: str | None = None, config_dir: str | None = None, as_of: str | None = None, output: str | None = None,
) -> dict[str, Any]:
    """Customer balances and aging after posting: totals per currency as an artifact, the detail as CSV in `output`."""
    result = balance_totals(db_url, config_dir, as_of or service.utcnow().date().isoformat(), output)
    create_table_artifact(table=result["totals"] or [{"currency": "-"}], key="receivables-balances")
    return result
