"""Manual decisions on queued lines, posted through the same ledger code as the run.

resolve_item allocates one queued line to the invoices a person names (in
the order named, up to each one's open amount) and keeps any remainder on
the customer's account; it is exactly once (the ledger's guards) and audited.
"""

from __future__ import annotations

import json
from datetime import datetime

import polars as pl
from sqlalchemy import Engine, select, update

from reconcile import db, frames, tables
from reconcile.errors import LedgerError, NotFoundError, ReconcileError
from reconcile.money import format_minor
from reconcile.post import post_chunk


def resolve_item(
    engine: Engine, key: int, invoices: list[str], *, actor: str, now: datetime,
    on_account_customer: str | None = None, note: str | None = None,
) -> list[dict]:
    """Post queued item `key` to `invoices`; returns the allocation rows written."""
    with db.transaction(engine) as session:
        ex, bl = tables.ExceptionItem, tables.BankLine
        row = session.execute(select(ex, bl).join(bl, bl.id == ex.bank_line_id).where(ex.id == key)).first()
        if row is None:
            raise NotFoundError(f"no exception item {key}")
        item, line = row
        if item.status != "open":
            raise ReconcileError(f"exception {key} was already {item.status} by {item.resolved_by} at {item.resolved_at}")
        if line.amount_minor <= 0:
            raise ReconcileError(f"exception {key} is a debit of {format_minor(line.amount_minor, line.currency)}: nothing to allocate")
        found = {
            inv.invoice_number: inv for inv in session.execute(
                select(tables.Invoice).where(tables.Invoice.invoice_number.in_(invoices))
            ).scalars()
        }
        missing = [n for n in invoices if n not in found]
        if missing:
            raise NotFoundError(f"unknown invoice(s): {', '.join(missing)}")
        customers = {found[n].customer_id for n in invoices} | ({on_account_customer} if on_account_customer else set())
        if len(customers) != 1:
            raise ReconcileError("a line is allocated to one customer: the invoices named belong to several, or none is named")
        customer = customers.pop()
        rows, left = [], line.amount_minor
        for number in invoices:
            invoice = found[number]
            if invoice.currency != line.currency:
                raise ReconcileError(f"invoice {number} is in {invoice.currency}, the payment in {line.currency}")
            take = min(left, invoice.open_amount_minor)
            if take <= 0:
                raise ReconcileError(f"invoice {number} has nothing open (or the payment is used up before it)")
            rows.append({"kind": "invoice", "invoice_number": number, "amount_minor": take})
            left -= take
        if left:
            rows.append({"kind": "on_account", "invoice_number": None, "amount_minor": left})
        evidence = json.dumps({"manual": True, "by": actor, "note": note})
        allocations = frames.from_records([
            {"bank_line_id": line.id, "customer_id": customer, "installment_no": None, "currency": line.currency,
             "rule": "manual", "confidence": 1.0, "evidence": evidence, **r}
            for r in rows
        ], frames.ALLOCATIONS).with_columns(pl.lit(None, dtype=pl.Int64).alias("installment_id"))
        lines = pl.DataFrame({"bank_line_id": [line.id], "amount_minor": [line.amount_minor], "generation": [line.generation]})
        try:
            post_chunk(session, lines=lines, allocations=allocations, exceptions=frames.empty(frames.EXCEPTIONS),
                       skipped=frames.empty(frames.SKIPPED), run_id=None, actor=actor, now=now)
        except LedgerError as exc:
            raise ReconcileError(f"exception {key}: {exc}") from None
        session.execute(update(ex).where(ex.id == key).values(resolution="manual", resolved_by=actor, resolved_at=now))
        session.add(tables.AuditEntry(
            at=now, actor=actor, action="resolve", bank_line_id=line.id, invoice_number=invoices[0] if invoices else None,
            reason=note, details=json.dumps({"exception_id": key, "allocations": rows}),
        ))
        return [{**r, "amount": format_minor(r["amount_minor"], line.currency)} for r in rows]
