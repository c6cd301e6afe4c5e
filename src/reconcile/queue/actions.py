"""Decisions on queued lines, posted through the same ledger code as the run.

Every decision is planned first against the open book (unknown invoices,
amounts that do not add up, currencies, another person's claim or decision
are refused with a clear error and nothing changes), then applied in one
transaction: post.post_chunk writes the allocations (exactly once: the
ledger's guards), lines that are not receivables move to `skipped` with a
conditional update, and the item, the audit log and what the decision
teaches the matcher (learning.py) commit together. queue_bulk.py plans a
whole CSV of decisions with the same planner before applying any.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import polars as pl
from sqlalchemy import Engine, or_, select, update
from sqlalchemy.orm import Session

from reconcile.config import FxConfig, QueueConfig
from reconcile.core import frames
from reconcile.core.allocation import Installment, check_installment_take, take_in_due_order
from reconcile.core.codes import ItemStatus, LineStatus
from reconcile.core.errors import LedgerError, NotFoundError, ReconcileError
from reconcile.core.evidence import evidence_of, evidence_text
from reconcile.core.money import exponent, format_minor, parse_decimal, to_minor
from reconcile.ledger import conflicts
from reconcile.ledger.post import post_chunk
from reconcile.ledger.reverse import reverse_line
from reconcile.match import fx
from reconcile.queue.learning import learn_payer, unlearn
from reconcile.queue.views import (
    QueueFilter,
    find_item,
    order_by,
    parse_key,
    rank_suggestions,
)
from reconcile.store import db, repo, tables

ACTIONS = ("accept", "allocate", "on_account", "write_off", "not_receivable", "refund", "unapply", "confirm")
CATEGORIES = ("interest", "refund", "transfer", "fee", "other")
ON_ACCOUNT = "on_account"
WRITE_OFF = "write_off:"   # an allocate part "write_off:INV" = "-30.00": a deduction beside INV settled in full

Key = tuple[str, int | None]


@dataclass(frozen=True)
class Decision:
    """What a person decided for one queued line.

    accept: suggestion `choice` (rank, 1 = best); allocate: `parts` as (target, amount text or None),
    a target being an invoice, "INV#n" for an installment or "on_account"; on_account: the whole line
    for `customer`; write_off: the line pays `invoice` and the difference is written off with reason
    `code`; not_receivable: category `code`; refund: the money goes back to the payer.
    """

    action: str
    parts: tuple[tuple[str, str | None], ...] = ()
    choice: int = 1
    customer: str | None = None
    rest_on_account: bool = False
    invoice: str | None = None
    code: str | None = None
    note: str | None = None
    learn: bool = True
    rate: str | None = None   # units of the invoices' currency for one unit of the payment's (another currency)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Decision:
        raw = json.loads(text)
        return cls(**{**raw, "parts": tuple(tuple(p) for p in raw.get("parts", ()))})


@dataclass
class Plan:
    """A validated decision: the allocation rows to post, or the status the line moves to."""

    item_id: int
    line_id: int
    generation: int
    amount_minor: int
    currency: str
    decision: Decision
    kind: str                      # post | skip | pending
    resolution: str
    customer: str | None = None
    category: str | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def shown_rows(self) -> list[dict[str, Any]]:
        return [
            {"kind": r["kind"], "invoice_number": r["invoice_number"], "installment_no": r["installment_no"],
             "customer_id": r["customer_id"], "amount_minor": r["amount_minor"],
             "amount": format_minor(r["amount_minor"], self.currency)}
            for r in self.rows
        ]


class OpenView:
    """Open amounts as decisions being planned see them: read once, lowered by each planned row."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.invoices: dict[str, dict[str, Any]] = {}
        self.plans: dict[str, list[dict[str, Any]]] = {}

    def invoice(self, number: str) -> dict[str, Any]:
        if number not in self.invoices:
            inv, ins = tables.Invoice, tables.Installment
            row = self.session.execute(
                select(inv.customer_id, inv.currency, inv.open_amount_minor, inv.due_date, inv.amount_minor)
                .where(inv.invoice_number == number)).first()
            if row is None:
                raise NotFoundError(f"unknown invoice {number}")
            self.invoices[number] = {"customer_id": row.customer_id, "currency": row.currency,
                                     "open": row.open_amount_minor, "due": row.due_date,
                                     "credit_note": row.amount_minor < 0}
            self.plans[number] = [
                {"id": i, "no": no, "open": o, "due": due} for i, no, o, due in self.session.execute(
                    select(ins.id, ins.installment_no, ins.open_amount_minor, ins.due_date)
                    .where(ins.invoice_number == number)).all()
            ]
        return self.invoices[number]

    def open_of(self, key: Key) -> int:
        number, no = key
        head = self.invoice(number)
        if no is None:
            return head["open"]
        return self._installment(number, no)["open"]

    def _installment(self, number: str, no: int) -> dict[str, Any]:
        self.invoice(number)
        for entry in self.plans[number]:
            if entry["no"] == no:
                return entry
        raise NotFoundError(f"invoice {number} has no installment {no}")

    def _schedule(self, number: str) -> list[Installment]:
        return [Installment(e["no"], e["due"], e["open"]) for e in self.plans[number]]

    def take(self, key: Key, amount: int) -> list[dict[str, Any]]:
        """Rows allocating exactly `amount` to an invoice (through its open installments in due order) or one
        installment (only when every installment due before it is settled); a credit note takes a negative
        amount. The rules are core/allocation.py's, the same the matcher and the ledger check apply."""
        number, no = key
        head = self.invoice(number)
        ccy = head["currency"]
        if head["credit_note"]:
            if no is not None or amount >= 0:
                raise ReconcileError(f"{_label(key)} is a credit note: allocate a negative amount to it "
                                     f"(e.g. {number}={format_minor(self.open_of(key), ccy)})")
        elif amount <= 0:
            raise ReconcileError(f"{_label(key)}: an allocation must be more than zero")
        if abs(amount) > abs(self.open_of(key)):
            raise ReconcileError(
                f"{_label(key)} has {format_minor(self.open_of(key), ccy)} open, "
                f"{format_minor(amount, ccy)} cannot be allocated to it")
        if no is not None:
            problem = check_installment_take(self._schedule(number), no, amount)
            if problem:
                raise ReconcileError(f"invoice {number}: {problem}")
            parts = [(no, amount)]
        else:
            parts = take_in_due_order(self._schedule(number), amount) if not head["credit_note"] else []
        ids = {e["no"]: e for e in self.plans[number]}
        rows = []
        for part_no, part in parts:
            ids[part_no]["open"] -= part
            rows.append(_row("installment", head["customer_id"], number, part_no, ids[part_no]["id"], part))
        left = amount - sum(part for _, part in parts)
        if left:
            rows.append(_row("invoice", head["customer_id"], number, None, None, left))
        head["open"] -= amount
        return rows


def _row(kind: str, customer: str | None, number: str | None, no: int | None, installment_id: int | None,
         amount: int) -> dict[str, Any]:
    return {"kind": kind, "customer_id": customer, "invoice_number": number, "installment_no": no,
            "installment_id": installment_id, "amount_minor": amount}


def _label(key: Key) -> str:
    number, no = key
    return f"invoice {number}" if no is None else f"installment {no} of invoice {number}"


def _amount(text: str, currency: str, what: str) -> int:
    try:
        return to_minor(parse_decimal(text), currency)
    except ValueError as exc:
        raise ReconcileError(f"{what}: {exc}") from None


# --- planning ----------------------------------------------------------------


def check_open(item: tables.ExceptionItem, line: tables.BankLine, actor: str, now: datetime,
               qs: QueueConfig, *, approving: bool = False) -> None:
    """Refuse a decision on an item that is not open, awaits approval, or another person holds."""
    if item.status != "open":
        by = f" by {item.resolved_by}" if item.resolved_by else ""
        raise ReconcileError(f"exception {item.id} was already {item.status}{by} at {item.resolved_at} "
                             f"({item.resolution}): reopen it first to decide again")
    if line.status != "exception":
        raise ReconcileError(f"exception {item.id}: its bank line is {line.status}, not queued")
    if item.proposal and not approving:
        raise ReconcileError(f"exception {item.id} has a write-off proposed by {item.proposed_by} awaiting "
                             "a second person's approval: approve or withdraw it first")
    if (item.claimed_by and item.claimed_by != actor and not approving and item.claimed_at is not None
            and _aware(item.claimed_at) > qs.claim_cutoff(now)):
        raise ReconcileError(f"exception {item.id} is claimed by {item.claimed_by} since {item.claimed_at}: "
                             "ask them to release it, or wait until the claim lapses")


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def plan_decision(
    session: Session, item: tables.ExceptionItem, line: tables.BankLine, decision: Decision, *,
    view: OpenView, qs: QueueConfig, approving: bool = False,
) -> Plan:
    """Validate `decision` for one line against `view`; the returned plan is what apply_plan writes."""
    if decision.action not in ACTIONS:
        raise ReconcileError(f"unknown action {decision.action!r}: use one of {', '.join(ACTIONS)}")
    if decision.action in ("unapply", "confirm"):
        raise ReconcileError(f"exception {item.id} is queued as {item.reason}: {decision.action} answers only a "
                             "closed_elsewhere item (a posting the receivables system overtook)")
    plan = Plan(item.id, line.id, line.generation, line.amount_minor, line.currency, decision, "post", decision.action)
    if decision.action in ("not_receivable", "refund"):
        category = "refund" if decision.action == "refund" else (decision.code or "").strip().lower()
        if category not in CATEGORIES:
            raise ReconcileError(f"category {decision.code!r} is not one of {', '.join(CATEGORIES)}")
        if decision.action == "refund" and line.amount_minor <= 0:
            raise ReconcileError(f"exception {item.id} is a debit: there is nothing to refund")
        plan.kind, plan.category = "skip", category
        plan.details = {"category": category}
        if decision.action == "refund":
            plan.details["refund_to"] = line.counterparty_account
            plan.details["refund_amount"] = format_minor(line.amount_minor, line.currency)
        return plan
    if line.amount_minor <= 0:
        raise ReconcileError(f"exception {item.id} is a debit of {format_minor(line.amount_minor, line.currency)}: "
                             "nothing to allocate (mark it as not a receivable)")
    conversion = _conversion(session, item, line, decision, view)
    asked_on_account = decision.rest_on_account or any(t.strip() == ON_ACCOUNT for t, _ in decision.parts)
    if conversion is not None:
        # a payment for invoices in another currency: planned in theirs, booked back in the bank's (match/fx.py);
        # what the rate leaves over is an FX difference when within the tolerance, else it must be placed
        line = _in_currency(line, conversion)  # type: ignore[assignment]
        plan.amount_minor, plan.currency = line.amount_minor, line.currency
        if decision.action == "allocate":
            decision = replace(decision, rest_on_account=True)
    if decision.action == "accept":
        plan.rows = _plan_accept(session, item, line, decision, view)
    elif decision.action == "allocate":
        plan.rows = _plan_allocate(item, line, decision, view)
        written_off = -sum(r["amount_minor"] for r in plan.rows if r["kind"] == "write_off")
        if written_off:
            # a deduction beside invoices settled in full: approved by a second person above the limit
            plan.resolution, plan.category = "write_off", decision.code or "write_off"
            plan.details = {"write_off": format_minor(written_off, line.currency), "reason_code": plan.category}
            if written_off > qs.approval_limit_minor(line.currency) and not approving:
                plan.kind = "pending"
    elif decision.action == "on_account":
        customer = _customer_named(session, decision.customer or item.customer_id, item)
        plan.rows = [_row(ON_ACCOUNT, customer, None, None, None, line.amount_minor)]
    else:
        _plan_write_off(plan, item, line, decision, view, qs, approving)
    customers = {r["customer_id"] for r in plan.rows}
    if len(customers) != 1:
        raise ReconcileError("a line is allocated to one customer: the invoices named belong to several")
    plan.customer = customers.pop()
    for r in plan.rows:
        if r["invoice_number"] and view.invoice(r["invoice_number"])["currency"] != line.currency:
            raise ReconcileError(f"invoice {r['invoice_number']} is in "
                                 f"{view.invoice(r['invoice_number'])['currency']}, "
                                 f"the payment in {line.currency}: give the rate (--rate), unless the bank "
                                 "stated the amount in the invoice's currency")
    if conversion is not None:
        plan.rows = _booked_back(plan.rows, conversion)
        left = [r for r in plan.rows if r["kind"] == ON_ACCOUNT]
        if left and not asked_on_account and decision.action == "allocate":
            rest = sum(r["amount_minor"] for r in left)
            raise ReconcileError(f"at the rate {conversion.rate}, {format_minor(rest, conversion.bank_currency)} "
                                 f"{conversion.bank_currency} of the payment is unallocated, beyond the FX "
                                 "tolerance: put it on account, or check the rate")
        plan.amount_minor, plan.currency = conversion.bank_amount, conversion.bank_currency
        plan.details = {**plan.details, "fx": {"rate": str(conversion.rate), "currency": conversion.currency,
                                               "source": "bank" if conversion.exact else "given by hand"}}
    return plan


def _conversion(session: Session, item: tables.ExceptionItem, line: tables.BankLine, decision: Decision,
                view: OpenView) -> fx.Conversion | None:
    """How a payment converts when the decision names invoices in another currency (else None)."""
    named = [parse_key(t)[0] for t, _ in decision.parts if t.strip() != ON_ACCOUNT and not t.startswith(WRITE_OFF)]
    if decision.action == "accept":
        ranked = rank_suggestions(session, item, line)
        if 1 <= decision.choice <= len(ranked):
            named = [parse_key(k)[0] for k in ranked[decision.choice - 1]["items"]]
    elif decision.action == "write_off" and decision.invoice:
        named = [parse_key(decision.invoice)[0]]
    currencies = {view.invoice(n)["currency"] for n in named} - {line.currency}
    if not currencies:
        return None
    if len(currencies) > 1:
        raise ReconcileError("the invoices named are in several currencies: one currency per decision")
    target = currencies.pop()
    if line.instructed_currency == target and line.instructed_amount_minor:
        _shown, found = fx.instructed(pl.DataFrame([{
            "bank_line_id": line.id, "amount_minor": line.amount_minor, "currency": line.currency,
            "instructed_amount_minor": line.instructed_amount_minor, "instructed_currency": line.instructed_currency,
            "exchange_rate": line.exchange_rate}]))
        return found[line.id]
    if not decision.rate:
        return None
    try:
        rate = parse_decimal(decision.rate)
    except ValueError as exc:
        raise ReconcileError(f"--rate: {exc}") from None
    if rate <= 0:
        raise ReconcileError("--rate must be more than zero (units of the invoice's currency for one unit of the "
                             "payment's)")
    converted = fx.to_minor_of(Decimal(line.amount_minor).scaleb(-exponent(line.currency)) * rate, target)
    return fx.Conversion(line.amount_minor, line.currency, converted, target, False, rate)


def _in_currency(line: tables.BankLine, conversion: fx.Conversion) -> SimpleNamespace:
    """The line as the planners see it: its amount in the invoices' currency."""
    fields_ = {c.name: getattr(line, c.name) for c in tables.BankLine.__table__.columns}
    return SimpleNamespace(**{**fields_, "amount_minor": conversion.amount, "currency": conversion.currency})


def _booked_back(rows: list[dict[str, Any]], conversion: fx.Conversion) -> list[dict[str, Any]]:
    """Planned rows (in the invoices' currency) as rows in the bank's currency that add up to the payment."""
    records = [{**r, "bank_line_id": 0, "currency": conversion.currency, "rule": r.get("reason") or "manual",
                "evidence": None} for r in rows]
    booked = fx._booked(records, conversion, FxConfig().tolerance)
    return [{k: v for k, v in r.items() if k not in ("bank_line_id", "evidence", "currency")} |
            ({"reason": r["rule"]} if r["kind"] == "write_off" else {}) for r in booked]


def _customer_named(session: Session, customer: str | None, item: tables.ExceptionItem) -> str:
    if not customer:
        raise ReconcileError(f"exception {item.id}: name the customer to keep the payment for (--customer)")
    if session.get(tables.Customer, customer) is None:
        raise NotFoundError(f"unknown customer {customer}")
    return customer


def _fill(keys: list[Key], amount: int, view: OpenView) -> tuple[list[dict[str, Any]], int]:
    """Allocate `amount` to keys in order, each up to what is open; returns rows and what is left."""
    rows, left = [], amount
    # credit notes first: what they give back is there to be allocated to the invoices named with them
    keys = sorted(keys, key=lambda k: not view.invoice(k[0])["credit_note"])
    for key in keys:
        if view.invoice(key[0])["credit_note"]:
            rows += view.take(key, view.open_of(key))
            left -= rows[-1]["amount_minor"]
            continue
        take = min(left, view.open_of(key))
        if take <= 0:
            raise ReconcileError(f"{_label(key)} has nothing open (or the payment is used up before it)")
        rows += view.take(key, take)
        left -= take
    return rows, left


def _in_due_order(targets: list[tuple[str, str | None]], view: OpenView) -> list[tuple[str, str | None]]:
    """The parts as named, but a plan's installments taken in due order, whatever order they were typed in."""
    def position(target: str) -> tuple[int, Any, int]:
        number, no = parse_key(target)
        first = next(i for i, (t, _) in enumerate(targets) if parse_key(t)[0] == number)
        if no is None:
            return first, date.min, 0
        view.invoice(number)   # reads the invoice and its plan
        plan = {e["no"]: e["due"] for e in view.plans[number]}
        return first, plan.get(no, date.min), no
    return sorted(targets, key=lambda part: position(part[0]))


def _plan_accept(session: Session, item: tables.ExceptionItem, line: tables.BankLine, decision: Decision,
                 view: OpenView) -> list[dict[str, Any]]:
    ranked = rank_suggestions(session, item, line)
    if not ranked:
        raise ReconcileError(f"exception {item.id} has no suggestion to accept: allocate it by hand")
    if not 1 <= decision.choice <= len(ranked):
        raise ReconcileError(f"exception {item.id} has {len(ranked)} suggestion(s): choose 1 to {len(ranked)}")
    keys = [parse_key(k) for k in ranked[decision.choice - 1]["items"]]
    rows, left = _fill(keys, line.amount_minor, view)
    if left:
        rows.append(_row(ON_ACCOUNT, rows[0]["customer_id"], None, None, None, left))
    return rows


def _plan_allocate(item: tables.ExceptionItem, line: tables.BankLine, decision: Decision,
                   view: OpenView) -> list[dict[str, Any]]:
    write_offs = [(t.strip().removeprefix(WRITE_OFF), a) for t, a in decision.parts if t.strip().startswith(WRITE_OFF)]
    targets = [(t.strip(), a) for t, a in decision.parts
               if t.strip() != ON_ACCOUNT and not t.strip().startswith(WRITE_OFF)]
    on_account = [a for t, a in decision.parts if t.strip() == ON_ACCOUNT]
    if not decision.parts:
        raise ReconcileError(f"exception {item.id}: name at least one invoice (or on_account) to allocate to")
    with_amounts = [a for _, a in decision.parts if a not in (None, "")]
    rows: list[dict[str, Any]] = []
    customer = decision.customer
    if not with_amounts:
        # invoices in the order named, each up to its open amount; the rest on account
        rows, left = _fill([parse_key(t) for t, _ in targets], line.amount_minor, view)
        rest_on_account = left > 0
    else:
        missing = [t for t, a in targets if a in (None, "")]
        if missing:
            raise ReconcileError(f"give an amount for every invoice named, or for none "
                                 f"(no amount for {', '.join(missing)})")
        total = 0
        for target, text in _in_due_order(targets, view):
            amount = _amount(text or "", line.currency, f"amount for {target}")
            rows += view.take(parse_key(target), amount)
            total += amount
        for text in on_account:
            if text:
                amount = _amount(text, line.currency, "amount on account")
                if amount <= 0:
                    raise ReconcileError("an amount on account must be more than zero")
                rows.append(_row(ON_ACCOUNT, None, None, None, None, amount))
                total += amount
        for number, text in write_offs:
            amount = -abs(_amount(text or "", line.currency, f"write-off on {number}"))
            settled = [r for r in rows if r["invoice_number"] == number and r["kind"] != "write_off"]
            if not settled or view.open_of((number, None)) != 0:
                raise ReconcileError(f"a write-off on {number} needs the same decision to settle {number} in full")
            rows.append({**_row("write_off", settled[0]["customer_id"], number, None, None, amount),
                         "reason": decision.code or "write_off"})
            total += amount
        left = line.amount_minor - total
        if left < 0:
            raise ReconcileError(f"the amounts add up to {format_minor(total, line.currency)}, more than the "
                                 f"payment of {format_minor(line.amount_minor, line.currency)}")
        rest_on_account = left > 0 and (decision.rest_on_account or (bool(on_account) and not all(on_account)))
        if left and not rest_on_account:
            raise ReconcileError(f"the amounts add up to {format_minor(total, line.currency)}, the payment is "
                                 f"{format_minor(line.amount_minor, line.currency)}: "
                                 f"{format_minor(left, line.currency)} is unallocated (put it on account?)")
    owners = {r["customer_id"] for r in rows if r["customer_id"]}
    customer = customer or (owners.pop() if len(owners) == 1 else None) or item.customer_id
    if any(r["kind"] == ON_ACCOUNT for r in rows) or rest_on_account:
        if not customer:
            raise ReconcileError(f"exception {item.id}: name the customer to keep the payment for (--customer)")
        if view.session.get(tables.Customer, customer) is None:
            raise NotFoundError(f"unknown customer {customer}")
        for r in rows:
            if r["kind"] == ON_ACCOUNT:
                r["customer_id"] = customer
    if rest_on_account:
        rows.append(_row(ON_ACCOUNT, customer, None, None, None, left))
    return rows


def _plan_write_off(plan: Plan, item: tables.ExceptionItem, line: tables.BankLine, decision: Decision,
                    view: OpenView, qs: QueueConfig, approving: bool) -> None:
    code = (decision.code or "").strip()
    if not decision.invoice or not code:
        raise ReconcileError("a write-off names the invoice the payment is for and a reason code")
    key = parse_key(decision.invoice)
    head = view.invoice(key[0])
    open_minor = view.open_of(key)
    difference = open_minor - line.amount_minor
    if difference <= 0:
        raise ReconcileError(f"the payment of {format_minor(line.amount_minor, line.currency)} covers "
                             f"{_label(key)} ({format_minor(open_minor, head['currency'])} open): nothing to write off")
    plan.category, plan.resolution = code, "write_off"
    plan.details = {"write_off": format_minor(difference, line.currency), "reason_code": code,
                    "invoice": decision.invoice}
    if difference > qs.approval_limit_minor(line.currency) and not approving:
        plan.kind = "pending"
    # the ledger's convention: the item is settled in full, the difference is a negative write_off row
    # beside it (an expense), so the line's rows add up to the payment
    plan.rows = view.take(key, open_minor)
    plan.rows.append({**_row("write_off", head["customer_id"], key[0], None, None, -difference), "reason": code})


# --- applying ----------------------------------------------------------------


def _allocation_frame(plan: Plan, actor: str) -> pl.DataFrame:
    evidence = evidence_text({"manual": True, "by": actor, "decision": plan.decision.action,
                              "note": plan.decision.note, **plan.details})
    # a write-off's rule is its reason code: post_chunk stores it as the allocation's reason
    records = [
        {"bank_line_id": plan.line_id, "currency": plan.currency, "confidence": 1.0, "evidence": evidence,
         "rule": r.get("reason") or "manual", **r}
        for r in plan.rows
    ]
    return frames.from_records(records, {**frames.ALLOCATIONS, "installment_id": pl.Int64(),
                                         "settled_amount_minor": pl.Int64(), "settled_currency": pl.String()})


def apply_plan(session: Session, plan: Plan, *, actor: str, now: datetime, business_date: date,
               batch: str | None = None, learn: bool = True, approved_by: str | None = None) -> dict[str, Any]:
    """Write a planned decision in the caller's transaction; returns what was done.

    `business_date`: the day the decision belongs to (QueueConfig.business_date of the moment it is made).
    """
    ex = tables.ExceptionItem.__table__
    if plan.kind == "pending":
        done = repo.changed(session, update(ex).where(ex.c.id == plan.item_id, ex.c.status == ItemStatus.OPEN,
                                                      ex.c.proposal.is_(None))
                               .values(proposal=plan.decision.to_json(), proposed_by=actor, proposed_at=now,
                                       claimed_by=actor, claimed_at=now))
        if done != 1:
            raise ReconcileError(f"exception {plan.item_id} changed while the write-off was being proposed")
        session.add(tables.AuditEntry(
            at=now, actor=actor, action="write_off_proposed", bank_line_id=plan.line_id,
            invoice_number=plan.decision.invoice, reason=plan.category,
            details=json.dumps({"exception_id": plan.item_id, **plan.details, "note": plan.decision.note}),
        ))
        return {"id": plan.item_id, "status": "pending_approval", "resolution": None, **plan.details, "allocations": []}
    if plan.kind == "skip":
        bl = tables.BankLine.__table__
        moved = repo.changed(session, update(bl).where(bl.c.id == plan.line_id, bl.c.status == LineStatus.EXCEPTION,
                                                 bl.c.generation == plan.generation).values(status=LineStatus.SKIPPED))
        if moved != 1:
            raise ReconcileError(f"exception {plan.item_id}: its bank line changed status meanwhile; "
                                 "nothing was changed")
    else:
        lines = pl.DataFrame({"bank_line_id": [plan.line_id], "amount_minor": [plan.amount_minor],
                              "generation": [plan.generation]})
        try:
            post_chunk(session, lines=lines, allocations=_allocation_frame(plan, actor),
                       exceptions=frames.empty(frames.EXCEPTIONS), skipped=frames.empty(frames.SKIPPED),
                       run_id=None, actor=actor, now=now, business_date=business_date)
        except LedgerError as exc:
            raise ReconcileError(f"exception {plan.item_id}: {exc}") from None
    learned = learn_payer(session, _line(session, plan.line_id), plan.customer, actor=actor, now=now) \
        if learn and plan.customer and plan.decision.learn else []
    resolved_by = actor
    if approved_by:
        resolved_by = session.execute(select(ex.c.proposed_by).where(ex.c.id == plan.item_id)).scalar_one()
    values = {"status": "resolved", "resolution": plan.resolution, "category": plan.category,
              "resolved_by": resolved_by, "resolved_at": now, "closed_on": business_date, "resolution_batch": batch,
              "learned": json.dumps(learned) if learned else None, "approved_by": approved_by}
    # posting already settled the item (status resolved); a skipped line's item is settled here
    done = repo.changed(session, update(ex).where(
        ex.c.id == plan.item_id,
        or_(ex.c.status == ItemStatus.OPEN, ex.c.resolution == "auto_posted") if plan.kind == "post"
        else ex.c.status == ItemStatus.OPEN).values(**values))
    if done != 1:
        raise ReconcileError(f"exception {plan.item_id} was decided by someone else meanwhile; nothing was changed")
    session.add(tables.AuditEntry(
        at=now, actor=actor, action="write_off" if plan.resolution == "write_off" else "resolve",
        bank_line_id=plan.line_id,
        invoice_number=next((r["invoice_number"] for r in plan.rows if r["invoice_number"]), None),
        reason=plan.decision.note or plan.category,
        details=json.dumps({"exception_id": plan.item_id, "decision": plan.decision.action, "batch": batch,
                            "approved_by": approved_by, "proposed_by": resolved_by if approved_by else None,
                            "allocations": plan.shown_rows(), **plan.details}, default=str),
    ))
    return {"id": plan.item_id, "status": "resolved", "resolution": plan.resolution, "category": plan.category,
            "customer_id": plan.customer, "allocations": plan.shown_rows(), "learned": learned, **plan.details}


def _line(session: Session, line_id: int) -> tables.BankLine:
    return session.execute(select(tables.BankLine).where(tables.BankLine.id == line_id)).scalar_one()


# --- public actions ----------------------------------------------------------


# a posting the receivables system overtook (ledger/conflicts.py) is answered with one of these
CLOSED_ELSEWHERE_ACTIONS = {"unapply": "unapply", "on_account": "on_account", "confirm": "confirm"}


def resolve(engine: Engine, key: str | int, decision: Decision, *, actor: str, now: datetime,
            config: QueueConfig) -> dict[str, Any]:
    """Decide one queued line; a write-off above the approval limit waits for a second person.

    A closed_elsewhere item (a posting to an invoice the receivables system closed before importing it)
    is answered with unapply (the money goes back to the queue), on_account (kept for the customer) or
    confirm (the posting stands)."""
    qs = config
    with db.transaction(engine) as session:
        item, line = find_item(session, key)
        if item.reason == conflicts.REASON and item.status == "open":
            choice = CLOSED_ELSEWHERE_ACTIONS.get(decision.action)
            if choice is None:
                raise ReconcileError(f"exception {item.id} is a posting the receivables system overtook: answer it "
                                     "with --unapply, --on-account CUSTOMER (keep it for the customer) or --confirm")
            return conflicts.resolve(session, item, choice, actor=actor, now=now,
                                     business_date=qs.business_date(now), note=decision.note)
        check_open(item, line, actor, now, qs)
        plan = plan_decision(session, item, line, decision, view=OpenView(session), qs=qs)
        return apply_plan(session, plan, actor=actor, now=now, business_date=qs.business_date(now),
                          learn=qs.learn)


def resolve_item(
    engine: Engine, key: int, invoices: list[str], *, actor: str, now: datetime,
    on_account_customer: str | None = None, note: str | None = None, config: QueueConfig,
) -> list[dict]:
    """Post queued item `key` to `invoices` in order (each up to its open amount), the rest on account."""
    parts = tuple((n, None) for n in invoices) or ((ON_ACCOUNT, None),)
    decision = Decision("allocate", parts=parts, customer=on_account_customer, rest_on_account=True, note=note)
    done = resolve(engine, key, decision, actor=actor, now=now, config=config)
    return done["allocations"]


def approve(engine: Engine, key: str | int, *, actor: str, now: datetime,
            config: QueueConfig) -> dict[str, Any]:
    """A second person approves a proposed write-off: it is posted now (re-checked against today's book)."""
    qs = config
    with db.transaction(engine) as session:
        item, line = find_item(session, key)
        if not item.proposal or item.status != "open":
            raise ReconcileError(f"exception {item.id} has no write-off awaiting approval")
        if item.proposed_by == actor:
            raise ReconcileError(f"exception {item.id}: {actor} proposed this write-off and cannot also approve it")
        check_open(item, line, actor, now, qs, approving=True)
        plan = plan_decision(session, item, line, Decision.from_json(item.proposal), view=OpenView(session), qs=qs,
                             approving=True)
        return apply_plan(session, plan, actor=actor, now=now, business_date=qs.business_date(now),
                          learn=qs.learn, approved_by=actor)


def withdraw(engine: Engine, key: str | int, *, actor: str, now: datetime, reason: str | None = None) -> dict[str, Any]:
    """Drop a proposed write-off (the proposer withdraws it, or the approver rejects it); the item stays open."""
    ex = tables.ExceptionItem.__table__
    with db.transaction(engine) as session:
        item, line = find_item(session, key)
        if not item.proposal or item.status != "open":
            raise ReconcileError(f"exception {item.id} has no write-off awaiting approval")
        session.execute(update(ex).where(ex.c.id == item.id).values(
            proposal=None, proposed_by=None, proposed_at=None))
        session.add(tables.AuditEntry(at=now, actor=actor, action="write_off_withdrawn", bank_line_id=line.id,
                                      reason=reason, details=json.dumps({"exception_id": item.id,
                                                                         "proposal": json.loads(item.proposal),
                                                                         "proposed_by": item.proposed_by})))
        return {"id": item.id, "withdrawn_by": actor, "proposed_by": item.proposed_by}


def reopen_in(session: Session, item: tables.ExceptionItem, line: tables.BankLine, *, actor: str, now: datetime,
              business_date: date, reason: str, batch: str | None = None) -> dict[str, Any]:
    """Undo a resolution in the caller's transaction: reverse the posting or un-skip the line; queue it again."""
    if item.status != "resolved":
        raise ReconcileError(f"exception {item.id} is {item.status}: only a resolved item can be reopened")
    ex = tables.ExceptionItem.__table__
    details = {"reopened": item.id, "resolution": item.resolution, "batch": batch}
    if line.status == LineStatus.POSTED and line.generation == item.generation:
        try:
            reverse_line(session, line.id, reason=reason, then=LineStatus.EXCEPTION, actor=actor, now=now,
                         business_date=business_date, details=details)
        except LedgerError as exc:
            raise ReconcileError(f"exception {item.id}: {exc}") from None
        new_id = session.execute(select(ex.c.id).where(ex.c.bank_line_id == line.id,
                                                       ex.c.status == ItemStatus.OPEN)).scalar_one()
        evidence = evidence_of(item.evidence)
        session.execute(update(ex).where(ex.c.id == new_id).values(
            suggestions=item.suggestions, customer_id=item.customer_id, assignee=item.assignee,
            evidence=evidence_text({**evidence, "reopened_from": item.id, "original_reason": item.reason,
                                    "reopen_reason": reason}),
        ))
        session.add(tables.AuditEntry(at=now, actor=actor, action="reopen", bank_line_id=line.id, reason=reason,
                                      details=json.dumps({**details, "new_exception_id": new_id})))
    elif line.status == LineStatus.SKIPPED and item.resolution in ("not_receivable", "refund"):
        moved = repo.changed(session, update(tables.BankLine.__table__).where(
            tables.BankLine.__table__.c.id == line.id, tables.BankLine.__table__.c.status == LineStatus.SKIPPED,
        ).values(status=LineStatus.EXCEPTION))
        if moved != 1:
            raise ReconcileError(f"exception {item.id}: its bank line changed status meanwhile")
        session.execute(update(ex).where(ex.c.id == item.id).values(
            status=ItemStatus.OPEN, resolution=None, resolved_by=None, resolved_at=None, closed_on=None, category=None,
            resolution_batch=None, learned=None))
        new_id = item.id
        session.add(tables.AuditEntry(at=now, actor=actor, action="reopen", bank_line_id=line.id, reason=reason,
                                      details=json.dumps(details)))
    else:
        raise ReconcileError(f"exception {item.id} was {item.resolution} and its bank line is {line.status} "
                             f"(generation {line.generation}): there is nothing this queue can reopen")
    forgotten = unlearn(session, json.loads(item.learned), actor=actor, now=now, reason=f"reopened: {reason}") \
        if item.learned else 0
    return {"id": item.id, "reopened_as": new_id, "was": item.resolution, "forgotten": forgotten}


def reopen(engine: Engine, key: str | int, *, actor: str, now: datetime, reason: str,
           business_date: date | None = None) -> dict[str, Any]:
    if not reason or not reason.strip():
        raise ReconcileError("a reason is required to reopen a resolved item")
    with db.transaction(engine) as session:
        item, line = find_item(session, key)
        return reopen_in(session, item, line, actor=actor, now=now, business_date=business_date or now.date(),
                         reason=reason)


def add_note(engine: Engine, key: str | int, text: str, *, actor: str, now: datetime) -> dict[str, Any]:
    if not text or not text.strip():
        raise ReconcileError("a note needs some text")
    with db.transaction(engine) as session:
        item, line = find_item(session, key)
        session.add(tables.ExceptionNote(exception_id=item.id, author=actor, created_at=now, text=text.strip()))
        session.add(tables.AuditEntry(at=now, actor=actor, action="note", bank_line_id=line.id, reason=text.strip(),
                                      details=json.dumps({"exception_id": item.id})))
        return {"id": item.id, "author": actor, "text": text.strip()}


def assign(engine: Engine, key: str | int, assignee: str | None, *, actor: str, now: datetime) -> dict[str, Any]:
    """Give an open item to a person (None: unassign)."""
    ex = tables.ExceptionItem.__table__
    with db.transaction(engine) as session:
        item, line = find_item(session, key)
        if item.status != "open":
            raise ReconcileError(f"exception {item.id} is {item.status}: only open items are assigned")
        session.execute(update(ex).where(ex.c.id == item.id).values(assignee=assignee or None))
        session.add(tables.AuditEntry(at=now, actor=actor, action="assign", bank_line_id=line.id, reason=assignee,
                                      details=json.dumps({"exception_id": item.id, "from": item.assignee,
                                                          "to": assignee or None})))
        return {"id": item.id, "assignee": assignee or None, "was": item.assignee}


def release(engine: Engine, key: str | int, *, actor: str, now: datetime) -> dict[str, Any]:
    """Give back a claimed item (only its holder may, or anyone once the claim lapsed)."""
    ex = tables.ExceptionItem.__table__
    with db.transaction(engine) as session:
        item, line = find_item(session, key)
        if not item.claimed_by:
            raise ReconcileError(f"exception {item.id} is not claimed")
        done = repo.changed(session, update(ex).where(ex.c.id == item.id, ex.c.claimed_by == actor)
                               .values(claimed_by=None, claimed_at=None))
        if done != 1:
            raise ReconcileError(f"exception {item.id} is claimed by {item.claimed_by}, not {actor}")
        session.add(tables.AuditEntry(at=now, actor=actor, action="release", bank_line_id=line.id,
                                      details=json.dumps({"exception_id": item.id})))
        return {"id": item.id, "released_by": actor}


def claim(engine: Engine, key: str | int, *, actor: str, now: datetime,
          config: QueueConfig) -> dict[str, Any]:
    """Claim one named item; refused while someone else's claim is live."""
    qs = config
    ex = tables.ExceptionItem.__table__
    with db.transaction(engine) as session:
        item, line = find_item(session, key)
        if item.status != "open":
            raise ReconcileError(f"exception {item.id} is {item.status}: nothing to claim")
        done = repo.changed(session, update(ex).where(
            ex.c.id == item.id, ex.c.status == ItemStatus.OPEN,
            or_(ex.c.claimed_by.is_(None), ex.c.claimed_by == actor, ex.c.claimed_at < qs.claim_cutoff(now)),
        ).values(claimed_by=actor, claimed_at=now))
        if done != 1:
            raise ReconcileError(f"exception {item.id} is claimed by {item.claimed_by} since {item.claimed_at}")
        session.add(tables.AuditEntry(at=now, actor=actor, action="claim", bank_line_id=line.id,
                                      details=json.dumps({"exception_id": item.id})))
        return {"id": item.id, "claimed_by": actor}


CLAIM_ATTEMPTS = 8


def claim_next(
    engine: Engine, *, actor: str, now: datetime, filters: QueueFilter | None = None, sort: str = "oldest",
    config: QueueConfig,
) -> int | None:
    """Claim the first free open item (oldest or largest first); returns its id, or None when none is free.

    Two people claiming at once never get the same item: PostgreSQL locks the
    candidate row with FOR UPDATE SKIP LOCKED (a colleague's locked row is
    skipped, not waited for); SQLite claims with one conditional UPDATE, which
    takes the database's write lock, so claims run one after another.
    """
    qs = config
    filters = filters or QueueFilter()
    ex, bl = tables.ExceptionItem, tables.BankLine
    free = (
        select(ex.id).join(bl, bl.id == ex.bank_line_id)
        .where(ex.status == ItemStatus.OPEN, ex.proposal.is_(None),
               or_(ex.claimed_by.is_(None), ex.claimed_at < qs.claim_cutoff(now)),
               or_(ex.assignee.is_(None), ex.assignee == actor),
               *QueueFilter(**{**asdict(filters), "status": "open"}).conditions(now.date()))
        .order_by(*order_by(sort)).limit(1)
    )
    table = ex.__table__
    for _ in range(CLAIM_ATTEMPTS):
        with db.transaction(engine) as session:
            if session.get_bind().dialect.name == "postgresql":
                found = session.execute(free.with_for_update(skip_locked=True, of=ex)).scalar()
                if found is not None:
                    session.execute(update(table).where(table.c.id == found).values(claimed_by=actor, claimed_at=now))
            else:
                found = session.execute(
                    update(table).where(table.c.id == free.scalar_subquery(),
                                        or_(table.c.claimed_by.is_(None), table.c.claimed_at < qs.claim_cutoff(now)))
                    .values(claimed_by=actor, claimed_at=now).returning(table.c.id)
                ).scalar()
            if found is not None:
                session.add(tables.AuditEntry(at=now, actor=actor, action="claim",
                                              details=json.dumps({"exception_id": found, "next": True})))
                return found
            # nothing handed out: either the queue is empty, or every candidate was being claimed this instant
            if session.execute(free).scalar() is None:
                return None
    return None
