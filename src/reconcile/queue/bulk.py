"""Bulk decisions: a CSV of decisions validated as a whole, applied as one batch, undone as one batch.

Every row is read and planned (queue_actions.plan_decision, against one view
of the open book, so two rows cannot spend the same open amount) before
anything is written; any error names its CSV line and nothing is applied.
A good file is applied in one transaction under a batch id; undo_batch
reopens every item of the batch (reversing postings) in one transaction.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from reconcile.config import QueueConfig
from reconcile.core.codes import ItemStatus
from reconcile.core.errors import InputError, NotFoundError, ReconcileError
from reconcile.queue.actions import (
    ACTIONS,
    Decision,
    OpenView,
    apply_plan,
    check_open,
    plan_decision,
    reopen_in,
)
from reconcile.queue.views import find_item
from reconcile.store import db, tables

COLUMNS = ("exception", "action", "invoices", "customer", "choice", "code", "rest_on_account", "note", "learn")
REQUIRED = ("exception", "action")
TRUE, FALSE = ("1", "yes", "y", "true"), ("", "0", "no", "n", "false")


class BulkError(ReconcileError):
    """A decisions file with errors: every error names its row; nothing was applied."""

    def __init__(self, errors: list[InputError]) -> None:
        self.errors = errors
        shown = "\n".join(str(e) for e in errors[:50])
        more = f"\n... and {len(errors) - 50} more" if len(errors) > 50 else ""
        super().__init__(f"{len(errors)} error(s), nothing applied:\n{shown}{more}")


@dataclass(frozen=True)
class BulkResult:
    batch: str | None
    applied: int
    rows: list[dict[str, Any]]


def new_batch_id(now: datetime) -> str:
    return f"batch-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def _flag(text: str, column: str, default: bool) -> bool:
    value = text.strip().lower()
    if value == "":
        return default
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ValueError(f"{column} must be yes or no, not {text!r}")


def parse_row(row: dict[str, str]) -> Decision:
    """One CSV row -> Decision (ValueError with the reason when the row cannot be read)."""
    action = row.get("action", "").strip().lower().replace("-", "_")
    if action not in ACTIONS:
        raise ValueError(f"action {row.get('action', '')!r} is not one of {', '.join(ACTIONS)}")
    targets = [t.strip() for t in row.get("invoices", "").split("|") if t.strip()]
    parts = []
    for target in targets:
        name, sep, amount = target.partition("=")
        parts.append((name.strip(), amount.strip() if sep else None))
    choice_text = row.get("choice", "").strip()
    if choice_text and not choice_text.isdigit():
        raise ValueError(f"choice must be a suggestion number, not {choice_text!r}")
    if action == "write_off" and len(parts) != 1:
        raise ValueError("a write_off names exactly one invoice in the invoices column")
    if action == "allocate" and not parts:
        raise ValueError("allocate needs the invoices column (INV-1=60.00|INV-2=40.00, or on_account)")
    return Decision(
        action=action,
        parts=tuple(parts) if action == "allocate" else (),
        choice=int(choice_text) if choice_text else 1,
        customer=row.get("customer", "").strip() or None,
        rest_on_account=_flag(row.get("rest_on_account", ""), "rest_on_account", False),
        invoice=parts[0][0] if action == "write_off" else None,
        code=row.get("code", "").strip() or None,
        note=row.get("note", "").strip() or None,
        learn=_flag(row.get("learn", ""), "learn", True),
    )


def read_decisions(path: str | Path, data: bytes | None = None) -> list[tuple[int, dict[str, str]]]:
    """(CSV line number, row) pairs; a file that is not a decisions CSV raises InputError."""
    path = Path(path)
    try:
        raw = data if data is not None else path.read_bytes()
        text = raw.decode("utf-8-sig")
    except OSError as exc:
        raise InputError(path, None, f"cannot read the file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise InputError(path, None, "not UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in reader.fieldnames or []]
    if not header:
        raise InputError(path, "line 1", "empty file: expected a header row")
    unknown = [h for h in header if h not in COLUMNS]
    missing = [h for h in REQUIRED if h not in header]
    if unknown or missing:
        why = "; ".join(filter(None, [
            f"unknown column(s) {', '.join(unknown)}" if unknown else "",
            f"missing column(s) {', '.join(missing)}" if missing else "",
        ]))
        raise InputError(path, "line 1", f"{why} (columns: {', '.join(COLUMNS)})")
    reader.fieldnames = header
    rows = []
    for row in reader:
        if None in row:
            raise InputError(path, f"line {reader.line_num}", "more fields than the header has")
        if not any((v or "").strip() for v in row.values()):
            continue
        rows.append((reader.line_num, {k: (v or "") for k, v in row.items()}))
    if not rows:
        raise InputError(path, None, "no decisions in the file")
    return rows


def bulk_resolve(
    engine: Engine, path: str | Path, *, actor: str, now: datetime, config: QueueConfig,
    dry_run: bool = False, data: bytes | None = None,
) -> BulkResult:
    """Validate every row of a decisions CSV, then apply them all as one batch (or none)."""
    qs = config
    rows = read_decisions(path, data)
    errors: list[InputError] = []
    decisions: list[tuple[int, Decision, str]] = []
    for number, row in rows:
        try:
            decisions.append((number, parse_row(row), row["exception"].strip()))
        except ValueError as exc:
            errors.append(InputError(path, f"line {number}", str(exc)))
    batch = None if dry_run else new_batch_id(now)
    with db.transaction(engine) as session:
        view = OpenView(session)
        plans = []
        seen: dict[int, int] = {}
        for number, decision, key in decisions:
            try:
                if not key:
                    raise ReconcileError("the exception column is empty")
                item, line = find_item(session, key)
                if item.id in seen:
                    raise ReconcileError(f"exception {item.id} is decided twice in this file "
                                         f"(also line {seen[item.id]})")
                seen[item.id] = number
                check_open(item, line, actor, now, qs)
                plan = plan_decision(session, item, line, decision, view=view, qs=qs)
                if plan.kind == "pending":
                    raise ReconcileError(
                        f"a write-off of {plan.details['write_off']} is above the approval limit of "
                        f"{qs.write_off_approval_limit}: propose it on its own (`reconcile exceptions resolve`)")
                plans.append((number, plan))
            except ReconcileError as exc:
                errors.append(InputError(path, f"line {number}", str(exc)))
        if errors:
            raise BulkError(errors)
        if dry_run:
            return BulkResult(None, 0, [
                {"line": n, "id": p.item_id, "decision": p.decision.action, "allocations": p.shown_rows()}
                for n, p in plans
            ])
        done = [
            {"line": number, **apply_plan(session, plan, actor=actor, now=now, business_date=qs.business_date(now),
                                          batch=batch, learn=qs.learn)}
            for number, plan in plans
        ]
        session.add(tables.AuditEntry(at=now, actor=actor, action="bulk", reason=batch, details=json.dumps(
            {"batch": batch, "file": str(path), "items": [d["id"] for d in done]})))
        return BulkResult(batch, len(done), done)


def undo_batch(engine: Engine, batch: str, *, actor: str, now: datetime, reason: str | None = None,
               business_date: date | None = None) -> dict[str, Any]:
    """Reopen every item a batch resolved (postings reversed, skipped lines queued again), all or nothing."""
    ex, a = tables.ExceptionItem, tables.AuditEntry
    with db.transaction(engine) as session:
        undone = session.execute(
            select(func.count()).select_from(a).where(a.action == "undo", a.reason == batch)).scalar_one()
        if undone:
            raise ReconcileError(f"batch {batch} was already undone")
        ids = session.execute(
            select(ex.id).where(ex.resolution_batch == batch, ex.status == ItemStatus.RESOLVED).order_by(ex.id)
        ).scalars().all()
        if not ids:
            raise NotFoundError(f"no resolved items in batch {batch}")
        why = reason or f"undo {batch}"
        results = []
        for item_id in ids:
            item, line = find_item(session, item_id)
            results.append(reopen_in(session, item, line, actor=actor, now=now,
                                     business_date=business_date or now.date(), reason=why, batch=batch))
        session.add(tables.AuditEntry(at=now, actor=actor, action="undo", reason=batch,
                                      details=json.dumps({"batch": batch, "why": why, "items": ids})))
        return {"batch": batch, "reopened": results}
