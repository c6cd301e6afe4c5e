"""Balances a page at a time: search, sort and page the rows of collectors.balances.balances().

balances() computes every customer at once; a person looks at fifty. The whole frame is kept, so
paging and searching do not recompute it; when the ledger moves (marks on the allocations, audit
entries, queue items and snapshots) only the customers the change touched are recomputed, so a
collector's first view after a clerk's decision does not pay for 20,000 customers.
Also here: the customer picker's server-side search, one customer's posted payments and audit
history. Formatting is left to the web pages and the CLI.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date
from typing import Any

import polars as pl
from sqlalchemy import Engine, func, or_, select
from sqlalchemy.orm import Session

from reconcile.collectors.balances import Collections, balances_in, one_snapshot, pending_cash
from reconcile.core.money import parse_decimal, to_minor
from reconcile.store import db, tables

SORTS = ("customer", "name", "open", "overdue", "unapplied", "last_payment")
AMOUNT_LIMIT = 10**13
_CACHE: OrderedDict[tuple[Any, ...], _Kept] = OrderedDict()
_CACHE_SIZE = 4
_LOCK = threading.Lock()


INCREMENTAL_LIMIT = 400  # touched customers beyond which recomputing everyone is as quick (and one IN list)
RECENT_IDS = 20_000  # the newest ids counted in the marks: where a late-committing transaction's rows land
FULL_EVERY_SECONDS = 600.0  # a kept frame is recomputed in full at least this often, whatever the marks say


@dataclass(frozen=True)
class _Kept:
    marks: tuple[int, ...]
    frame: pl.DataFrame  # balances() for every customer
    pending: pl.DataFrame  # pending_cash() for every customer, read with the frame
    full_at: float  # time.monotonic() of the last full recomputation the frame descends from


def ledger_marks(session: Session) -> tuple[int, ...]:
    """Cheap marks that move whenever anything balances() reads changes: per table its newest id, and how many
    rows hold the newest RECENT_IDS ids (which moves when a PostgreSQL transaction commits a lower id after a
    higher one was seen). Index range scans only: the tables' full counts would grow with the history."""
    # postings add allocations, decisions add audit entries, runs add queue items, and customers and
    # invoices change only through a snapshot load, which adds a snapshot
    marks = []
    for table in (tables.Allocation, tables.AuditEntry, tables.ExceptionItem, tables.Snapshot):
        newest = select(func.coalesce(func.max(table.id), 0)).scalar_subquery()
        marks += [newest, select(func.count()).select_from(table).where(table.id > newest - RECENT_IDS)
                  .scalar_subquery()]
    return tuple(int(v) for v in session.execute(select(*marks)).one())


def _touched(session: Session, kept: _Kept, marks: tuple[int, ...], pending: pl.DataFrame) -> list[str] | None:
    """The customers whose rows may differ from the kept frame, or None when everyone must be recomputed.

    Open amounts move only with allocation rows, customers and invoices only with a snapshot, queue items
    show in pending_cash: so the customers of the allocations added since (the row's own and its invoice's)
    and those whose pending cash differs."""
    alloc_max, alloc_recent = kept.marks[0], kept.marks[1]
    if marks[6:] != kept.marks[6:]:  # a snapshot: customers, invoices and open amounts all reset
        return None
    al, inv, ins = tables.Allocation, tables.Invoice, tables.Installment
    late = session.execute(select(func.count()).select_from(al).where(
        al.id > alloc_max - RECENT_IDS, al.id <= alloc_max)).scalar_one()
    if late != alloc_recent:  # a row below the kept newest id committed since
        return None
    rows = session.execute(select(al.customer_id, al.invoice_number, al.installment_id)
                           .where(al.id > alloc_max)).all()
    if len(rows) > INCREMENTAL_LIMIT * 2:  # a run's worth of postings: recompute everyone
        return None
    numbers = {r.invoice_number for r in rows if r.invoice_number is not None}
    plans = [r.installment_id for r in rows if r.installment_id is not None]
    if plans:
        numbers.update(session.execute(select(ins.invoice_number).where(ins.id.in_(plans))).scalars())
    who = {r.customer_id for r in rows if r.customer_id is not None}
    if numbers:  # the invoice's customer too, should a row name another one
        who.update(session.execute(select(inv.customer_id).where(inv.invoice_number.in_(sorted(numbers))))
                   .scalars())
    columns = list(pending.columns)
    either = pl.concat([kept.pending.select(columns), pending.select(columns)])
    differ = either.group_by(columns).len().filter(pl.col("len") == 1)["customer_id"]
    who.update(c for c in differ.to_list() if c is not None)
    return sorted(who) if len(who) <= INCREMENTAL_LIMIT else None


def _refreshed(kept: pl.DataFrame, fresh: pl.DataFrame, who: list[str]) -> pl.DataFrame:
    """The kept frame with the touched customers' rows replaced by fresh ones, in balances() order."""
    fresh = fresh.select([pl.col(c).cast(t) for c, t in kept.schema.items()])
    return pl.concat([kept.filter(~pl.col("customer_id").is_in(who)), fresh]).sort("customer_id", "currency")


def all_balances(engine: Engine, as_of: date, rules: Collections) -> pl.DataFrame:
    """balances() for every customer, kept while the ledger does not move; after a change only the customers
    the change touched are recomputed (the whole frame after a snapshot load or a large change)."""
    key = (str(engine.url), as_of, tuple(rules.edges), rules.broken_after_days)
    with _LOCK:
        kept = _CACHE.get(key)
    started = time.monotonic()
    if kept is not None and started - kept.full_at > FULL_EVERY_SECONDS:
        kept = None  # whatever a mark might miss is bounded in time
    with one_snapshot(engine) as session:
        marks = ledger_marks(session)
        if kept is not None and kept.marks == marks:
            return kept.frame
        pending = pending_cash(session, as_of)
        who = _touched(session, kept, marks, pending) if kept is not None else None
        full_at = started if who is None else kept.full_at  # type: ignore[union-attr]
        if who is None:
            frame = balances_in(session, as_of, rules.edges, broken_after_days=rules.broken_after_days,
                                pending=pending)
        elif not who:
            frame = kept.frame  # type: ignore[union-attr]
        else:
            fresh = balances_in(session, as_of, rules.edges, customer=who,
                                broken_after_days=rules.broken_after_days, pending=pending)
            frame = _refreshed(kept.frame, fresh, who)  # type: ignore[union-attr]
    with _LOCK:
        _CACHE[key] = _Kept(marks, frame, pending, full_at)
        _CACHE.move_to_end(key)
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
