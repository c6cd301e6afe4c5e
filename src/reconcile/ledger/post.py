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
from datetime import datetime

import polars as pl
from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session

from reconcile.core.errors import LedgerError
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


def _claim_lines(session: Session, line_ids: list[int], new_status: str, from_statuses: tuple[str, ...]) -> None:
    """Move lines to new_status; fail the chunk if any was taken by someone else meanwhile."""
    bl = tables.BankLine.__table__
    for part in repo.chunks(line_ids, 900):
        result = session.execute(
            update(bl).where(bl.c.id.in_(part), bl.c.status.in_(from_statuses)).values(status=new_status)
        )
        if result.rowcount != len(part):
            raise LedgerError(
                f"{len(part) - result.rowcount} bank line(s) changed status while this run was posting; "
                "nothing from this chunk was applied"
            )


def _subtract_open(session: Session, table: Table, key: str, amounts: pl.DataFrame) -> None:
    """open_amount_minor -= amount for each (key, amount) row; the check constraints refuse below zero."""
    repo.update_by_key(session, table, key, "open_amount_minor", amounts.rows())


def reduce_open(session: Session, allocations: pl.DataFrame) -> None:
    """Lower open amounts by what was allocated (raise them for negated rows); never below zero."""
    # a write_off row (negative: the part of a settled item the payment did not bring in, e.g. a bank fee)
    # is an expense beside the invoice row that settles the item in full; it moves no open amount
    on_invoices = (
        allocations.filter(pl.col("kind").is_in(["invoice", "installment"]))
        .group_by("invoice_number").agg(pl.col("amount_minor").sum())
    )
    _subtract_open(session, tables.Invoice.__table__, "invoice_number", on_invoices)
    on_installments = (
        allocations.filter(pl.col("installment_id").is_not_null() & (pl.col("kind") != "write_off"))
        .group_by("installment_id").agg(pl.col("amount_minor").sum())
    )
    _subtract_open(session, tables.Installment.__table__, "id", on_installments)


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
) -> ChunkResult:
    """Apply one chunk of decisions. `lines` holds bank_line_id, amount_minor, generation of every line named.

    `allocations` is frames.ALLOCATIONS plus an installment_id column (null unless kind is installment).
    """
    check_balanced(allocations, lines)
    generation = dict(lines.select("bank_line_id", "generation").iter_rows())
    posted_ids = allocations["bank_line_id"].unique().sort().to_list()
    open_statuses = ("unmatched", "exception")

    if posted_ids:
        _claim_lines(session, posted_ids, "posted", open_statuses)
        repo.insert_rows(session, tables.Posting.__table__, [
            {"bank_line_id": i, "generation": generation[i], "run_id": run_id, "posted_at": now, "posted_by": actor}
            for i in posted_ids
        ])
        posting_ids: dict[int, int] = {}
        p = tables.Posting
        for part in repo.chunks(posted_ids, 900):
            posting_ids.update(session.execute(
                select(p.bank_line_id, p.id).where(p.bank_line_id.in_(part), p.reversed_at.is_(None))
            ).all())
        rows = allocations.select(
            pl.col("bank_line_id").replace_strict(posting_ids, return_dtype=pl.Int64()).alias("posting_id"),
            "bank_line_id", pl.lit(run_id, dtype=pl.String()).alias("run_id"), "kind", "customer_id",
            "invoice_number", "installment_id", "installment_no", "amount_minor", "currency", "rule", "confidence",
            "evidence", pl.lit(None, dtype=pl.Int64()).alias("reverses_id"),
            pl.when(pl.col("kind") == "write_off").then(pl.col("rule")).alias("reason"),
        ).with_columns(pl.lit(now).alias("posted_at")).to_dicts()
        repo.insert_rows(session, tables.Allocation.__table__, rows)
        reduce_open(session, allocations)
        # any open exception item of a line posted now is settled by this posting
        ex = tables.ExceptionItem.__table__
        for part in repo.chunks(posted_ids, 900):
            session.execute(
                update(ex).where(ex.c.bank_line_id.in_(part), ex.c.status == "open")
                .values(status="resolved", resolved_by=actor, resolved_at=now, resolution="auto_posted")
            )
        per_line = allocations.group_by("bank_line_id", maintain_order=True).agg(
            pl.struct("kind", "invoice_number", "installment_no", "amount_minor", "currency", "rule").alias("parts")
        )
        repo.insert_rows(session, tables.AuditEntry.__table__, [
            {
                "at": now, "actor": actor, "action": "post", "bank_line_id": line_id, "run_id": run_id,
                "invoice_number": parts[0]["invoice_number"], "reason": None,
                "details": json.dumps({"allocations": parts}, default=str),
            }
            for line_id, parts in per_line.iter_rows()
        ])

    if exceptions.height:
        ids = exceptions["bank_line_id"].to_list()
        _claim_lines(session, ids, "exception", open_statuses)
        repo.insert_ignore(session, tables.ExceptionItem.__table__, [
            {
                "bank_line_id": r["bank_line_id"], "generation": generation[r["bank_line_id"]], "run_id": run_id,
                "reason": r["reason"], "suggestions": r["suggestions"], "customer_id": r["customer_id"],
                "evidence": r["evidence"], "status": "open", "created_at": now,
            }
            for r in exceptions.iter_rows(named=True)
        ])

    if skipped.height:
        _claim_lines(session, skipped["bank_line_id"].to_list(), "skipped", ("unmatched",))

    return ChunkResult(len(posted_ids), allocations.height, exceptions.height, skipped.height)
