"""ParsedFile -> the JSON shape of `reconcile parse --json` (CONTRACTS.md §4).

Amounts become signed decimal strings in each line's currency; dates ISO.
Used by the CLI and by the parsers' golden-file tests.
"""

from __future__ import annotations

from typing import Any

from reconcile.core.money import format_minor
from reconcile.parsers.base import ParsedFile, Statement

LINE_FIELDS = (
    "source_ref", "booking_date", "value_date", "amount", "currency", "counterparty_name",
    "counterparty_account", "remittance", "reference", "end_to_end_id", "bank_code",
    "is_reversal", "location",
)


def _money(minor: int | None, currency: str | None) -> str | None:
    if minor is None:
        return None
    return format_minor(minor, currency or "XXX")


def statement_to_json(statement: Statement) -> dict[str, Any]:
    lines = []
    for row in statement.lines.iter_rows(named=True):
        line: dict[str, Any] = {}
        for name in LINE_FIELDS:
            if name == "amount":
                line[name] = _money(row["amount_minor"], row["currency"])
            elif name in ("booking_date", "value_date"):
                line[name] = row[name].isoformat() if row[name] is not None else None
            else:
                line[name] = row[name]
        if row.get("instructed_amount_minor") is not None:
            line["instructed_amount"] = _money(row["instructed_amount_minor"], row["instructed_currency"])
            line["instructed_currency"] = row["instructed_currency"]
            line["exchange_rate"] = row["exchange_rate"]
        if row.get("charges_minor") is not None:
            line["charges"] = _money(row["charges_minor"], row["currency"])
        lines.append(line)
    return {
        "account": statement.account,
        "currency": statement.currency,
        "statement_id": statement.statement_id,
        "period_start": statement.period_start.isoformat() if statement.period_start else None,
        "period_end": statement.period_end.isoformat() if statement.period_end else None,
        "opening_balance": _money(statement.opening_minor, statement.currency),
        "closing_balance": _money(statement.closing_minor, statement.currency),
        "warnings": list(statement.warnings),
        "lines": lines,
    }


def parsed_to_json(parsed: ParsedFile) -> dict[str, Any]:
    return {"format": parsed.format, "statements": [statement_to_json(s) for s in parsed.statements]}
