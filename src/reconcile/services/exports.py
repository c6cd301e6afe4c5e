"""CSV exports of CONTRACTS.md §4: posted allocations and the exception queue.

Reads in bulk, formats minor units as decimal strings in each row's currency,
and writes the file; nothing else writes these files.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from sqlalchemy import Engine, select

from reconcile.core.money_expr import exponent_expr
from reconcile.store import db, repo, tables

ALLOCATION_COLUMNS = [
    "source_ref", "account", "booking_date", "customer_id", "invoice_number", "installment_no",
    "kind", "amount", "currency", "rule", "confidence", "run_id",
]
EXCEPTION_COLUMNS = ["source_ref", "account", "booking_date", "amount", "currency", "reason", "suggestions", "status"]


def decimal_text(minor: pl.Expr, currency: pl.Expr) -> pl.Expr:
    """Int64 minor units -> '-12.50' (exact: integer arithmetic on strings, no floats)."""
    exp = exponent_expr(currency)
    magnitude = minor.abs().cast(pl.String).str.pad_start(5, "0")
    # split the digit string at the currency's exponent
    length = magnitude.str.len_chars()
    whole = magnitude.str.slice(0, length - exp).str.strip_chars_start("0").replace("", "0")
    frac = magnitude.str.slice(length - exp, exp)
    body = pl.when(exp == 0).then(whole).otherwise(pl.concat_str([whole, pl.lit("."), frac]))
    return pl.when(minor < 0).then(pl.concat_str([pl.lit("-"), body])).otherwise(body)


def allocations_frame(engine: Engine) -> pl.DataFrame:
    a, bl = tables.Allocation, tables.BankLine
    query = (
        select(bl.source_ref, bl.account, bl.booking_date, a.customer_id, a.invoice_number,
               a.installment_no, a.kind, a.amount_minor, a.currency, a.rule, a.confidence, a.run_id, a.id)
        .join(bl, bl.id == a.bank_line_id)
        .order_by(a.id)
    )
    schema = {
        "source_ref": pl.String(), "account": pl.String(), "booking_date": pl.Date(),
        "customer_id": pl.String(), "invoice_number": pl.String(), "installment_no": pl.Int64(),
        "kind": pl.String(), "amount_minor": pl.Int64(), "currency": pl.String(), "rule": pl.String(),
        "confidence": pl.Float64(), "run_id": pl.String(), "id": pl.Int64(),
    }
    with db.transaction(engine) as session:
        frame = repo.frame_of(session, query, schema)
    return frame.with_columns(
        decimal_text(pl.col("amount_minor"), pl.col("currency")).alias("amount"),
        pl.col("confidence").round(4),
    ).select(ALLOCATION_COLUMNS)


def exceptions_frame(engine: Engine, status: str | None = None) -> pl.DataFrame:
    ex, bl = tables.ExceptionItem, tables.BankLine
    query = (
        select(bl.source_ref, bl.account, bl.booking_date, bl.amount_minor, bl.currency,
               ex.reason, ex.suggestions, ex.status)
        .join(bl, bl.id == ex.bank_line_id)
        .order_by(ex.id)
    )
    if status:
        query = query.where(ex.status == status)
    schema = {
        "source_ref": pl.String(), "account": pl.String(), "booking_date": pl.Date(),
        "amount_minor": pl.Int64(), "currency": pl.String(), "reason": pl.String(),
        "suggestions": pl.String(), "status": pl.String(),
    }
    with db.transaction(engine) as session:
        frame = repo.frame_of(session, query, schema)
    return frame.with_columns(decimal_text(pl.col("amount_minor"), pl.col("currency")).alias("amount")).select(
        EXCEPTION_COLUMNS
    )


def write_csv(frame: pl.DataFrame, path: str | Path) -> int:
    frame.write_csv(path)
    return frame.height
