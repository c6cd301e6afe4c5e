"""Credit on account: money kept for a customer (an overpayment, a payment put on account by a person),
listed and applied to the customer's open invoices later.

Applying credit re-applies money inside the bank lines that brought it: a negative on_account row and the
invoice (or installment, in due order) rows beside it join the line's active posting (post.post_adjustment),
so the line's rows still add up to its amount, a posting batch hands the move to the receivables system,
and unapplying the line takes it back whole. Credit is used oldest first.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import polars as pl
from sqlalchemy import Engine, func, select

from reconcile.core import frames
from reconcile.core.allocation import Installment, take_in_due_order
from reconcile.core.codes import Kind
from reconcile.core.errors import NotFoundError, ReconcileError
from reconcile.core.evidence import evidence_text
from reconcile.core.money import format_minor, parse_decimal, to_minor
from reconcile.ledger.post import post_adjustment
from reconcile.store import db, tables


def _pools(session: Any, customer: str, currency: str | None = None) -> list[tuple[int, str, str, date, int]]:
    """(line id, source_ref, currency, booking date, credit) per posted line holding credit for `customer`."""
    al, p, bl = tables.Allocation, tables.Posting, tables.BankLine
    query = (
        select(al.bank_line_id, bl.source_ref, al.currency, bl.booking_date, func.sum(al.amount_minor))
        .join(p, p.id == al.posting_id).join(bl, bl.id == al.bank_line_id)
        .where(al.customer_id == customer, al.kind == Kind.ON_ACCOUNT, p.reversed_at.is_(None))
        .group_by(al.bank_line_id, bl.source_ref, al.currency, bl.booking_date)
        .having(func.sum(al.amount_minor) > 0)
        .order_by(bl.booking_date, al.bank_line_id)
    )
    if currency is not None:
        query = query.where(al.currency == currency)
    return [tuple(r) for r in session.execute(query).all()]  # type: ignore[misc]


def credit_available(engine: Engine, customer: str | None = None) -> list[dict[str, Any]]:
    """Credit on account per customer and currency (active postings only), with the lines it came from."""
    al, p, bl = tables.Allocation, tables.Posting, tables.BankLine
    with db.transaction(engine) as session:
        query = (
            select(al.customer_id, al.currency, bl.source_ref, func.sum(al.amount_minor))
            .join(p, p.id == al.posting_id).join(bl, bl.id == al.bank_line_id)
            .where(al.kind == Kind.ON_ACCOUNT, p.reversed_at.is_(None))
            .group_by(al.customer_id, al.currency, bl.source_ref).having(func.sum(al.amount_minor) > 0)
            .order_by(al.customer_id, al.currency, bl.source_ref)
        )
        if customer is not None:
            query = query.where(al.customer_id == customer)
        rows = session.execute(query).all()
    out: dict[tuple[Any, Any], dict[str, Any]] = {}
    for who, currency, ref, amount in rows:
        entry = out.setdefault((who, currency), {"customer_id": who, "currency": currency, "credit_minor": 0,
                                                 "source_refs": []})
        entry["credit_minor"] += amount
        entry["source_refs"].append(ref)
    return [{**e, "credit": format_minor(e["credit_minor"], e["currency"])} for e in out.values()]


def apply_credit(engine: Engine, customer: str, invoices: list[str], *, amount: str | None, actor: str,
                 now: datetime, business_date: date, note: str | None = None) -> dict[str, Any]:
    """Apply `customer`'s credit on account to `invoices` in the order named (each up to its open amount),
    `amount` in all (default: as much as the credit and the invoices allow). All or nothing."""
    if not invoices:
        raise ReconcileError("name at least one invoice to apply the credit to (--invoice)")
    inv, ins = tables.Invoice, tables.Installment
    with db.transaction(engine) as session:
        if session.get(tables.Customer, customer) is None:
            raise NotFoundError(f"unknown customer {customer}")
        heads = {}
        for number in invoices:
            row = session.execute(select(inv.customer_id, inv.currency, inv.open_amount_minor, inv.amount_minor)
                                  .where(inv.invoice_number == number)).first()
            if row is None:
                raise NotFoundError(f"unknown invoice {number}")
            if row.customer_id != customer:
                raise ReconcileError(f"invoice {number} belongs to {row.customer_id}, not {customer}")
            if row.amount_minor < 0 or row.open_amount_minor <= 0:
                raise ReconcileError(f"invoice {number} has nothing open to apply credit to")
            heads[number] = row
        currencies = {h.currency for h in heads.values()}
        if len(currencies) != 1:
            raise ReconcileError("the invoices named are in several currencies: apply credit one currency at a time")
        currency = currencies.pop()
        pools = _pools(session, customer, currency)
        available = sum(p[4] for p in pools)
        if available <= 0:
            raise ReconcileError(f"{customer} has no credit on account in {currency}")
        wanted = sum(h.open_amount_minor for h in heads.values())
        if amount is not None:
            try:
                wanted = to_minor(parse_decimal(amount), currency)
            except ValueError as exc:
                raise ReconcileError(f"--amount: {exc}") from None
            if wanted <= 0:
                raise ReconcileError("--amount must be more than zero")
            if wanted > available:
                raise ReconcileError(f"{customer} has {format_minor(available, currency)} {currency} on account, "
                                     f"not {format_minor(wanted, currency)}")
        wanted = min(wanted, available)
        # what goes to each invoice, in the order named
        targets: list[tuple[str, int]] = []
        left = wanted
        for number, head in heads.items():
            part = min(left, head.open_amount_minor)
            if part > 0:
                targets.append((number, part))
                left -= part
        if left > 0:
            raise ReconcileError(f"the invoices named have {format_minor(wanted - left, currency)} open: "
                                 f"{format_minor(left, currency)} of the credit would be left over")
        done: list[dict[str, Any]] = []
        pool_iter = iter(pools)
        line_id, ref, _, _, credit = next(pool_iter)
        evidence = evidence_text({"credit_apply": True, "by": actor, "note": note})
        for number, part in targets:
            plan = [Installment(no, due, open_) for _, no, due, open_ in session.execute(
                select(ins.id, ins.installment_no, ins.due_date, ins.open_amount_minor)
                .where(ins.invoice_number == number)).all()]
            ids = dict(session.execute(select(ins.installment_no, ins.id).where(ins.invoice_number == number)).all())
            while part > 0:
                while credit <= 0:
                    line_id, ref, _, _, credit = next(pool_iter)
                take = min(part, credit)
                rows: list[dict[str, Any]] = [{"kind": Kind.ON_ACCOUNT, "invoice_number": None, "installment_no": None,
                                               "installment_id": None, "amount_minor": -take}]
                through_plan = take_in_due_order(plan, take)
                for no, piece in through_plan:
                    rows.append({"kind": Kind.INSTALLMENT, "invoice_number": number, "installment_no": no,
                                 "installment_id": ids[no], "amount_minor": piece})
                    plan = [Installment(i.no, i.due_date, i.open_minor - (piece if i.no == no else 0)) for i in plan]
                rest = take - sum(piece for _, piece in through_plan)
                if rest:
                    rows.append({"kind": Kind.INVOICE, "invoice_number": number, "installment_no": None,
                                 "installment_id": None, "amount_minor": rest})
                frame = frames.from_records([
                    {**r, "bank_line_id": line_id, "customer_id": customer, "currency": currency,
                     "rule": "credit_apply", "confidence": 1.0, "evidence": evidence} for r in rows
                ], {**frames.ALLOCATIONS, "installment_id": pl.Int64()})
                post_adjustment(session, line_id, frame, actor=actor, now=now, business_date=business_date,
                                action="credit_apply", reason=note or "credit on account applied")
                done.extend({"source_ref": ref, "invoice_number": r["invoice_number"],
                             "installment_no": r["installment_no"],
                             "amount": format_minor(r["amount_minor"], currency)} for r in rows)
                credit -= take
                part -= take
        return {"customer_id": customer, "currency": currency, "applied": format_minor(wanted, currency),
                "rows": done}
