"""Small reads the web pages need that no service offers yet: the runs list, a line's posted rows,
and a decision planned but not written (what a confirmation page shows).

Routers call these instead of touching tables; the planning is queue.actions' own planner, run in a
transaction that writes nothing.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from reconcile.config import QueueConfig
from reconcile.queue.actions import Decision, OpenView, Plan, check_open, plan_decision
from reconcile.queue.views import find_item
from reconcile.store import db, tables


def recent_runs(engine: Engine, *, limit: int = 100) -> list[dict[str, Any]]:
    r = tables.PostingRun
    with db.transaction(engine) as session:
        runs = session.execute(
            select(
                r.run_id,
                r.started_at,
                r.finished_at,
                r.as_of,
                r.status,
                r.dry_run,
                r.actor,
                r.summary,
            )
            .order_by(r.started_at.desc())
            .limit(limit)
        ).all()
    return [
        {**row._asdict(), "summary": json.loads(row.summary) if row.summary else {}} for row in runs
    ]


def line_rows(engine: Engine, account: str, source_ref: str) -> list[dict[str, Any]]:
    """Every allocation row of one bank line, oldest first: postings and their reversals."""
    al, bl = tables.Allocation, tables.BankLine
    with db.transaction(engine) as session:
        rows = session.execute(
            select(
                al.id,
                al.kind,
                al.customer_id,
                al.invoice_number,
                al.installment_no,
                al.amount_minor,
                al.currency,
                al.rule,
                al.run_id,
                al.reverses_id,
                al.posted_at,
            )
            .join(bl, bl.id == al.bank_line_id)
            .where(bl.account == account, bl.source_ref == source_ref)
            .order_by(al.id)
        ).all()
    return [dict(r._mapping) for r in rows]


def preview(
    engine: Engine,
    key: int,
    decision: Decision,
    *,
    actor: str,
    now: datetime,
    config: QueueConfig,
    approving: bool = False,
) -> Plan:
    """What `decision` would post for item `key` today (refused as resolve() would); no write."""
    with db.transaction(engine) as session:
        item, line = find_item(session, key)
        check_open(item, line, actor, now, config, approving=approving)
        if approving:
            decision = Decision.from_json(item.proposal or "{}")
        return plan_decision(
            session, item, line, decision, view=OpenView(session), qs=config, approving=approving
        )


def open_items_of(engine: Engine, customer: str) -> list[dict[str, Any]]:
    """A customer's open invoices with their installments (queue.views' reading of them)."""
    from reconcile.queue.views import customer_open_items

    with db.transaction(engine) as session:
        return customer_open_items(session, customer)
