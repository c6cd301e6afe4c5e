"""Ledger use cases besides posting: check the invariants, unapply a line, read its history."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
from sqlalchemy import Engine, or_, select

from reconcile.core.codes import LineStatus
from reconcile.core.errors import LedgerError, NotFoundError, ReconcileError
from reconcile.core.money import format_minor
from reconcile.ledger.check import Violation, check_ledger
from reconcile.ledger.reverse import reverse_line
from reconcile.store import db, tables


def check(engine: Engine) -> list[Violation]:
    with db.transaction(engine) as session:
        return check_ledger(session)


def find_line(session, source_ref: str, account: str | None) -> tables.BankLine:  # type: ignore[no-untyped-def]
    bl = tables.BankLine
    query = select(bl).where(bl.source_ref == source_ref)
    if account:
        query = query.where(bl.account == account)
    found = session.execute(query.order_by(bl.account)).scalars().all()
    if not found:
        hint = " (give the line's source_ref, and its account with --account)" if "/" in source_ref else ""
        raise NotFoundError(f"no bank line {source_ref}" + (f" on account {account}" if account else "") + hint)
    if len(found) > 1:
        accounts = ", ".join(sorted(line.account for line in found))
        raise ReconcileError(f"bank line {source_ref} exists on several accounts ({accounts}): name one with --account")
    return found[0]


def unapply(
    engine: Engine, source_ref: str, *, reason: str, actor: str, now: datetime,
    account: str | None = None, rematch: bool = False, business_date: date | None = None,
) -> dict:
    """Reverse a posted line's allocations; it goes back to the queue (or, with rematch, to the next run)."""
    if not reason.strip():
        raise ReconcileError("a reason is required to unapply a posting")
    with db.transaction(engine) as session:
        line = find_line(session, source_ref, account)
        if line.status != "posted":
            raise ReconcileError(f"bank line {line.account}/{source_ref} is {line.status}, "
                                 "not posted: nothing to unapply")
        try:
            reversed_rows = reverse_line(
                session, line.id, reason=reason, then=LineStatus.UNMATCHED if rematch else LineStatus.EXCEPTION,
                actor=actor, now=now,
                business_date=business_date or now.date(),
            )
        except LedgerError as exc:
            raise ReconcileError(str(exc)) from None
        return {
            "account": line.account, "source_ref": source_ref, "then": "unmatched" if rematch else "exception",
            "reversed": [
                {"kind": r["kind"], "invoice_number": r["invoice_number"], "installment_no": r["installment_no"],
                 "amount": format_minor(r["amount_minor"], r["currency"])}
                for r in reversed_rows.iter_rows(named=True)
            ],
        }


HISTORY: dict[str, pl.DataType] = {
    "at": pl.String(), "actor": pl.String(), "action": pl.String(), "account": pl.String(),
    "source_ref": pl.String(), "invoice_number": pl.String(), "run_id": pl.String(), "reason": pl.String(),
    "details": pl.String(),
}


def history(engine: Engine, *, line_ref: str | None = None, invoice: str | None = None,
            account: str | None = None) -> pl.DataFrame:
    """Audit entries of a bank line (by source_ref) or of an invoice (named in the entry or allocated to it)."""
    if bool(line_ref) == bool(invoice):
        raise ReconcileError("name exactly one of a bank line (--line) or an invoice (--invoice)")
    a, bl, al = tables.AuditEntry, tables.BankLine, tables.Allocation
    with db.transaction(engine) as session:
        query = select(a.at, a.actor, a.action, bl.account, bl.source_ref, a.invoice_number, a.run_id, a.reason,
                       a.details).outerjoin(bl, bl.id == a.bank_line_id)
        if line_ref:
            line = find_line(session, line_ref, account)
            query = query.where(a.bank_line_id == line.id)
        else:
            if session.get(tables.Invoice, invoice) is None:
                raise NotFoundError(f"no invoice {invoice}")
            lines_on_invoice = select(al.bank_line_id).where(al.invoice_number == invoice)
            query = query.where(or_(a.invoice_number == invoice, a.bank_line_id.in_(lines_on_invoice)))
        rows = session.execute(query.order_by(a.at, a.id)).all()
    # SQLite hands back naive UTC, PostgreSQL aware datetimes: show both the same way
    return pl.DataFrame(
        [(_utc_text(r[0]), *r[1:]) for r in rows], schema=HISTORY, orient="row"
    )


def _utc_text(at: datetime) -> str:
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return at.isoformat(sep=" ", timespec="seconds")
