"""Which payer names a resolution may teach: only names that identify this customer and no other."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from reconcile.queue import learning
from reconcile.services import daily
from reconcile.store import db, tables
from tests.builders import bank_line, ingest_lines, write_snapshot

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


@pytest.fixture
def book(engine: Engine, tmp_path: Path) -> Engine:
    daily.load_ar(engine, write_snapshot(
        tmp_path / "ar",
        customers=[{"customer_id": "C1", "name": "Acme Trading"}, {"customer_id": "C2", "name": "Brick Works"},
                   {"customer_id": "C3", "name": "Zephyr Holdings", "aliases": "Zephyr Maritime"}],
        invoices=[{"invoice_number": "A-3", "customer_id": "C1", "amount": "77.00"}],
    ))
    ingest_lines(engine, [
        bank_line("L1", "10.00", name="J SMITH"),
        bank_line("L2", "10.00", name="SMITH J."),
        bank_line("L3", "10.00", name="ZEPHYR MARITIME"),          # C3's alias, in capitals
        bank_line("L4", "10.00", name="MARITIME ZEPHYR LTD"),      # the same words in another order
        bank_line("L5", "10.00", name="Orion Lighthouse Services"),
        bank_line("L6", "10.00", name="A & B GMBH"),
    ])
    return engine


def _learn(engine: Engine, source_ref: str, customer: str) -> list[str]:
    with db.transaction(engine) as session:
        line = session.execute(select(tables.BankLine).where(tables.BankLine.source_ref == source_ref)).scalar_one()
        return [r["value"] for r in learning.learn_payer(session, line, customer, actor="alice", now=NOW)
                if r["kind"] == "alias"]


@pytest.mark.parametrize("source_ref", ["L1", "L2", "L6"])
def test_a_generic_name_is_never_learned(book: Engine, source_ref: str) -> None:
    assert _learn(book, source_ref, "C1") == []


@pytest.mark.parametrize("source_ref", ["L3", "L4"])
def test_a_name_that_already_points_to_another_customer_is_not_learned(book: Engine, source_ref: str) -> None:
    assert _learn(book, source_ref, "C1") == []
    assert _learn(book, source_ref, "C3") in ([], ["MARITIME ZEPHYR LTD"])  # for its own customer: harmless


def test_a_distinctive_name_is_learned_for_one_customer_only(book: Engine) -> None:
    assert _learn(book, "L5", "C1") == ["Orion Lighthouse Services"]
    assert _learn(book, "L5", "C2") == []  # now it points to C1
    with db.transaction(book) as session:
        refusals = [row for row in session.execute(
            select(tables.AuditEntry.details).where(tables.AuditEntry.action == "learn")).scalars()
            if "name_not_learned" in row]
    assert any("already names customer C1" in row for row in refusals)


def test_a_name_under_which_payments_went_to_another_customer_is_not_learned(book: Engine) -> None:
    with db.transaction(book) as session:
        assert learning.name_refusal(session, "Orion Lighthouse Services", "C2") is None
    # a payment under this name was posted to C1 (a person decided it; no alias was kept)
    with db.transaction(book) as session:
        line = session.execute(select(tables.BankLine).where(tables.BankLine.source_ref == "L5")).scalar_one()
        posting = tables.Posting(bank_line_id=line.id, generation=0, posted_at=NOW, posted_by="alice")
        session.add(posting)
        session.flush()
        session.add(tables.Allocation(posting_id=posting.id, bank_line_id=line.id, kind="invoice", customer_id="C1",
                                      invoice_number="A-3", amount_minor=1000, currency="EUR", rule="manual",
                                      confidence=1.0, posted_at=NOW))
    with db.transaction(book) as session:
        assert "posted to customer C1" in learning.name_refusal(session, "Orion Lighthouse Services", "C2")
