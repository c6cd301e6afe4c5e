"""Reads of the manual-review queue: filtered lists, counts per reason, one item with its context.

One item shows why it is queued, the full payer and remittance details, ranked
suggestions with their evidence (reference found, name score, amount
difference, competing combinations) and the customer's open items. Actions
that change the queue live in queue_actions.py (single decisions, claims) and
queue_bulk.py (CSV batches).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
from sqlalchemy import Engine, and_, case, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from reconcile.config import QueueConfig
from reconcile.core.codes import ItemStatus
from reconcile.core.errors import NotFoundError, ReconcileError
from reconcile.core.evidence import evidence_of, suggestions_of
from reconcile.core.money import _EXPONENTS, format_minor, parse_decimal, to_minor
from reconcile.services.explain import explain
from reconcile.services.exports import decimal_text
from reconcile.store import db, repo, tables

SORTS = ("oldest", "newest", "largest", "smallest", "payer", "customer", "reason")
# amounts beyond this many major units are no amount anyone banks (and would overflow BIGINT minor units)
AMOUNT_LIMIT = 10**13
SEARCH_RANGE = ("..", " to ")  # "100..200" or "100 to 200": an amount range in a search
# how strongly each way of finding an invoice in the remittance speaks for it (lower ranks first)
REFERENCE_STRENGTH = {"exact": 0, "core": 1, "joined": 2, "fuzzy": 3}


@dataclass(frozen=True)
class QueueFilter:
    """Which items a view or a claim looks at. Amounts are decimal text in each line's currency."""

    status: str | None = "open"        # open | resolved | None for all
    reason: str | None = None
    assignee: str | None = None        # a person, or "none" for unassigned items
    account: str | None = None
    currency: str | None = None
    min_amount: str | None = None
    max_amount: str | None = None
    min_age_days: int | None = None    # booked at least this many days before as_of
    pending: bool | None = None        # only items whose write-off awaits approval (True) or only others (False)
    customer: str | None = None        # the payer the matcher guessed (exact customer id)
    search: str | None = None          # text (payer, customer, invoice, reference) or an amount / range

    def conditions(self, as_of: date) -> list[ColumnElement[bool]]:
        ex, bl = tables.ExceptionItem, tables.BankLine
        found: list[ColumnElement[bool]] = []
        if self.status:
            if self.status not in ("open", "resolved"):
                raise ReconcileError(f"unknown status {self.status!r}: use open, resolved or all")
            found.append(ex.status == self.status)
        if self.reason:
            found.append(ex.reason == self.reason)
        if self.assignee == "none":
            found.append(ex.assignee.is_(None))
        elif self.assignee:
            found.append(ex.assignee == self.assignee)
        if self.account:
            found.append(bl.account == self.account)
        if self.currency:
            found.append(bl.currency == self.currency.upper())
        if self.min_amount is not None:
            found.append(_amount_condition(self.min_amount, ">="))
        if self.max_amount is not None:
            found.append(_amount_condition(self.max_amount, "<="))
        if self.min_age_days is not None:
            if self.min_age_days < 0:
                raise ReconcileError("an age in days cannot be negative")
            found.append(bl.booking_date <= as_of - timedelta(days=self.min_age_days))
        if self.pending is True:
            found.append(ex.proposal.is_not(None) & (ex.status == ItemStatus.OPEN))
        elif self.pending is False:
            found.append(ex.proposal.is_(None))
        if self.customer:
            found.append(ex.customer_id == self.customer)
        if self.search and self.search.strip():
            found.append(search_condition(self.search))
        return found


def search_condition(text: str) -> ColumnElement[bool]:
    """One search box: an amount ("480", "480.00"), a range ("100..200") or text.

    Text matches, case-insensitively and anywhere, the payer's name, the guessed customer (id or
    name), the suggested invoice numbers, the line's reference, remittance and bank reference.
    """
    ex, bl, cu = tables.ExceptionItem, tables.BankLine, tables.Customer
    query = text.strip()
    for sep in SEARCH_RANGE:
        low, found, high = query.partition(sep)
        if found and _is_amount(low) and _is_amount(high):
            return and_(_amount_condition(low, ">="), _amount_condition(high, "<="))
    if _is_amount(query):
        return and_(_amount_condition(query, ">="), _amount_condition(query, "<="))
    pattern = "%" + query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"

    def like(column: Any) -> ColumnElement[bool]:
        return func.lower(column).like(pattern, escape="\\")

    named = select(cu.customer_id).where(like(cu.name))
    return or_(like(bl.counterparty_name), like(ex.customer_id), ex.customer_id.in_(named),
               like(ex.suggestions), like(bl.reference), like(bl.remittance), like(bl.source_ref))


def _is_amount(text: str) -> bool:
    try:
        value = parse_decimal(text)
    except ValueError:
        return False
    return abs(value) < AMOUNT_LIMIT and "e" not in text.lower()


def _amount_condition(text: str, op: str) -> ColumnElement[bool]:
    """amount >= / <= a decimal threshold, in each line's own minor units (currencies differ in exponent)."""
    bl = tables.BankLine
    try:
        value = parse_decimal(text)
    except ValueError as exc:
        raise ReconcileError(f"amount filter: {exc}") from None
    if abs(value) >= AMOUNT_LIMIT:
        raise ReconcileError(f"amount filter: {text!r} is beyond any amount on a statement")
    by_exponent: dict[int, list[str]] = {}
    for code, exp in _EXPONENTS.items():
        by_exponent.setdefault(exp, []).append(code)
    special = [c for codes in by_exponent.values() for c in codes]

    def compare(minor: int) -> ColumnElement[bool]:
        return bl.amount_minor >= minor if op == ">=" else bl.amount_minor <= minor

    parts = [and_(bl.currency.in_(codes), compare(to_minor(value, codes[0], exact=False)))
             for codes in by_exponent.values()]
    parts.append(and_(bl.currency.not_in(special), compare(to_minor(value, "EUR", exact=False))))
    return or_(*parts)


def order_by(sort: str) -> list[Any]:
    ex, bl = tables.ExceptionItem, tables.BankLine
    if sort == "oldest":
        return [bl.booking_date, ex.id]
    if sort == "largest":
        return [bl.amount_minor.desc(), bl.booking_date, ex.id]
    if sort == "newest":
        return [bl.booking_date.desc(), ex.id.desc()]
    if sort == "smallest":
        return [bl.amount_minor, bl.booking_date, ex.id]
    if sort == "payer":
        return [bl.counterparty_name, bl.booking_date, ex.id]
    if sort == "customer":
        return [ex.customer_id, bl.booking_date, ex.id]
    if sort == "reason":
        return [ex.reason, bl.booking_date, ex.id]
    raise ReconcileError(f"unknown sort {sort!r}: use {', '.join(SORTS)}")


QUEUE_SCHEMA = {
    "id": pl.Int64(), "reason": pl.String(), "status": pl.String(), "source_ref": pl.String(),
    "account": pl.String(), "booking_date": pl.Date(), "amount_minor": pl.Int64(), "currency": pl.String(),
    "counterparty_name": pl.String(), "counterparty_account": pl.String(), "customer_id": pl.String(),
    "suggestions": pl.String(), "assignee": pl.String(), "claimed_by": pl.String(), "proposed_by": pl.String(),
    "resolution": pl.String(), "resolved_by": pl.String(), "resolution_batch": pl.String(),
    "created_at": pl.Datetime(time_zone="UTC"),
}


def _items_query(filters: QueueFilter, as_of: date) -> Any:
    ex, bl = tables.ExceptionItem, tables.BankLine
    return (
        select(ex.id, ex.reason, ex.status, bl.source_ref, bl.account, bl.booking_date, bl.amount_minor,
               bl.currency, bl.counterparty_name, bl.counterparty_account, ex.customer_id, ex.suggestions,
               ex.assignee, ex.claimed_by, ex.proposed_by, ex.resolution, ex.resolved_by, ex.resolution_batch,
               ex.created_at)
        .join(bl, bl.id == ex.bank_line_id)
        .where(*filters.conditions(as_of))
    )


def list_items(
    engine: Engine, status: str | None = "open", reason: str | None = None, *,
    filters: QueueFilter | None = None, sort: str = "oldest", as_of: date | None = None,
    config: QueueConfig, limit: int | None = None, offset: int = 0,
) -> pl.DataFrame:
    """Queued lines matching `filters` (status and reason also as shortcuts), with age and SLA flag."""
    filters = filters or QueueFilter(status=status, reason=reason)
    as_of = as_of or datetime.now(UTC).date()
    sla_days = config.sla_days
    query = _items_query(filters, as_of).order_by(*order_by(sort))
    if limit:
        query = query.limit(limit)
    if offset:
        query = query.offset(offset)
    with db.transaction(engine) as session:
        frame = repo.frame_of(session, query, QUEUE_SCHEMA)
    return _decorate(frame, as_of, sla_days)


def _decorate(frame: pl.DataFrame, as_of: date, sla_days: int) -> pl.DataFrame:
    """Amount as text, age in days, past-SLA and awaiting-approval flags."""
    age = (pl.lit(as_of) - pl.col("booking_date")).dt.total_days()
    return frame.with_columns(
        decimal_text(pl.col("amount_minor"), pl.col("currency")).alias("amount"),
        age.alias("age_days"),
        ((age > sla_days) & (pl.col("status") == "open")).alias("over_sla"),
        pl.col("proposed_by").is_not_null().and_(pl.col("status") == "open").alias("pending_approval"),
    )


def count_items(engine: Engine, *, filters: QueueFilter, as_of: date | None = None) -> int:
    """How many items match `filters`: the true total a paged list shows."""
    as_of = as_of or datetime.now(UTC).date()
    ex, bl = tables.ExceptionItem, tables.BankLine
    query = select(func.count()).select_from(ex).join(bl, bl.id == ex.bank_line_id) \
        .where(*filters.conditions(as_of))
    with db.transaction(engine) as session:
        return int(session.execute(query).scalar_one())


def page_items(
    engine: Engine, *, filters: QueueFilter, sort: str = "oldest", offset: int = 0, limit: int = 50,
    as_of: date | None = None, config: QueueConfig,
) -> tuple[pl.DataFrame, int]:
    """One page of the list (sorted, `limit` rows from `offset`) and the total number matching."""
    as_of = as_of or datetime.now(UTC).date()
    # one read: the page's rows, each carrying the number of all matching rows (a window count)
    query = (_items_query(filters, as_of).add_columns(func.count().over().label("total"))
             .order_by(*order_by(sort)).limit(limit).offset(offset))
    with db.transaction(engine) as session:
        frame = repo.frame_of(session, query, {**QUEUE_SCHEMA, "total": pl.Int64()})
    if frame.height:
        total = int(frame["total"][0])
    else:  # past the last page (or nothing matches): count on its own
        total = count_items(engine, filters=filters, as_of=as_of)
    return _decorate(frame.drop("total"), as_of, config.sla_days), total


def matching_ids(engine: Engine, *, filters: QueueFilter, sort: str = "oldest",
                 as_of: date | None = None) -> list[int]:
    """The ids of every item matching `filters`, in list order ("select all N matching")."""
    as_of = as_of or datetime.now(UTC).date()
    ex, bl = tables.ExceptionItem, tables.BankLine
    query = select(ex.id).join(bl, bl.id == ex.bank_line_id).where(*filters.conditions(as_of)) \
        .order_by(*order_by(sort))
    with db.transaction(engine) as session:
        return [int(i) for i in session.execute(query).scalars()]


def summary(engine: Engine, *, filters: QueueFilter | None = None, as_of: date | None = None,
            config: QueueConfig) -> list[dict[str, Any]]:
    """Counts and amounts per reason (amounts per currency), items past the SLA, the oldest booking date.

    Aggregated by the database (one GROUP BY), so a queue of any length costs one small read.
    """
    filters = filters or QueueFilter()
    as_of = as_of or datetime.now(UTC).date()
    ex, bl = tables.ExceptionItem, tables.BankLine
    late = (bl.booking_date < as_of - timedelta(days=config.sla_days)) & (ex.status == ItemStatus.OPEN)
    pending = ex.proposed_by.is_not(None) & (ex.status == ItemStatus.OPEN)
    query = (
        select(ex.reason, bl.currency, func.count(), func.sum(bl.amount_minor),
               func.sum(case((late, 1), else_=0)), func.min(bl.booking_date),
               func.sum(case((pending, 1), else_=0)))
        .join(bl, bl.id == ex.bank_line_id).where(*filters.conditions(as_of))
        .group_by(ex.reason, bl.currency)
    )
    with db.transaction(engine) as session:
        rows = session.execute(query).all()
    per_reason: dict[str, dict[str, Any]] = {}
    for reason, currency, count, total, over, oldest, waiting in sorted(rows, key=lambda r: (r[0], r[1])):
        entry = per_reason.setdefault(reason, {"reason": reason, "count": 0, "amounts": {}, "over_sla": 0,
                                               "pending_approval": 0, "oldest": oldest})
        entry["count"] += int(count)
        entry["amounts"][currency] = format_minor(int(total or 0), currency)
        entry["over_sla"] += int(over or 0)
        entry["pending_approval"] += int(waiting or 0)
        entry["oldest"] = min(entry["oldest"], oldest)
    return [{**e, "oldest": e["oldest"].isoformat()}
            for e in sorted(per_reason.values(), key=lambda e: (-e["count"], e["reason"]))]


# --- one item --------------------------------------------------------------


def find_item(session: Session, key: str | int) -> tuple[tables.ExceptionItem, tables.BankLine]:
    """An item by id, or the newest item of a bank line by its source_ref."""
    ex, bl = tables.ExceptionItem, tables.BankLine
    query = select(ex, bl).join(bl, bl.id == ex.bank_line_id).order_by(ex.id.desc())
    text = str(key).strip()
    query = query.where(ex.id == int(text)) if text.isdigit() else query.where(bl.source_ref == text)
    rows = session.execute(query).all()
    if not rows:
        raise NotFoundError(f"no exception item {text!r}")
    if not text.isdigit() and len({line.id for _, line in rows}) > 1:
        raise ReconcileError(f"bank line {text} exists on several accounts: name the exception by its id")
    item, line = rows[0]
    return item, line


def _key_text(number: str, no: int | None) -> str:
    return number if no is None else f"{number}#{no}"


def parse_key(text: str) -> tuple[str, int | None]:
    """'INV-1' -> (INV-1, None); 'INV-1#2' -> installment 2 of INV-1."""
    number, sep, no = text.strip().rpartition("#")
    if sep and no.isdigit() and number:
        return number, int(no)
    return text.strip(), None


def _open_of(session: Session, keys: list[tuple[str, int | None]]) -> dict[tuple[str, int | None], dict[str, Any]]:
    inv, ins = tables.Invoice, tables.Installment
    numbers = sorted({n for n, _ in keys})
    invoices = {r.invoice_number: r for r in session.execute(
        select(inv.invoice_number, inv.customer_id, inv.currency, inv.due_date, inv.open_amount_minor)
        .where(inv.invoice_number.in_(numbers))).all()}
    installments = {(r.invoice_number, r.installment_no): r for r in session.execute(
        select(ins.invoice_number, ins.installment_no, ins.due_date, ins.open_amount_minor)
        .where(ins.invoice_number.in_(numbers))).all()}
    found = {}
    for number, no in keys:
        head = invoices.get(number)
        if head is None:
            continue
        part = installments.get((number, no)) if no is not None else None
        if no is not None and part is None:
            continue
        found[(number, no)] = {
            "customer_id": head.customer_id, "currency": head.currency,
            "due_date": (part or head).due_date, "open": (part or head).open_amount_minor,
        }
    return found


def rank_suggestions(session: Session, item: tables.ExceptionItem, line: tables.BankLine) -> list[dict[str, Any]]:
    """The item's candidates, best first: each a list of open items with its evidence.

    Candidates are the matcher's suggested invoices and the competing combinations it found.
    A candidate ranks higher when the remittance names it (exact before mangled), then the
    smaller the difference between the payment and what is open.
    """
    evidence = evidence_of(item.evidence)
    references: dict[str, str] = evidence.get("references") or {}
    payer = evidence.get("payer") or {}
    scores: dict[str, float] = {}
    for entry in payer.get("names") or []:
        if isinstance(entry, dict) and entry.get("customer"):
            scores[entry["customer"]] = max(scores.get(entry["customer"], 0.0), float(entry.get("score") or 0))
    account_customer = payer.get("payer_account") if payer.get("by") == "account" else None
    if account_customer is None and payer.get("by") == "account":
        account_customer = payer.get("customer")
    candidates: list[tuple[list[tuple[str, int | None]], bool]] = []
    for combo in evidence.get("competing") or []:
        candidates.append(([parse_key(k) for k in combo], True))
    seen = {tuple(keys) for keys, _ in candidates}
    for number in suggestions_of(item.suggestions):
        if ((number, None),) not in seen:
            candidates.append(([(number, None)], False))
            seen.add(((number, None),))
    opens = _open_of(session, [k for keys, _ in candidates for k in keys])
    owners = sorted({o["customer_id"] for o in opens.values()})  # only the candidates' names, not every one
    names = dict(session.execute(select(tables.Customer.customer_id, tables.Customer.name)
                                 .where(tables.Customer.customer_id.in_(owners))).all()) if owners else {}
    ranked = []
    for index, (keys, combination) in enumerate(candidates):
        known = [k for k in keys if k in opens]
        if not known:
            continue
        open_total = sum(opens[k]["open"] for k in known)
        customer = opens[known[0]]["customer_id"]
        currency = opens[known[0]]["currency"]
        found_by = [references[n] for n, _ in known if n in references]
        strength = min((REFERENCE_STRENGTH.get(h, 9) for h in found_by), default=9)
        difference = line.amount_minor - open_total if currency == line.currency else None
        ranked.append(((strength, abs(difference) if difference is not None else 1 << 62, index), {
            "items": [_key_text(*k) for k in known],
            "customer_id": customer, "customer_name": names.get(customer),
            "currency": currency, "open": format_minor(open_total, currency),
            "difference": format_minor(difference, currency) if difference is not None else None,
            "due_date": min(opens[k]["due_date"] for k in known).isoformat(),
            "evidence": {
                "reference": found_by[0] if found_by else None,
                "name_score": scores.get(customer),
                "payer_account": account_customer == customer if account_customer else False,
                "combination": combination,
                "amount_agrees": difference == 0,
                "currency_agrees": currency == line.currency,
            },
        }))
    ranked.sort(key=lambda pair: pair[0])
    return [{"rank": i, **entry} for i, (_, entry) in enumerate(ranked, start=1)]


def customer_open_items(session: Session, customer: str | None) -> list[dict[str, Any]]:
    """The customer's open invoices (oldest due first), each with its open installments."""
    if not customer:
        return []
    inv, ins = tables.Invoice, tables.Installment
    plans: dict[str, list[dict[str, Any]]] = {}
    for number, no, due, open_minor in session.execute(
        select(ins.invoice_number, ins.installment_no, ins.due_date, ins.open_amount_minor)
        .join(inv, inv.invoice_number == ins.invoice_number)
        .where(inv.customer_id == customer, ins.open_amount_minor > 0).order_by(ins.installment_no)
    ).all():
        plans.setdefault(number, []).append({"installment_no": no, "due_date": due.isoformat(),
                                             "open_minor": open_minor})
    rows = session.execute(
        select(inv.invoice_number, inv.issue_date, inv.due_date, inv.amount_minor, inv.open_amount_minor,
               inv.currency, inv.payment_reference)
        .where(inv.customer_id == customer, inv.open_amount_minor > 0).order_by(inv.due_date, inv.invoice_number)
    ).all()
    return [
        {"invoice_number": r.invoice_number, "due_date": r.due_date.isoformat(),
         "open": format_minor(r.open_amount_minor, r.currency),
         "amount": format_minor(r.amount_minor, r.currency), "currency": r.currency,
         "payment_reference": r.payment_reference,
         "installments": [{"installment_no": p["installment_no"], "due_date": p["due_date"],
                           "open": format_minor(p["open_minor"], r.currency)} for p in plans.get(r.invoice_number, [])]}
        for r in rows
    ]


def _iso(value: datetime | None) -> str | None:
    """SQLite hands back naive UTC, PostgreSQL aware datetimes: show both as aware UTC."""
    if value is None:
        return None
    return (value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)).isoformat()


def get_item(engine: Engine, key: str | int, *, as_of: date | None = None,
             config: QueueConfig) -> dict[str, Any]:
    """One item by its id or its bank line's source_ref, with everything a person needs to decide it."""
    as_of = as_of or datetime.now(UTC).date()
    sla_days = config.sla_days
    with db.transaction(engine) as session:
        item, line = find_item(session, key)
        suggestions = rank_suggestions(session, item, line)
        customer = item.customer_id or (suggestions[0]["customer_id"] if suggestions else None)
        customer_name = session.execute(
            select(tables.Customer.name).where(tables.Customer.customer_id == customer)).scalar() if customer else None
        open_items = customer_open_items(session, customer)
        n = tables.ExceptionNote
        notes = [
            {"author": a, "at": _iso(at), "text": t}
            for a, at, t in session.execute(
                select(n.author, n.created_at, n.text).where(n.exception_id == item.id).order_by(n.created_at, n.id)
            ).all()
        ]
        why = explain(session, line.source_ref, line.account)
        statement_file = session.execute(
            select(tables.StatementFile.filename)
            .join(tables.Statement, tables.Statement.file_id == tables.StatementFile.id)
            .where(tables.Statement.id == line.statement_id)
        ).scalar()
    age = (as_of - line.booking_date).days
    currency = line.currency
    return {
        "id": item.id, "reason": item.reason, "status": item.status, "line_status": line.status,
        "assignee": item.assignee, "claimed_by": item.claimed_by, "claimed_at": _iso(item.claimed_at),
        "created_at": _iso(item.created_at), "age_days": age,
        "over_sla": item.status == ItemStatus.OPEN and age > sla_days,
        "source_ref": line.source_ref, "account": line.account, "statement_file": statement_file,
        "booking_date": line.booking_date.isoformat(),
        "value_date": line.value_date.isoformat() if line.value_date else None,
        "amount": format_minor(line.amount_minor, currency), "currency": currency,
        "counterparty_name": line.counterparty_name, "counterparty_account": line.counterparty_account,
        "remittance": line.remittance, "reference": line.reference, "end_to_end_id": line.end_to_end_id,
        "bank_code": line.bank_code,
        "instructed_amount": (format_minor(line.instructed_amount_minor, line.instructed_currency)
                              if line.instructed_amount_minor is not None and line.instructed_currency else None),
        "instructed_currency": line.instructed_currency, "exchange_rate": line.exchange_rate,
        "charges": format_minor(line.charges_minor, currency) if line.charges_minor is not None else None,
        "customer_id": customer, "customer_name": customer_name,
        "suggestions": [s["items"][0] if len(s["items"]) == 1 else "+".join(s["items"]) for s in suggestions],
        "ranked_suggestions": suggestions,
        "evidence": evidence_of(item.evidence),
        "open_items": open_items,
        "notes": notes,
        "proposal": json.loads(item.proposal) if item.proposal else None,
        "proposed_by": item.proposed_by, "proposed_at": _iso(item.proposed_at), "approved_by": item.approved_by,
        "resolution": item.resolution, "category": item.category, "resolved_by": item.resolved_by,
        "resolved_at": _iso(item.resolved_at), "resolution_batch": item.resolution_batch,
        "learned": json.loads(item.learned) if item.learned else [],
        "why": why["summary"], "advice": why["advice"],
    }
