"""Customer balances and aging as of a date, straight from the committed ledger.

Per customer and currency: open invoice amount split into aging buckets by
days past due, credit kept on account, and unapplied cash still waiting in
the exception queue. Pure frame work over one bulk read; no caching.
"""

from __future__ import annotations

from datetime import date

import polars as pl
from sqlalchemy import Engine, select

from reconcile import db, repo, tables


def bucket_labels(edges: list[int]) -> list[str]:
    labels = ["current"]
    for low, high in zip(edges, edges[1:]):
        labels.append(f"{low + 1}-{high}")
    labels.append(f"over_{edges[-1]}")
    return labels


def balances(engine: Engine, as_of: date, edges: list[int] | None = None) -> pl.DataFrame:
    """One row per (customer, currency), amounts in minor units, aging columns named by bucket."""
    edges = edges or [0, 30, 60, 90]
    labels = bucket_labels(edges)
    inv, a, ex, bl = tables.Invoice, tables.Allocation, tables.ExceptionItem, tables.BankLine
    with db.transaction(engine) as session:
        invoices = repo.frame_of(
            session,
            select(inv.customer_id, inv.currency, inv.due_date, inv.open_amount_minor).where(inv.open_amount_minor > 0),
            {"customer_id": pl.String(), "currency": pl.String(), "due_date": pl.Date(), "open_minor": pl.Int64()},
        )
        credit = repo.frame_of(
            session,
            select(a.customer_id, a.currency, a.amount_minor).where(a.kind == "on_account"),
            {"customer_id": pl.String(), "currency": pl.String(), "amount_minor": pl.Int64()},
        )
        pending = repo.frame_of(
            session,
            select(ex.customer_id, bl.currency, bl.amount_minor)
            .join(bl, bl.id == ex.bank_line_id)
            .where(ex.status == "open", bl.amount_minor > 0),
            {"customer_id": pl.String(), "currency": pl.String(), "amount_minor": pl.Int64()},
        )
        names = repo.customers(session)

    days = (pl.lit(as_of) - pl.col("due_date")).dt.total_days()
    bucket = pl.when(days <= edges[0]).then(pl.lit(labels[0]))
    for low, high, label in zip(edges, edges[1:], labels[1:]):
        bucket = bucket.when((days > low) & (days <= high)).then(pl.lit(label))
    bucket = bucket.otherwise(pl.lit(labels[-1]))
    aged = (
        invoices.with_columns(bucket.alias("bucket"))
        .pivot(on="bucket", index=["customer_id", "currency"], values="open_minor", aggregate_function="sum")
    )
    for label in labels:
        if label not in aged.columns:
            aged = aged.with_columns(pl.lit(0, dtype=pl.Int64).alias(label))
    aged = aged.with_columns([pl.col(label).fill_null(0) for label in labels]).with_columns(
        pl.sum_horizontal(labels).alias("open")
    )
    credit_sum = credit.group_by("customer_id", "currency").agg(pl.col("amount_minor").sum().alias("on_account"))
    pending_sum = (
        pending.filter(pl.col("customer_id").is_not_null())
        .group_by("customer_id", "currency").agg(pl.col("amount_minor").sum().alias("pending_application"))
    )
    keys = pl.concat([
        aged.select("customer_id", "currency"),
        credit_sum.select("customer_id", "currency"),
        pending_sum.select("customer_id", "currency"),
    ]).unique()
    return (
        keys.join(names, on="customer_id", how="left")
        .join(aged, on=["customer_id", "currency"], how="left")
        .join(credit_sum, on=["customer_id", "currency"], how="left")
        .join(pending_sum, on=["customer_id", "currency"], how="left")
        .with_columns(pl.col(["open", *labels, "on_account", "pending_application"]).fill_null(0))
        .with_columns(((pl.col("pending_application") > 0)).alias("hold_calls"))
        .select("customer_id", "name", "currency", "open", *labels, "on_account", "pending_application", "hold_calls")
        .sort("customer_id", "currency")
    )
