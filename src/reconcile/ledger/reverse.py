"""Reversing a posted line: new rows that negate the old ones, never deletes.

reverse_line writes one `reversal` allocation per allocation of the line's
active posting (negated amount, `reverses_id` pointing at the original),
gives the amounts back to the invoices and installments, marks the posting
reversed and bumps the line's generation, so the line can be posted once
more. Callers own the transaction: the whole reversal commits or nothing.
"""

from __future__ import annotations

import json
from datetime import date, datetime

import polars as pl
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from reconcile.core.codes import OPEN_LINE_STATUSES, ItemStatus, Kind, LineStatus, Reason
from reconcile.core.errors import LedgerError
from reconcile.core.evidence import evidence_text, suggestions_text
from reconcile.ledger.open_items import move_open
from reconcile.store import repo, tables

# what happens to a line after its posting is reversed
THEN_STATUSES = {
    "exception": "back to the queue, for a person to decide (unapply)",
    "unmatched": "matched again by the next run (unapply --rematch)",
    "returned": "the bank took the money back: never matched again",
}


def _allocation_rows(session: Session, line_id: int, posting_id: int) -> pl.DataFrame:
    al = tables.Allocation
    return repo.frame_of(session, select(
        al.id, al.kind, al.customer_id, al.invoice_number, al.installment_id, al.installment_no,
        al.amount_minor, al.currency, al.settled_amount_minor, al.settled_currency,
    ).where(al.bank_line_id == line_id, al.posting_id == posting_id, al.kind != Kind.REVERSAL), {
        "id": pl.Int64(), "kind": pl.String(), "customer_id": pl.String(), "invoice_number": pl.String(),
        "installment_id": pl.Int64(), "installment_no": pl.Int64(), "amount_minor": pl.Int64(),
        "currency": pl.String(), "settled_amount_minor": pl.Int64(), "settled_currency": pl.String(),
    })


def reverse_line(
    session: Session, line_id: int, *, reason: str, then: str, actor: str, now: datetime, business_date: date,
    run_id: str | None = None, details: dict | None = None,
) -> pl.DataFrame:
    """Reverse the active posting of bank line `line_id`; returns the original allocation rows reversed.

    `business_date` is the day the reversal rows belong to (the run's as-of date or the day a person acted).
    """
    if then not in THEN_STATUSES:
        raise ValueError(f"unknown status after reversal: {then}")
    bl, p = tables.BankLine.__table__, tables.Posting.__table__
    line = session.execute(select(bl).where(bl.c.id == line_id)).one()
    moved = repo.changed(session, 
        update(bl).where(bl.c.id == line_id, bl.c.status == LineStatus.POSTED, bl.c.generation == line.generation)
        .values(status=then, generation=line.generation + 1)
    )
    if moved != 1:
        raise LedgerError(f"bank line {line.account}/{line.source_ref} is {line.status}, "
                          "not posted: nothing to reverse")
    posting_id = session.execute(
        select(p.c.id).where(p.c.bank_line_id == line_id, p.c.reversed_at.is_(None))
    ).scalar_one()
    session.execute(update(p).where(p.c.id == posting_id).values(reversed_at=now))

    originals = _allocation_rows(session, line_id, posting_id)
    repo.insert_rows(session, tables.Allocation.__table__, [
        {
            "posting_id": posting_id, "bank_line_id": line_id, "run_id": run_id, "kind": Kind.REVERSAL,
            "customer_id": r["customer_id"], "invoice_number": r["invoice_number"],
            "installment_id": r["installment_id"], "installment_no": r["installment_no"],
            "amount_minor": -r["amount_minor"], "currency": r["currency"], "rule": "reversal",
            "settled_amount_minor": -r["settled_amount_minor"] if r["settled_amount_minor"] is not None else None,
            "settled_currency": r["settled_currency"],
            "confidence": 1.0, "evidence": evidence_text({"reverses": r["kind"], **(details or {})}),
            "reverses_id": r["id"], "reason": reason, "posted_at": now, "business_date": business_date,
        }
        for r in originals.iter_rows(named=True)
    ])
    # give back exactly what the posting took (first what the receivables system had closed otherwise)
    move_open(session, originals.with_columns(-pl.col("amount_minor"), -pl.col("settled_amount_minor")),
              giving_back=True)
    # a closed-elsewhere question about this posting is answered by taking the posting back
    ex = tables.ExceptionItem.__table__
    session.execute(update(ex).where(ex.c.bank_line_id == line_id, ex.c.status == ItemStatus.OPEN,
                                     ex.c.reason == Reason.CLOSED_ELSEWHERE).values(
        status=ItemStatus.RESOLVED, resolution="unapplied", resolved_by=actor, resolved_at=now,
        closed_on=business_date))

    if then == "exception":
        invoices = (originals.filter(pl.col("invoice_number").is_not_null())["invoice_number"]
                    .unique(maintain_order=True))
        session.execute(tables.ExceptionItem.__table__.insert().values(
            bank_line_id=line_id, generation=line.generation + 1, run_id=run_id, reason=Reason.UNAPPLIED,
            suggestions=suggestions_text(invoices.to_list()),
            customer_id=originals["customer_id"].drop_nulls().first() if originals.height else None,
            evidence=evidence_text({"unapplied": reason, "by": actor}), status=ItemStatus.OPEN, created_at=now,
            opened_on=business_date,
        ))
    session.add(tables.AuditEntry(
        at=now, actor=actor, action="reverse", bank_line_id=line_id, run_id=run_id,
        invoice_number=originals["invoice_number"].drop_nulls().first() if originals.height else None,
        reason=reason,
        details=json.dumps({"then": then, "reversed": originals.drop("id").to_dicts(), **(details or {})}),
    ))
    return originals


def _close_unposted(session: Session, line_ids: list[int], status: str, resolution: str, actor: str,
                         now: datetime, business_date: date) -> None:
    """Move unmatched or queued lines to `status` and settle their open queue items, in a few statements;
    refuse if any moved meanwhile."""
    bl, ex = tables.BankLine.__table__, tables.ExceptionItem.__table__
    for part, among in repo.among(session, bl.c.id, line_ids):
        moved = repo.changed(session, update(bl).where(
            among, bl.c.status.in_(OPEN_LINE_STATUSES)).values(status=status))
        if moved != len(part):
            raise LedgerError(
                f"{len(part) - moved} bank line(s) changed status while their returns were being applied")
    for _, among in repo.among(session, ex.c.bank_line_id, line_ids):
        session.execute(update(ex).where(among, ex.c.status == ItemStatus.OPEN).values(
            status=ItemStatus.RESOLVED, resolution=resolution, resolved_by=actor, resolved_at=now,
            closed_on=business_date))


def apply_returns(
    session: Session, pairs: list[tuple[int, int, str]], *, actor: str, now: datetime, business_date: date,
    run_id: str | None = None,
) -> None:
    """The bank took each payment `credit_id` back with debit `debit_id`: reverse it if posted, never match it
    again; pairs are (debit_id, credit_id, evidence), the unposted ones handled in bulk."""
    if not pairs:
        return
    bl = tables.BankLine.__table__
    status: dict[int, str] = {}
    for _, among in repo.among(session, bl.c.id, [credit for _, credit, _ in pairs]):
        status.update({line_id: line_status for line_id, line_status in session.execute(
            select(bl.c.id, bl.c.status).where(among)).all()})
    audit: list[dict[str, object]] = []
    unposted: list[int] = []
    for debit, credit, evidence in pairs:
        details = {"return_line_id": debit, "evidence": evidence}
        if status[credit] == LineStatus.POSTED:
            reverse_line(session, credit, reason="bank_return", then=LineStatus.RETURNED, actor=actor, now=now,
                         business_date=business_date, run_id=run_id, details=details)
        else:
            unposted.append(credit)
            audit.append({"at": now, "actor": actor, "action": "return", "bank_line_id": credit, "run_id": run_id,
                          "invoice_number": None, "reason": "bank_return", "details": json.dumps(details)})
        audit.append({"at": now, "actor": actor, "action": "return", "bank_line_id": debit, "run_id": run_id,
                      "invoice_number": None, "reason": "bank_return",
                      "details": json.dumps({"returns_line_id": credit, "evidence": evidence})})
    if unposted:
        _close_unposted(session, unposted, "returned", "returned", actor, now, business_date)
    _close_unposted(session, [debit for debit, _, _ in pairs], "skipped", "return_paired", actor, now,
                    business_date)
    repo.insert_rows(session, tables.AuditEntry.__table__, audit)
