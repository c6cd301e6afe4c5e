"""The ledger's invariants, checked from the stored rows alone.

`check_ledger` recomputes what posting keeps incrementally (open amounts,
line statuses) from the allocation rows, and names every disagreement. It
reads; it never repairs. `reconcile check` prints the violations and exits
non-zero; every posting run calls it after its last chunk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from reconcile.core.allocation import clamp_open_expr, order_violations
from reconcile.core.codes import OPEN_LINE_STATUSES, ItemStatus, Kind, Reason
from reconcile.core.money import format_minor
from reconcile.store import repo, tables


@dataclass(frozen=True)
class Scope:
    """What a check looks at: everything (run_id None), or what one posting run touched — its lines, the
    invoices it posted to and their customers — so a run's own check costs what the day costs, not the
    history (`reconcile check` looks at everything)."""

    run_id: str | None = None

    def lines(self) -> Any:
        al, ex = tables.Allocation, tables.ExceptionItem
        return select(al.bank_line_id).where(al.run_id == self.run_id).union(
            select(ex.bank_line_id).where(ex.run_id == self.run_id))

    def invoices(self) -> Any:
        al = tables.Allocation
        return select(al.invoice_number).where(al.run_id == self.run_id, al.invoice_number.is_not(None))

    def customers(self) -> Any:
        al, inv = tables.Allocation, tables.Invoice
        return select(al.customer_id).where(al.run_id == self.run_id, al.customer_id.is_not(None)).union(
            select(inv.customer_id).where(inv.invoice_number.in_(self.invoices())))

    @property
    def everything(self) -> bool:
        return self.run_id is None


@dataclass(frozen=True)
class Violation:
    rule: str       # stable code, e.g. "line_unbalanced"
    subject: str    # what it is about: "bank line ACC/REF", "invoice INV-1"
    detail: str     # what is wrong, with the figures

    def __str__(self) -> str:
        return f"{self.rule}: {self.subject}: {self.detail}"


def _money(amount: int | None, currency: str | None) -> str:
    return format_minor(amount or 0, currency or "XXX")


def _lines(session: Session, scope: Scope) -> pl.DataFrame:
    bl, al = tables.BankLine, tables.Allocation
    allocated = (
        select(al.bank_line_id, func.sum(al.amount_minor).label("allocated"), func.count().label("rows"))
        .group_by(al.bank_line_id).subquery()
    )
    p = tables.Posting
    active = (
        select(p.bank_line_id, func.count().label("active_postings"))
        .where(p.reversed_at.is_(None)).group_by(p.bank_line_id).subquery()
    )
    ex, ol = tables.ExceptionItem, tables.OpenLine
    # a posted line may also carry an open closed_elsewhere question; the rest of the queue is for unposted lines
    open_items = (
        select(ex.bank_line_id, func.count().label("open_items"),
               func.sum(case((ex.reason == Reason.CLOSED_ELSEWHERE, 1), else_=0)).label("closed_elsewhere"))
        .where(ex.status == ItemStatus.OPEN).group_by(ex.bank_line_id).subquery()
    )
    query = (
        select(
            bl.id, bl.account, bl.source_ref, bl.amount_minor, bl.currency, bl.status,
            func.coalesce(allocated.c.allocated, 0), func.coalesce(allocated.c.rows, 0),
            func.coalesce(active.c.active_postings, 0),
            func.coalesce(open_items.c.open_items, 0) - func.coalesce(open_items.c.closed_elsewhere, 0),
            func.coalesce(open_items.c.closed_elsewhere, 0),
            case((ol.bank_line_id.is_(None), 0), else_=1),
        )
        .outerjoin(allocated, allocated.c.bank_line_id == bl.id)
        .outerjoin(active, active.c.bank_line_id == bl.id)
        .outerjoin(open_items, open_items.c.bank_line_id == bl.id)
        .outerjoin(ol, ol.bank_line_id == bl.id)
    )
    if not scope.everything:
        query = query.where(bl.id.in_(scope.lines()))
    return repo.frame_of(session, query, {
        "id": pl.Int64(), "account": pl.String(), "source_ref": pl.String(), "amount_minor": pl.Int64(),
        "currency": pl.String(), "status": pl.String(), "allocated": pl.Int64(), "rows": pl.Int64(),
        "active_postings": pl.Int64(), "open_items": pl.Int64(), "closed_elsewhere": pl.Int64(),
        "listed_open": pl.Int64(),
    })


def _line_violations(lines: pl.DataFrame) -> list[Violation]:
    posted = pl.col("status") == "posted"
    still_open = pl.col("status").is_in([str(s) for s in OPEN_LINE_STATUSES])
    checks = [
        ("line_unbalanced", posted & (pl.col("allocated") != pl.col("amount_minor")),
         lambda r: f"allocations add up to {_money(r['allocated'], r['currency'])}, "
                   f"the line is {_money(r['amount_minor'], r['currency'])}"),
        ("unposted_line_allocated", ~posted & (pl.col("allocated") != 0),
         lambda r: f"status {r['status']} but allocations net to {_money(r['allocated'], r['currency'])}"),
        ("posting_count", posted & (pl.col("active_postings") != 1),
         lambda r: f"posted, with {r['active_postings']} active postings (expected exactly 1)"),
        ("posting_count", ~posted & (pl.col("active_postings") != 0),
         lambda r: f"status {r['status']} but {r['active_postings']} active posting(s)"),
        ("queue_status", (pl.col("status") == "exception") & (pl.col("open_items") != 1),
         lambda r: f"status exception with {r['open_items']} open queue items (expected 1)"),
        ("queue_status", (pl.col("status") != "exception") & (pl.col("open_items") != 0),
         lambda r: f"status {r['status']} but {r['open_items']} open queue item(s)"),
        ("queue_status", ~posted & (pl.col("closed_elsewhere") != 0),
         lambda r: f"status {r['status']} but an open closed_elsewhere item (only a posting can be closed elsewhere)"),
        ("open_lines", still_open & (pl.col("listed_open") == 0),
         lambda r: f"status {r['status']} but not in open_lines: no run would see it"),
        ("open_lines", ~still_open & (pl.col("listed_open") == 1),
         lambda r: f"status {r['status']} but listed in open_lines"),
    ]
    found = []
    for rule, condition, describe in checks:
        for r in lines.filter(condition).iter_rows(named=True):
            found.append(Violation(rule, f"bank line {r['account']}/{r['source_ref']}", describe(r)))
    return found


def _settles_items():  # type: ignore[no-untyped-def]
    """Rows that move open amounts: invoice and installment rows, and reversals of them (not write-offs)."""
    al = tables.Allocation
    original = tables.Allocation.__table__.alias("settled_original")
    reversed_kind = select(original.c.kind).where(original.c.id == al.reverses_id).scalar_subquery()
    return al.kind.in_((Kind.INVOICE, Kind.INSTALLMENT)) | (
        (al.kind == Kind.REVERSAL) & reversed_kind.in_((Kind.INVOICE, Kind.INSTALLMENT)))


def _applied(key: Any, basis: Any) -> Any:
    """Per key: all settling rows (applied) and those the receivables system had not imported by `basis`."""
    al = tables.Allocation
    settled = repo.settled_amount(al)
    pending = case(((al.batch_seq.is_(None)) | (al.batch_seq > basis), settled), else_=0)
    return (key, func.sum(settled).label("applied"), func.sum(pending).label("pending"))


INDEX_WALK_CUSTOMERS = 2_000  # up to this many customers in scope, walk the customer index; beyond, read all


def _walk_index(customers: list[str] | None) -> bool:
    """True when the scope is a few customers: filter in SQL through the customer index."""
    return customers is not None and len(customers) <= INDEX_WALK_CUSTOMERS


def _only(frame: pl.DataFrame, customers: list[str] | None) -> pl.DataFrame:
    return frame if customers is None else frame.filter(pl.col("customer_id").is_in(customers))


def _invoice_frame(session: Session, scope: Scope, customers: list[str] | None) -> pl.DataFrame:
    """Every invoice (in scope: every invoice of the customers the run touched) with what was applied to it.

    A run that touched a few customers reads their invoices through the customer index. A first run of the
    day touches nearly everyone: walking the index customer by customer, and the allocations invoice by
    invoice, then costs three times one plain read of each table joined here (18 s against 6 s at 100,000
    customers)."""
    inv, al = tables.Invoice, tables.Allocation
    applied_query = (
        select(*_applied(al.invoice_number, inv.basis_seq)).join(inv, inv.invoice_number == al.invoice_number)
        .where(al.invoice_number.is_not(None), _settles_items())
    )
    columns = (inv.invoice_number, inv.customer_id, inv.currency, inv.amount_minor, inv.snapshot_open_minor,
               inv.open_amount_minor, inv.excess_minor)
    schema = {"invoice_number": pl.String(), "customer_id": pl.String(), "currency": pl.String(),
              "amount": pl.Int64(), "snapshot_open": pl.Int64(), "open": pl.Int64(), "excess": pl.Int64()}
    sums = {"applied": pl.Int64(), "pending": pl.Int64()}
    if _walk_index(customers):
        applied = applied_query.where(inv.customer_id.in_(scope.customers())).group_by(al.invoice_number).subquery()
        query = select(*columns, func.coalesce(applied.c.applied, 0), func.coalesce(applied.c.pending, 0)) \
            .outerjoin(applied, applied.c.invoice_number == inv.invoice_number) \
            .where(inv.customer_id.in_(scope.customers()))
        return repo.frame_of(session, query, {**schema, **sums}).sort("invoice_number")
    invoices = _only(repo.frame_of(session, select(*columns), schema), customers)
    totals = repo.frame_of(session, applied_query.group_by(al.invoice_number), {"invoice_number": pl.String(), **sums})
    return invoices.join(totals, on="invoice_number", how="left").with_columns(
        pl.col("applied", "pending").fill_null(0)).sort("invoice_number")


def _invoice_violations(frame: pl.DataFrame) -> list[Violation]:
    """open and excess are what the rule (core/allocation.clamp_open) gives for the snapshot and the postings."""
    credit_note = pl.col("amount") < 0
    expected_open, expected_excess = clamp_open_expr(pl.col("snapshot_open") - pl.col("pending"), credit_note)
    checked = frame.with_columns(expected_open.alias("expected_open"), expected_excess.alias("expected_excess"))
    found = []
    wrong = checked.filter((pl.col("open") != pl.col("expected_open"))
                           | (pl.col("excess") != pl.col("expected_excess")))
    for r in wrong.iter_rows(named=True):
        ccy = r["currency"]
        found.append(Violation(
            "invoice_open", f"invoice {r['invoice_number']}",
            f"open {_money(r['open'], ccy)} (excess {_money(r['excess'], ccy)}), but snapshot open "
            f"{_money(r['snapshot_open'], ccy)} - reconcile's postings not yet in the receivables system "
            f"{_money(r['pending'], ccy)} gives open {_money(r['expected_open'], ccy)} "
            f"(excess {_money(r['expected_excess'], ccy)})",
        ))
    wrong_sign = checked.filter((credit_note & ((pl.col("open") > 0) | (pl.col("applied") > 0)))
                                | (~credit_note & ((pl.col("open") < 0) | (pl.col("applied") < 0))))
    for r in wrong_sign.iter_rows(named=True):
        found.append(Violation("negative", f"invoice {r['invoice_number']}",
                               f"open {_money(r['open'], r['currency'])}, "
                               f"applied {_money(r['applied'], r['currency'])} "
                               f"on an item of {_money(r['amount'], r['currency'])}"))
    return found


def _installment_violations(session: Session, scope: Scope) -> list[Violation]:
    ins, al = tables.Installment, tables.Allocation
    applied = (
        select(
            *_applied(al.installment_id, ins.basis_seq),
            func.sum(case((al.kind == Kind.REVERSAL, 1), else_=0)).label("reversals"),
        ).join(ins, ins.id == al.installment_id)
        .where(al.installment_id.is_not(None), _settles_items()).group_by(al.installment_id).subquery()
    )
    query = select(
        ins.plan_id, ins.installment_no, ins.due_date, ins.amount_minor, ins.snapshot_paid_minor,
        ins.open_amount_minor, ins.excess_minor, func.coalesce(applied.c.applied, 0),
        func.coalesce(applied.c.pending, 0), func.coalesce(applied.c.reversals, 0),
    ).outerjoin(applied, applied.c.installment_id == ins.id)
    if not scope.everything:
        query = query.where(ins.invoice_number.in_(scope.invoices()))
    frame = repo.frame_of(session, query, {
        "plan_id": pl.String(), "no": pl.Int64(), "due_date": pl.Date(), "amount": pl.Int64(), "paid": pl.Int64(),
        "open": pl.Int64(), "excess": pl.Int64(), "applied": pl.Int64(), "pending": pl.Int64(),
        "reversals": pl.Int64(),
    }).sort("plan_id", "due_date", "no")
    found = []
    expected_open, expected_excess = clamp_open_expr(pl.col("amount") - pl.col("paid") - pl.col("pending"),
                                                     pl.lit(False))
    wrong = frame.filter((pl.col("open") != expected_open) | (pl.col("excess") != expected_excess))
    for r in wrong.iter_rows(named=True):
        found.append(Violation(
            "installment_open", f"plan {r['plan_id']} installment {r['no']}",
            f"open {r['open']} minor units (excess {r['excess']}), expected from amount {r['amount']} - paid "
            f"{r['paid']} - not yet imported {r['pending']}",
        ))
    # due order (core/allocation.py, the same rule the matcher and the queue follow)
    for r in order_violations(frame).iter_rows(named=True):
        found.append(Violation(
            "installment_order", f"plan {r['plan_id']} installment {r['no']}",
            "paid while an earlier installment of the plan (by due date) is still open",
        ))
    return found


def _attribution_violations(session: Session, invoices: pl.DataFrame, scope: Scope,
                            customers: list[str] | None) -> list[Violation]:
    """Rows on an invoice carry its customer and currency; a customer's statement of account ends at its
    open items less its credit on account (the figures balances shows)."""
    al, inv = tables.Allocation, tables.Invoice
    found = []
    settled_ccy = repo.settled_currency(al)
    owner_query = (
        select(al.id, al.invoice_number, al.customer_id, settled_ccy, inv.customer_id, inv.currency)
        .join(inv, inv.invoice_number == al.invoice_number)
        .where((al.customer_id != inv.customer_id) | (settled_ccy != inv.currency))
    )
    if not scope.everything:
        owner_query = owner_query.where(al.run_id == scope.run_id)
    wrong = session.execute(owner_query).all()
    for r in wrong[:1000]:
        found.append(Violation("allocation_owner", f"allocation {r[0]}",
                               f"on invoice {r[1]} of {r[4]} ({r[5]}), but booked for {r[2]} ({r[3]})"))
    # statement of account: issued + settled by the receivables system - reconcile's payments + excess
    paid_query = select(al.customer_id, settled_ccy, func.sum(repo.settled_amount(al))) \
        .where(al.invoice_number.is_not(None), _settles_items())
    if _walk_index(customers):
        paid_query = paid_query.where(al.customer_id.in_(scope.customers()))
    paid = _only(repo.frame_of(session, paid_query.group_by(al.customer_id, settled_ccy),
                               {"customer_id": pl.String(), "currency": pl.String(), "paid": pl.Int64()}), customers)
    keyed = ["customer_id", "currency"]
    per_customer = invoices.group_by(keyed).agg(
        pl.col("open").sum().alias("open"),
        # what the receivables system settled besides reconcile's imported postings, plus the issued amount
        (pl.col("snapshot_open") + (pl.col("applied") - pl.col("pending"))).sum().alias("erp_side"),
        pl.col("excess").sum().alias("excess"),
    ).join(paid, on=keyed, how="full", coalesce=True).fill_null(0).with_columns(
        (pl.col("erp_side") - pl.col("paid") + pl.col("excess")).alias("statement"))
    for c in per_customer.filter(pl.col("statement") != pl.col("open")).sort(keyed).iter_rows(named=True):
        found.append(Violation(
            "statement_of_account", f"customer {c['customer_id']} ({c['currency']})",
            f"statement of account ends at {_money(c['statement'], c['currency'])}, its open items at "
            f"{_money(c['open'], c['currency'])}"))
    return found


def _allocation_violations(session: Session, scope: Scope) -> list[Violation]:
    al, p = tables.Allocation, tables.Posting
    found = []
    mine = (al.run_id == scope.run_id) if not scope.everything else (al.id == al.id)
    rows = session.execute(
        select(al.id, al.kind, al.amount_minor, al.currency, al.reverses_id, al.invoice_number, al.customer_id)
        .where((al.kind.in_((Kind.INVOICE, Kind.INSTALLMENT, Kind.ON_ACCOUNT)) & (repo.settled_amount(al) == 0))
               | ((al.kind == Kind.FX) & al.invoice_number.is_not(None))
               | ((al.kind == Kind.INSTALLMENT) & (al.amount_minor < 0))
               | ((al.kind == "write_off") & (al.amount_minor >= 0))
               | ((al.kind == Kind.REVERSAL) & (al.reverses_id.is_(None)))
               | ((al.kind.in_(("invoice", "installment", "write_off"))) & al.invoice_number.is_(None)))
        .where(mine)
    ).all()
    for r in rows:
        found.append(Violation("allocation_shape", f"allocation {r.id}",
                               f"{r.kind} of {_money(r.amount_minor, r.currency)} "
                               f"(invoice {r.invoice_number}, reverses {r.reverses_id})"))
    # a reversal row negates exactly the row it reverses, and a row is reversed at most once
    original = al.__table__.alias("original")
    bad = session.execute(
        select(al.id, al.amount_minor, original.c.amount_minor)
        .join(original, original.c.id == al.reverses_id).where(mine)
        .where((al.amount_minor != -original.c.amount_minor)
               | (func.coalesce(al.settled_amount_minor, 0) != -func.coalesce(original.c.settled_amount_minor, 0))
               | (func.coalesce(al.invoice_number, "") != func.coalesce(original.c.invoice_number, "")))
    ).all()
    for r in bad:
        found.append(Violation("reversal_mismatch", f"allocation {r[0]}",
                               f"reverses a row of {r[2]} minor units with {r[1]}"))
    twice = session.execute(
        select(al.reverses_id, func.count()).where(al.reverses_id.is_not(None))
        .where(al.reverses_id.in_(select(al.reverses_id).where(mine)) if not scope.everything else mine)
        .group_by(al.reverses_id).having(func.count() > 1)
    ).all()
    for reversed_id, count in twice:
        found.append(Violation("reversed_twice", f"allocation {reversed_id}", f"reversed {count} times"))
    postings = select(p.id, p.bank_line_id).where(
        ~select(al.id).where(al.bank_line_id == p.bank_line_id, al.posting_id == p.id).exists())
    if not scope.everything:
        postings = postings.where(p.bank_line_id.in_(scope.lines()))
    empty = session.execute(postings).all()
    for posting_id, line_id in empty:
        found.append(Violation("orphan_posting", f"posting {posting_id}", f"of bank line {line_id} has no allocations"))
    return found


def _on_account_violations(session: Session, scope: Scope, customers: list[str] | None) -> list[Violation]:
    """Credit on account is applied to invoices (negative on_account rows) only as far as it exists."""
    al = tables.Allocation
    original = tables.Allocation.__table__.alias("credit_original")
    base = case((al.kind == Kind.REVERSAL, original.c.kind), else_=al.kind)
    rows = session.execute(
        select(al.customer_id, al.currency, func.sum(al.amount_minor))
        .outerjoin(original, original.c.id == al.reverses_id).where(base == Kind.ON_ACCOUNT)
        .where(al.customer_id.in_(scope.customers()) if _walk_index(customers) else base == Kind.ON_ACCOUNT)
        .group_by(al.customer_id, al.currency).having(func.sum(al.amount_minor) < 0)
    ).all()
    if customers is not None:
        wanted = set(customers)
        rows = [r for r in rows if r[0] in wanted]
    return [Violation("on_account_negative", f"customer {c} ({ccy})",
                      f"credit on account is {_money(total, ccy)}: more was applied than was kept")
            for c, ccy, total in rows]


def check_ledger(session: Session, scope: Scope | None = None) -> list[Violation]:
    """Every invariant violation in the ledger (or in what one run touched), or [] when it is consistent."""
    scope = scope or Scope()
    # the customers in scope, read once (None: every customer)
    customers = None if scope.everything else list(session.execute(scope.customers()).scalars().all())
    invoices = _invoice_frame(session, scope, customers)
    return [
        *_line_violations(_lines(session, scope)),
        *_invoice_violations(invoices),
        *_installment_violations(session, scope),
        *_allocation_violations(session, scope),
        *_attribution_violations(session, invoices, scope, customers),
        *_on_account_violations(session, scope, customers),
    ]
