"""One customer's statement of account as of a date: every entry that moved the balance, in order.

Entries: invoices issued, what the receivables system had settled before
this ledger (snapshot), payments posted (one entry per posting, with its
split), write-offs and reversals. Amounts are signed from the customer's
side (+ owed, - paid); the running balance per currency ends at open minus
credit on account, the figures `balances` shows. Installments are listed as
a schedule beside it: they divide an invoice, they do not add to it.
Reads in bulk and formats nothing; the CLI prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl
from sqlalchemy import Engine, func, select

from reconcile.collectors.balances import (
    ORIGINAL,
    Collections,
    balances,
    base_kind,
    cutoff,
    days_past_due,
    installments,
    one_snapshot,
    read_frame,
    with_original,
)
from reconcile.core.errors import NotFoundError
from reconcile.services.exports import decimal_text
from reconcile.store import tables

ENTRY_ORDER = {"invoice": 0, "settled_before_ledger": 1, "payment": 2, "write_off": 3, "reversal": 4,
               "write_off_reversed": 5}
ENTRIES = {
    "date": pl.Date(), "kind": pl.String(), "reference": pl.String(), "description": pl.String(),
    "currency": pl.String(), "amount_minor": pl.Int64(),
}


@dataclass(frozen=True)
class StatementOfAccount:
    customer_id: str
    name: str
    as_of: date
    entries: pl.DataFrame       # ENTRIES + balance_minor (running, per currency)
    schedule: pl.DataFrame      # installments with open amount and state as of the date
    totals: pl.DataFrame        # the customer's balances rows (balances.balances)


def _invoice_entries(invoices: pl.DataFrame) -> pl.DataFrame:
    issued = invoices.select(
        pl.col("issue_date").alias("date"), pl.lit("invoice").alias("kind"),
        pl.col("invoice_number").alias("reference"),
        pl.concat_str([pl.lit("invoice, due "), pl.col("due_date").cast(pl.String)]).alias("description"),
        "currency", pl.col("amount_minor"),
    )
    before = invoices.filter(pl.col("snapshot_open_minor") != pl.col("amount_minor")).select(
        pl.col("issue_date").alias("date"), pl.lit("settled_before_ledger").alias("kind"),
        pl.col("invoice_number").alias("reference"),
        pl.lit("settled in the receivables system before this ledger (snapshot)").alias("description"),
        "currency", (pl.col("snapshot_open_minor") - pl.col("amount_minor")).alias("amount_minor"),
    )
    return pl.concat([issued, before])


def _part_text() -> pl.Expr:
    amount = decimal_text(pl.col("amount_minor").abs(), pl.col("currency"))
    kind = pl.col("base_kind")
    return (
        pl.when(kind == "on_account").then(pl.concat_str([pl.lit("on account "), amount]))
        .when(kind == "write_off").then(pl.concat_str([pl.lit("written off "), amount, pl.lit(" on "),
                                                       pl.col("invoice_number")]))
        .when(kind == "installment").then(pl.concat_str([
            pl.col("invoice_number"), pl.lit(" #"), pl.col("installment_no").cast(pl.String), pl.lit(" "), amount]))
        .otherwise(pl.concat_str([pl.col("invoice_number"), pl.lit(" "), amount]))
    )


def _ledger_entries(rows: pl.DataFrame) -> pl.DataFrame:
    """Payments and reversals (one entry per posting and direction) and write-offs (one per row)."""
    if rows.height == 0:
        return pl.DataFrame(schema=ENTRIES)
    rows = rows.with_columns(
        (pl.col("kind") == "reversal").alias("reversed"),
        pl.when(pl.col("kind") == "reversal").then(pl.col("posted_at").dt.date())
        .otherwise(pl.col("booking_date")).alias("date"),
        _part_text().alias("part"),
    )
    moves = rows.group_by("posting_id", "reversed", "date", "source_ref", "currency").agg(
        (-pl.col("amount_minor").sum()).alias("amount_minor"),
        pl.col("part").sort_by("id").str.join("; ").alias("parts"),
        pl.col("reason").drop_nulls().first().alias("why"),
        pl.col("id").min().alias("first_id"),
    ).sort("first_id")
    moves = moves.select(
        "date",
        pl.when(pl.col("reversed")).then(pl.lit("reversal")).otherwise(pl.lit("payment")).alias("kind"),
        pl.col("source_ref").alias("reference"),
        pl.when(pl.col("reversed")).then(pl.concat_str([
            pl.lit("reversed ("), pl.col("why").fill_null("no reason given"), pl.lit("): "), pl.col("parts")]))
        .otherwise(pl.concat_str([pl.lit("received, applied: "), pl.col("parts")])).alias("description"),
        "currency", "amount_minor",
    )
    write_offs = rows.filter(pl.col("base_kind") == "write_off").sort("id").select(
        "date",
        pl.when(pl.col("reversed")).then(pl.lit("write_off_reversed")).otherwise(pl.lit("write_off")).alias("kind"),
        pl.col("invoice_number").alias("reference"),
        pl.concat_str([pl.lit("written off ("), pl.col("original_reason").fill_null("-"), pl.lit(")")]).alias("description"),
        "currency", "amount_minor",
    )
    return pl.concat([moves, write_offs])


def running_balance(entries: pl.DataFrame) -> pl.DataFrame:
    """Entries in date order (invoices before the payments of the same day) with a balance per currency."""
    return (
        entries.with_columns(pl.col("kind").replace_strict(ENTRY_ORDER, return_dtype=pl.Int64).alias("order"))
        .with_row_index("seq")
        .sort("date", "order", "seq")
        .with_columns(pl.col("amount_minor").cum_sum().over("currency").alias("balance_minor"))
        .drop("order", "seq")
    )


def statement_of_account(engine: Engine, customer_id: str, as_of: date,
                         collections: Collections | None = None) -> StatementOfAccount:
    collections = collections or Collections()
    inv, al, bl, cu = tables.Invoice, tables.Allocation, tables.BankLine, tables.Customer
    with one_snapshot(engine) as session:
        name = session.execute(select(cu.name).where(cu.customer_id == customer_id)).scalar_one_or_none()
        if name is None:
            raise NotFoundError(f"customer {customer_id!r} is not in the receivables snapshot")
        invoices = read_frame(session, select(
            inv.invoice_number, inv.issue_date, inv.due_date, inv.currency, inv.amount_minor, inv.snapshot_open_minor,
        ).where(inv.customer_id == customer_id, inv.issue_date <= as_of), {
            "invoice_number": pl.String(), "issue_date": pl.Date(), "due_date": pl.Date(), "currency": pl.String(),
            "amount_minor": pl.Int64(), "snapshot_open_minor": pl.Int64(),
        })
        rows = read_frame(session, with_original(select(
            al.id, al.posting_id, al.kind, base_kind(), al.invoice_number, al.installment_no, al.amount_minor,
            al.currency, al.reason, func.coalesce(al.reason, ORIGINAL.c.reason), al.posted_at, bl.booking_date,
            bl.source_ref,
        ).select_from(al).join(bl, bl.id == al.bank_line_id)).where(
            al.customer_id == customer_id, al.posted_at < cutoff(as_of),
        ), {
            "id": pl.Int64(), "posting_id": pl.Int64(), "kind": pl.String(), "base_kind": pl.String(),
            "invoice_number": pl.String(), "installment_no": pl.Int64(), "amount_minor": pl.Int64(),
            "currency": pl.String(), "reason": pl.String(), "original_reason": pl.String(),
            "posted_at": pl.Datetime("us"), "booking_date": pl.Date(), "source_ref": pl.String(),
        })
        schedule = installments(session, as_of, customer_id)
    entries = running_balance(pl.concat([
        _invoice_entries(invoices).cast(ENTRIES),  # type: ignore[arg-type]
        _ledger_entries(rows).cast(ENTRIES),  # type: ignore[arg-type]
    ]))
    late = days_past_due(as_of)
    schedule = schedule.sort("plan_id", "installment_no").with_columns(
        pl.when(pl.col("open_minor") == 0).then(pl.lit("paid"))
        .when(late > collections.broken_after_days).then(pl.concat_str([pl.lit("missed, "), late.cast(pl.String),
                                                                        pl.lit(" days (plan broken)")]))
        .when(late > 0).then(pl.concat_str([pl.lit("late, "), late.cast(pl.String), pl.lit(" days")]))
        .otherwise(pl.lit("due")).alias("state")
    ).drop("customer_id")
    totals = balances(engine, as_of, collections.edges, customer=customer_id,
                      broken_after_days=collections.broken_after_days)
    return StatementOfAccount(customer_id, name, as_of, entries, schedule, totals)
