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
    days_past_due,
    installments,
    invoice_state,
    one_snapshot,
    read_frame,
    with_original,
)
from reconcile.core.codes import Kind
from reconcile.core.errors import NotFoundError
from reconcile.services.exports import decimal_text
from reconcile.store import repo, tables

ENTRY_ORDER = {"invoice": 0, "credit_note": 0, "settled_before_ledger": 1, "payment": 2, "write_off": 3,
               "reversal": 4, "write_off_reversed": 5, "closed_elsewhere": 6}
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
    """Issued items, what the receivables system settled besides reconcile's postings it imported, and
    reconcile's postings it overtook (closed the item otherwise before importing them)."""
    credit_note = pl.col("amount_minor") < 0
    issued = invoices.select(
        pl.col("issue_date").alias("date"),
        pl.when(credit_note).then(pl.lit("credit_note")).otherwise(pl.lit("invoice")).alias("kind"),
        pl.col("invoice_number").alias("reference"),
        pl.when(credit_note).then(pl.lit("credit note"))
        .otherwise(pl.concat_str([pl.lit("invoice, due "), pl.col("due_date").cast(pl.String)])).alias("description"),
        "currency", pl.col("amount_minor"),
    )
    # snapshot open + reconcile's postings the snapshot already includes - issued amount
    elsewhere = pl.col("snapshot_open") + pl.col("included") - pl.col("amount_minor")
    before = invoices.filter(elsewhere != 0).select(
        pl.col("issue_date").alias("date"), pl.lit("settled_before_ledger").alias("kind"),
        pl.col("invoice_number").alias("reference"),
        pl.when(pl.col("erp_status") == "closed")
        .then(pl.lit("closed in the receivables system (paid, cancelled or credited there)"))
        .otherwise(pl.lit("settled in the receivables system outside reconcile (snapshot)")).alias("description"),
        "currency", elsewhere.alias("amount_minor"),
    )
    overtaken = invoices.filter(pl.col("excess_minor") != 0).select(
        pl.col("issue_date").alias("date"), pl.lit("closed_elsewhere").alias("kind"),
        pl.col("invoice_number").alias("reference"),
        pl.lit("reconcile's payment overtaken by the receivables system (closed_elsewhere: under review)")
        .alias("description"), "currency", pl.col("excess_minor").alias("amount_minor"),
    )
    return pl.concat([issued, before, overtaken])


def _part_text() -> pl.Expr:
    amount = decimal_text(pl.col("amount_minor").abs(), pl.col("currency"))
    kind = pl.col("base_kind")
    return (
        pl.when(kind == Kind.ON_ACCOUNT).then(pl.concat_str([pl.lit("on account "), amount]))
        .when(kind == "write_off").then(pl.concat_str([pl.lit("written off "), amount, pl.lit(" on "),
                                                       pl.col("invoice_number")]))
        .when(kind == Kind.INSTALLMENT).then(pl.concat_str([
            pl.col("invoice_number"), pl.lit(" #"), pl.col("installment_no").cast(pl.String), pl.lit(" "), amount]))
        .otherwise(pl.concat_str([pl.col("invoice_number"), pl.lit(" "), amount]))
    )


def _ledger_entries(rows: pl.DataFrame) -> pl.DataFrame:
    """Payments and reversals (one entry per posting and direction) and write-offs (one per row)."""
    if rows.height == 0:
        return pl.DataFrame(schema=ENTRIES)
    rows = rows.with_columns(
        (pl.col("kind") == "reversal").alias("reversed"),
        pl.when(pl.col("kind") == "reversal").then(pl.col("business_date"))
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
        pl.concat_str([pl.lit("written off ("), pl.col("original_reason").fill_null("-"), pl.lit(")")])
        .alias("description"),
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
    al, bl, cu = tables.Allocation, tables.BankLine, tables.Customer
    with one_snapshot(engine) as session:
        name = session.execute(select(cu.name).where(cu.customer_id == customer_id)).scalar_one_or_none()
        if name is None:
            raise NotFoundError(f"customer {customer_id!r} is not in the receivables snapshot")
        invoices = invoice_state(session, as_of, customer_id)
        rows = read_frame(session, with_original(select(
            al.id, al.posting_id, al.kind, base_kind(), al.invoice_number, al.installment_no,
            # in the item's currency: a payment made in another currency settles the invoice in its own
            repo.settled_amount(al), repo.settled_currency(al), al.reason, func.coalesce(al.reason, ORIGINAL.c.reason),
            al.business_date, bl.booking_date, bl.source_ref, al.batch_seq,
        ).select_from(al).join(bl, bl.id == al.bank_line_id)).where(
            al.customer_id == customer_id, al.business_date <= as_of, base_kind() != Kind.FX,
        ), {
            "id": pl.Int64(), "posting_id": pl.Int64(), "kind": pl.String(), "base_kind": pl.String(),
            "invoice_number": pl.String(), "installment_no": pl.Int64(), "amount_minor": pl.Int64(),
            "currency": pl.String(), "reason": pl.String(), "original_reason": pl.String(),
            "business_date": pl.Date(), "booking_date": pl.Date(), "source_ref": pl.String(), "batch_seq": pl.Int64(),
        })
        # reconcile's postings each invoice's snapshot already includes (in a batch up to its basis)
        settling = rows.filter(pl.col("base_kind").is_in([Kind.INVOICE, Kind.INSTALLMENT])).join(
            invoices.select("invoice_number", "basis_seq"), on="invoice_number", how="inner")
        included = settling.filter(pl.col("batch_seq").is_not_null() & (pl.col("batch_seq") <= pl.col("basis_seq"))) \
            .group_by("invoice_number").agg(pl.col("amount_minor").sum().alias("included"))
        invoices = invoices.join(included, on="invoice_number", how="left").with_columns(
            pl.col("included").fill_null(0))
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
