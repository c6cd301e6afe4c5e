"""First matching pipeline: exact invoice numbers and structured references.

Debits are skipped; a credit whose remittance names open invoices of one
customer in its currency is allocated (oldest due first, the excess on
account); anything else is queued with a reason code and suggestions.
Lines are processed in booking order so two payments of one invoice in the
same batch never allocate more than is open.
"""

from __future__ import annotations

import json
import re

import polars as pl

from reconcile import frames
from reconcile.match.book import Book, MatchResult, Rules

TOKEN = re.compile(r"[A-Z0-9][A-Z0-9\-/\.]{2,}[A-Z0-9]")


def _normalise(expr: pl.Expr) -> pl.Expr:
    return expr.str.to_uppercase().str.replace_all(r"[^A-Z0-9]", "")


def _line_tokens(lines: pl.DataFrame) -> pl.DataFrame:
    """One row per (bank_line_id, normalised token) found in the line's reference fields."""
    text = pl.concat_str(
        [pl.col(c).fill_null("") for c in ("reference", "remittance", "end_to_end_id")], separator=" "
    ).str.to_uppercase()
    return (
        lines.select("bank_line_id", text.str.extract_all(TOKEN.pattern).alias("token"))
        .explode("token")
        .drop_nulls("token")
        .with_columns(_normalise(pl.col("token")).alias("token"))
        .unique()
    )


def _candidates(lines: pl.DataFrame, book: Book) -> pl.DataFrame:
    """Invoices whose number or payment reference appears in a line, one row per pair."""
    keys = pl.concat(
        [
            book.invoices.select("invoice_number", _normalise(pl.col("invoice_number")).alias("token")),
            book.invoices.filter(pl.col("payment_reference").is_not_null()).select(
                "invoice_number", _normalise(pl.col("payment_reference")).alias("token")
            ),
        ]
    ).unique()
    return _line_tokens(lines).join(keys, on="token").select("bank_line_id", "invoice_number").unique()


def match_lines(lines: pl.DataFrame, book: Book, rules: Rules) -> MatchResult:
    lines = frames.conform(lines, frames.MATCH_LINES)
    credits = lines.filter(pl.col("amount_minor") > 0)
    skipped = lines.filter(pl.col("amount_minor") <= 0).select(
        "bank_line_id", pl.lit("debit").alias("reason")
    )
    pairs = _candidates(credits, book)
    by_line: dict[int, list[str]] = {}
    for line_id, invoice in pairs.iter_rows():
        by_line.setdefault(line_id, []).append(invoice)

    invoices = {row["invoice_number"]: row for row in book.invoices.iter_rows(named=True)}
    remaining = {number: row["open_minor"] for number, row in invoices.items()}
    allocations: list[dict] = []
    exceptions: list[dict] = []

    for line in credits.sort("booking_date", "bank_line_id").iter_rows(named=True):
        line_id, amount, currency = line["bank_line_id"], line["amount_minor"], line["currency"]
        found = sorted(by_line.get(line_id, []), key=lambda n: (invoices[n]["due_date"], n))
        customers = {invoices[n]["customer_id"] for n in found}
        evidence = {"references": found}
        if not found:
            exceptions.append({"bank_line_id": line_id, "reason": "no_candidate", "evidence": "{}"})
            continue
        if len(customers) > 1:
            exceptions.append({
                "bank_line_id": line_id, "reason": "ambiguous", "suggestions": "|".join(found),
                "evidence": json.dumps(evidence),
            })
            continue
        customer = customers.pop()
        if any(invoices[n]["currency"] != currency for n in found):
            exceptions.append({
                "bank_line_id": line_id, "reason": "unknown_currency", "suggestions": "|".join(found),
                "customer_id": customer, "evidence": json.dumps(evidence),
            })
            continue
        open_items = [n for n in found if remaining[n] > 0]
        if not open_items:
            exceptions.append({
                "bank_line_id": line_id, "reason": "duplicate_suspect", "suggestions": "|".join(found),
                "customer_id": customer, "evidence": json.dumps(evidence),
            })
            continue
        left = amount
        rows = []
        for number in open_items:
            take = min(left, remaining[number])
            if take <= 0:
                break
            rows.append({
                "bank_line_id": line_id, "kind": "invoice", "customer_id": customer,
                "invoice_number": number, "amount_minor": take, "currency": currency,
                "rule": "exact_reference", "confidence": 1.0, "evidence": json.dumps(evidence),
            })
            left -= take
        if left > 0:
            rows.append({
                "bank_line_id": line_id, "kind": "on_account", "customer_id": customer,
                "amount_minor": left, "currency": currency, "rule": "overpayment",
                "confidence": 1.0, "evidence": json.dumps(evidence),
            })
        for row in rows:
            if row["kind"] == "invoice":
                remaining[row["invoice_number"]] -= row["amount_minor"]
        allocations.extend(rows)

    return MatchResult(
        allocations=frames.from_records(allocations, frames.ALLOCATIONS),
        exceptions=frames.from_records(exceptions, frames.EXCEPTIONS),
        skipped=frames.conform(skipped, frames.SKIPPED),
    )
