"""Small builders for tests: snapshot CSV folders and parsed statements written inline.

Tests describe their data in a few readable lines; these functions turn it
into the files and objects the real code reads.
"""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from reconcile.core.money import to_minor
from reconcile.parsers.base import ParsedFile, Statement, lines_frame
from reconcile.statements.ingest import IngestResult, store_parsed
from reconcile.store import db

NOW = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)


def write_snapshot(
    folder: Path,
    customers: list[dict[str, Any]],
    invoices: list[dict[str, Any]],
    installments: list[dict[str, Any]] | None = None,
) -> Path:
    """Write customers.csv / invoices.csv [/ installments.csv]; missing optional fields get defaults."""
    folder.mkdir(parents=True, exist_ok=True)
    invoice_rows = [
        {"issue_date": "2026-10-01", "due_date": "2026-10-31", "currency": "EUR", "payment_reference": "",
         **row, "open_amount": row.get("open_amount", row["amount"])}
        for row in invoices
    ]
    tables = {"customers": customers, "invoices": invoice_rows}
    if installments:
        tables["installments"] = installments
    for stem, rows in tables.items():
        fields: list[str] = []
        for row in rows:
            fields.extend(k for k in row if k not in fields)
        with (folder / f"{stem}.csv").open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
    return folder


def bank_line(source_ref: str, amount: str, *, currency: str = "EUR", booking_date: str = "2026-11-23",
              name: str | None = None, account: str | None = None, remittance: str | None = None,
              reference: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "source_ref": source_ref, "booking_date": date.fromisoformat(booking_date), "value_date": None,
        "amount_minor": to_minor(Decimal(amount), currency), "currency": currency,
        "counterparty_name": name, "counterparty_account": account, "remittance": remittance,
        "reference": reference, "is_reversal": False, "location": f"test {source_ref}", **extra,
    }


def statement(lines: list[dict[str, Any]], account: str = "NL91ABNA0417164300", currency: str = "EUR") -> ParsedFile:
    return ParsedFile("test", [Statement(account=account, currency=currency, lines=lines_frame(lines))])


def ingest_lines(engine: Engine, lines: list[dict[str, Any]], *, digest: str | None = None,
                 account: str = "NL91ABNA0417164300") -> IngestResult:
    """Store lines as if a statement file had been ingested (digest defaults to the line refs)."""
    digest = digest or "test-" + "-".join(str(line["source_ref"]) for line in lines)
    with db.transaction(engine) as session:
        return store_parsed(session, Path("test-statement"), digest, statement(lines, account), NOW)
