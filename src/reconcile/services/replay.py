"""Replay (shadow mode): re-decide past days' bank lines under another configuration, writing nothing.

For each posting run of the days asked for, the lines that run decided are matched again against the book
that run started from (that morning's snapshot, the postings of the days before) with the other
configuration's rules, and compared with what was decided then: posted (rule, items and amounts,
confidence) or queued (reason). Only lines whose decision would change are reported, with a summary: the
automatic posting rate then and now, and the lines that would move from one posting to a different one —
the dangerous kind. A team tries a threshold or a rule on last month before it goes live.

The database is only read. Payer names and accounts learned since are used as they are today.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import polars as pl
from sqlalchemy import Engine, select

from reconcile.collectors.balances import installments, invoice_state, one_snapshot, read_frame
from reconcile.config import Config
from reconcile.core import frames
from reconcile.core.codes import Kind, RunStatus
from reconcile.core.money import format_minor
from reconcile.match import Book, MatchResult
from reconcile.services.daily import decide
from reconcile.store import repo, tables

DIFF_COLUMNS = [
    "business_date", "run_id", "source_ref", "account", "booking_date", "amount", "currency", "change",
    "then_outcome", "then_rule", "then_items", "then_confidence", "now_outcome", "now_rule", "now_items",
    "now_confidence",
]


@dataclass
class ReplaySummary:
    days: int = 0
    lines: int = 0
    posted_then: int = 0
    posted_now: int = 0
    changed: int = 0
    posted_elsewhere: int = 0       # posted then, posted now to different items: the dangerous changes
    by_change: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        rate = (lambda n: round(n / self.lines, 4) if self.lines else None)
        return {"days": self.days, "lines": self.lines, "posted_then": self.posted_then,
                "posted_now": self.posted_now, "posting_rate_then": rate(self.posted_then),
                "posting_rate_now": rate(self.posted_now), "changed": self.changed,
                "posted_elsewhere": self.posted_elsewhere, "by_change": dict(sorted(self.by_change.items()))}


def _runs(session: Any, start: date | None, end: date | None) -> list[tuple[str, date]]:
    r = tables.PostingRun
    query = select(r.run_id, r.as_of).where(
        r.dry_run.is_(False), r.status.in_((RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.ABANDONED)))
    if start:
        query = query.where(r.as_of >= start)
    if end:
        query = query.where(r.as_of <= end)
    return [tuple(row) for row in session.execute(query.order_by(r.as_of, r.started_at, r.run_id)).all()]  # type: ignore[misc]


def _then(session: Any, run_id: str) -> pl.DataFrame:
    """What run `run_id` decided, per line: posted (rule, items, confidence) or queued (reason)."""
    al, ex = tables.Allocation, tables.ExceptionItem
    posted = read_frame(session, select(al.bank_line_id, al.kind, al.invoice_number, al.installment_no,
                                        al.amount_minor, al.currency, al.rule, al.confidence)
                        .where(al.run_id == run_id, al.kind != Kind.REVERSAL).order_by(al.id), {
        "bank_line_id": pl.Int64(), "kind": pl.String(), "invoice_number": pl.String(),
        "installment_no": pl.Int64(), "amount_minor": pl.Int64(), "currency": pl.String(), "rule": pl.String(),
        "confidence": pl.Float64(),
    })
    queued = read_frame(session, select(ex.bank_line_id, ex.reason).where(ex.run_id == run_id), {
        "bank_line_id": pl.Int64(), "reason": pl.String(),
    })
    return pl.concat([
        _outcomes(posted, "posted"),
        queued.select("bank_line_id", pl.lit("queued").alias("outcome"), pl.col("reason").alias("rule"),
                      pl.lit("").alias("items"), pl.lit(None, dtype=pl.Float64).alias("confidence")),
    ]).unique("bank_line_id", keep="first", maintain_order=True)


def _outcomes(allocations: pl.DataFrame, outcome: str) -> pl.DataFrame:
    """One row per line: its allocation rows as stable text ("INV-1=100.00|on_account=5.00")."""
    if allocations.height == 0:
        return pl.DataFrame(schema={"bank_line_id": pl.Int64(), "outcome": pl.String(), "rule": pl.String(),
                                    "items": pl.String(), "confidence": pl.Float64()})
    target = (pl.when(pl.col("kind") == Kind.ON_ACCOUNT).then(pl.lit(Kind.ON_ACCOUNT))
              .when(pl.col("kind") == "write_off").then(pl.concat_str([pl.lit("write_off:"), pl.col("invoice_number")]))
              .when(pl.col("installment_no").is_not_null())
              .then(pl.concat_str([pl.col("invoice_number"), pl.lit("#"), pl.col("installment_no").cast(pl.String)]))
              .otherwise(pl.col("invoice_number")))
    texts = [f"{t}={format_minor(a, c)}" for t, a, c in
             zip(allocations.select(target).to_series().to_list(), allocations["amount_minor"].to_list(),
                 allocations["currency"].to_list(), strict=True)]
    rows = allocations.with_columns(pl.Series("part", texts, dtype=pl.String))
    return rows.group_by("bank_line_id", maintain_order=True).agg(
        pl.lit(outcome).alias("outcome"), pl.col("rule").first(), pl.col("part").sort().str.join("|").alias("items"),
        pl.col("confidence").min().alias("confidence"),
    )


def _book(session: Any, day: date) -> Book:
    """The book a run of `day` started from: that morning's snapshot, the postings of the days before."""
    before = day - timedelta(days=1)
    state = invoice_state(session, day, postings_through=before)
    refs = read_frame(session, select(tables.Invoice.invoice_number, tables.Invoice.payment_reference),
                      {"invoice_number": pl.String(), "payment_reference": pl.String()})
    invoices = state.join(refs, on="invoice_number", how="left").select(
        "invoice_number", "customer_id", "issue_date", "due_date", "currency", "amount_minor",
        pl.col("open_minor"), "payment_reference").cast(frames.INVOICES)  # type: ignore[arg-type]
    schedule = installments(session, day, postings_through=before)
    ids = read_frame(session, select(tables.Installment.id, tables.Installment.plan_id,
                                     tables.Installment.installment_no),
                     {"installment_id": pl.Int64(), "plan_id": pl.String(), "installment_no": pl.Int64()})
    plans = schedule.join(ids, on=["plan_id", "installment_no"], how="left") \
        .filter(pl.col("open_minor") > 0).select(list(frames.INSTALLMENTS))
    return Book(customers=repo.customers(session), aliases=repo.aliases(session),
                payer_accounts=repo.payer_accounts(session), invoices=invoices, installments=plans)


def _lines(session: Any, ids: list[int]) -> pl.DataFrame:
    bl = tables.BankLine
    parts = [repo.frame_of(session, select(*[getattr(bl, c) for c in repo.BANK_LINE_COLUMNS]).where(among),
                           {"bank_line_id": pl.Int64(),
                            **{c: frames.MATCH_LINES[c] for c in repo.BANK_LINE_COLUMNS[1:]}})
             for _, among in repo.among(session, bl.id, ids)]
    return pl.concat(parts) if parts else frames.empty(frames.MATCH_LINES)


def _now(result: MatchResult) -> pl.DataFrame:
    queued = result.exceptions.select("bank_line_id", pl.lit("queued").alias("outcome"), pl.col("reason").alias("rule"),
                                      pl.lit("").alias("items"), pl.lit(None, dtype=pl.Float64).alias("confidence"))
    skipped = result.skipped.select("bank_line_id", pl.lit("skipped").alias("outcome"), pl.col("reason").alias("rule"),
                                    pl.lit("").alias("items"), pl.lit(None, dtype=pl.Float64).alias("confidence"))
    return pl.concat([_outcomes(result.allocations, "posted"), queued, skipped])


def _change(then: str, then_rule: str, then_items: str, now: str, now_rule: str, now_items: str) -> str:
    """How a line's decision would change; posting the same amounts to the same items is no change."""
    if then == now == "posted":
        return "unchanged" if then_items == now_items else "posted_elsewhere"
    if then == now:
        return "unchanged" if then_rule == now_rule else "reason_changed"
    return f"{then}_to_{now}"


def replay(engine: Engine, config: Config, *, start: date | None = None,
           end: date | None = None) -> tuple[pl.DataFrame, ReplaySummary]:
    """The lines of the runs between `start` and `end` whose decision `config` would change, and a summary."""
    summary = ReplaySummary()
    diffs: list[pl.DataFrame] = []
    with one_snapshot(engine) as session:
        runs = _runs(session, start, end)
        summary.days = len({day for _, day in runs})
        for run_id, day in runs:
            then = _then(session, run_id)
            if then.height == 0:
                continue
            lines = _lines(session, then["bank_line_id"].to_list())
            result = decide(lines, _book(session, day), config.matching)
            now = _now(result)
            joined = then.join(now, on="bank_line_id", how="left", suffix="_now").with_columns(
                pl.col("outcome_now").fill_null("queued"))
            summary.lines += joined.height
            summary.posted_then += joined.filter(pl.col("outcome") == "posted").height
            summary.posted_now += joined.filter(pl.col("outcome_now") == "posted").height
            changes = [_change(*(v or "" for v in row)) for row in joined.select(
                "outcome", "rule", "items", "outcome_now", "rule_now", "items_now").iter_rows()]
            joined = joined.with_columns(pl.Series("change", changes, dtype=pl.String))
            moved = joined.filter(pl.col("change") != "unchanged")
            info = lines.select("bank_line_id", "source_ref", "account", "booking_date", "amount_minor", "currency")
            diffs.append(moved.join(info, on="bank_line_id", how="left").with_columns(
                pl.lit(day).alias("business_date"), pl.lit(run_id).alias("run_id")))
    diff = pl.concat(diffs) if diffs else pl.DataFrame()
    if diff.height == 0:
        return pl.DataFrame(schema={c: pl.String() for c in DIFF_COLUMNS}), summary
    amounts = [format_minor(a, c)
               for a, c in zip(diff["amount_minor"].to_list(), diff["currency"].to_list(), strict=True)]
    diff = diff.with_columns(pl.Series("amount", amounts, dtype=pl.String)).select(
        pl.col("business_date").cast(pl.String), "run_id", "source_ref", "account",
        pl.col("booking_date").cast(pl.String), "amount", "currency", "change",
        pl.col("outcome").alias("then_outcome"), pl.col("rule").alias("then_rule"), pl.col("items").alias("then_items"),
        pl.col("confidence").round(4).alias("then_confidence"), pl.col("outcome_now").alias("now_outcome"),
        pl.col("rule_now").alias("now_rule"), pl.col("items_now").alias("now_items"),
        pl.col("confidence_now").round(4).alias("now_confidence"),
    ).sort("business_date", "source_ref", "account")
    summary.changed = diff.height
    summary.posted_elsewhere = diff.filter(pl.col("change") == "posted_elsewhere").height
    summary.by_change = {k: v for k, v in diff.group_by("change").len().iter_rows()}
    return diff, summary


def summary_json(summary: ReplaySummary) -> str:
    return json.dumps(summary.to_dict())
