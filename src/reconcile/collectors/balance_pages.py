"""Balances a page at a time: search, sort and page the rows of collectors.balances.balances().

balances() computes every customer at once; a person looks at fifty. The whole frame is kept for
as long as the ledger has not moved (keyed by the newest audit entry, allocation, queue item and
snapshot, which every change to its inputs advances), so paging and searching do not recompute it.
Also here: the customer picker's server-side search, one customer's posted payments and audit
history. Formatting is left to the web pages and the CLI.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import date
from typing import Any

import polars as pl
from sqlalchemy import Engine, func, or_, select

from reconcile.collectors.balances import Collections, balances
from reconcile.core.money import parse_decimal, to_minor
from reconcile.store import db, tables

SORTS = ("customer", "name", "open", "overdue", "unapplied", "last_payment")
AMOUNT_LIMIT = 10**13
_CACHE: OrderedDict[tuple[Any, ...], pl.DataFrame] = OrderedDict()
_CACHE_SIZE = 4
_LOCK = threading.Lock()


def ledger_version(engine: Engine) -> tuple[int, ...]:
    """Cheap marks that move whenever anything balances() reads changes (max ids on their keys)."""
    # postings add allocations, decisions add audit entries, runs add queue items, and customers and
    # invoices change only through a snapshot load, which adds a snapshot
    marks = (
        tables.AuditEntry.id,
        tables.Allocation.id,
        tables.ExceptionItem.id,
        tables.Snapshot.id,
    )
    with db.transaction(engine) as session:
        return tuple(
            session.execute(select(*(select(func.max(m)).scalar_subquery() for m in marks))).one()
        )


def all_balances(engine: Engine, as_of: date, rules: Collections) -> pl.DataFrame:
    """balances() for every customer, recomputed only when the ledger moved since the last call."""
    key = (
        str(engine.url),
        as_of,
        tuple(rules.edges),
        rules.broken_after_days,
        ledger_version(engine),
    )
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    frame = balances(engine, as_of, rules.edges, broken_after_days=rules.broken_after_days)
    with _LOCK:
        _CACHE[key] = frame
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return frame


def is_amount(text: str) -> bool:
    try:
        value = parse_decimal(text)
    except ValueError:
        return False
    return abs(value) < AMOUNT_LIMIT and "e" not in text.lower()


def _amount_filter(frame: pl.DataFrame, low: str, high: str) -> pl.Expr:
    """open between low and high, each in the row's own currency's minor units."""
    parts = []
    for currency in frame["currency"].unique().to_list():
        lo = to_minor(parse_decimal(low), currency, exact=False)
        hi = to_minor(parse_decimal(high), currency, exact=False)
        parts.append((pl.col("currency") == currency) & pl.col("open").is_between(lo, hi))
    if not parts:
        return pl.lit(False)
    expr = parts[0]
    for part in parts[1:]:
        expr = expr | part
    return expr


def search_filter(frame: pl.DataFrame, search: str) -> pl.DataFrame:
    """Rows whose customer id or name contains the text, or whose open amount matches."""
    query = search.strip()
    if not query:
        return frame
    for sep in ("..", " to "):
        low, found, high = query.partition(sep)
        if found and is_amount(low) and is_amount(high):
            return frame.filter(_amount_filter(frame, low.strip(), high.strip()))
    if is_amount(query):
        return frame.filter(_amount_filter(frame, query, query))
    needle = query.lower()
    return frame.filter(
        pl.col("customer_id").str.to_lowercase().str.contains(needle, literal=True)
        | pl.col("name").fill_null("").str.to_lowercase().str.contains(needle, literal=True)
    )


def _sorted(frame: pl.DataFrame, sort: str) -> pl.DataFrame:
    if sort == "customer":
        return frame.sort("customer_id", "currency")
    if sort == "name":
        return frame.sort("name", "customer_id", nulls_last=True)
    column = {
        "open": "open",
        "overdue": "overdue",
        "unapplied": "pending_application",
        "last_payment": "last_payment_date",
    }[sort]
    return frame.sort([column, "customer_id"], descending=[True, False], nulls_last=True)


def balance_page(
    engine: Engine,
    as_of: date,
    rules: Collections,
    *,
    search: str = "",
    sort: str = "customer",
    offset: int = 0,
    limit: int = 50,
    hold_only: bool = False,
    overdue_only: bool = False,
) -> tuple[pl.DataFrame, int]:
    """One page of balance rows (Int64 minor units, as balances() gives them) and how many match."""
    if sort not in SORTS:
        raise ValueError(f"unknown sort {sort!r}: use {', '.join(SORTS)}")
    frame = search_filter(all_balances(engine, as_of, rules), search)
    if hold_only:
        frame = frame.filter(pl.col("hold_calls"))
    if overdue_only:
        frame = frame.filter(pl.col("overdue") > 0)
    return _sorted(frame, sort).slice(offset, limit), frame.height


def search_customers(engine: Engine, text: str, *, limit: int = 20) -> list[dict[str, str]]:
    """The customer picker: ids starting with the text first, then names containing it."""
    query = (text or "").strip().lower()
    if not query:
        return []
    cu = tables.Customer
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    with db.transaction(engine) as session:
        by_id = session.execute(
            select(cu.customer_id, cu.name)
            .where(func.lower(cu.customer_id).like(escaped + "%", escape="\\"))
            .order_by(cu.customer_id)
            .limit(limit)
        ).all()
        rest = limit - len(by_id)
        by_name = (
            session.execute(
                select(cu.customer_id, cu.name)
                .where(func.lower(cu.name).like(f"%{escaped}%", escape="\\"))
                .order_by(cu.name, cu.customer_id)
                .limit(limit)
            ).all()
            if rest > 0
            else []
        )
    seen: dict[str, str] = {}
    for cid, name in [*by_id, *by_name]:
        seen.setdefault(cid, name or "")
    return [{"customer_id": c, "name": n} for c, n in list(seen.items())[:limit]]


def customer_exists(engine: Engine, customer_id: str) -> str | None:
    """The customer's name ('' without one), or None when there is no such customer."""
    with db.transaction(engine) as session:
        row = session.execute(
            select(tables.Customer.name).where(tables.Customer.customer_id == customer_id)
        ).first()
    return None if row is None else (row[0] or "")


def posted_payments(engine: Engine, customer_id: str, *, limit: int = 50) -> list[dict[str, Any]]:
    """Bank lines posted to the customer now (newest first): what a person may unapply."""
    al, bl = tables.Allocation, tables.BankLine
    net = func.sum(al.amount_minor)
    query = (
        select(
            bl.account,
            bl.source_ref,
            bl.booking_date,
            bl.amount_minor,
            bl.currency,
            bl.counterparty_name,
            net,
        )
        .join(bl, bl.id == al.bank_line_id)
        .where(al.customer_id == customer_id, bl.status == "posted")
        .group_by(
            bl.id,
            bl.account,
            bl.source_ref,
            bl.booking_date,
            bl.amount_minor,
            bl.currency,
            bl.counterparty_name,
        )
        .having(net != 0)
        .order_by(bl.booking_date.desc(), bl.id.desc())
        .limit(limit)
    )
    with db.transaction(engine) as session:
        rows = session.execute(query).all()
    return [
        {
            "account": r[0],
            "source_ref": r[1],
            "booking_date": r[2],
            "amount_minor": r[3],
            "currency": r[4],
            "payer": r[5],
            "to_customer_minor": int(r[6]),
        }
        for r in rows
    ]


def customer_history(engine: Engine, customer_id: str, *, limit: int = 100) -> list[dict[str, Any]]:
    """Audit entries about a customer, newest first: its invoices, lines paid to it, its items."""
    a, al, ex, inv, bl = (
        tables.AuditEntry,
        tables.Allocation,
        tables.ExceptionItem,
        tables.Invoice,
        tables.BankLine,
    )
    query = (
        select(a.at, a.actor, a.action, a.invoice_number, bl.source_ref, a.reason, a.details)
        .outerjoin(bl, bl.id == a.bank_line_id)
        .where(
            or_(
                a.invoice_number.in_(
                    select(inv.invoice_number).where(inv.customer_id == customer_id)
                ),
                a.bank_line_id.in_(select(al.bank_line_id).where(al.customer_id == customer_id)),
                a.bank_line_id.in_(select(ex.bank_line_id).where(ex.customer_id == customer_id)),
            )
        )
        .order_by(a.at.desc(), a.id.desc())
        .limit(limit)
    )
    with db.transaction(engine) as session:
        return [dict(r._mapping) for r in session.execute(query).all()]
