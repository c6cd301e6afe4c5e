"""Reads of the manual-review queue: lists and one item with its context.

Actions that change the queue (resolve, claim, assign) post through the
ledger and live beside these reads as the queue grows.
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl
from sqlalchemy import Engine, select

from reconcile import db, repo, tables
from reconcile.errors import NotFoundError
from reconcile.export import decimal_text

QUEUE_SCHEMA = {
    "id": pl.Int64(), "reason": pl.String(), "status": pl.String(), "source_ref": pl.String(),
    "account": pl.String(), "booking_date": pl.Date(), "amount_minor": pl.Int64(), "currency": pl.String(),
    "counterparty_name": pl.String(), "customer_id": pl.String(), "suggestions": pl.String(),
    "assignee": pl.String(), "created_at": pl.Datetime(time_zone="UTC"),
}


def list_items(engine: Engine, status: str | None = "open", reason: str | None = None) -> pl.DataFrame:
    ex, bl = tables.ExceptionItem, tables.BankLine
    query = (
        select(ex.id, ex.reason, ex.status, bl.source_ref, bl.account, bl.booking_date, bl.amount_minor,
               bl.currency, bl.counterparty_name, ex.customer_id, ex.suggestions, ex.assignee, ex.created_at)
        .join(bl, bl.id == ex.bank_line_id)
        .order_by(bl.booking_date, ex.id)
    )
    if status:
        query = query.where(ex.status == status)
    if reason:
        query = query.where(ex.reason == reason)
    with db.transaction(engine) as session:
        frame = repo.frame_of(session, query, QUEUE_SCHEMA)
    return frame.with_columns(decimal_text(pl.col("amount_minor"), pl.col("currency")).alias("amount"))


def get_item(engine: Engine, key: str) -> dict[str, Any]:
    """One item by its id or its bank line's source_ref, with the payer details and evidence."""
    ex, bl = tables.ExceptionItem, tables.BankLine
    with db.transaction(engine) as session:
        query = select(ex, bl).join(bl, bl.id == ex.bank_line_id).order_by(ex.id.desc())
        query = query.where(ex.id == int(key)) if key.isdigit() else query.where(bl.source_ref == key)
        row = session.execute(query).first()
        if row is None:
            raise NotFoundError(f"no exception item {key!r}")
        item, line = row
        open_items = []
        if item.customer_id:
            inv = tables.Invoice
            open_items = [
                {"invoice_number": n, "due_date": d.isoformat(), "open": o, "currency": c}
                for n, d, o, c in session.execute(
                    select(inv.invoice_number, inv.due_date, inv.open_amount_minor, inv.currency)
                    .where(inv.customer_id == item.customer_id, inv.open_amount_minor > 0)
                    .order_by(inv.due_date)
                ).all()
            ]
    from reconcile.money import format_minor

    return {
        "id": item.id, "reason": item.reason, "status": item.status, "assignee": item.assignee,
        "source_ref": line.source_ref, "account": line.account, "booking_date": line.booking_date.isoformat(),
        "amount": format_minor(line.amount_minor, line.currency), "currency": line.currency,
        "counterparty_name": line.counterparty_name, "counterparty_account": line.counterparty_account,
        "remittance": line.remittance, "reference": line.reference, "end_to_end_id": line.end_to_end_id,
        "customer_id": item.customer_id,
        "suggestions": item.suggestions.split("|") if item.suggestions else [],
        "evidence": json.loads(item.evidence) if item.evidence else {},
        "open_items": [{**o, "open": format_minor(o["open"], o["currency"])} for o in open_items],
        "resolution": item.resolution, "resolved_by": item.resolved_by,
    }
