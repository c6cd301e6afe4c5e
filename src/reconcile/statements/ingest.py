"""Stores parsed statements: files, statements and bank lines, idempotently.

The unique (account, source_ref) on bank_lines makes a re-import, or two
overlapping statements, a no-op for lines already stored; the caller's
transaction makes one file all-or-nothing. A CAMT/MT940 statement whose
opening balance is not the closing balance of the account's previous stored
statement is reported (a missing day?), never refused. Parsing and the
identity of lines are the parsers' (parsers/base.py).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from reconcile.core.money import format_minor
from reconcile.parsers.base import ParsedFile, Statement
from reconcile.store import repo, tables

# Formats whose statements carry an opening balance that continues the previous statement's closing one.
CONTINUED_BALANCES = ("camt053", "mt940")


@dataclass(frozen=True)
class IngestResult:
    path: str
    format: str
    statements: int
    lines: int
    new_lines: int
    already_imported: bool = False
    warnings: tuple[str, ...] = ()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def store_parsed(
    session: Session, path: Path, digest: str, parsed: ParsedFile, now: datetime,
    account_override: str | None = None,
) -> IngestResult:
    known = session.execute(
        select(tables.StatementFile.id).where(tables.StatementFile.sha256 == digest)
    ).scalar_one_or_none()
    if known is not None:
        return IngestResult(str(path), parsed.format, len(parsed.statements), parsed.line_count, 0, True)

    file_row = tables.StatementFile(
        sha256=digest, filename=path.name, format=parsed.format, imported_at=now,
        line_count=parsed.line_count, new_line_count=0,
    )
    session.add(file_row)
    session.flush()
    warnings: list[str] = []
    new_total = 0
    bl = tables.BankLine
    for statement in parsed.statements:
        account = account_override or statement.account
        gap = _balance_gap(session, account, statement) if parsed.format in CONTINUED_BALANCES else None
        statement_warnings = [*statement.warnings, *([gap] if gap else [])]
        warnings.extend(f"{account}: {w}" for w in statement_warnings)
        stmt_row = tables.Statement(
            file_id=file_row.id, account=account, currency=statement.currency,
            statement_ref=statement.statement_id, period_start=statement.period_start,
            period_end=statement.period_end, opening_minor=statement.opening_minor,
            closing_minor=statement.closing_minor, warnings="\n".join(statement_warnings) or None,
        )
        session.add(stmt_row)
        session.flush()
        lines = statement.lines.with_columns(
            pl.lit(account).alias("account"),
            pl.lit(stmt_row.id).alias("statement_id"),
            pl.when(pl.col("amount_minor") > 0).then(pl.lit("credit")).otherwise(pl.lit("debit")).alias("direction"),
            pl.col("is_reversal").fill_null(False),
            pl.lit("unmatched").alias("status"),
            pl.lit(0).alias("generation"),
            pl.lit(now).alias("ingested_at"),
        )
        new_total += repo.insert_ignore(session, bl.__table__, lines)
    file_row.new_line_count = new_total
    return IngestResult(
        str(path), parsed.format, len(parsed.statements), parsed.line_count, new_total, False, tuple(warnings)
    )


def _balance_gap(session: Session, account: str, statement: Statement) -> str | None:
    """Why `statement` does not continue the account's previous stored statement (by period), or None.

    The previous statement is the stored one of the account that ends latest on or before this one
    starts (and ends before this one ends: a statement sent again is not its own predecessor).
    """
    if statement.opening_minor is None or statement.period_start is None:
        return None
    st = tables.Statement
    end = statement.period_end or statement.period_start
    previous = session.execute(
        select(st.closing_minor, st.currency, st.period_end)
        .where(st.account == account, st.closing_minor.is_not(None), st.period_end.is_not(None),
               st.period_end <= statement.period_start, st.period_end < end)
        .order_by(st.period_end.desc(), st.period_start.desc(), st.id.desc())
        .limit(1)
    ).first()
    if previous is None or previous.closing_minor == statement.opening_minor:
        return None
    if previous.currency and statement.currency and previous.currency != statement.currency:
        return None
    code = statement.currency or previous.currency or "XXX"
    return (f"opening {format_minor(statement.opening_minor, code)} differs from the closing "
            f"{format_minor(previous.closing_minor, code)} of the statement of {previous.period_end.isoformat()}: "
            "a missing day?")
