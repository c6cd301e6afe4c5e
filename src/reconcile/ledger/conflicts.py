"""Postings whose item the receivables system closed (or reduced) before it imported them: `closed_elsewhere`.

A snapshot can leave an item with less open than reconcile's own not-yet-included postings take: the
receivables system closed the invoice some other way (a cheque, a cancellation, a credit). The posting
is never silently counted twice or dropped: the item's open amount stays at zero, the difference is its
excess (core/allocation.py), and each bank line behind it is shown to a person as a `closed_elsewhere`
queue item with both sides, who chooses: unapply (the money goes back to the queue), keep it on the
customer's account, or confirm the posting as it is. A team may configure the first two to happen
automatically ([receivables] closed_elsewhere).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import polars as pl
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from reconcile.core.codes import ItemStatus, Kind, LineStatus
from reconcile.core.errors import ReconcileError
from reconcile.core.evidence import evidence_of, evidence_text, suggestions_text
from reconcile.ledger.post import post_chunk
from reconcile.ledger.reverse import reverse_line
from reconcile.store import repo, tables

REASON = "closed_elsewhere"
CHOICES = ("unapply", "on_account", "confirm")


def _conflicting_lines(session: Session, numbers: list[str]) -> pl.DataFrame:
    """Per posted bank line and invoice in excess: what the line's not-included postings take from it."""
    inv, al, bl = tables.Invoice, tables.Allocation, tables.BankLine
    original = tables.Allocation.__table__.alias("conflict_original")
    settles = al.kind.in_((Kind.INVOICE, Kind.INSTALLMENT)) | (
        (al.kind == Kind.REVERSAL) & original.c.kind.in_((Kind.INVOICE, Kind.INSTALLMENT)))
    frames = []
    for _, among in repo.among(session, inv.invoice_number, numbers):
        frames.append(repo.frame_of(session, select(
            al.bank_line_id, inv.invoice_number, inv.customer_id, inv.currency, inv.erp_status,
            inv.snapshot_open_minor, inv.excess_minor, bl.generation, bl.status, al.amount_minor,
        ).join(inv, inv.invoice_number == al.invoice_number).join(bl, bl.id == al.bank_line_id)
            .outerjoin(original, original.c.id == al.reverses_id)
            .where(among, inv.excess_minor != 0, settles,
                   or_(al.batch_seq.is_(None), al.batch_seq > inv.basis_seq)), {
            "bank_line_id": pl.Int64(), "invoice_number": pl.String(), "customer_id": pl.String(),
            "currency": pl.String(), "erp_status": pl.String(), "erp_open": pl.Int64(), "excess": pl.Int64(),
            "generation": pl.Int64(), "status": pl.String(), "amount": pl.Int64(),
        }))
    if not frames:
        return pl.DataFrame()
    rows = pl.concat(frames)
    keys = ["bank_line_id", "invoice_number", "customer_id", "currency", "erp_status", "erp_open", "excess",
            "generation", "status"]
    return (rows.group_by(keys).agg(pl.col("amount").sum().alias("posted_not_included"))
            .filter((pl.col("posted_not_included") != 0) & (pl.col("status") == "posted"))
            .sort("invoice_number", "bank_line_id"))


def _queue(session: Session, found: pl.DataFrame, snapshot_id: int | None, now: datetime, day: date) -> int:
    """One open closed_elsewhere item per line, carrying every invoice of the line in excess."""
    ex = tables.ExceptionItem.__table__
    count = 0
    for (line_id, generation), rows in found.group_by(["bank_line_id", "generation"], maintain_order=True):
        invoices = [
            {"invoice_number": r["invoice_number"], "erp_status": r["erp_status"],
             "erp_open_minor": r["erp_open"], "excess_minor": r["excess"],
             "posted_not_included_minor": r["posted_not_included"], "currency": r["currency"]}
            for r in rows.iter_rows(named=True)
        ]
        evidence = evidence_text({"closed_elsewhere": invoices, "snapshot_id": snapshot_id,
                                  "why": "the receivables system leaves less open on these invoices than reconcile "
                                         "posted to them in postings it has not imported yet"})
        suggestions = suggestions_text(i["invoice_number"] for i in invoices)
        existing = session.execute(select(ex.c.id).where(
            ex.c.bank_line_id == line_id, ex.c.reason == REASON, ex.c.status == ItemStatus.OPEN)).scalar()
        if existing is not None:
            session.execute(update(ex).where(ex.c.id == existing).values(evidence=evidence, suggestions=suggestions))
            continue
        session.execute(ex.insert().values(
            bank_line_id=line_id, generation=generation, reason=REASON, suggestions=suggestions,
            customer_id=rows["customer_id"][0], evidence=evidence, status=ItemStatus.OPEN, created_at=now,
            opened_on=day,
        ))
        count += 1
    return count


def settle_conflicts(session: Session, numbers: list[str], *, policy: str, snapshot_id: int | None, actor: str,
                     now: datetime, business_date: date) -> int:
    """After a snapshot changed these invoices: show (or, by policy, settle) the postings it overtook."""
    if not numbers:
        return 0
    found = _conflicting_lines(session, numbers)
    if found.height == 0:
        return 0
    if policy == "queue":
        return _queue(session, found, snapshot_id, now, business_date)
    for (line_id,), rows in found.group_by(["bank_line_id"], maintain_order=True):
        amounts = {r["invoice_number"]: min(r["excess"], r["posted_not_included"])
                   for r in rows.iter_rows(named=True)}
        if policy == "unapply":
            reverse_line(session, int(line_id), reason=REASON, then=LineStatus.EXCEPTION, actor=actor, now=now,
                         business_date=business_date, details={"closed_elsewhere": sorted(amounts)})
        else:
            keep_on_account(session, int(line_id), amounts, actor=actor, now=now, business_date=business_date,
                            reason="closed elsewhere: kept on account (configured)")
    return found["bank_line_id"].n_unique()


def _active_rows(session: Session, line_id: int) -> pl.DataFrame:
    al, p = tables.Allocation, tables.Posting
    return repo.frame_of(session, select(
        al.kind, al.customer_id, al.invoice_number, al.installment_id, al.installment_no, al.amount_minor,
        al.currency, al.rule, al.reason,
    ).join(p, p.id == al.posting_id)
        .where(al.bank_line_id == line_id, p.reversed_at.is_(None), al.kind != Kind.REVERSAL)
        .order_by(al.id), {
        "kind": pl.String(), "customer_id": pl.String(), "invoice_number": pl.String(), "installment_id": pl.Int64(),
        "installment_no": pl.Int64(), "amount_minor": pl.Int64(), "currency": pl.String(), "rule": pl.String(),
        "reason": pl.String(),
    })


def _moved_to_account(rows: list[dict[str, Any]], invoice: str, amount: int) -> tuple[list[dict[str, Any]], int]:
    """The line's rows with `amount` of what went to `invoice` taken off it; returns (rows, cash moved).

    A write-off beside the invoice only made sense with the invoice settled: then all the cash that went
    to the invoice (its rows and the write-off) moves."""
    mine = [r for r in rows if r["invoice_number"] == invoice]
    settled = sum(r["amount_minor"] for r in mine if r["kind"] in (Kind.INVOICE, Kind.INSTALLMENT))
    if any(r["kind"] == "write_off" for r in mine) or amount >= settled:
        return [r for r in rows if r["invoice_number"] != invoice], sum(r["amount_minor"] for r in mine)
    kept, left = [], amount
    for r in reversed(rows):  # the last rows of the invoice give way first (later installments)
        if left and r["invoice_number"] == invoice and r["kind"] in (Kind.INVOICE, Kind.INSTALLMENT):
            cut = min(left, r["amount_minor"])
            left -= cut
            if r["amount_minor"] - cut:
                kept.append({**r, "amount_minor": r["amount_minor"] - cut})
            continue
        kept.append(r)
    return list(reversed(kept)), amount


def keep_on_account(session: Session, line_id: int, amounts: dict[str, int], *, actor: str, now: datetime,
                    business_date: date, reason: str) -> None:
    """Re-post a line with what it paid on these invoices (up to `amounts`) kept on the customer's account."""
    rows = _active_rows(session, line_id).to_dicts()
    if not rows:
        raise ReconcileError(f"bank line {line_id} has no active posting")
    customer = next(r["customer_id"] for r in rows if r["invoice_number"] in amounts)
    moved = 0
    for invoice, amount in amounts.items():
        rows, cash = _moved_to_account(rows, invoice, amount)
        moved += cash
    rows.append({"kind": Kind.ON_ACCOUNT, "customer_id": customer, "invoice_number": None, "installment_id": None,
                 "installment_no": None, "amount_minor": moved, "currency": None, "rule": REASON, "reason": None})
    line = session.execute(select(tables.BankLine).where(tables.BankLine.id == line_id)).scalar_one()
    currency = line.currency
    reverse_line(session, line_id, reason=REASON, then=LineStatus.UNMATCHED, actor=actor, now=now,
                 business_date=business_date,
                 details={"kept_on_account": {k: v for k, v in amounts.items()}, "why": reason})
    evidence = evidence_text({"closed_elsewhere": sorted(amounts), "kept_on_account": True, "by": actor,
                              "why": reason})
    allocations = pl.DataFrame([
        {"bank_line_id": line_id, "kind": r["kind"], "customer_id": r["customer_id"],
         "invoice_number": r["invoice_number"], "installment_no": r["installment_no"],
         "installment_id": r["installment_id"], "amount_minor": r["amount_minor"], "currency": currency,
         "rule": r["rule"],
         "confidence": 1.0, "evidence": evidence}
        for r in rows if r["amount_minor"]
    ], schema={"bank_line_id": pl.Int64(), "kind": pl.String(), "customer_id": pl.String(),
               "invoice_number": pl.String(), "installment_no": pl.Int64(), "installment_id": pl.Int64(),
               "amount_minor": pl.Int64(), "currency": pl.String(), "rule": pl.String(), "confidence": pl.Float64(),
               "evidence": pl.String()})
    # the reversal bumped the line's generation: the new posting is the next one
    lines = pl.DataFrame({"bank_line_id": [line_id], "amount_minor": [line.amount_minor],
                          "generation": [line.generation + 1]})
    post_chunk(session, lines=lines, allocations=allocations, exceptions=_no_exceptions(), skipped=_no_skipped(),
               run_id=None, actor=actor, now=now, business_date=business_date)


def _no_exceptions() -> pl.DataFrame:
    from reconcile.core import frames

    return frames.empty(frames.EXCEPTIONS)


def _no_skipped() -> pl.DataFrame:
    from reconcile.core import frames

    return frames.empty(frames.SKIPPED)


def resolve(session: Session, item: tables.ExceptionItem, choice: str, *, actor: str, now: datetime,
            business_date: date, note: str | None = None) -> dict[str, Any]:
    """A person's answer to a closed_elsewhere item, in the caller's transaction."""
    if choice not in CHOICES:
        raise ReconcileError(f"a closed_elsewhere item is answered with one of {', '.join(CHOICES)}")
    if item.reason != REASON or item.status != "open":
        raise ReconcileError(f"exception {item.id} is not an open closed_elsewhere item")
    line = session.execute(select(tables.BankLine).where(tables.BankLine.id == item.bank_line_id)).scalar_one()
    if line.status != LineStatus.POSTED or line.generation != item.generation:
        raise ReconcileError(f"exception {item.id}: its posting changed meanwhile (the line is {line.status})")
    evidence = evidence_of(item.evidence)
    amounts = {i["invoice_number"]: min(i["excess_minor"], i["posted_not_included_minor"])
               for i in evidence.get("closed_elsewhere", [])}
    ex = tables.ExceptionItem.__table__
    why = note or f"closed elsewhere: {choice}"
    if choice == "unapply":
        reverse_line(session, line.id, reason=why, then=LineStatus.EXCEPTION, actor=actor, now=now,
                     business_date=business_date, details={"closed_elsewhere": sorted(amounts)})
    elif choice == "on_account":
        keep_on_account(session, line.id, amounts, actor=actor, now=now, business_date=business_date, reason=why)
    # reversing settled the item already ("unapplied"); record the person's answer either way
    session.execute(update(ex).where(ex.c.id == item.id).values(
        status=ItemStatus.RESOLVED, resolution=choice, resolved_by=actor, resolved_at=now, closed_on=business_date))
    session.add(tables.AuditEntry(at=now, actor=actor, action="resolve", bank_line_id=line.id, reason=why,
                                  invoice_number=next(iter(amounts), None),
                                  details=json.dumps({"exception_id": item.id, "closed_elsewhere": choice,
                                                      "invoices": amounts})))
    return {"id": item.id, "status": "resolved", "resolution": choice, "category": None, "invoices": amounts,
            "allocations": []}
