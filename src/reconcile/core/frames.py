"""Polars schemas shared by parsers, matching and posting: defined once here.

Money columns are Int64 minor units (see money.py); never Float, never
polars Decimal. Functions here only build and check frames; they do no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import polars as pl

# One bank line as every parser emits it. Credits are positive.
BANK_LINES: dict[str, pl.DataType] = {
    "source_ref": pl.String(),
    "booking_date": pl.Date(),
    "value_date": pl.Date(),
    "amount_minor": pl.Int64(),
    "currency": pl.String(),
    "counterparty_name": pl.String(),
    "counterparty_account": pl.String(),
    "remittance": pl.String(),
    "reference": pl.String(),        # structured creditor reference (RF..., national)
    "end_to_end_id": pl.String(),
    "bank_code": pl.String(),        # bank transaction code / OFX TRNTYPE / MT940 GV code
    "is_reversal": pl.Boolean(),
    "instructed_amount_minor": pl.Int64(),  # foreign-currency original, when given
    "instructed_currency": pl.String(),
    "exchange_rate": pl.String(),    # kept as text: a rate is not money
    "charges_minor": pl.Int64(),
    "location": pl.String(),         # "line 12" or an element path, for error messages
}

# Lines handed to the matcher: stored bank lines with their database id.
MATCH_LINES: dict[str, pl.DataType] = {
    "bank_line_id": pl.Int64(),
    "account": pl.String(),
    **{k: v for k, v in BANK_LINES.items() if k not in ("location",)},
}

# Open receivables as the matcher sees them.
CUSTOMERS: dict[str, pl.DataType] = {"customer_id": pl.String(), "name": pl.String()}
ALIASES: dict[str, pl.DataType] = {"customer_id": pl.String(), "alias": pl.String()}
PAYER_ACCOUNTS: dict[str, pl.DataType] = {"customer_id": pl.String(), "account": pl.String()}
INVOICES: dict[str, pl.DataType] = {
    "invoice_number": pl.String(),
    "customer_id": pl.String(),
    "issue_date": pl.Date(),
    "due_date": pl.Date(),
    "currency": pl.String(),
    "amount_minor": pl.Int64(),
    "open_minor": pl.Int64(),
    "payment_reference": pl.String(),
}
INSTALLMENTS: dict[str, pl.DataType] = {
    "installment_id": pl.Int64(),
    "plan_id": pl.String(),
    "invoice_number": pl.String(),
    "installment_no": pl.Int64(),
    "due_date": pl.Date(),
    "amount_minor": pl.Int64(),
    "open_minor": pl.Int64(),
}

# What the matcher decides. One row per allocation; a line's rows add up to its amount.
ALLOCATIONS: dict[str, pl.DataType] = {
    "bank_line_id": pl.Int64(),
    # invoice | installment | on_account | write_off: a line's rows add up to its amount, so a write-off
    # (fee, discount, short payment) is negative beside an invoice row that settles the item in full
    "kind": pl.String(),
    "customer_id": pl.String(),
    "invoice_number": pl.String(),
    "installment_no": pl.Int64(),
    "amount_minor": pl.Int64(),
    "currency": pl.String(),
    "rule": pl.String(),
    "confidence": pl.Float64(),      # 0..1, a score, not money
    "evidence": pl.String(),         # JSON object
}
# One row per line that goes to the manual-review queue.
EXCEPTIONS: dict[str, pl.DataType] = {
    "bank_line_id": pl.Int64(),
    "reason": pl.String(),
    "suggestions": pl.String(),      # candidate invoice numbers, best first, "|"-separated
    "customer_id": pl.String(),      # best guess of the payer, may be null
    "evidence": pl.String(),         # JSON object
}
# Lines that are not receivables at all (debits, fees, transfers): neither posted nor queued.
SKIPPED: dict[str, pl.DataType] = {"bank_line_id": pl.Int64(), "reason": pl.String()}


def empty(schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame(schema=dict(schema))


def from_records(records: Iterable[Mapping[str, Any]], schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """Build a frame from dicts, filling absent columns with nulls, in schema order."""
    rows = list(records)
    if not rows:
        return empty(schema)
    columns = {name: [row.get(name) for row in rows] for name in schema}
    return pl.DataFrame(columns, schema=dict(schema), strict=True)


def conform(frame: pl.DataFrame, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """Add missing columns as nulls, cast to the schema, order as the schema; refuse lossy casts."""
    exprs = []
    for name, dtype in schema.items():
        if name in frame.columns:
            exprs.append(pl.col(name).cast(dtype, strict=True))
        else:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
    return frame.select(exprs)


def content_refs(frame: pl.DataFrame, columns: list[str], prefix: str = "h:") -> pl.Series:
    """Stable source_refs for lines with no bank id: a content hash plus occurrence number.

    Two byte-identical lines in one file are two real payments (see the corpus
    notes); the occurrence number keeps them apart while a re-import of the
    same file yields the same refs.
    """
    if frame.height == 0:
        return pl.Series("source_ref", [], dtype=pl.String())
    joined = frame.select(
        pl.concat_str([pl.col(c).cast(pl.String).fill_null("") for c in columns], separator="\x1f")
        .alias("k")
    )["k"].to_list()
    digests = [hashlib.sha256(k.encode("utf-8")).hexdigest()[:24] for k in joined]
    seen: dict[str, int] = {}
    refs = []
    for digest in digests:
        n = seen.get(digest, 0) + 1
        seen[digest] = n
        refs.append(f"{prefix}{digest}/{n}")
    return pl.Series("source_ref", refs, dtype=pl.String())
