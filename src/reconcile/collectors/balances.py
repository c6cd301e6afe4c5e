"""Customer balances and aging as of a date, straight from the committed ledger.

Per customer and currency: open invoice amount split into aging buckets by
days past due, credit kept on account, unapplied cash still waiting in the
exception queue, the last payment, payment-plan status and a hold-calls
flag. Every figure is a SQL aggregate or a polars expression over one bulk
read per table, in integer minor units; nothing is cached. Formatting is
left to the CLI and the report.

"As of D" means the ledger as it stood at the end of D (UTC): allocations
posted after D are added back to the open amounts, queue items count while
they were open on D, and invoices issued after D do not exist yet. For D =
today that is exactly the committed state.
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
    return case((al.kind == "reversal", ORIGINAL.c.kind), else_=al.kind)


def with_original(query: Select) -> Select:
    return query.outerjoin(ORIGINAL, ORIGINAL.c.id == tables.Allocation.reverses_id)


def _settled_after(as_of: date, key: Any) -> Any:
    """Net amount that allocations posted after `as_of` took off each invoice / installment (subquery)."""
    al = tables.Allocation
    return with_original(
        select(key.label("key"), func.sum(al.amount_minor).label("net")).select_from(al)
    ).where(
        al.posted_at >= cutoff(as_of), key.is_not(None), base_kind().in_(("invoice", "installment"))
    ).group_by(key).subquery()


def open_invoices(session: Session, as_of: date, customer: str | None = None) -> pl.DataFrame:
    """Open items for aging: invoices issued by `as_of` with their open amount at the end of that day (> 0)."""
    inv = tables.Invoice
    after = _settled_after(as_of, tables.Allocation.invoice_number)
    open_then = inv.open_amount_minor + func.coalesce(after.c.net, 0)
    query = (
        select(inv.customer_id, inv.currency, inv.due_date, open_then)
        .outerjoin(after, after.c.key == inv.invoice_number)
        .where(inv.issue_date <= as_of, open_then > 0)
    )
    if customer is not None:
        query = query.where(inv.customer_id == customer)
    return read_frame(session, query, {
        "customer_id": pl.String(), "currency": pl.String(), "due_date": pl.Date(), "open_minor": pl.Int64(),
    })


def installments(session: Session, as_of: date, customer: str | None = None) -> pl.DataFrame:
    """Every installment of invoices issued by `as_of`, with its open amount at the end of that day."""
    ins, inv = tables.Installment, tables.Invoice
    after = _settled_after(as_of, tables.Allocation.installment_id)
    query = (
        select(ins.plan_id, ins.installment_no, ins.invoice_number, inv.customer_id, inv.currency, ins.due_date,
               ins.amount_minor, ins.open_amount_minor + func.coalesce(after.c.net, 0))
        .join(inv, inv.invoice_number == ins.invoice_number)
        .outerjoin(after, after.c.key == ins.id)
        .where(inv.issue_date <= as_of)
    )
    if customer is not None:
        query = query.where(inv.customer_id == customer)
    return read_frame(session, query, {
        "plan_id": pl.String(), "installment_no": pl.Int64(), "invoice_number": pl.String(),
        "customer_id": pl.String(), "currency": pl.String(), "due_date": pl.Date(),
        "amount_minor": pl.Int64(), "open_minor": pl.Int64(),
    })


def credit_on_account(session: Session, as_of: date, customer: str | None = None) -> pl.DataFrame:
    """Per customer and currency: on-account rows net of their reversals, posted by `as_of`."""
    al = tables.Allocation
    query = with_original(
        select(al.customer_id, al.currency, func.sum(al.amount_minor)).select_from(al)
    ).where(al.posted_at < cutoff(as_of), base_kind() == "on_account").group_by(al.customer_id, al.currency)
    if customer is not None:
        query = query.where(al.customer_id == customer)
    frame = read_frame(session, query, {"customer_id": pl.String(), "currency": pl.String(), "on_account": pl.Int64()})
    return frame.filter(pl.col("on_account") != 0)


def queue_open_on(as_of: date) -> Any:
    """Exception items that were open at the end of `as_of`."""
    ex = tables.ExceptionItem
    cut = cutoff(as_of)
    return (ex.created_at < cut) & (
        ((ex.status == "open") & ex.resolved_at.is_(None)) | (ex.resolved_at >= cut)
    )


def pending_cash(session: Session, as_of: date, customer: str | None = None) -> pl.DataFrame:
    """Per guessed customer and currency: unapplied credits in the queue, and the count of open items."""
    ex, bl = tables.ExceptionItem, tables.BankLine
    query = (
        select(ex.customer_id, bl.currency,
               func.sum(case((bl.amount_minor > 0, bl.amount_minor), else_=0)), func.count())
        .join(bl, bl.id == ex.bank_line_id)
        .where(queue_open_on(as_of), ex.customer_id.is_not(None))
        .group_by(ex.customer_id, bl.currency)
    )
    if customer is not None:
        query = query.where(ex.customer_id == customer)
    return read_frame(session, query, {
        "customer_id": pl.String(), "currency": pl.String(), "pending_application": pl.Int64(),
        "open_exceptions": pl.Int64(),
    })


def last_payments(session: Session, as_of: date, customer: str | None = None) -> pl.DataFrame:
    """Per customer and currency: the latest booking date that brought cash, and all cash booked that day.

    A payment is the net of one bank line's allocation rows for the customer (reversals included, so a
    payment taken back no longer counts), posted by `as_of`.
    """
    al, bl = tables.Allocation, tables.BankLine
    amount = func.sum(al.amount_minor)
    paid = (
        select(al.customer_id, al.currency, bl.booking_date, amount.label("amount"))
        .join(bl, bl.id == al.bank_line_id)
        .where(al.posted_at < cutoff(as_of), al.customer_id.is_not(None), bl.booking_date <= as_of)
        .group_by(al.customer_id, al.currency, al.bank_line_id, bl.booking_date)
        .having(amount > 0)
    )
    if customer is not None:
        paid = paid.where(al.customer_id == customer)
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
    bucket = pl.when(days <= edges[0]).then(pl.lit(labels[0]))
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
    engine: Engine, as_of: date, edges: Sequence[int] | None = None, *, customer: str | None = None,
    broken_after_days: int = Collections.broken_after_days,
) -> pl.DataFrame:
    """One row per (customer, currency) with open, aging, credit, unapplied cash or open queue items.

    Amounts are Int64 minor units; aging columns are named by bucket_labels(edges).
    """
    edges = list(edges or Collections.edges)
    labels = bucket_labels(edges)
    with one_snapshot(engine) as session:
        invoices = open_invoices(session, as_of, customer)
        schedule = installments(session, as_of, customer)
        credit = credit_on_account(session, as_of, customer)
        pending = pending_cash(session, as_of, customer)
        paid = last_payments(session, as_of, customer)
        names = repo.customers(session)
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
