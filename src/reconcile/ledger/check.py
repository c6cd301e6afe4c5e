"""The ledger's invariants, checked from the stored rows alone.

`check_ledger` recomputes what posting keeps incrementally (open amounts,
line statuses) from the allocation rows, and names every disagreement. It
reads; it never repairs. `reconcile check` prints the violations and exits
non-zero; every posting run calls it after its last chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from reconcile.core.money import format_minor
from reconcile.store import repo, tables


@dataclass(frozen=True)
class Violation:
    rule: str       # stable code, e.g. "line_unbalanced"
    subject: str    # what it is about: "bank line ACC/REF", "invoice INV-1"
    detail: str     # what is wrong, with the figures

    def __str__(self) -> str:
        return f"{self.rule}: {self.subject}: {self.detail}"


def _money(amount: int | None, currency: str | None) -> str:
    return format_minor(amount or 0, currency or "XXX")


def _lines(session: Session) -> pl.DataFrame:
    bl, al = tables.BankLine, tables.Allocation
    allocated = (
        select(al.bank_line_id, func.sum(al.amount_minor).label("allocated"), func.count().label("rows"))
        .group_by(al.bank_line_id).subquery()
    )
    p = tables.Posting
    active = (
        select(p.bank_line_id, func.count().label("active_postings"))
        .where(p.reversed_at.is_(None)).group_by(p.bank_line_id).subquery()
    )
    ex = tables.ExceptionItem
    open_items = (
        select(ex.bank_line_id, func.count().label("open_items"))
        .where(ex.status == "open").group_by(ex.bank_line_id).subquery()
    )
    query = (
        select(
            bl.id, bl.account, bl.source_ref, bl.amount_minor, bl.currency, bl.status,
            func.coalesce(allocated.c.allocated, 0), func.coalesce(allocated.c.rows, 0),
            func.coalesce(active.c.active_postings, 0), func.coalesce(open_items.c.open_items, 0),
        )
        .outerjoin(allocated, allocated.c.bank_line_id == bl.id)
        .outerjoin(active, active.c.bank_line_id == bl.id)
        .outerjoin(open_items, open_items.c.bank_line_id == bl.id)
    )
    return repo.frame_of(session, query, {
        "id": pl.Int64(), "account": pl.String(), "source_ref": pl.String(), "amount_minor": pl.Int64(),
        "currency": pl.String(), "status": pl.String(), "allocated": pl.Int64(), "rows": pl.Int64(),
        "active_postings": pl.Int64(), "open_items": pl.Int64(),
    })


def _line_violations(lines: pl.DataFrame) -> list[Violation]:
    posted = pl.col("status") == "posted"
    checks = [
        ("line_unbalanced", posted & (pl.col("allocated") != pl.col("amount_minor")),
         lambda r: f"allocations add up to {_money(r['allocated'], r['currency'])}, "
                   f"the line is {_money(r['amount_minor'], r['currency'])}"),
        ("unposted_line_allocated", ~posted & (pl.col("allocated") != 0),
         lambda r: f"status {r['status']} but allocations net to {_money(r['allocated'], r['currency'])}"),
        ("posting_count", posted & (pl.col("active_postings") != 1),
         lambda r: f"posted, with {r['active_postings']} active postings (expected exactly 1)"),
        ("posting_count", ~posted & (pl.col("active_postings") != 0),
         lambda r: f"status {r['status']} but {r['active_postings']} active posting(s)"),
        ("queue_status", (pl.col("status") == "exception") & (pl.col("open_items") != 1),
         lambda r: f"status exception with {r['open_items']} open queue items (expected 1)"),
        ("queue_status", (pl.col("status") != "exception") & (pl.col("open_items") != 0),
         lambda r: f"status {r['status']} but {r['open_items']} open queue item(s)"),
    ]
    found = []
    for rule, condition, describe in checks:
        for r in lines.filter(condition).iter_rows(named=True):
            found.append(Violation(rule, f"bank line {r['account']}/{r['source_ref']}", describe(r)))
    return found


def _settles_items():  # type: ignore[no-untyped-def]
    """Rows that move open amounts: invoice and installment rows, and reversals of them (not write-offs)."""
    al = tables.Allocation
    original = tables.Allocation.__table__.alias("settled_original")
    reversed_kind = select(original.c.kind).where(original.c.id == al.reverses_id).scalar_subquery()
    return al.kind.in_(("invoice", "installment")) | ((al.kind == "reversal") & reversed_kind.in_(("invoice", "installment")))


def _invoice_violations(session: Session) -> list[Violation]:
    inv, al = tables.Invoice, tables.Allocation
    applied = (
        select(al.invoice_number, func.sum(al.amount_minor).label("applied"))
        .where(al.invoice_number.is_not(None), _settles_items()).group_by(al.invoice_number).subquery()
    )
    frame = repo.frame_of(session, select(
        inv.invoice_number, inv.currency, inv.snapshot_open_minor, inv.open_amount_minor,
        func.coalesce(applied.c.applied, 0),
    ).outerjoin(applied, applied.c.invoice_number == inv.invoice_number), {
        "invoice_number": pl.String(), "currency": pl.String(), "snapshot_open": pl.Int64(),
        "open": pl.Int64(), "applied": pl.Int64(),
    })
    found = []
    wrong = frame.filter(pl.col("open") != pl.col("snapshot_open") - pl.col("applied"))
    for r in wrong.iter_rows(named=True):
        found.append(Violation(
            "invoice_open", f"invoice {r['invoice_number']}",
            f"open {_money(r['open'], r['currency'])}, but snapshot open "
            f"{_money(r['snapshot_open'], r['currency'])} - applied {_money(r['applied'], r['currency'])} = "
            f"{_money(r['snapshot_open'] - r['applied'], r['currency'])}",
        ))
    for r in frame.filter((pl.col("open") < 0) | (pl.col("applied") < 0)).iter_rows(named=True):
        found.append(Violation("negative", f"invoice {r['invoice_number']}",
                               f"open {_money(r['open'], r['currency'])}, applied {_money(r['applied'], r['currency'])}"))
    return found


def _installment_violations(session: Session) -> list[Violation]:
    ins, al = tables.Installment, tables.Allocation
    applied = (
        select(
            al.installment_id, func.sum(al.amount_minor).label("applied"),
            func.sum(case((al.kind == "reversal", 1), else_=0)).label("reversals"),
        ).where(al.installment_id.is_not(None), _settles_items()).group_by(al.installment_id).subquery()
    )
    frame = repo.frame_of(session, select(
        ins.plan_id, ins.installment_no, ins.amount_minor, ins.snapshot_paid_minor, ins.open_amount_minor,
        func.coalesce(applied.c.applied, 0), func.coalesce(applied.c.reversals, 0),
    ).outerjoin(applied, applied.c.installment_id == ins.id), {
        "plan_id": pl.String(), "no": pl.Int64(), "amount": pl.Int64(), "paid": pl.Int64(),
        "open": pl.Int64(), "applied": pl.Int64(), "reversals": pl.Int64(),
    }).sort("plan_id", "no")
    found = []
    expected = pl.col("amount") - pl.col("paid") - pl.col("applied")
    for r in frame.filter(pl.col("open") != expected).iter_rows(named=True):
        found.append(Violation(
            "installment_open", f"plan {r['plan_id']} installment {r['no']}",
            f"open {r['open']} minor units, expected {r['amount'] - r['paid'] - r['applied']}",
        ))
    # due order: nothing applied to an installment while an earlier one of its plan is still open
    # (an installment reopened by a reversal, e.g. a bank return, is a broken plan, not a posting error)
    unpaid = ((pl.col("open") > 0) & (pl.col("reversals") == 0)).cast(pl.Int64)
    earlier_open = unpaid.cum_sum().over("plan_id") - unpaid
    for r in frame.filter((pl.col("applied") > 0) & (earlier_open > 0)).iter_rows(named=True):
        found.append(Violation(
            "installment_order", f"plan {r['plan_id']} installment {r['no']}",
            "paid while an earlier installment of the plan is still open",
        ))
    return found


def _allocation_violations(session: Session) -> list[Violation]:
    al, p = tables.Allocation, tables.Posting
    found = []
    rows = session.execute(
        select(al.id, al.kind, al.amount_minor, al.currency, al.reverses_id, al.invoice_number, al.customer_id)
        .where((al.kind.in_(("invoice", "installment", "on_account")) & (al.amount_minor <= 0))
               | ((al.kind == "write_off") & (al.amount_minor >= 0))
               | ((al.kind == "reversal") & (al.reverses_id.is_(None)))
               | ((al.kind.in_(("invoice", "installment", "write_off"))) & al.invoice_number.is_(None)))
    ).all()
    for r in rows:
        found.append(Violation("allocation_shape", f"allocation {r.id}",
                               f"{r.kind} of {_money(r.amount_minor, r.currency)} "
                               f"(invoice {r.invoice_number}, reverses {r.reverses_id})"))
    # a reversal row negates exactly the row it reverses, and a row is reversed at most once
    original = al.__table__.alias("original")
    bad = session.execute(
        select(al.id, al.amount_minor, original.c.amount_minor)
        .join(original, original.c.id == al.reverses_id)
        .where((al.amount_minor != -original.c.amount_minor)
               | (func.coalesce(al.invoice_number, "") != func.coalesce(original.c.invoice_number, "")))
    ).all()
    for r in bad:
        found.append(Violation("reversal_mismatch", f"allocation {r[0]}",
                               f"reverses a row of {r[2]} minor units with {r[1]}"))
    twice = session.execute(
        select(al.reverses_id, func.count()).where(al.reverses_id.is_not(None))
        .group_by(al.reverses_id).having(func.count() > 1)
    ).all()
    for reversed_id, count in twice:
        found.append(Violation("reversed_twice", f"allocation {reversed_id}", f"reversed {count} times"))
    empty = session.execute(
        select(p.id, p.bank_line_id).where(~select(al.id).where(al.posting_id == p.id).exists())
    ).all()
    for posting_id, line_id in empty:
        found.append(Violation("orphan_posting", f"posting {posting_id}", f"of bank line {line_id} has no allocations"))
    return found


def check_ledger(session: Session) -> list[Violation]:
    """Every invariant violation in the ledger, or [] when it is consistent."""
    return [
        *_line_violations(_lines(session)),
        *_invoice_violations(session),
        *_installment_violations(session),
        *_allocation_violations(session),
    ]
