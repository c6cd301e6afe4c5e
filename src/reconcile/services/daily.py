"""Use cases: one function each, owning its transactions.

The CLI and the Prefect flows call these and nothing deeper. Each function
takes the engine (and the clock, run id and actor where they matter) so a
re-run reproduces and tests run without Prefect.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Engine, func, select, update

from reconcile.config import Config, MatchingRules
from reconcile.core import frames
from reconcile.core.errors import ReconcileError
from reconcile.core.money import format_minor
from reconcile.ledger.check import check_ledger
from reconcile.ledger.post import post_chunk
from reconcile.ledger.returns import pair_returns
from reconcile.ledger.reverse import apply_return
from reconcile.match import Book, MatchResult, match_lines
from reconcile.match.partition import Mapper, match_partitioned
from reconcile.parsers import parse_bytes, read_statement
from reconcile.parsers.base import ParseOptions
from reconcile.receivables.snapshot import read_snapshot
from reconcile.receivables.store import LoadCounts, store_snapshot
from reconcile.statements.ingest import IngestResult, sha256, store_parsed
from reconcile.store import db, repo, tables
from reconcile.store.runlock import posting_lock

POST_CHUNK_LINES = 5000
CONNECTION_ATTEMPTS = 4       # a chunk whose connection drops is retried on a fresh one
RETRY_PAUSE_SECONDS = 0.5


def utcnow() -> datetime:
    return datetime.now(UTC)


def init_database(engine: Engine) -> None:
    db.upgrade(engine)


def load_ar(engine: Engine, directory: str | Path, now: datetime | None = None) -> LoadCounts:
    """Validate the whole snapshot first, then store it in one transaction."""
    snapshot = read_snapshot(directory)
    with db.transaction(engine) as session:
        return store_snapshot(session, snapshot, now or utcnow())


def ingest_file(
    engine: Engine, path: str | Path, options: ParseOptions, *, now: datetime | None = None,
    account: str | None = None,
) -> IngestResult:
    """Parse one statement file with the configured parse options (profiles, time zones, a chosen
    profile) and store its lines; a file that fails stores nothing."""
    path = Path(path)
    data = read_statement(path)
    parsed = parse_bytes(data, path, options)
    with db.transaction(engine) as session:
        return store_parsed(session, path, sha256(data), parsed, now or utcnow(), account)


# --- the posting run -------------------------------------------------------


@dataclass
class RunSummary:
    run_id: str
    as_of: str
    dry_run: bool
    lines_considered: int = 0
    lines_posted: int = 0
    lines_exception: int = 0
    lines_skipped: int = 0
    posted: dict[str, str] = field(default_factory=dict)        # currency -> amount posted to items
    on_account: dict[str, str] = field(default_factory=dict)    # currency -> amount kept as credit
    written_off: dict[str, str] = field(default_factory=dict)
    exceptions_by_reason: dict[str, int] = field(default_factory=dict)
    exception_amounts: dict[str, str] = field(default_factory=dict)
    allocations: int = 0
    returns: int = 0
    status: str = "completed"
    violations: list[str] = field(default_factory=list)  # ledger invariants broken after the run

    @property
    def auto_rate(self) -> float:
        decided = self.lines_posted + self.lines_exception
        return self.lines_posted / decided if decided else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "auto_rate": round(self.auto_rate, 4)}


def _sum_by_currency(frame: pl.DataFrame) -> dict[str, str]:
    if frame.height == 0:
        return {}
    totals = frame.group_by("currency").agg(pl.col("amount_minor").sum()).sort("currency")
    return {c: format_minor(a, c) for c, a in totals.iter_rows()}


def load_book(engine: Engine) -> Book:
    with db.transaction(engine) as session:
        return Book(
            customers=repo.customers(session),
            aliases=repo.aliases(session),
            payer_accounts=repo.payer_accounts(session),
            invoices=repo.known_invoices(session),
            installments=repo.open_installments(session),
        )


def _lines_for_run(engine: Engine) -> pl.DataFrame:
    """Unmatched lines, and open unclaimed exceptions (new data may now explain them)."""
    with db.transaction(engine) as session:
        lines = repo.lines_to_match(session, ("unmatched", "exception"))
        ex = tables.ExceptionItem
        # a person holds it, or it was unapplied on purpose: only a person decides those
        claimed = session.execute(
            select(ex.bank_line_id).where(
                ex.status == "open", ex.claimed_by.is_not(None) | (ex.reason == "unapplied")
            )
        ).scalars().all()
        bl = tables.BankLine
        generations = repo.frame_of(
            session, select(bl.id, bl.generation).where(bl.status.in_(("unmatched", "exception"))),
            {"bank_line_id": pl.Int64(), "generation": pl.Int64()},
        )
    if claimed:
        lines = lines.filter(~pl.col("bank_line_id").is_in(claimed))
    return lines.join(generations, on="bank_line_id", how="left")


def _with_installment_ids(allocations: pl.DataFrame, book: Book) -> pl.DataFrame:
    keys = book.installments.select("invoice_number", "installment_no", "installment_id")
    return allocations.join(keys, on=["invoice_number", "installment_no"], how="left")


def _summarise(summary: RunSummary, lines: pl.DataFrame, result: MatchResult) -> None:
    alloc = result.allocations
    summary.lines_considered = lines.height
    summary.lines_posted = alloc["bank_line_id"].n_unique() if alloc.height else 0
    summary.lines_exception = result.exceptions.height
    summary.lines_skipped = result.skipped.height
    summary.allocations = alloc.height
    summary.returns = result.returns.height
    summary.posted = _sum_by_currency(alloc.filter(pl.col("kind").is_in(["invoice", "installment"])))
    summary.on_account = _sum_by_currency(alloc.filter(pl.col("kind") == "on_account"))
    summary.written_off = _sum_by_currency(
        alloc.filter(pl.col("kind") == "write_off").with_columns(-pl.col("amount_minor"))
    )
    summary.exceptions_by_reason = dict(sorted(Counter(result.exceptions["reason"].to_list()).items()))
    queued = lines.join(result.exceptions.select("bank_line_id"), on="bank_line_id")
    summary.exception_amounts = _sum_by_currency(queued)


def new_run_id(now: datetime) -> str:
    return f"run-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def run_inputs(engine: Engine) -> tuple[pl.DataFrame, Book]:
    """What a run works on: the lines to match (with their generation) and the open book."""
    return _lines_for_run(engine), load_book(engine)


def decide(lines: pl.DataFrame, book: Book, rules: MatchingRules, partitions: int = 1, mapper: Mapper = map) -> MatchResult:
    """Pure matching of lines against the book (no database); partitions > 1 decide independent groups of
    customers through `mapper` (Prefect tasks on a Dask cluster), with exactly the same result."""
    lines = lines.drop("generation", strict=False)
    if partitions <= 1:
        return match_lines(lines, book, rules)
    return match_partitioned(lines, book, rules, partitions, mapper)


def decide_run(engine: Engine, lines: pl.DataFrame, book: Book, rules: MatchingRules, partitions: int = 1,
               mapper: Mapper = map) -> MatchResult:
    """The run's decisions: matching, then bank returns paired with the payments they take back."""
    return find_returns(engine, lines, decide(lines, book, rules, partitions, mapper))


def find_returns(engine: Engine, lines: pl.DataFrame, result: MatchResult) -> MatchResult:
    """Pair debits that take back an earlier payment with it (returns.py); queue reversal entries left unpaired.

    A returned credit of this same run is neither posted nor queued.
    """
    debits = lines.filter(pl.col("amount_minor") < 0)
    if debits.height == 0:
        return result
    with db.transaction(engine) as session:
        posted = repo.posted_credits(session, debits["account"].unique().to_list(),
                                     (-debits["amount_minor"]).unique().to_list())
    in_run = lines.filter(pl.col("amount_minor") > 0)
    credits = pl.concat([posted, in_run.select(posted.columns)])
    pairs, unpaired = pair_returns(debits, credits)
    taken = pl.concat([pairs["debit_line_id"], pairs["credit_line_id"], unpaired["bank_line_id"]]).implode()
    queued = frames.from_records([
        {"bank_line_id": i, "reason": "return_unmatched",
         "evidence": json.dumps({"why": "a bank reversal entry that names no single earlier payment"})}
        for i in unpaired["bank_line_id"].to_list()
    ], frames.EXCEPTIONS)
    return MatchResult(
        allocations=result.allocations.filter(~pl.col("bank_line_id").is_in(taken)),
        exceptions=pl.concat([result.exceptions.filter(~pl.col("bank_line_id").is_in(taken)), queued]),
        skipped=result.skipped.filter(~pl.col("bank_line_id").is_in(taken)),
        returns=pairs,
    )


def summarise(run_id: str, as_of: date, dry_run: bool, lines: pl.DataFrame, result: MatchResult) -> RunSummary:
    summary = RunSummary(run_id=run_id, as_of=as_of.isoformat(), dry_run=dry_run)
    _summarise(summary, lines, result)
    return summary


def begin_run(engine: Engine, run_id: str, as_of: date, actor: str, now: datetime) -> None:
    with db.transaction(engine) as session:
        session.add(tables.PostingRun(
            run_id=run_id, started_at=now, as_of=as_of, status="running", dry_run=False, actor=actor,
        ))


def post_result(
    engine: Engine, run_id: str, lines: pl.DataFrame, book: Book, result: MatchResult, actor: str, now: datetime,
    chunk_lines: int = POST_CHUNK_LINES,
) -> None:
    """Post decisions chunk by chunk in booking order; each chunk is one transaction."""
    allocations = _with_installment_ids(result.allocations, book)
    order = lines.sort("booking_date", "bank_line_id").select(
        "bank_line_id", (pl.int_range(pl.len()) // chunk_lines + 1).alias("_chunk")
    )
    total = (lines.height + chunk_lines - 1) // chunk_lines

    def by_chunk(frame: pl.DataFrame, key: str = "bank_line_id") -> dict[int, pl.DataFrame]:
        keyed = frame.join(order.rename({"bank_line_id": key}), on=key, how="left")
        return {k[0]: part.drop("_chunk") for k, part in keyed.partition_by("_chunk", as_dict=True).items()}

    parts = {
        "lines": by_chunk(lines), "allocations": by_chunk(allocations), "exceptions": by_chunk(result.exceptions),
        "skipped": by_chunk(result.skipped), "returns": by_chunk(result.returns, "debit_line_id"),
    }
    for number in range(1, total + 1):
        chunk = {name: frames_.get(number) for name, frames_ in parts.items()}
        marker = f"chunk {number} of {total}"
        for attempt in range(1, CONNECTION_ATTEMPTS + 1):
            try:
                _post_one_chunk(engine, run_id, chunk, result, actor, now, marker)
                break
            except Exception as exc:
                if not db.lost_connection(exc):
                    raise
                if _chunk_committed(engine, run_id, marker):
                    break  # the commit reached the server; only its answer was lost
                if attempt == CONNECTION_ATTEMPTS:
                    raise ReconcileError(
                        f"database connection lost while posting chunk {number} of {total} "
                        f"({CONNECTION_ATTEMPTS} attempts): the chunks before it are committed, this one was "
                        f"rolled back; run `reconcile run` again to post the rest ({type(exc.orig).__name__})"
                    ) from None
                time.sleep(RETRY_PAUSE_SECONDS * attempt)


def _chunk_committed(engine: Engine, run_id: str, marker: str) -> bool:
    """After a lost connection: did this chunk's transaction commit anyway? (its marker is in the audit log)"""
    try:
        with db.transaction(engine) as session:
            a = tables.AuditEntry
            return session.execute(
                select(func.count()).select_from(a).where(a.run_id == run_id, a.action == "run_chunk", a.reason == marker)
            ).scalar_one() > 0
    except Exception as exc:
        if db.lost_connection(exc):
            return False
        raise


def _post_one_chunk(
    engine: Engine, run_id: str, chunk: dict[str, pl.DataFrame | None], result: MatchResult, actor: str,
    now: datetime, marker: str,
) -> None:
    """One chunk's lines, with their decisions, in one transaction."""
    def part(name: str, empty: pl.DataFrame) -> pl.DataFrame:
        found = chunk[name]
        return empty.clear() if found is None else found

    lines = chunk["lines"]
    assert lines is not None  # every chunk has lines: chunks are cut from the lines
    with db.transaction(engine) as session:
        post_chunk(
            session, lines=lines, allocations=part("allocations", result.allocations),
            exceptions=part("exceptions", result.exceptions), skipped=part("skipped", result.skipped),
            run_id=run_id, actor=actor, now=now,
        )
        for debit, credit, evidence in part("returns", result.returns).iter_rows():
            apply_return(session, debit, credit, evidence=evidence, actor=actor, now=now, run_id=run_id)
        # commits with the chunk: tells a retry after a lost connection whether the chunk is in
        session.add(tables.AuditEntry(at=now, actor=actor, action="run_chunk", run_id=run_id, reason=marker,
                                      details=json.dumps({"lines": lines.height})))


def run_posting(
    engine: Engine,
    *,
    config: Config,
    as_of: date | None = None,
    dry_run: bool = False,
    actor: str = "system",
    run_id: str | None = None,
    now: datetime | None = None,
    partitions: int | None = None,
    mapper: Mapper = map,
) -> RunSummary:
    """Match every unmatched credit, post what is certain, queue the rest, skip non-receivables.

    Runs hold a database-wide lock, so two runs started together post each
    line once; each chunk of lines commits on its own, so a run killed midway
    leaves whole chunks and the next run picks up the rest.
    """
    rules = config.matching
    now = now or utcnow()
    as_of = as_of or now.date()
    run_id = run_id or new_run_id(now)

    with posting_lock(engine):
        lines, book = run_inputs(engine)
        if partitions is None:
            partitions = config.scale.partitions
        result = decide_run(engine, lines, book, rules, partitions, mapper)
        summary = summarise(run_id, as_of, dry_run, lines, result)
        if dry_run:
            return summary
        begin_run(engine, run_id, as_of, actor, now)
        try:
            post_result(engine, run_id, lines, book, result, actor, now,
                        chunk_lines=config.posting.chunk_lines)
        except Exception:
            summary.status = "failed"
            try:
                finish_run(engine, run_id, summary)
            except Exception as exc:
                if not db.lost_connection(exc):
                    raise
            raise
        summary.violations = [str(v) for v in check_ledger_now(engine)]
        if summary.violations:
            summary.status = "failed"
        finish_run(engine, run_id, summary)
    return summary


def check_ledger_now(engine: Engine) -> list:
    """The ledger's invariants after a run (ledger_check.py): [] when all hold."""
    with db.transaction(engine) as session:
        return check_ledger(session)


def finish_run(engine: Engine, run_id: str, summary: RunSummary) -> None:
    with db.transaction(engine) as session:
        session.execute(
            update(tables.PostingRun).where(tables.PostingRun.run_id == run_id).values(
                finished_at=utcnow(), status=summary.status, summary=json.dumps(summary.to_dict()),
            )
        )
