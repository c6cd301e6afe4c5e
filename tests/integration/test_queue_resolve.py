"""Resolving a queued line by hand posts through the ledger, once, and refuses what does not add up."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from reconcile.config import load_config
from reconcile.core.errors import NotFoundError, ReconcileError
from reconcile.queue.actions import resolve_item
from reconcile.services import daily as service
from reconcile.services import exports as export
from reconcile.store import db, tables
from tests.builders import NOW, bank_line, ingest_lines, write_snapshot

CONFIG = load_config(Path(__file__).resolve().parents[2] / "config")


def _queued(engine, tmp_path: Path) -> int:  # type: ignore[no-untyped-def]
    service.load_ar(engine, write_snapshot(
        tmp_path / "ar",
        customers=[{"customer_id": "C1", "name": "Acme"}, {"customer_id": "C2", "name": "Other"}],
        invoices=[
            {"invoice_number": "A-1", "customer_id": "C1", "amount": "60.00"},
            {"invoice_number": "A-2", "customer_id": "C1", "amount": "30.00"},
            {"invoice_number": "B-1", "customer_id": "C2", "amount": "10.00"},
        ],
    ))
    ingest_lines(engine, [bank_line("Q1", "100.00", name="ACME", remittance="see attached")])
    service.run_posting(engine, config=CONFIG, as_of=date(2026, 11, 24), now=NOW)
    with db.transaction(engine) as session:
        return session.execute(select(tables.ExceptionItem.id)).scalar_one()


def test_resolve_allocates_in_order_and_keeps_the_rest_on_account(engine, tmp_path: Path) -> None:
    key = _queued(engine, tmp_path)
    rows = resolve_item(engine, key, ["A-1", "A-2"], actor="alice", now=NOW, config=CONFIG.queue)
    assert [(r["kind"], r["invoice_number"], r["amount"]) for r in rows] == [
        ("invoice", "A-1", "60.00"), ("invoice", "A-2", "30.00"), ("on_account", None, "10.00"),
    ]
    exported = export.allocations_frame(engine)
    assert exported.select("invoice_number", "amount", "rule").rows() == [
        ("A-1", "60.00", "manual"), ("A-2", "30.00", "manual"), (None, "10.00", "manual")]
    assert export.exceptions_frame(engine)["status"].to_list() == ["resolved"]
    with pytest.raises(ReconcileError, match="already resolved by alice"):
        resolve_item(engine, key, ["A-1"], actor="bob", now=NOW, config=CONFIG.queue)
    assert export.allocations_frame(engine).height == 3


@pytest.mark.parametrize(
    ("invoices", "error", "match"),
    [(["NOPE"], NotFoundError, "unknown invoice"), (["A-1", "B-1"], ReconcileError, "one customer")],
)
def test_bad_decisions_change_nothing(engine, tmp_path: Path, invoices: list[str], error: type, match: str) -> None:
    key = _queued(engine, tmp_path)
    with pytest.raises(error, match=match):
        resolve_item(engine, key, invoices, actor="alice", now=NOW, config=CONFIG.queue)
    assert export.allocations_frame(engine).height == 0
    assert export.exceptions_frame(engine)["status"].to_list() == ["open"]
