"""The ledger writer: the only code that inserts allocations or moves open amounts.

post_chunk applies one chunk of decisions inside the caller's transaction:
bank-line status, postings, allocations, open amounts, exception items and
audit entries all commit together or not at all. The database refuses a
second posting of a line (unique line + generation) and any open amount
below zero (check constraints); this module refuses unbalanced allocations.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime

import polars as pl
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from reconcile.core.codes import OPEN_LINE_STATUSES, ItemStatus, LineStatus, Reason
from reconcile.core.errors import LedgerError
from reconcile.core.evidence import evidence_of
from reconcile.ledger.open_items import move_open
from reconcile.store import repo, tables


@dataclass(frozen=True)
class ChunkResult:
    posted_lines: int
    allocations: int
    exceptions: int
    skipped: int


def check_balanced(allocations: pl.DataFrame, lines: pl.DataFrame) -> None:
    """Every line's allocation rows must add up to its amount, to the minor unit."""
    if allocations.height == 0:
        return
    sums = allocations.group_by("bank_line_id").agg(pl.col("amount_minor").sum().alias("allocated"))
    joined = sums.join(lines.select("bank_line_id", "amount_minor"), on="bank_line_id", how="left")
    bad = joined.filter(pl.col("amount_minor").is_null() | (pl.col("allocated") != pl.col("amount_minor")))
    if bad.height:
        line_id, allocated, amount = bad.row(0)
        raise LedgerError(
            f"bank line {line_id}: allocations add up to {allocated} minor units, the line is {amount}"
        )


def claim_lines(session: Session, line_ids: list[int], new_status: str, from_statuses: tuple[str, ...]) -> None:
    """Move lines to new_status; fail the chunk if any was taken by someone else meanwhile."""
    bl = tables.BankLine.__table__
    for part, among in repo.among(session, bl.c.id, line_ids):
        claim = update(bl).where(among, bl.c.status.in_(from_statuses)).values(status=new_status)
        result = repo.changed(session, claim)
        if result != len(part):
            raise LedgerError(
                f"{len(part) - result} bank line(s) changed status while this run was posting; "
                "nothing from this chunk was applied"
            )


def settled_columns(allocations: pl.DataFrame) -> list[pl.Expr]:
    """settled_amount_minor / settled_currency of rows paid in another currency (null where absent)."""
    return [pl.col(c) if c in allocations.columns else pl.lit(None, dtype=dtype).alias(c)
            for c, dtype in (("settled_amount_minor", pl.Int64()), ("settled_currency", pl.String()))]


def post_chunk(
    session: Session,
    *,
    lines: pl.DataFrame,
    allocations: pl.DataFrame,
    exceptions: pl.DataFrame,
    skipped: pl.DataFrame,
    run_id: str | None,
    actor: str,
    now: datetime,
    business_date: date,
) -> ChunkResult:
    """Apply one chunk of decisions. `lines` holds bank_line_id, amount_minor, generation of every line named.

    `allocations` is frames.ALLOCATIONS plus an installment_id column (null unless kind is installment).
    `business_date` is the day the rows belong to: the run's as-of date, or the day a person decided.
    """
    check_balanced(allocations, lines)
    generation = dict(lines.select("bank_line_id", "generation").iter_rows())
    posted_ids = allocations["bank_line_id"].unique().sort().to_list()

    if posted_ids:
        claim_lines(session, posted_ids, LineStatus.POSTED, OPEN_LINE_STATUSES)
        repo.insert_frame(session, tables.Posting.__table__, pl.DataFrame({
            "bank_line_id": posted_ids, "generation": [generation[i] for i in posted_ids],
        }, schema={"bank_line_id": pl.Int64(), "generation": pl.Int64()}).with_columns(
            pl.lit(run_id, dtype=pl.String()).alias("run_id"), pl.lit(now).alias("posted_at"),
            pl.lit(actor, dtype=pl.String()).alias("posted_by")))
        posting_ids: dict[int, int] = {}
        p = tables.Posting
        for _, among in repo.among(session, p.bank_line_id, posted_ids):
            active = select(p.bank_line_id, p.id).where(among, p.reversed_at.is_(None))
            posting_ids.update(session.execute(active).all())
        rows = allocations.select(
            pl.col("bank_line_id").replace_strict(posting_ids, return_dtype=pl.Int64()).alias("posting_id"),
            "bank_line_id", pl.lit(run_id, dtype=pl.String()).alias("run_id"), "kind", "customer_id",
            "invoice_number", "installment_id", "installment_no", "amount_minor", "currency", "rule", "confidence",
            "evidence", pl.lit(None, dtype=pl.Int64()).alias("reverses_id"),
            pl.when(pl.col("kind") == "write_off").then(pl.col("rule")).alias("reason"),
            *settled_columns(allocations),
        ).with_columns(pl.lit(now).alias("posted_at"), pl.lit(business_date).alias("business_date"))
        repo.insert_frame(session, tables.Allocation.__table__, rows)
        move_open(session, allocations)
        # any open exception item of a line posted now is settled by this posting
        ex = tables.ExceptionItem.__table__
        for _, among in repo.among(session, ex.c.bank_line_id, posted_ids):
            session.execute(
                update(ex).where(among, ex.c.status == ItemStatus.OPEN)
                .values(status=ItemStatus.RESOLVED, resolved_by=actor, resolved_at=now, resolution="auto_posted",
                        closed_on=business_date)
            )
        # one audit entry per line: {"allocations": [its rows]}, encoded by polars rather than a json.dumps each
        per_line = allocations.group_by("bank_line_id", maintain_order=True).agg(
            pl.struct("kind", "invoice_number", "installment_no", "amount_minor", "currency", "rule").alias("parts"),
            pl.col("invoice_number").first(),
        )
        repo.insert_frame(session, tables.AuditEntry.__table__, per_line.select(
            pl.lit(now).alias("at"), pl.lit(actor, dtype=pl.String()).alias("actor"),
            pl.lit("post").alias("action"), "bank_line_id", pl.lit(run_id, dtype=pl.String()).alias("run_id"),
            "invoice_number", pl.lit(None, dtype=pl.String()).alias("reason"),
            pl.struct(pl.col("parts").alias("allocations")).struct.json_encode().alias("details"),
        ))

    if exceptions.height:
        ids = exceptions["bank_line_id"].to_list()
        claim_lines(session, ids, LineStatus.EXCEPTION, OPEN_LINE_STATUSES)
        queue_lines(session, exceptions, generation, run_id=run_id, now=now, business_date=business_date)

    if skipped.height:
        claim_lines(session, skipped["bank_line_id"].to_list(), "skipped", ("unmatched",))

    return ChunkResult(len(posted_ids), allocations.height, exceptions.height, skipped.height)


def _proposal(evidence: str | None, now: datetime) -> dict[str, object]:
    """A decision the run proposes for a person to approve (an advice's deductions above the approval limit)."""
    found = evidence_of(evidence).get("proposal")
    if not found:
        return {"proposal": None, "proposed_by": None, "proposed_at": None}
    return {"proposal": json.dumps(found), "proposed_by": "advice", "proposed_at": now}


def queue_lines(session: Session, exceptions: pl.DataFrame, generation: dict[int, int], *, run_id: str | None,
                now: datetime, business_date: date) -> None:
    """Queue lines for a person; a line already queued (a re-match that is still undecided) keeps its item,
    with the reason, suggestions and evidence of this decision, so what people see is never stale."""
    ex = tables.ExceptionItem.__table__
    rows = exceptions.select("bank_line_id", "reason", "suggestions", "customer_id", "evidence").to_dicts()
    open_items: dict[int, int] = {}
    for _, among in repo.among(session, ex.c.bank_line_id, [r["bank_line_id"] for r in rows]):
        open_items.update(session.execute(
            select(ex.c.bank_line_id, ex.c.id).where(among, ex.c.status == ItemStatus.OPEN,
                                                     ex.c.reason != Reason.CLOSED_ELSEWHERE)).all())
    fresh = [r for r in rows if r["bank_line_id"] not in open_items]
    repo.insert_rows(session, ex, [
        {**r, "generation": generation[r["bank_line_id"]], "run_id": run_id, "status": "open", "created_at": now,
         "opened_on": business_date, **_proposal(r["evidence"], now)}
        for r in fresh
    ])
    again = [r for r in rows if r["bank_line_id"] in open_items]
    if again:
        session.execute(
            update(ex).where(ex.c.id == bindparam("item")).values(
                reason=bindparam("r"), suggestions=bindparam("s"), customer_id=bindparam("c"),
                evidence=bindparam("e")),
            [{"item": open_items[r["bank_line_id"]], "r": r["reason"], "s": r["suggestions"],
              "c": r["customer_id"], "e": r["evidence"]} for r in again],
        )


def post_adjustment(session: Session, line_id: int, rows: pl.DataFrame, *, actor: str, now: datetime,
                    business_date: date, action: str, reason: str | None) -> int:
    """Rows that re-apply money inside a posted line (credit on account applied to an invoice): they join the
    line's active posting, so unapplying the line takes them back too, and they add up to zero, so the line's
    rows still add up to its amount. `rows`: frames.ALLOCATIONS + installment_id."""
    if rows.height == 0:
        return 0
    net = rows["amount_minor"].sum()
    if net != 0:
        raise LedgerError(f"bank line {line_id}: an adjustment must add up to zero, these rows add up to {net}")
    p = tables.Posting
    posting = session.execute(
        select(p.id).where(p.bank_line_id == line_id, p.reversed_at.is_(None))
    ).scalar()
    if posting is None:
        raise LedgerError(f"bank line {line_id} has no active posting to adjust")
    records = rows.select(
        pl.lit(posting, dtype=pl.Int64()).alias("posting_id"), "bank_line_id",
        pl.lit(None, dtype=pl.String()).alias("run_id"),
        "kind", "customer_id", "invoice_number", "installment_id", "installment_no", "amount_minor", "currency",
        "rule", "confidence", "evidence", pl.lit(None, dtype=pl.Int64()).alias("reverses_id"),
        pl.lit(reason, dtype=pl.String()).alias("reason"),
    ).with_columns(pl.lit(now).alias("posted_at"), pl.lit(business_date).alias("business_date")).to_dicts()
    repo.insert_rows(session, tables.Allocation.__table__, records)
    move_open(session, rows)
    parts = rows.select("kind", "invoice_number", "installment_no", "amount_minor", "currency").to_dicts()
    session.add(tables.AuditEntry(at=now, actor=actor, action=action, bank_line_id=line_id,
                                  invoice_number=next((r["invoice_number"] for r in parts if r["invoice_number"]),
                                                      None),
                                  reason=reason, details=json.dumps({"allocations": parts}, default=str)))
    return len(records)
