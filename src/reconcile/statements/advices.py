"""Stores remittance advices (parsers/advice.py's ParsedAdvice) idempotently, and reads them back.

An advice is identified by its advice_ref (unique in the database): importing the same advice again, in
the same file or another, adds nothing. Linking advices to bank lines and allocating from them is
match/advices.py's (pure) and the posting run's; this module only reads and writes rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from reconcile.core.codes import OPEN_LINE_STATUSES
from reconcile.parsers.advice import ParsedAdvice
from reconcile.store import repo, tables

ADVICE_FRAME: dict[str, pl.DataType] = {
    "advice_id": pl.Int64(), "advice_ref": pl.String(), "payer_name": pl.String(), "payer_id": pl.String(),
    "payment_amount_minor": pl.Int64(),
    "currency": pl.String(), "payment_date": pl.Date(), "trace_number": pl.String(), "end_to_end_id": pl.String(),
    "balanced": pl.Boolean(), "bank_line_id": pl.Int64(), "linked_by": pl.String(),
}
ADVICE_LINE_FRAME: dict[str, pl.DataType] = {
    "advice_id": pl.Int64(), "line_no": pl.Int64(), "line_kind": pl.String(), "invoice_number": pl.String(),
    "amount_paid_minor": pl.Int64(), "invoice_total_minor": pl.Int64(), "discount_minor": pl.Int64(),
    "adjustment_minor": pl.Int64(), "adjustment_reasons": pl.String(),
}


@dataclass(frozen=True)
class AdviceIngestResult:
    file: str
    format: str
    advices: int
    new_advices: int
    lines: int
    already_imported: bool
    warnings: tuple[str, ...] = ()

    # the statement ingest's shape, so a mixed ingest prints one table
    @property
    def statements(self) -> int:
        return self.advices

    @property
    def new_lines(self) -> int:
        return self.new_advices


def store_advices(session: Session, path: Path, digest: str, parsed: ParsedAdvice, now: datetime) -> AdviceIngestResult:
    """Store a parsed advice file in the caller's transaction; advices already stored are left as they are."""
    known = session.execute(
        select(tables.StatementFile.id).where(tables.StatementFile.sha256 == digest)).scalar_one_or_none()
    count = parsed.advices.height
    if known is not None:
        return AdviceIngestResult(str(path), parsed.format, count, 0, parsed.lines.height, True)
    file_row = tables.StatementFile(sha256=digest, filename=path.name, format=parsed.format, imported_at=now,
                                    line_count=count, new_line_count=0)
    session.add(file_row)
    session.flush()
    a = tables.Advice
    existing: set[str] = set()
    for _, among in repo.among(session, a.advice_ref, parsed.advices["advice_ref"].to_list()):
        existing.update(session.execute(select(a.advice_ref).where(among)).scalars().all())
    fresh = parsed.advices.filter(~pl.col("advice_ref").is_in(list(existing)))
    columns = ["advice_ref", "payer_name", "payer_id", "payee_name", "payment_method", "payment_amount_minor",
               "currency", "payment_date", "trace_number", "end_to_end_id", "remittance", "balanced", "location"]
    repo.insert_rows(session, a.__table__, [
        {**{c: r[c] for c in columns}, "file_id": file_row.id, "format": parsed.format, "imported_at": now}
        for r in fresh.iter_rows(named=True)
    ])
    ids: dict[str, int] = {}
    for _, among in repo.among(session, a.advice_ref, fresh["advice_ref"].to_list()):
        ids.update(session.execute(select(a.advice_ref, a.id).where(among)).all())
    lines = parsed.lines.filter(pl.col("advice_ref").is_in(list(ids)))
    repo.insert_rows(session, tables.AdviceLine.__table__, [
        {"advice_id": ids[r["advice_ref"]], "line_no": r["line_no"], "line_kind": r["line_kind"],
         "reference_qualifier": r["reference_qualifier"], "invoice_number": r["invoice_number"],
         "document_date": r["document_date"], "amount_paid_minor": r["amount_paid_minor"],
         "invoice_total_minor": r["invoice_total_minor"], "discount_minor": r["discount_minor"],
         "adjustment_minor": r["adjustment_minor"],
         "adjustment_reasons": "|".join(r["adjustment_reasons"] or []) or None,
         "description": r["description"], "location": r["location"]}
        for r in lines.iter_rows(named=True)
    ])
    file_row.new_line_count = len(ids)
    return AdviceIngestResult(str(path), parsed.format, count, len(ids), parsed.lines.height, False,
                              tuple(parsed.warnings))


def advices_for_run(session: Session) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Advices not yet linked, and those linked to lines still waiting for a decision, with their lines."""
    a, bl = tables.Advice, tables.BankLine
    frame = repo.frame_of(session, select(
        a.id, a.advice_ref, a.payer_name, a.payer_id, a.payment_amount_minor, a.currency, a.payment_date,
        a.trace_number, a.end_to_end_id, a.balanced, a.bank_line_id, a.linked_by,
    ).outerjoin(bl, bl.id == a.bank_line_id).where(
        a.bank_line_id.is_(None) | bl.status.in_(OPEN_LINE_STATUSES)), ADVICE_FRAME)
    return frame, advice_lines(session, frame["advice_id"].to_list())


PAST_LINKS: dict[str, pl.DataType] = {"payer_id": pl.String(), "payer_name": pl.String(),
                                      "counterparty_account": pl.String(), "counterparty_name": pl.String()}


def past_links(session: Session) -> pl.DataFrame:
    """Who paid each advice linked so far by evidence (end-to-end id, trace) or by a person: what a payer's
    habits are learned from (match/advices.habits). Links guessed from amount and name teach nothing; an
    advice unlinked by a person is forgotten with its link."""
    a, bl = tables.Advice, tables.BankLine
    return repo.frame_of(session, select(a.payer_id, a.payer_name, bl.counterparty_account, bl.counterparty_name)
                         .join(bl, bl.id == a.bank_line_id)
                         .where(a.linked_by.not_in(("amount_payer", "payer_habit"))).distinct(), PAST_LINKS)


def advice_lines(session: Session, advice_ids: list[int]) -> pl.DataFrame:
    al = tables.AdviceLine
    parts = [repo.frame_of(session, select(
        al.advice_id, al.line_no, al.line_kind, al.invoice_number, al.amount_paid_minor, al.invoice_total_minor,
        al.discount_minor, al.adjustment_minor, al.adjustment_reasons,
    ).where(among).order_by(al.advice_id, al.line_no), ADVICE_LINE_FRAME)
        for _, among in repo.among(session, al.advice_id, advice_ids)]
    return pl.concat(parts) if parts else pl.DataFrame(schema=ADVICE_LINE_FRAME)


def record_links(session: Session, links: pl.DataFrame, now: datetime) -> None:
    """Remember which bank line each advice explains (advice_id, bank_line_id, linked_by); an advice a person
    linked meanwhile keeps that link. One executemany, not a statement per advice."""
    a = tables.Advice.__table__
    rows = [{"advice": advice_id, "line": line_id, "how": how}
            for advice_id, line_id, how in links.select("advice_id", "bank_line_id", "linked_by").iter_rows()]
    if rows:
        session.execute(update(a).where(a.c.id == bindparam("advice"), a.c.bank_line_id.is_(None)).values(
            bank_line_id=bindparam("line"), linked_by=bindparam("how"), linked_at=now), rows)


def advice_list(session: Session, *, unlinked_only: bool = False) -> list[dict[str, Any]]:
    a, bl = tables.Advice, tables.BankLine
    query = select(a.advice_ref, a.payer_name, a.payment_amount_minor, a.currency, a.payment_date, a.trace_number,
                   a.imported_at, bl.source_ref, bl.status, a.linked_by).outerjoin(bl, bl.id == a.bank_line_id)
    if unlinked_only:
        query = query.where(a.bank_line_id.is_(None))
    return [dict(r._mapping) for r in session.execute(query.order_by(a.imported_at, a.id)).all()]


def linked_count(session: Session) -> int:
    return session.execute(select(func.count()).select_from(tables.Advice)
                           .where(tables.Advice.bank_line_id.is_not(None))).scalar_one()


def link_by_hand(session: Session, advice_ref: str, line_ref: str | None, *, actor: str, now: datetime,
                 account: str | None = None) -> dict[str, Any]:
    """A person links an advice to a bank line (or unlinks it: line_ref None); the next run decides from it."""
    import json

    from reconcile.core.errors import NotFoundError, ReconcileError

    a, bl = tables.Advice, tables.BankLine
    advice = session.execute(select(a).where(a.advice_ref == advice_ref)).scalar_one_or_none()
    if advice is None:
        raise NotFoundError(f"no advice {advice_ref!r} (see `reconcile advices list`)")
    if line_ref is None:
        if advice.bank_line_id is None:
            raise ReconcileError(f"advice {advice_ref} is not linked")
        was = advice.bank_line_id
        session.execute(update(a.__table__).where(a.__table__.c.id == advice.id).values(
            bank_line_id=None, linked_by=None, linked_at=None))
        session.add(tables.AuditEntry(at=now, actor=actor, action="advice_unlink", bank_line_id=was,
                                      reason=advice_ref, details=json.dumps({"advice": advice_ref})))
        return {"advice_ref": advice_ref, "bank_line": None}
    query = select(bl).where(bl.source_ref == line_ref)
    if account:
        query = query.where(bl.account == account)
    lines = session.execute(query).scalars().all()
    if len(lines) != 1:
        raise ReconcileError(f"bank line {line_ref}: "
                             f"{'not found' if not lines else 'on several accounts: name --account'}")
    line = lines[0]
    if line.status not in ("unmatched", "exception"):
        raise ReconcileError(f"bank line {line_ref} is {line.status}: unapply it first to let an advice decide it")
    taken = session.execute(select(a.advice_ref).where(a.bank_line_id == line.id, a.id != advice.id)).scalar()
    if taken:
        raise ReconcileError(f"bank line {line_ref} is already linked to advice {taken}")
    session.execute(update(a.__table__).where(a.__table__.c.id == advice.id).values(
        bank_line_id=line.id, linked_by=actor, linked_at=now))
    session.add(tables.AuditEntry(at=now, actor=actor, action="advice_link", bank_line_id=line.id,
                                  reason=advice_ref, details=json.dumps({"advice": advice_ref})))
    return {"advice_ref": advice_ref, "bank_line": line_ref}
