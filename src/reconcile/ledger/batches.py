"""Posting batches: what reconcile posted, handed to the receivables system once, in numbered files.

`export_postings` puts every allocation row that is in no batch yet (allocations and the reversal rows of
anything unapplied or returned) into one new batch, B000001, B000002, ... (CONTRACTS section 5). The
database assigns the rows in one statement, so a batch made while a run is posting holds only rows that
were committed when it was made; the file is written beside the commit and renamed into place after it,
and a batch, once made, never changes: `rewrite_batch` writes it again byte for byte (checked against the
stored hash) when a file was lost.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.orm import Session

from reconcile.core.errors import NotFoundError, ReconcileError
from reconcile.services.exports import ALLOCATION_COLUMNS, decimal_text, write_csv
from reconcile.store import db, repo, tables

# the contract's columns, then what a row paid in another currency settles in the invoice's currency
BATCH_COLUMNS = [*ALLOCATION_COLUMNS, "batch_id", "posting_id", "reverses_posting_id", "settled_amount",
                 "settled_currency"]


def batch_id(seq: int) -> str:
    return f"B{seq:06d}"


def batch_seq(batch: str) -> int:
    """"B000007" -> 7; anything else is a clear error (it comes from a snapshot manifest or a person)."""
    text_ = batch.strip().upper()
    if len(text_) < 2 or text_[0] != "B" or not text_[1:].isdigit():
        raise ReconcileError(f"{batch!r} is not a posting batch id (they look like B000007)")
    return int(text_[1:])


@dataclass(frozen=True)
class BatchResult:
    batch_id: str | None      # None: nothing new to hand over
    rows: int
    path: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {"batch_id": self.batch_id, "rows": self.rows, "file": self.path}


def _rows(session: Session, seq: int) -> pl.DataFrame:
    a, bl = tables.Allocation, tables.BankLine
    query = (
        select(bl.source_ref, bl.account, bl.booking_date, a.customer_id, a.invoice_number, a.installment_no,
               a.kind, a.amount_minor, a.currency, a.rule, a.confidence, a.run_id, a.id, a.reverses_id,
               a.settled_amount_minor, a.settled_currency)
        .join(bl, bl.id == a.bank_line_id).where(a.batch_seq == seq).order_by(a.id)
    )
    frame = repo.frame_of(session, query, {
        "source_ref": pl.String(), "account": pl.String(), "booking_date": pl.Date(),
        "customer_id": pl.String(), "invoice_number": pl.String(), "installment_no": pl.Int64(),
        "kind": pl.String(), "amount_minor": pl.Int64(), "currency": pl.String(), "rule": pl.String(),
        "confidence": pl.Float64(), "run_id": pl.String(), "posting_id": pl.Int64(),
        "reverses_posting_id": pl.Int64(), "settled_amount_minor": pl.Int64(), "settled_currency": pl.String(),
    })
    return frame.with_columns(
        decimal_text(pl.col("amount_minor"), pl.col("currency")).alias("amount"),
        pl.col("confidence").round(4),
        pl.lit(batch_id(seq)).alias("batch_id"),
        pl.when(pl.col("settled_amount_minor").is_not_null())
        .then(decimal_text(pl.col("settled_amount_minor"), pl.col("settled_currency"))).alias("settled_amount"),
    ).select(BATCH_COLUMNS)


def _file_bytes(frame: pl.DataFrame, scratch: Path) -> bytes:
    """The batch file's exact bytes, written by the one CSV writer of the exports."""
    write_csv(frame, scratch)
    try:
        return scratch.read_bytes()
    finally:
        scratch.unlink(missing_ok=True)


def _lock(session: Session) -> None:
    # one batch at a time: two exporters must not both take "the rows in no batch" (SQLite writers queue anyway)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE posting_batches IN EXCLUSIVE MODE"))


def export_postings(engine: Engine, directory: str | Path, *, actor: str, now: datetime) -> BatchResult:
    """Every posting in no batch yet, as one new batch file DIR/<batch_id>.csv; nothing new: no file."""
    folder = Path(directory)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReconcileError(f"{folder}: cannot create the folder: {exc.strerror or exc}") from None
    pending: Path | None = None
    try:
        with db.transaction(engine) as session:
            _lock(session)
            seq = (session.execute(select(func.max(tables.PostingBatch.seq))).scalar() or 0) + 1
            a = tables.Allocation.__table__
            taken = repo.changed(session, update(a).where(a.c.batch_seq.is_(None)).values(batch_seq=seq))
            if not taken:
                return BatchResult(None, 0)
            name = batch_id(seq)
            data = _file_bytes(_rows(session, seq), folder / f".{name}.csv.scratch")
            digest = hashlib.sha256(data).hexdigest()
            session.add(tables.PostingBatch(seq=seq, batch_id=name, created_at=now, created_by=actor,
                                            row_count=taken, sha256=digest))
            session.add(tables.AuditEntry(at=now, actor=actor, action="export_batch", reason=name,
                                          details=json.dumps({"batch_id": name, "rows": taken,
                                                              "sha256": digest, "folder": str(folder)})))
            pending = folder / f".{name}.csv.part"
            pending.write_bytes(data)
            session.flush()
        target = folder / f"{name}.csv"
        os.replace(pending, target)  # only after the commit: a file on disk is always a made batch
        pending = None
        return BatchResult(name, taken, str(target))
    except OSError as exc:
        raise ReconcileError(f"{folder}: cannot write the batch file: {exc.strerror or exc}") from None
    finally:
        if pending is not None:
            pending.unlink(missing_ok=True)


def rewrite_batch(engine: Engine, batch: str, directory: str | Path) -> BatchResult:
    """Write an existing batch's file again (a lost or damaged copy): the same bytes, checked by hash."""
    seq = batch_seq(batch)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    with db.transaction(engine) as session:
        made = session.get(tables.PostingBatch, seq)
        if made is None:
            raise NotFoundError(f"no posting batch {batch_id(seq)}")
        data = _file_bytes(_rows(session, seq), folder / f".{made.batch_id}.csv.scratch")
    if hashlib.sha256(data).hexdigest() != made.sha256:
        raise ReconcileError(f"batch {made.batch_id} no longer reads as it was written (its rows changed?): "
                             "run `reconcile check`")
    target = folder / f"{made.batch_id}.csv"
    target.write_bytes(data)
    return BatchResult(made.batch_id, made.row_count, str(target))


def last_batch_seq(session: Session) -> int:
    return session.execute(select(func.max(tables.PostingBatch.seq))).scalar() or 0


def list_batches(engine: Engine) -> list[dict[str, object]]:
    b = tables.PostingBatch
    with db.transaction(engine) as session:
        rows = session.execute(select(b.batch_id, b.created_at, b.created_by, b.row_count, b.sha256)
                               .order_by(b.seq)).all()
    return [{"batch_id": r[0], "created_at": str(r[1]), "created_by": r[2], "rows": r[3], "sha256": r[4]}
            for r in rows]
