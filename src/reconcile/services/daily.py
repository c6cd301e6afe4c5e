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
from collections.abc import Callable
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from sqlalchemy import Engine, func, select, update

from reconcile.config import Config, MatchingRules, QueueConfig
from reconcile.core import frames
from reconcile.core.errors import ReconcileError
from reconcile.core.evidence import evidence_text
from reconcile.core.money import format_minor
from reconcile.ledger.check import Scope, check_ledger
from reconcile.ledger.post import post_chunk
from reconcile.ledger.returns import pair_returns
from reconcile.ledger.reverse import apply_returns
from reconcile.match import Book, MatchResult, fx
from reconcile.match.advices import awaiting, habits, link
from reconcile.match.advices import plan as plan_advices
from reconcile.match.fx import Rates
from reconcile.parsers import parse_bytes, read_statement
from reconcile.parsers.advice import parse_advice, sniff_advice
from reconcile.parsers.base import ParseOptions
from reconcile.receivables.snapshot import read_snapshot
from reconcile.receivables.store import LoadCounts, store_snapshot
from reconcile.statements.advices import advices_for_run, past_links, record_links, store_advices
from reconcile.statements.ingest import IngestResult, sha256, store_parsed
from reconcile.store import db, repo, tables
from reconcile.store.runlock import RunLock, posting_lock

if TYPE_CHECKING:
    from reconcile.match.partition import Mapper

POST_CHUNK_LINES = 5000
# progress(phase, done, total): "matching" (lines) and "posting" (chunks), for bars and log lines
Progress = Callable[[str, int, int], None]
CONNECTION_ATTEMPTS = 4       # a chunk whose connection drops is retried on a fresh one
RETRY_PAUSE_SECONDS = 0.5


def utcnow() -> datetime:
    return datetime.now(UTC)


def init_database(engine: Engine) -> None:
    db.upgrade(engine)


def load_ar(engine: Engine, directory: str | Path, now: datetime | None = None, *, actor: str = "load-ar",
            as_of: date | None = None, closed_elsewhere: str = "queue") -> LoadCounts:
    """Validate the whole snapshot first, then store it in one transaction (receivables/store.py).

    as_of: the business day of a snapshot whose manifest has no taken_at; closed_elsewhere: config
    [receivables] closed_elsewhere.
    """
    snapshot = read_snapshot(directory)
    with db.transaction(engine) as session:
        return store_snapshot(session, snapshot, now or utcnow(), actor=actor, as_of=as_of,
                              closed_elsewhere=closed_elsewhere)


@dataclass(frozen=True)
class ReadFile:
    """A statement or advice file read and parsed, not yet stored (read_file, then store_file)."""
    path: Path
    digest: str
    parsed: Any        # ParsedFile for a statement, the parsed advice for a remittance advice
    is_advice: bool


def read_file(path: str | Path, options: ParseOptions) -> ReadFile:
    """Read and parse one file with the configured parse options (profiles, time zones, a chosen
    profile); touches no database, so it may run while another file is being stored."""
    path = Path(path)
    data = read_statement(path)
    if options.profile is None and sniff_advice(data[:65536], options.advice_profiles):
        # a remittance advice, not a statement: stored to be linked to its payment (statements/advices.py)
        return ReadFile(path, sha256(data), parse_advice(data, path, options.advice_profiles), True)
    return ReadFile(path, sha256(data), parse_bytes(data, path, options), False)


def store_file(engine: Engine, read: ReadFile, *, now: datetime | None = None,
               account: str | None = None) -> IngestResult:
    """Store what read_file parsed, in one transaction: a file that fails stores nothing."""
    with db.transaction(engine) as session:
        if read.is_advice:
            return store_advices(session, read.path, read.digest, read.parsed, now or utcnow())  # type: ignore[return-value]
        return store_parsed(session, read.path, read.digest, read.parsed, now or utcnow(), account)


def ingest_file(
    engine: Engine, path: str | Path, options: ParseOptions, *, now: datetime | None = None,
    account: str | None = None,
) -> IngestResult:
    """Parse one statement file and store its lines; a file that fails stores nothing."""
    return store_file(engine, read_file(path, options), now=now, account=account)


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
        lines = repo.open_lines_to_match(session)
        ex = tables.ExceptionItem
        # a person holds it, or it was unapplied on purpose: only a person decides those
        claimed = session.execute(
            select(ex.bank_line_id).where(
                ex.status == "open", ex.claimed_by.is_not(None) | (ex.reason == "unapplied")
            )
        ).scalars().all()
    if claimed:
        lines = lines.filter(~pl.col("bank_line_id").is_in(claimed))
    return lines


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


def run_inputs(engine: Engine, *, always_book: bool = False) -> tuple[pl.DataFrame, Book]:
    """What a run works on: the lines to match (with their generation) and the open book; with no line to
    match the book is not read (a run's cost follows the day, not the history)."""
    lines = _lines_for_run(engine)
    return lines, load_book(engine) if lines.height or always_book else Book.empty()


def decide(lines: pl.DataFrame, book: Book, rules: MatchingRules, partitions: int = 1,
           mapper: Mapper = map) -> MatchResult:
    """Pure matching of lines against the book (no database); partitions > 1 decide independent groups of
    customers through `mapper` (Prefect tasks on a Dask cluster), with exactly the same result."""
    lines = lines.drop("generation", strict=False)
    if partitions <= 1:
        from reconcile.match.engine import match_lines  # the engine is loaded when a run matches

        return match_lines(lines, book, rules)
    from reconcile.match.partition import match_partitioned

    return match_partitioned(lines, book, rules, partitions, mapper)


def decide_run(engine: Engine, lines: pl.DataFrame, book: Book, rules: MatchingRules, partitions: int = 1,
               mapper: Mapper = map, *, queue: QueueConfig | None = None, record_links: bool = False,
               now: datetime | None = None, rates: Rates | None = None) -> MatchResult:
    """The run's decisions: remittance advices first (the payer's own list decides the lines it explains),
    then matching on the rest (a payment in another currency than its invoices in theirs: match/fx.py),
    then bank returns paired with the payments they take back.

    record_links: remember the advices newly linked to lines (a real run; never a dry run).
    rates: configured exchange rates ([fx]); without them only the bank's instructed amounts convert.
    """
    advised = _advise(engine, lines, book, queue or QueueConfig(), record_links, now or utcnow())
    rest = lines.filter(~pl.col("bank_line_id").is_in(advised.decided))
    shown, conversions = fx.instructed(rest)
    matched = decide(shown, advised.book, rules, partitions, mapper)
    if rates is not None and rates.table:
        matched, conversions = _at_configured_rates(rest, advised.book, matched, conversions, rules, rates)
    tolerance = rates.tolerance if rates is not None else Decimal("0.01")
    allocations = fx.book_back(matched.allocations, conversions, tolerance)
    result = MatchResult(
        allocations=pl.concat([allocations, fx.book_back(advised.allocations, {}, tolerance)
                               .select(allocations.columns)]),
        exceptions=pl.concat([awaiting(rest, matched.exceptions, advised.payers), advised.exceptions]),
        skipped=matched.skipped, returns=matched.returns,
    )
    return find_returns(engine, lines, result)


def _at_configured_rates(lines: pl.DataFrame, book: Book, matched: MatchResult, conversions: dict[int, fx.Conversion],
                         rules: MatchingRules, rates: Rates) -> tuple[MatchResult, dict[int, fx.Conversion]]:
    """Lines queued because no open item is in their currency, matched again at the day's configured rate in
    the currencies their payer's items are in; kept only where that posts them."""
    stuck = matched.exceptions.filter(pl.col("reason").is_in(["unknown_currency", "no_candidate"])
                                      & ~pl.col("bank_line_id").is_in(list(conversions)))
    if stuck.height == 0:
        return matched, conversions
    open_items = book.invoices.filter(pl.col("open_minor") > 0)
    everywhere = sorted(set(open_items["currency"].to_list()))
    by_customer = {c: sorted(set(g["currency"].to_list()))
                   for (c,), g in open_items.group_by(["customer_id"])}
    offered = {line_id: by_customer.get(customer, everywhere) if customer else everywhere
               for line_id, customer in stuck.select("bank_line_id", "customer_id").iter_rows()}
    more = fx.at_rate(lines, offered, rates)
    if not more:
        return matched, conversions
    taken = _after(book, matched.allocations.with_columns(pl.lit(None, dtype=pl.Int64).alias("installment_id")))
    again = decide(fx.present(lines.filter(pl.col("bank_line_id").is_in(list(more))), more), taken, rules)
    posted = set(again.allocations["bank_line_id"].to_list())
    if not posted:
        return matched, conversions
    keep = ~pl.col("bank_line_id").is_in(list(posted))
    return MatchResult(
        allocations=pl.concat([matched.allocations, again.allocations]),
        exceptions=matched.exceptions.filter(keep), skipped=matched.skipped, returns=matched.returns,
    ), {**conversions, **{i: c for i, c in more.items() if i in posted}}


@dataclass(frozen=True)
class _Advised:
    allocations: pl.DataFrame
    exceptions: pl.DataFrame
    decided: list[int]          # lines the advices decided (posted or queued with the advice)
    book: Book                  # the book after what they posted
    payers: set[str]            # payer names known to send advices


def _advise(engine: Engine, lines: pl.DataFrame, book: Book, queue: QueueConfig, record: bool,
            now: datetime) -> _Advised:
    with db.transaction(engine) as session:
        advices, advice_lines = advices_for_run(session)
        payers = {str(p) for p in session.execute(select(tables.Advice.payer_name).where(
            tables.Advice.bank_line_id.is_not(None), tables.Advice.payer_name.is_not(None)).distinct()).scalars()}
        learned = habits(past_links(session)) if advices.height else {}
    empty = frames.empty({**frames.ALLOCATIONS, "installment_id": pl.Int64()})
    if advices.height == 0:
        return _Advised(empty.drop("installment_id"), frames.empty(frames.EXCEPTIONS), [], book, payers)
    links = link(lines, advices, payer_habits=learned)
    if record and links.height:
        with db.transaction(engine) as session:
            record_links(session, links, now)
    if links.height:
        advices = advices.join(links.rename({"bank_line_id": "new_line", "linked_by": "new_by"}), on="advice_id",
                               how="left").with_columns(
            pl.coalesce("bank_line_id", "new_line").alias("bank_line_id"),
            pl.coalesce("linked_by", "new_by").alias("linked_by")).drop("new_line", "new_by")
    in_run = advices.filter(pl.col("bank_line_id").is_in(lines["bank_line_id"].implode()))
    currencies = set(lines["currency"].unique().to_list())
    planned = plan_advices(lines, in_run, advice_lines, book, {c: queue.approval_limit_minor(c) for c in currencies})
    decided = sorted(set(planned.allocations["bank_line_id"].to_list())
                     | set(planned.exceptions["bank_line_id"].to_list()))
    return _Advised(planned.allocations.drop("installment_id"), planned.exceptions, decided,
                    _after(book, planned.allocations),
                    payers | {str(p) for p in in_run["payer_name"].drop_nulls().to_list()})


def _after(book: Book, allocations: pl.DataFrame) -> Book:
    """The book with what these allocations took from invoices and installments."""
    settling = allocations.filter(pl.col("kind").is_in(["invoice", "installment"]))
    if settling.height == 0:
        return book
    per_invoice = settling.group_by("invoice_number").agg(pl.col("amount_minor").sum().alias("taken"))
    per_installment = settling.filter(pl.col("installment_id").is_not_null()).group_by("installment_id") \
        .agg(pl.col("amount_minor").sum().alias("taken"))
    invoices = book.invoices.join(per_invoice, on="invoice_number", how="left").with_columns(
        (pl.col("open_minor") - pl.col("taken").fill_null(0)).alias("open_minor")).drop("taken")
    plans = book.installments.join(per_installment, on="installment_id", how="left").with_columns(
        (pl.col("open_minor") - pl.col("taken").fill_null(0)).alias("open_minor")).drop("taken") \
        .filter(pl.col("open_minor") > 0)
    return replace(book, invoices=invoices, installments=plans)


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
         "evidence": evidence_text({"why": "a bank reversal entry that names no single earlier payment"})}
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


def abandon_dead_runs(engine: Engine, now: datetime) -> list[dict[str, Any]]:
    """Runs still `running` while we hold the run lock died (killed, connection lost): mark them `abandoned`,
    with what they had committed (whole chunks stay posted; this run posts the rest)."""
    r, a = tables.PostingRun, tables.AuditEntry
    with db.transaction(engine) as session:
        dead = session.execute(select(r.run_id, r.started_at).where(r.status == "running")).all()
        found = []
        for run_id, started in dead:
            chunks = session.execute(select(func.count()).select_from(a).where(
                a.run_id == run_id, a.action == "run_chunk")).scalar_one()
            lines = session.execute(select(func.count(func.distinct(tables.Allocation.bank_line_id))).where(
                tables.Allocation.run_id == run_id)).scalar_one()
            report = {"run_id": run_id, "started_at": str(started), "chunks_committed": chunks,
                      "lines_posted": lines, "abandoned_at": now.isoformat()}
            session.execute(update(r).where(r.run_id == run_id, r.status == "running").values(
                status="abandoned", finished_at=now, summary=json.dumps({"status": "abandoned", **report})))
            session.add(tables.AuditEntry(at=now, actor="system", action="run_abandoned", run_id=run_id,
                                          reason="found running by a later run: the process had died",
                                          details=json.dumps(report)))
            found.append(report)
        return found


def require_receivables(engine: Engine) -> None:
    """A run before any snapshot would queue every payment for nothing: refuse, saying what to do."""
    with db.transaction(engine) as session:
        loaded = session.execute(select(func.count()).select_from(tables.Snapshot)).scalar_one()
        if not loaded:
            loaded = session.execute(select(func.count()).select_from(tables.Invoice)).scalar_one()
    if not loaded:
        raise ReconcileError(
            "no receivables snapshot has been loaded: run `reconcile load-ar DIR` first (or set "
            "[receivables] require_snapshot = false to queue every payment without one)")


def begin_run(engine: Engine, run_id: str, as_of: date, actor: str, now: datetime) -> None:
    with db.transaction(engine) as session:
        session.add(tables.PostingRun(
            run_id=run_id, started_at=now, as_of=as_of, status="running", dry_run=False, actor=actor,
        ))


def post_result(
    engine: Engine, run_id: str, lines: pl.DataFrame, book: Book, result: MatchResult, actor: str, now: datetime,
    chunk_lines: int = POST_CHUNK_LINES, lock: RunLock | None = None, progress: Progress | None = None,
    connections: int = 1,
) -> None:
    """Post decisions chunk by chunk in booking order; each chunk is one transaction. The run lock is
    verified before each chunk starts and inside its transaction before it commits (LockLost: the chunk is
    rolled back and the run stops, another run may hold the lock now).

    On PostgreSQL up to `connections` chunks are posted at once, each on its own connection: the
    database's per-row work (constraint checks, index entries) is most of a chunk's time and runs on one
    core per connection. Chunks hold disjoint lines and their open-amount moves add up in any order; a
    chunk with bank returns runs alone, after the chunks before it: a return reads the status of the payment
    it takes back. SQLite has one writer, so it always posts one chunk at a time.
    """
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

    def post(number: int) -> None:
        chunk = {name: frames_.get(number) for name, frames_ in parts.items()}
        _post_chunk_retrying(engine, run_id, chunk, result, actor, now, number, total,
                             before_commit=None if lock is None else lock.verify)

    def ready(number: int) -> None:  # before each chunk starts
        if lock is not None:
            lock.verify()

    def done(count: int) -> None:
        if progress is not None:
            progress("posting", count, total)

    at_once = max(1, connections) if engine.dialect.name == "postgresql" else 1
    _post_chunks(total, at_once, post, ready, done, alone=set(parts["returns"]))


def _post_chunks(total: int, at_once: int, post: Callable[[int], None], ready: Callable[[int], None],
                       done: Callable[[int], None], alone: set[int]) -> None:
    """Chunks 1..total in order, up to `at_once` in flight (1: one after another, on a worker thread); a
    chunk in `alone` runs by itself, after every earlier chunk has committed and before any later one starts.
    The first failure stops new chunks; those in flight finish (each commits whole or not at all) and the
    failure is raised."""
    failure: BaseException | None = None
    finished = 0
    with ThreadPoolExecutor(max_workers=at_once, thread_name_prefix="posting") as pool:
        running: set[Future[None]] = set()

        def settle(until: str) -> None:
            nonlocal failure, finished
            completed, _ = wait(running, return_when=until)
            running.difference_update(completed)
            for future in completed:
                if (exc := future.exception()) is not None:
                    failure = failure or exc
                else:
                    finished += 1
                    done(finished)

        for number in range(1, total + 1):
            while running and (len(running) >= at_once or number in alone):
                settle(ALL_COMPLETED if number in alone else FIRST_COMPLETED)
            if failure is not None:
                break
            try:
                ready(number)
            except ReconcileError as exc:  # LockLost: the chunks in flight finish (and are counted) first
                failure = exc
                break
            running.add(pool.submit(post, number))
            if number in alone:
                settle(ALL_COMPLETED)
        while running:
            settle(ALL_COMPLETED)
    if failure is not None:
        raise failure


def _post_chunk_retrying(engine: Engine, run_id: str, chunk: dict[str, pl.DataFrame | None], result: MatchResult,
                         actor: str, now: datetime, number: int, total: int,
                         before_commit: Callable[[], None] | None = None) -> None:
    """One chunk; again on a fresh connection if the connection dropped (unless the commit got through)
    or the database chose it as a deadlock's victim (it was rolled back whole)."""
    marker = f"chunk {number} of {total}"
    for attempt in range(1, CONNECTION_ATTEMPTS + 1):
        try:
            _post_one_chunk(engine, run_id, chunk, result, actor, now, marker, before_commit)
            return
        except Exception as exc:
            if db.rolled_back_by_conflict(exc):
                if attempt == CONNECTION_ATTEMPTS:
                    raise ReconcileError(
                        f"chunk {number} of {total} was rolled back by the database {CONNECTION_ATTEMPTS} times "
                        f"(a deadlock with another writer); nothing from it was applied, the chunks posted "
                        f"before it are committed; run `reconcile run` again to post the rest") from None
            elif not db.lost_connection(exc):
                raise
            elif _chunk_committed(engine, run_id, marker):
                return  # the commit reached the server; only its answer was lost
            elif attempt == CONNECTION_ATTEMPTS:
                raise ReconcileError(
                    f"database connection lost while posting chunk {number} of {total} "
                    f"({CONNECTION_ATTEMPTS} attempts): this chunk was rolled back, the chunks posted before "
                    f"it are committed; run `reconcile run` again to post the rest "
                    f"({type(getattr(exc, 'orig', exc)).__name__})"
                ) from None
            time.sleep(RETRY_PAUSE_SECONDS * attempt)


def _chunk_committed(engine: Engine, run_id: str, marker: str) -> bool:
    """After a lost connection: did this chunk's transaction commit anyway? (its marker is in the audit log)"""
    try:
        with db.transaction(engine) as session:
            a = tables.AuditEntry
            return session.execute(
                select(func.count()).select_from(a)
                .where(a.run_id == run_id, a.action == "run_chunk", a.reason == marker)
            ).scalar_one() > 0
    except Exception as exc:
        if db.lost_connection(exc):
            return False
        raise


def _post_one_chunk(
    engine: Engine, run_id: str, chunk: dict[str, pl.DataFrame | None], result: MatchResult, actor: str,
    now: datetime, marker: str, before_commit: Callable[[], None] | None = None,
) -> None:
    """One chunk's lines, with their decisions, in one transaction; `before_commit` may still refuse it."""
    def part(name: str, empty: pl.DataFrame) -> pl.DataFrame:
        found = chunk[name]
        return empty.clear() if found is None else found

    lines = chunk["lines"]
    assert lines is not None  # every chunk has lines: chunks are cut from the lines
    with db.transaction(engine) as session:
        # the run's business day: what it posts belongs to its as-of date, whatever the clock says
        day = session.execute(select(tables.PostingRun.as_of).where(tables.PostingRun.run_id == run_id)).scalar_one()
        post_chunk(
            session, lines=lines, allocations=part("allocations", result.allocations),
            exceptions=part("exceptions", result.exceptions), skipped=part("skipped", result.skipped),
            run_id=run_id, actor=actor, now=now, business_date=day,
        )
        apply_returns(session, list(part("returns", result.returns).iter_rows()), actor=actor, now=now,
                      business_date=day, run_id=run_id)
        # commits with the chunk: tells a retry after a lost connection whether the chunk is in
        session.add(tables.AuditEntry(at=now, actor=actor, action="run_chunk", run_id=run_id, reason=marker,
                                      details=json.dumps({"lines": lines.height})))
        if before_commit is not None:
            before_commit()


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
    progress: Progress | None = None,
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

    if config.receivables.require_snapshot:
        require_receivables(engine)
    with posting_lock(engine) as lock:
        if not dry_run:
            abandon_dead_runs(engine, now)
        lines, book = run_inputs(engine)
        if partitions is None:
            partitions = config.scale.partitions
        if progress is not None:
            progress("matching", 0, lines.height)
        result = decide_run(engine, lines, book, rules, partitions, mapper, queue=config.queue,
                            record_links=not dry_run, now=now, rates=config.fx_rates())
        if progress is not None:
            progress("matching", lines.height, lines.height)
        summary = summarise(run_id, as_of, dry_run, lines, result)
        if dry_run:
            return summary
        begin_run(engine, run_id, as_of, actor, now)
        try:
            post_result(engine, run_id, lines, book, result, actor, now,
                        chunk_lines=config.posting.chunk_lines, lock=lock, progress=progress,
                        connections=config.posting.connections)
        except Exception:
            summary.status = "failed"
            try:
                finish_run(engine, run_id, summary)
            except Exception as exc:
                if not db.lost_connection(exc):
                    raise
            raise
        summary.violations = [str(v) for v in check_ledger_now(engine, run_id)]
        if summary.violations:
            summary.status = "failed"
        finish_run(engine, run_id, summary)
    return summary


def check_ledger_now(engine: Engine, run_id: str | None = None) -> list:
    """The ledger's invariants (ledger/check.py): of what run `run_id` touched, or everywhere; [] when all hold."""
    with db.transaction(engine) as session:
        return check_ledger(session, Scope(run_id))


def finish_run(engine: Engine, run_id: str, summary: RunSummary) -> None:
    with db.transaction(engine) as session:
        session.execute(
            update(tables.PostingRun).where(tables.PostingRun.run_id == run_id).values(
                finished_at=utcnow(), status=summary.status, summary=json.dumps(summary.to_dict()),
            )
        )


def snapshot_history(engine: Engine) -> list[dict[str, Any]]:
    """Every receivables snapshot loaded, newest first (`reconcile snapshots`)."""
    s = tables.Snapshot
    with db.transaction(engine) as session:
        rows = session.execute(select(s.id, s.business_date, s.kind, s.includes_through_seq, s.loaded_at,
                                      s.loaded_by, s.taken_at, s.summary).order_by(s.id.desc())).all()
    out = []
    for r in rows:
        summary = json.loads(r.summary or "{}")
        out.append({
            "id": r.id, "business_date": r.business_date.isoformat(), "kind": r.kind,
            "includes": f"B{r.includes_through_seq:06d}" if r.includes_through_seq else "none",
            "loaded_at": str(r.loaded_at), "loaded_by": r.loaded_by,
            "taken_at": str(r.taken_at) if r.taken_at else None,
            "summary": ", ".join(f"{k} {v}" for k, v in summary.items()
                                 if k.startswith(("invoices_", "closed")) and v) or "-",
        })
    return out
