"""Customer balances and aging as of a date, straight from the committed ledger.

Per customer and currency: open invoice amount split into aging buckets by
days past due, credit kept on account, unapplied cash still waiting in the
exception queue, the last payment, payment-plan status and a hold-calls
flag. Every figure is a SQL aggregate or a polars expression over one bulk
read per table, in integer minor units; nothing is cached. Formatting is
left to the CLI and the report.

"As of D" means the ledger at the end of business day D: the receivables
snapshot in effect on D (snapshots are kept, each with its business day),
reconcile's postings of business days up to D (a run's as-of date, the day a
person decided) that the snapshot did not include, queue items while they were
open on D; invoices issued after D do not exist yet. A past day therefore
gives the same figures every time; when nothing belongs to a later day the
stored state is read directly.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import polars as pl
from sqlalchemy import Engine, Select, case, func, select, text
from sqlalchemy.orm import Session

from reconcile.config import Config
from reconcile.core import frames
from reconcile.core.allocation import clamp_open_expr
from reconcile.core.codes import ItemStatus, Kind, Reason
from reconcile.core.evidence import evidence_of
from reconcile.store import db, repo, tables

PLAN_STATUSES = ("completed", "on track", "late", "broken")  # in order of concern


@dataclass(frozen=True)
class Collections:
    """The collectors' settings: [aging] buckets and the [collections] section of reconcile.toml."""

    edges: tuple[int, ...] = (0, 30, 60, 90)
    broken_after_days: int = 30  # an installment this many days overdue breaks its plan
    dso_period_days: int = 90
    top_overdue: int = 10

    @classmethod
    def from_config(cls, config: Config) -> Collections:
        return cls(
            edges=config.aging.buckets,
            broken_after_days=config.collections.plan_broken_after_days,
            dso_period_days=config.collections.dso_period_days,
            top_overdue=config.collections.top_overdue_customers,
        )


def bucket_labels(edges: Sequence[int]) -> list[str]:
    labels = ["current"]
    for low, high in itertools.pairwise(edges):
        labels.append(f"{low + 1}-{high}")
    labels.append(f"over_{edges[-1]}")
    return labels


# --- the ledger as of a date -------------------------------------------------


def cutoff(as_of: date) -> datetime:
    """The first instant after `as_of` (UTC): rows stamped before it belong to the as-of view."""
    return datetime.combine(as_of + timedelta(days=1), time(0), tzinfo=UTC)


def utc_naive(value: datetime | None) -> datetime | None:
    """SQLite hands back naive UTC, PostgreSQL aware datetimes in the session zone: one form for both."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


@contextmanager
def one_snapshot(engine: Engine) -> Iterator[Session]:
    """A read-only transaction whose reads all see one committed state of the ledger.

    A posting run committing between two reads must not show up in one figure and not the next:
    PostgreSQL reads at REPEATABLE READ, SQLite holds one read transaction (WAL) for all of them.
    """
    with db.transaction(engine) as session:
        if engine.dialect.name == "postgresql":
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        elif engine.dialect.name == "sqlite":
            session.execute(text("BEGIN"))  # the driver would otherwise read each SELECT on its own
        yield session


def read_frame(session: Session, query: Select, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """Rows of a select as a frame in `schema` (select order); datetimes as naive UTC on both databases."""
    if not any(isinstance(d, pl.Datetime) for d in schema.values()):
        return repo.frame_of(session, query, schema)  # its SQLite path takes the driver's rows straight
    rows = session.execute(query).all()
    if not rows:
        return frames.empty(schema)
    names = list(schema)
    columns: dict[str, Any] = dict(zip(names, zip(*rows)))  # one transpose in C, not a loop per column
    for name, dtype in schema.items():
        if isinstance(dtype, pl.Datetime):
            columns[name] = [utc_naive(v) for v in columns[name]]
    return pl.DataFrame(columns, schema=dict(schema), strict=False)


ORIGINAL = tables.Allocation.__table__.alias("reversed_original")


def base_kind() -> Any:
    """An allocation's kind, or for a reversal row the kind of the row it takes back (join ORIGINAL)."""
    al = tables.Allocation
    return case((al.kind == Kind.REVERSAL, ORIGINAL.c.kind), else_=al.kind)


def with_original(query: Select) -> Select:
    return query.outerjoin(ORIGINAL, ORIGINAL.c.id == tables.Allocation.reverses_id)


def _is_current(session: Session, as_of: date) -> bool:
    """True when nothing belongs to a day after `as_of`: the stored state is the state at its end."""
    al, snap, ex = tables.Allocation, tables.Snapshot, tables.ExceptionItem
    later = [
        select(func.max(al.business_date)), select(func.max(snap.business_date)),
        select(func.max(ex.opened_on)), select(func.max(ex.closed_on)),
    ]
    for query in later:
        day = session.execute(query).scalar()
        if day is not None and day > as_of:
            return False
    return True


ITEM_STATE = {
    "invoice_number": pl.String(), "customer_id": pl.String(), "issue_date": pl.Date(), "due_date": pl.Date(),
    "currency": pl.String(), "amount_minor": pl.Int64(), "snapshot_open": pl.Int64(), "erp_status": pl.String(),
    "open_minor": pl.Int64(), "excess_minor": pl.Int64(), "basis_seq": pl.Int64(),
}


def _known_by(session: Session, as_of: date) -> date:
    """The snapshots that speak for `as_of`: those of its day and before; for a day before the first snapshot,
    the first one (what the receivables system first told us of invoices issued by then)."""
    first = session.execute(select(func.min(tables.Snapshot.business_date))).scalar()
    return max(as_of, first) if first is not None else as_of


Who = str | Sequence[str] | None  # every customer, one, or a few (the customers a change touched)


def _of(column: Any, who: str | Sequence[str]) -> Any:
    """The condition: `column` is the customer asked for, or one of them."""
    return column == who if isinstance(who, str) else column.in_(list(who))


def _is(who: str | Sequence[str]) -> pl.Expr:
    return pl.col("customer_id") == who if isinstance(who, str) else pl.col("customer_id").is_in(list(who))


def _numbers_of(session: Session, customer: str | Sequence[str]) -> Any:
    """Every invoice ever listed for `customer` (an invoice can move between customers)."""
    iv = tables.InvoiceVersion
    return select(iv.invoice_number).where(_of(iv.customer_id, customer)).union(
        select(tables.Invoice.invoice_number).where(_of(tables.Invoice.customer_id, customer)))


def _settling_rows(session: Session, key: Any, as_of: date, keys: Any | None) -> pl.DataFrame:
    """Settling rows (invoice / installment rows and their reversals) of business days up to `as_of`."""
    al = tables.Allocation
    query = with_original(select(key, repo.settled_amount(al), al.batch_seq).select_from(al)).where(
        key.is_not(None), base_kind().in_((Kind.INVOICE, Kind.INSTALLMENT)), al.business_date <= as_of)
    if keys is not None:
        query = query.where(key.in_(keys))
    return read_frame(session, query, {"key": pl.String() if key is tables.Allocation.invoice_number else pl.Int64(),
                                       "amount": pl.Int64(), "batch_seq": pl.Int64()})


def _pending(rows: pl.DataFrame, versions: pl.DataFrame, key: str) -> pl.DataFrame:
    """Per item: its settling rows the version's snapshot did not include (a later batch, or none)."""
    joined = rows.join(versions.select(pl.col(key).alias("key"), "basis_seq"), on="key", how="inner")
    return joined.filter(pl.col("batch_seq").is_null() | (pl.col("batch_seq") > pl.col("basis_seq"))) \
        .group_by("key").agg(pl.col("amount").sum().alias("pending")).rename({"key": key})


def invoice_state(session: Session, as_of: date, customer: Who = None, *,
                  postings_through: date | None = None, current: bool | None = None) -> pl.DataFrame:
    """Every invoice and credit note issued by `as_of` as it stood at the end of that business day: the
    snapshot in effect then, less reconcile's postings of days up to then that it did not include.

    postings_through: count postings of business days up to this day instead (the book a run of `as_of`
    started from: that morning's snapshot, the postings of the days before).
    current: _is_current(session, as_of) when the caller has asked already.
    """
    inv = tables.Invoice
    query: Any
    if postings_through is None and (_is_current(session, as_of) if current is None else current):
        query = select(inv.invoice_number, inv.customer_id, inv.issue_date, inv.due_date, inv.currency,
                       inv.amount_minor, inv.snapshot_open_minor, inv.erp_status, inv.open_amount_minor,
                       inv.excess_minor, inv.basis_seq).where(inv.issue_date <= as_of)
        if customer is not None:
            query = query.where(_of(inv.customer_id, customer))
        return read_frame(session, query, ITEM_STATE)
    iv, snap = tables.InvoiceVersion, tables.Snapshot
    query = select(iv.invoice_number, iv.customer_id, iv.issue_date, iv.due_date, iv.currency, iv.amount_minor,
                   iv.snapshot_open_minor, iv.erp_status, iv.basis_seq, snap.business_date, iv.snapshot_id) \
        .join(snap, snap.id == iv.snapshot_id).where(snap.business_date <= _known_by(session, as_of))
    numbers = _numbers_of(session, customer) if customer is not None else None
    if numbers is not None:
        query = query.where(iv.invoice_number.in_(numbers))
    versions = read_frame(session, query, {
        "invoice_number": pl.String(), "customer_id": pl.String(), "issue_date": pl.Date(), "due_date": pl.Date(),
        "currency": pl.String(), "amount_minor": pl.Int64(), "snapshot_open": pl.Int64(), "erp_status": pl.String(),
        "basis_seq": pl.Int64(), "business_date": pl.Date(), "snapshot_id": pl.Int64(),
    }).sort("invoice_number", "business_date", "snapshot_id").group_by("invoice_number", maintain_order=True).last()
    if customer is not None:
        versions = versions.filter(_is(customer))
    versions = versions.filter(pl.col("issue_date") <= as_of)
    rows = _settling_rows(session, tables.Allocation.invoice_number, postings_through or as_of, numbers)
    state = versions.join(_pending(rows, versions, "invoice_number"), on="invoice_number", how="left")
    open_, excess = clamp_open_expr(pl.col("snapshot_open") - pl.col("pending").fill_null(0),
                                    pl.col("amount_minor") < 0)
    return state.with_columns(open_.alias("open_minor"), excess.alias("excess_minor")).select(list(ITEM_STATE))


def open_invoices(session: Session, as_of: date, customer: Who = None, *,
                  state: pl.DataFrame | None = None) -> pl.DataFrame:
    """Open items for aging at the end of `as_of`: invoices (> 0) and credit notes (< 0).
    state: invoice_state(session, as_of, customer) when the caller has it already."""
    state = invoice_state(session, as_of, customer) if state is None else state
    return state.filter(pl.col("open_minor") != 0).select("customer_id", "currency", "due_date", "open_minor")


def installments(session: Session, as_of: date, customer: Who = None, *, postings_through: date | None = None,
                 state: pl.DataFrame | None = None, current: bool | None = None) -> pl.DataFrame:
    """Every installment of invoices issued by `as_of`, with its open amount at the end of that day
    (postings_through: as in invoice_state; state: that invoice_state when the caller has it already)."""
    ins, inv = tables.Installment, tables.Invoice
    schema = {"plan_id": pl.String(), "installment_no": pl.Int64(), "invoice_number": pl.String(),
              "customer_id": pl.String(), "currency": pl.String(), "due_date": pl.Date(),
              "amount_minor": pl.Int64(), "open_minor": pl.Int64()}
    query: Any
    if postings_through is None and (_is_current(session, as_of) if current is None else current):
        query = (select(ins.plan_id, ins.installment_no, ins.invoice_number, inv.customer_id, inv.currency,
                        ins.due_date, ins.amount_minor, ins.open_amount_minor)
                 .join(inv, inv.invoice_number == ins.invoice_number).where(inv.issue_date <= as_of))
        if customer is not None:
            query = query.where(_of(inv.customer_id, customer))
        return read_frame(session, query, schema)
    if state is None:
        state = invoice_state(session, as_of, customer, postings_through=postings_through)
    heads = state.select("invoice_number", "customer_id", "currency")
    if heads.height == 0:
        return frames.empty(schema)
    sv, snap = tables.InstallmentVersion, tables.Snapshot
    query = select(sv.plan_id, sv.installment_no, sv.invoice_number, sv.due_date, sv.amount_minor,
                   sv.snapshot_paid_minor, sv.basis_seq, snap.business_date, sv.snapshot_id) \
        .join(snap, snap.id == sv.snapshot_id).where(snap.business_date <= _known_by(session, as_of))
    if customer is not None:
        query = query.where(sv.invoice_number.in_(_numbers_of(session, customer)))
    versions = read_frame(session, query, {
        "plan_id": pl.String(), "installment_no": pl.Int64(), "invoice_number": pl.String(), "due_date": pl.Date(),
        "amount_minor": pl.Int64(), "paid": pl.Int64(), "basis_seq": pl.Int64(), "business_date": pl.Date(),
        "snapshot_id": pl.Int64(),
    }).sort("plan_id", "installment_no", "business_date", "snapshot_id") \
        .group_by("plan_id", "installment_no", maintain_order=True).last()
    ids = read_frame(session, select(ins.id, ins.plan_id, ins.installment_no),
                     {"installment_id": pl.Int64(), "plan_id": pl.String(), "installment_no": pl.Int64()})
    versions = versions.join(ids, on=["plan_id", "installment_no"], how="left")
    rows = _settling_rows(session, tables.Allocation.installment_id, postings_through or as_of, None)
    state = versions.join(_pending(rows, versions, "installment_id"), on="installment_id", how="left")
    open_, _ = clamp_open_expr(pl.col("amount_minor") - pl.col("paid") - pl.col("pending").fill_null(0), pl.lit(False))
    return (state.with_columns(open_.alias("open_minor")).join(heads, on="invoice_number", how="inner")
            .select(list(schema)))


def credit_on_account(session: Session, as_of: date, customer: Who = None) -> pl.DataFrame:
    """Per customer and currency: on-account rows net of their reversals and of credit applied, by `as_of`."""
    al = tables.Allocation
    query = with_original(
        select(al.customer_id, al.currency, func.sum(al.amount_minor)).select_from(al)
    ).where(al.business_date <= as_of, base_kind() == Kind.ON_ACCOUNT).group_by(al.customer_id, al.currency)
    if customer is not None:
        query = query.where(_of(al.customer_id, customer))
    frame = read_frame(session, query, {"customer_id": pl.String(), "currency": pl.String(), "on_account": pl.Int64()})
    return frame.filter(pl.col("on_account") != 0)


def queue_open_on(as_of: date) -> Any:
    """Exception items that were open at the end of business day `as_of`."""
    ex = tables.ExceptionItem
    return (ex.opened_on <= as_of) & (((ex.status == ItemStatus.OPEN) & ex.closed_on.is_(None))
                                      | (ex.closed_on > as_of))


def pending_cash(session: Session, as_of: date, customer: Who = None) -> pl.DataFrame:
    """Per guessed customer and currency: unapplied credits in the queue, and the count of open items.

    A closed_elsewhere item counts what its posting takes beyond what the receivables system left open:
    money that is nobody's until a person decides."""
    ex, bl = tables.ExceptionItem, tables.BankLine
    query = (
        select(ex.customer_id, bl.currency,
               func.sum(case(((bl.amount_minor > 0) & (ex.reason != Reason.CLOSED_ELSEWHERE), bl.amount_minor),
                             else_=0)),
               func.count())
        .join(bl, bl.id == ex.bank_line_id)
        .where(queue_open_on(as_of), ex.customer_id.is_not(None))
        .group_by(ex.customer_id, bl.currency)
    )
    if customer is not None:
        query = query.where(_of(ex.customer_id, customer))
    frame = read_frame(session, query, {
        "customer_id": pl.String(), "currency": pl.String(), "pending_application": pl.Int64(),
        "open_exceptions": pl.Int64(),
    })
    overtaken = select(ex.customer_id, ex.evidence).where(queue_open_on(as_of), ex.reason == Reason.CLOSED_ELSEWHERE)
    if customer is not None:
        overtaken = overtaken.where(_of(ex.customer_id, customer))
    extra: dict[tuple[str | None, str], int] = {}
    for who, evidence in session.execute(overtaken).all():
        for item in evidence_of(evidence).get("closed_elsewhere", []):
            key = (who, item["currency"])
            extra[key] = extra.get(key, 0) + min(item["excess_minor"], item["posted_not_included_minor"])
    if extra:
        more = pl.DataFrame([(c, ccy, amount) for (c, ccy), amount in extra.items()],
                            schema={"customer_id": pl.String(), "currency": pl.String(), "overtaken": pl.Int64()},
                            orient="row")
        frame = frame.join(more, on=["customer_id", "currency"], how="full", coalesce=True).with_columns(
            (pl.col("pending_application").fill_null(0) + pl.col("overtaken").fill_null(0))
            .alias("pending_application"),
            pl.col("open_exceptions").fill_null(0),
        ).drop("overtaken")
    return frame


def last_payments(session: Session, as_of: date, customer: Who = None) -> pl.DataFrame:
    """Per customer and currency: the latest booking date that brought cash, and all cash booked that day.

    A payment is the net of one bank line's allocation rows for the customer (reversals included, so a
    payment taken back no longer counts), posted by `as_of`.
    """
    al, bl = tables.Allocation, tables.BankLine
    amount = func.sum(al.amount_minor)
    paid = (
        select(al.customer_id, al.currency, bl.booking_date, amount.label("amount"))
        .join(bl, bl.id == al.bank_line_id)
        .where(al.business_date <= as_of, al.customer_id.is_not(None), bl.booking_date <= as_of)
        .group_by(al.customer_id, al.currency, al.bank_line_id, bl.booking_date)
        .having(amount > 0)
    )
    if customer is not None:
        paid = paid.where(_of(al.customer_id, customer))
    paid_cte = paid.cte("paid")
    latest = (
        select(paid_cte.c.customer_id, paid_cte.c.currency, func.max(paid_cte.c.booking_date).label("day"))
        .group_by(paid_cte.c.customer_id, paid_cte.c.currency).cte("latest")
    )
    query = (
        select(paid_cte.c.customer_id, paid_cte.c.currency, latest.c.day, func.sum(paid_cte.c.amount))
        .join(latest, (latest.c.customer_id == paid_cte.c.customer_id) & (latest.c.currency == paid_cte.c.currency)
              & (latest.c.day == paid_cte.c.booking_date))
        .group_by(paid_cte.c.customer_id, paid_cte.c.currency, latest.c.day)
    )
    return read_frame(session, query, {
        "customer_id": pl.String(), "currency": pl.String(), "last_payment_date": pl.Date(),
        "last_payment": pl.Int64(),
    })


# --- pure frame work -----------------------------------------------------------


def days_past_due(as_of: date) -> pl.Expr:
    return (pl.lit(as_of) - pl.col("due_date")).dt.total_days()


def bucket_expr(as_of: date, edges: Sequence[int]) -> pl.Expr:
    labels = bucket_labels(edges)
    days = days_past_due(as_of)
    bucket: Any = pl.when(days <= edges[0]).then(pl.lit(labels[0]))
    for low, high, label in zip(edges, edges[1:], labels[1:]):
        bucket = bucket.when((days > low) & (days <= high)).then(pl.lit(label))
    return bucket.otherwise(pl.lit(labels[-1]))


def aging(invoices: pl.DataFrame, as_of: date, edges: Sequence[int]) -> pl.DataFrame:
    """Open minor units per customer, currency and bucket (one column per bucket), plus open and overdue."""
    labels = bucket_labels(edges)
    days = days_past_due(as_of)
    return invoices.group_by("customer_id", "currency").agg(
        *[pl.col("open_minor").filter(bucket_expr(as_of, edges) == label).sum().alias(label) for label in labels],
        pl.col("open_minor").sum().alias("open"),
        pl.col("open_minor").filter(days > edges[0]).sum().alias("overdue"),
    )


def plan_status(schedule: pl.DataFrame, as_of: date, broken_after_days: int) -> pl.DataFrame:
    """Per plan: completed / on track / late / broken, with the first missed installment.

    An installment is missed when it is past its due date with something open;
    the plan is broken when one is missed by more than `broken_after_days`.
    """
    late = days_past_due(as_of)
    missed = (pl.col("open_minor") > 0) & (late > 0)
    per_plan = (
        schedule.sort("plan_id", "installment_no")
        .with_columns(late.alias("days_late"), missed.alias("missed"))
        .group_by("plan_id", "customer_id", "currency")
        .agg(
            pl.col("open_minor").sum().alias("plan_open"),
            pl.col("days_late").filter(pl.col("missed")).max().fill_null(0).alias("worst_days"),
            pl.col("installment_no").filter(pl.col("missed")).first().alias("missed_no"),
            pl.col("due_date").filter(pl.col("missed")).first().alias("missed_due"),
            pl.col("open_minor").filter(pl.col("missed")).first().alias("missed_open"),
            pl.col("days_late").filter(pl.col("missed")).first().alias("missed_days"),
        )
    )
    status = (
        pl.when(pl.col("worst_days") > broken_after_days).then(pl.lit("broken"))
        .when(pl.col("worst_days") > 0).then(pl.lit("late"))
        .when(pl.col("plan_open") == 0).then(pl.lit("completed"))
        .otherwise(pl.lit("on track"))
    )
    return per_plan.with_columns(status.alias("plan_status")).with_columns(
        pl.col("plan_status").replace_strict(list(PLAN_STATUSES), list(range(len(PLAN_STATUSES))),
                                             return_dtype=pl.Int64).alias("concern")
    )


def plans_per_customer(plans: pl.DataFrame) -> pl.DataFrame:
    """The most worrying plan of each customer and currency, with its missed installment as text."""
    from reconcile.services.exports import decimal_text  # the one formatter of minor units

    missed_text = pl.concat_str([
        pl.col("plan_id"), pl.lit(" #"), pl.col("missed_no").cast(pl.String), pl.lit(" due "),
        pl.col("missed_due").cast(pl.String), pl.lit(", "), decimal_text(pl.col("missed_open"), pl.col("currency")),
        pl.lit(" open, "), pl.col("missed_days").cast(pl.String), pl.lit(" days late"),
    ])
    return (
        plans.with_columns(missed_text.alias("plan_missed"))
        .sort(["concern", "worst_days", "plan_id"], descending=[True, True, False])
        .group_by("customer_id", "currency", maintain_order=True)
        .first()
        .select("customer_id", "currency", "plan_status", "plan_missed")
    )


def balances(
    engine: Engine, as_of: date, edges: Sequence[int] | None = None, *, customer: Who = None,
    broken_after_days: int = Collections.broken_after_days,
) -> pl.DataFrame:
    """One row per (customer, currency) with open, aging, credit, unapplied cash or open queue items.

    Amounts are Int64 minor units; aging columns are named by bucket_labels(edges).
    """
    with one_snapshot(engine) as session:
        return balances_in(session, as_of, edges, customer=customer, broken_after_days=broken_after_days)


def balances_in(
    session: Session, as_of: date, edges: Sequence[int] | None = None, *, customer: Who = None,
    broken_after_days: int = Collections.broken_after_days, pending: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """balances() read in the caller's session (one_snapshot); pending: pending_cash(session, as_of) when the
    caller has read it for every customer already."""
    edges = list(edges or Collections.edges)
    labels = bucket_labels(edges)
    current = _is_current(session, as_of)
    state = invoice_state(session, as_of, customer, current=current)  # read once: open items, the plans' invoices
    invoices = open_invoices(session, as_of, customer, state=state)
    schedule = installments(session, as_of, customer, state=state, current=current)
    credit = credit_on_account(session, as_of, customer)
    if pending is None:
        pending = pending_cash(session, as_of, customer)
    elif customer is not None:
        pending = pending.filter(_is(customer))
    paid = last_payments(session, as_of, customer)
    names = repo.customers(session) if customer is None else repo.frame_of(
        session, select(tables.Customer.customer_id, tables.Customer.name).where(_of(tables.Customer.customer_id,
                                                                                     customer)), frames.CUSTOMERS)
    return assemble(invoices, schedule, credit, pending, paid, names, as_of, edges, broken_after_days).select(
        "customer_id", "name", "currency", "open", *labels, "overdue", "on_account", "pending_application",
        "open_exceptions", "last_payment_date", "last_payment", "plan_status", "plan_missed", "hold_calls",
    )


def assemble(
    invoices: pl.DataFrame, schedule: pl.DataFrame, credit: pl.DataFrame, pending: pl.DataFrame,
    paid: pl.DataFrame, names: pl.DataFrame, as_of: date, edges: Sequence[int], broken_after_days: int,
) -> pl.DataFrame:
    labels = bucket_labels(edges)
    keyed = ["customer_id", "currency"]
    aged = aging(invoices, as_of, edges)
    keys = pl.concat([aged.select(keyed), credit.select(keyed), pending.select(keyed)]).unique()
    plans = plans_per_customer(plan_status(schedule, as_of, broken_after_days))
    hold = pending.group_by("customer_id").agg(
        ((pl.col("pending_application").sum() > 0) | (pl.col("open_exceptions").sum() > 0)).alias("hold_calls")
    )
    money = ["open", *labels, "overdue", "on_account", "pending_application", "open_exceptions"]
    return (
        keys.join(names, on="customer_id", how="left")
        .join(aged, on=keyed, how="left")
        .join(credit, on=keyed, how="left")
        .join(pending, on=keyed, how="left")
        .join(paid, on=keyed, how="left")
        .join(plans, on=keyed, how="left")
        .join(hold, on="customer_id", how="left")
        .with_columns(pl.col(money).fill_null(0).cast(pl.Int64), pl.col("hold_calls").fill_null(False))
        .sort(keyed)
    )
