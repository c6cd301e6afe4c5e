"""CSV exports of CONTRACTS.md §4: posted allocations and the exception queue.

Reads in bulk, formats minor units as decimal strings in each row's currency,
and writes the file; nothing else writes these files. Text cells that a spreadsheet would run as a
formula (starting with =, +, - or @) are written with a leading single quote; amounts never are.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from sqlalchemy import Engine, select

from reconcile.core.money_expr import exponent_expr
from reconcile.store import db, repo, tables

ALLOCATION_COLUMNS = [
    "source_ref", "account", "booking_date", "customer_id", "invoice_number", "installment_no",
    "kind", "amount", "currency", "rule", "confidence", "run_id",
]
# after the contract's columns: why the row was posted (the matcher's evidence as compact JSON with sorted keys,
# the runner-up it beat and by how much; empty for rows a person or a reversal made without one)
EVIDENCE_COLUMNS = ["evidence", "runner_up", "margin"]
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
               a.installment_no, a.kind, a.amount_minor, a.currency, a.rule, a.confidence, a.run_id, a.id,
               a.evidence)
        .join(bl, bl.id == a.bank_line_id)
        .order_by(a.id)
    )
    schema = {
        "source_ref": pl.String(), "account": pl.String(), "booking_date": pl.Date(),
        "customer_id": pl.String(), "invoice_number": pl.String(), "installment_no": pl.Int64(),
        "kind": pl.String(), "amount_minor": pl.Int64(), "currency": pl.String(), "rule": pl.String(),
        "confidence": pl.Float64(), "run_id": pl.String(), "id": pl.Int64(), "evidence": pl.String(),
    }
    with db.transaction(engine) as session:
        frame = repo.frame_of(session, query, schema)
    evidence = [_compact(text) for text in frame["evidence"].to_list()]
    return frame.with_columns(
        decimal_text(pl.col("amount_minor"), pl.col("currency")).alias("amount"),
        pl.col("confidence").round(4),
        pl.Series("evidence", [e for e, _, _ in evidence], dtype=pl.String()),
        pl.Series("runner_up", [r for _, r, _ in evidence], dtype=pl.String()),
        pl.Series("margin", [m for _, _, m in evidence], dtype=pl.String()),
    ).select([*ALLOCATION_COLUMNS, *EVIDENCE_COLUMNS])


def _compact(text: str | None) -> tuple[str | None, str | None, str | None]:
    """(evidence as compact JSON with sorted keys, runner-up, margin) of a stored evidence text."""
    if not text:
        return None, None, None
    try:
        data = json.loads(text)
    except ValueError:
        return text, None, None
    if not isinstance(data, dict):
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False), None, None
    runner, margin = data.get("runner_up"), data.get("margin")
    return (json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
            None if runner is None else str(runner), None if margin is None else str(margin))


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


# A spreadsheet runs a cell that starts with one of these as a formula ("CSV injection"): text cells
# starting with one get a leading single quote, which spreadsheets show as text and never run. The
# columns of amounts the contract defines ("-12.50" is a refund, not a formula) are left alone.
FORMULA_START = ("=", "+", "-", "@")
NUMBER_COLUMNS = frozenset({"amount", "confidence", "installment_no", "booking_date", "margin"})


def neutralise(frame: pl.DataFrame) -> pl.DataFrame:
    """Text cells that a spreadsheet would run as a formula, prefixed with a single quote."""
    text = [c for c, t in frame.schema.items() if t == pl.String() and c not in NUMBER_COLUMNS]
    risky = "^[" + "".join("\\" + ch for ch in FORMULA_START) + "]"
    return frame.with_columns([
        pl.when(pl.col(c).str.contains(risky)).then(pl.lit("'") + pl.col(c))
        .otherwise(pl.col(c)).alias(c)
        for c in text
    ])


def write_csv(frame: pl.DataFrame, path: str | Path) -> int:
    """Write an export; text cells starting with =, +, - or @ are neutralised (FORMULA_START)."""
    neutralise(frame).write_csv(path)
    return frame.height
