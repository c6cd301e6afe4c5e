"""The statement inbox: which files a daily run picks up, where they go after, and the day without Prefect.

Plain functions over folders (pending, archive, quarantine) and the whole daily
run as one plain function (run_day), which flows/daily.py orchestrates step by
step. Parsing, storing and posting stay in reconcile.service.
"""

from __future__ import annotations

import errno
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Engine, select

from reconcile.config import Config, InboxConfig
from reconcile.core import frames
from reconcile.core.errors import InputError, ReconcileError
from reconcile.parsers import parse_file
from reconcile.parsers.base import ParseOptions
from reconcile.services import daily as service
from reconcile.store import db, repo, tables
from reconcile.store.runlock import posting_lock

# Files still being written by whoever delivers them; picked up on a later run.
PARTIAL_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".filepart")
REASON_SUFFIX = ".reason.txt"
# OS errors worth another try: the share or disk hiccupped, the file is fine.
TRANSIENT_ERRNOS = frozenset({
    errno.EIO, errno.EAGAIN, errno.EBUSY, errno.EINTR, errno.ETIMEDOUT, errno.ESTALE,
    errno.ENETDOWN, errno.ENETUNREACH, errno.ENETRESET, errno.ECONNRESET, errno.ECONNABORTED,
    errno.EHOSTUNREACH,
})


@dataclass(frozen=True)
class InboxSettings:
    """Folders of the daily run. archive and quarantine are relative to the inbox unless absolute."""

    path: Path
    archive: Path
    quarantine: Path
    receivables: Path

    @classmethod
    def from_config(cls, config: InboxConfig, inbox: str | Path | None = None) -> InboxSettings:
        path = Path(inbox) if inbox else Path(config.path)
        return cls(path=path, archive=path / config.archive, quarantine=path / config.quarantine,
                   receivables=Path(config.receivables))


def pending_files(inbox: Path) -> list[Path]:
    """Statement files waiting in the inbox, by name; sub-folders, hidden and partial files are left alone."""
    if not inbox.is_dir():
        return []
    return sorted(
        p for p in inbox.iterdir()
        if p.is_file() and not p.name.startswith(".")
        and not p.name.lower().endswith(PARTIAL_SUFFIXES) and not p.name.endswith(REASON_SUFFIX)
    )


def free_name(folder: Path, name: str) -> Path:
    """`folder/name`, or `folder/stem-2.ext`, `-3`, ... when a file of that name is already there."""
    candidate = folder / name
    stem, suffix = Path(name).stem, Path(name).suffix
    n = 1
    while candidate.exists():
        n += 1
        candidate = folder / f"{stem}-{n}{suffix}"
    return candidate


def archive_file(path: Path, archive: Path, day: date) -> Path:
    """Move a processed file into the archive's dated folder (archive/YYYY-MM-DD/); returns where it went."""
    folder = archive / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    target = free_name(folder, path.name)
    shutil.move(path, target)
    return target


def quarantine_file(path: Path, quarantine: Path, reason: str) -> Path:
    """Move a file that cannot be read into quarantine, with `<name>.reason.txt` beside it."""
    quarantine.mkdir(parents=True, exist_ok=True)
    target = free_name(quarantine, path.name)
    shutil.move(path, target)
    target.with_name(target.name + REASON_SUFFIX).write_text(reason.rstrip("\n") + "\n", encoding="utf-8")
    return target


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: a dropped database connection or a passing OS error. Never an InputError (bad file)."""
    if isinstance(exc, ReconcileError):
        return False
    if isinstance(exc, OSError):
        return exc.errno in TRANSIENT_ERRNOS or isinstance(exc, TimeoutError | ConnectionError)
    return db.lost_connection(exc)


# --- one file --------------------------------------------------------------


@dataclass
class FileOutcome:
    """What happened to one inbox file. status: ingested, already imported, quarantined,
    or in a dry run: would ingest, would quarantine."""

    file: str
    status: str
    format: str | None = None
    lines: int = 0
    new_lines: int = 0
    reason: str | None = None
    moved_to: str | None = None

    @property
    def is_bad(self) -> bool:
        return self.status in ("quarantined", "would quarantine")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ingest_one(engine: Engine, path: Path, quarantine: Path, options: ParseOptions,
               now: datetime | None = None) -> FileOutcome:
    """Store one file's lines; a file that is not a readable statement goes to quarantine with its reason.

    Anything else (a dropped connection, a disk error) propagates, and the file stays in the inbox.
    """
    try:
        result = service.ingest_file(engine, path, options, now=now)
    except InputError as exc:
        moved = quarantine_file(path, quarantine, str(exc))
        return FileOutcome(path.name, "quarantined", reason=str(exc), moved_to=str(moved))
    return FileOutcome(
        path.name, "already imported" if result.already_imported else "ingested",
        result.format, result.lines, result.new_lines,
    )


def check_one(path: Path, options: ParseOptions) -> FileOutcome:
    """Dry run: parse only; nothing stored, nothing moved."""
    try:
        parsed = parse_file(path, options)
    except InputError as exc:
        return FileOutcome(path.name, "would quarantine", reason=str(exc))
    return FileOutcome(path.name, "would ingest", parsed.format, parsed.line_count)


def archive_outcomes(outcomes: list[FileOutcome], inbox: Path, archive: Path, day: date) -> list[FileOutcome]:
    """Archive every file that was stored (or had been before); quarantined files are already gone."""
    done = []
    for outcome in outcomes:
        if outcome.status in ("ingested", "already imported"):
            outcome = replace(outcome, moved_to=str(archive_file(inbox / outcome.file, archive, day)))
        done.append(outcome)
    return done


# --- dry run over files not yet stored -------------------------------------


def _unstored_lines(engine: Engine, paths: list[Path], options: ParseOptions) -> pl.DataFrame:
    """Lines of these files that the database does not hold yet, in the matcher's schema (ids < 0)."""
    parts = []
    for path in paths:
        for statement in parse_file(path, options).statements:
            parts.append(statement.lines.with_columns(pl.lit(statement.account).alias("account")))
    columns = [c for c in frames.MATCH_LINES if c != "bank_line_id"]
    if not parts:
        return frames.empty({**frames.MATCH_LINES, "generation": pl.Int64()})
    lines = (
        pl.concat([p.select(columns) for p in parts], how="vertical_relaxed")
        .with_columns(pl.col("is_reversal").fill_null(False))
        .unique(["account", "source_ref"], keep="first", maintain_order=True)
    )
    bl = tables.BankLine
    known = []
    with db.transaction(engine) as session:
        for _, among in repo.among(session, bl.source_ref, lines["source_ref"].unique().to_list()):
            known.append(repo.frame_of(
                session, select(bl.account, bl.source_ref).where(among),
                {"account": pl.String(), "source_ref": pl.String()},
            ))
    if known:
        lines = lines.join(pl.concat(known), on=["account", "source_ref"], how="anti")
    return lines.with_columns(
        (-pl.int_range(1, lines.height + 1, dtype=pl.Int64)).alias("bank_line_id"),
        pl.lit(0, dtype=pl.Int64).alias("generation"),
    ).select("bank_line_id", *columns, "generation").cast(
        {**frames.MATCH_LINES, "generation": pl.Int64()})  # type: ignore[dict-item]


def preview_posting(
    engine: Engine, config: Config, paths: list[Path], as_of: date, now: datetime,
) -> service.RunSummary:
    """What a run would post if these files were stored now: stored lines plus theirs; nothing is written."""
    rules = config.matching
    with posting_lock(engine):
        stored, book = service.run_inputs(engine, always_book=True)
        new = _unstored_lines(engine, paths, config.parse_options())
        lines = pl.concat([stored, new.select(stored.columns).cast(stored.schema)]) if new.height else stored
        result = service.decide_run(engine, lines, book, rules, queue=config.queue, rates=config.fx_rates())
    return service.summarise(service.new_run_id(now), as_of, True, lines, result)


# --- the whole day, without Prefect ----------------------------------------


@dataclass
class DayReport:
    """A daily run: the posting summary plus what happened to each inbox file."""

    summary: service.RunSummary
    inbox: str
    files: list[FileOutcome] = field(default_factory=list)
    duration_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return day_dict(self.summary.to_dict(), self.inbox, [f.to_dict() for f in self.files], self.duration_seconds)


def day_dict(summary: dict[str, Any], inbox: str, files: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    """The run summary as flows and the CLI return it: the posting summary plus the files."""
    bad = [f for f in files if f["status"] in ("quarantined", "would quarantine")]
    return {
        **summary,
        "inbox": inbox,
        "files": files,
        "files_quarantined": len(bad),
        "duration_seconds": round(seconds, 3),
    }


def run_day(
    engine: Engine,
    config: Config,
    *,
    inbox: str | Path | None = None,
    as_of: date | None = None,
    dry_run: bool = False,
    actor: str = "system",
    now: datetime | None = None,
    progress: service.Progress | None = None,
) -> DayReport:
    """The daily posting run as plain calls: ingest each inbox file (bad ones to quarantine), post, archive.

    Files are archived only after a completed run; until then they stay in the
    inbox, and a re-run re-reads them as already imported. A dry run stores,
    posts and moves nothing.
    """
    started = time.perf_counter()
    now = now or service.utcnow()
    day = as_of or now.date()
    box = InboxSettings.from_config(config.inbox, inbox)
    options = config.parse_options()
    paths = pending_files(box.path)
    if dry_run:
        outcomes = [check_one(p, options) for p in paths]
        good = [box.path / o.file for o in outcomes if not o.is_bad]
        summary = preview_posting(engine, config, good, day, now)
    else:
        outcomes = []
        for number, p in enumerate(paths, 1):  # progress(phase, done, total): the CLI's bars
            outcomes.append(ingest_one(engine, p, box.quarantine, options, now))
            if progress is not None:
                progress("ingest", number, len(paths))
        summary = service.run_posting(engine, config=config, as_of=day, actor=actor, now=now, progress=progress)
        if summary.status == "completed":
            outcomes = archive_outcomes(outcomes, box.path, box.archive, day)
    return DayReport(summary, str(box.path), outcomes, time.perf_counter() - started)


class RunFailed(ReconcileError):
    """A posting run that finished but failed (e.g. a ledger check); carries the day's report (day_dict)."""

    def __init__(self, message: str, report: dict[str, Any]) -> None:
        super().__init__(message, report)  # both in args, so the error pickles whole
        self.message = message
        self.report = report

    def __str__(self) -> str:
        return self.message
