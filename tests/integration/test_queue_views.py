"""Queue views: filters by reason, age, amount, assignee and account; oldest or largest first; counts per reason;
SLA flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconcile.core.errors import ReconcileError
from reconcile.queue import views as queue
from reconcile.queue.actions import Decision, assign, resolve
from reconcile.queue.views import QueueFilter
from reconcile.services import daily as service
from tests.builders import bank_line, ingest_lines
from tests.integration.test_queue_actions import AS_OF, CONFIG, LATER, queued_book


def refs(frame) -> list[str]:  # type: ignore[no-untyped-def]
    return frame["source_ref"].to_list()


def test_filters_and_sorting(engine, tmp_path: Path) -> None:
    ids = queued_book(engine, tmp_path)
    ingest_lines(engine, [bank_line("K1", "5.00", name="Kiosk", booking_date="2026-11-01")],
                 account="DE02100100100006820101")
    service.run_posting(engine, config=CONFIG, as_of=AS_OF, now=LATER)
    assign(engine, ids["Q3"], "carol", actor="lead", now=LATER)

    def shown(sort: str = "oldest", **filters) -> list[str]:  # type: ignore[no-untyped-def]
        return refs(queue.list_items(engine, filters=QueueFilter(**filters), sort=sort, as_of=AS_OF,
                                     config=CONFIG.queue))

    assert shown() == ["K1", "Q1", "Q2", "Q3", "Q4"]
    assert shown("largest") == ["Q2", "Q4", "Q3", "Q1", "K1"]
    assert shown(reason="unknown_currency") == ["Q2"]
    assert shown(account="DE02100100100006820101") == ["K1"]
    assert shown(assignee="carol") == ["Q3"] and shown(assignee="none") == ["K1", "Q1", "Q2", "Q4"]
    assert shown(min_amount="77.00") == ["Q2", "Q3", "Q4"] and shown(max_amount="30") == ["K1", "Q1"]
    assert shown(min_age_days=5) == ["K1", "Q1"]
    assert shown(currency="usd") == ["Q2"]
    resolve(engine, ids["Q1"], Decision("accept"), actor="alice", now=LATER, config=CONFIG.queue)
    assert shown(status="resolved") == ["Q1"] and shown(status=None) == ["K1", "Q1", "Q2", "Q3", "Q4"]
    with pytest.raises(ReconcileError, match="unknown sort"):
        shown("random")
    with pytest.raises(ReconcileError, match="not a decimal amount"):
        shown(min_amount="lots")


def test_counts_amounts_per_reason_and_sla_flags(engine, tmp_path: Path) -> None:
    queued_book(engine, tmp_path)
    frame = queue.list_items(engine, as_of=AS_OF, config=CONFIG.queue)
    # sla_days = 3: Q1 is 14 days old, Q2 4 days, Q3 and Q4 1 day
    assert dict(zip(frame["source_ref"], frame["over_sla"])) == {"Q1": True, "Q2": True, "Q3": False, "Q4": False}
    assert dict(zip(frame["source_ref"], frame["age_days"])) == {"Q1": 14, "Q2": 4, "Q3": 1, "Q4": 1}
    counts = {r["reason"]: r for r in queue.summary(engine, as_of=AS_OF, config=CONFIG.queue)}
    assert sum(r["count"] for r in counts.values()) == 4
    assert counts["unknown_currency"]["amounts"] == {"USD": "250.00"}
    assert counts["ambiguous"]["over_sla"] == 1 and counts["ambiguous"]["oldest"] == "2026-11-10"
    eur = sum(int(r["amounts"].get("EUR", "0").replace(".", "")) for r in counts.values())
    assert eur == 3000 + 7700 + 15000
