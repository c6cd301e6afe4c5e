"""Learning: a resolution that ties a payer to a customer teaches the next run; forget and reopen take it back."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from reconcile.core.errors import NotFoundError, ReconcileError
from reconcile.queue import learning
from reconcile.queue.actions import Decision, reopen, resolve
from reconcile.services import daily as service
from reconcile.services import exports as export
from reconcile.store import db, tables
from tests.builders import bank_line, ingest_lines, write_snapshot
from tests.integration.test_queue_actions import AS_OF, CONFIG, LATER, items

IBAN = "DE89 3704 0044 0532 0130 00"
NORMALISED = "DE89370400440532013000"


def _first_payment_queued(engine: Engine, tmp_path: Path) -> int:
    service.load_ar(engine, write_snapshot(
        tmp_path / "ar",
        customers=[{"customer_id": "C1", "name": "Acme Trading"}, {"customer_id": "C2", "name": "Brick Works"}],
        invoices=[
            {"invoice_number": "A-3", "customer_id": "C1", "amount": "77.00"},
            {"invoice_number": "A-4", "customer_id": "C1", "amount": "45.00", "due_date": "2026-12-15"},
            {"invoice_number": "B-1", "customer_id": "C2", "amount": "45.00"},
        ],
    ))
    ingest_lines(engine, [bank_line("Z1", "77.00", name="Zephyr Holdings", account=IBAN, remittance="thanks")])
    assert service.run_posting(engine, config=CONFIG, as_of=AS_OF, now=LATER).lines_exception == 1
    return items(engine)["Z1"]


def _second_payment(engine: Engine) -> service.RunSummary:
    ingest_lines(engine, [bank_line("Z2", "45.00", name="ZEPHYR HOLDINGS", account=IBAN, remittance="december",
                                    booking_date="2026-11-24")], digest="second")
    return service.run_posting(engine, config=CONFIG, as_of=AS_OF, now=LATER)


def _learned(engine: Engine) -> list[tuple]:
    return learning.list_learned(engine, include_inactive=True).select(
        "kind", "customer_id", "value", "source", "created_by", "active").rows()


def test_a_resolution_stores_the_payer_with_who_and_when(engine, tmp_path: Path) -> None:
    key = _first_payment_queued(engine, tmp_path)
    done = resolve(engine, key, Decision("allocate", parts=(("A-3", None),)), actor="alice", now=LATER,
                   config=CONFIG.queue)
    assert {(r["kind"], r["value"]) for r in done["learned"]} == {("account", NORMALISED), ("alias", "Zephyr Holdings")}
    assert sorted(_learned(engine)) == [
        ("account", "C1", NORMALISED, "learned", "alice", True),
        ("alias", "C1", "Zephyr Holdings", "learned", "alice", True),
    ]
    assert learning.list_learned(engine)["created_at"].null_count() == 0
    with db.transaction(engine) as session:
        a = tables.AuditEntry
        assert session.execute(select(a.actor).where(a.action == "learn")).scalars().all() == ["alice"]
    # what the next run reads
    book = service.load_book(engine)
    assert ("C1", NORMALISED) in book.payer_accounts.rows()
    assert ("C1", "Zephyr Holdings") in book.aliases.rows()


def test_the_same_payers_next_payment_is_posted_automatically(engine, tmp_path: Path) -> None:
    key = _first_payment_queued(engine, tmp_path)
    resolve(engine, key, Decision("allocate", parts=(("A-3", None),)), actor="alice", now=LATER, config=CONFIG.queue)
    summary = _second_payment(engine)
    assert summary.lines_posted == 1
    posted = export.allocations_frame(engine).filter(source_ref="Z2")
    assert posted.select("invoice_number", "amount").rows() == [("A-4", "45.00")]


def test_forget_and_reopen_take_the_lesson_back(engine, tmp_path: Path) -> None:
    key = _first_payment_queued(engine, tmp_path)
    resolve(engine, key, Decision("allocate", parts=(("A-3", None),)), actor="alice", now=LATER, config=CONFIG.queue)
    forgotten = learning.forget(engine, account="de89 3704 0044 0532 0130 00", actor="bob", now=LATER)
    assert [(r["customer_id"], r["value"]) for r in forgotten] == [("C1", NORMALISED)]
    assert ("account", "C1", NORMALISED, "learned", "alice", False) in _learned(engine)
    with pytest.raises(NotFoundError, match="no learned account"):
        learning.forget(engine, account=IBAN, actor="bob", now=LATER)
    with pytest.raises(ReconcileError, match="exactly one"):
        learning.forget(engine, actor="bob", now=LATER)
    reopen(engine, key, actor="bob", now=LATER, reason="not Zephyr's invoice")
    assert [row[-1] for row in _learned(engine)] == [False, False]
    assert _second_payment(engine).lines_posted == 0


def test_no_learning_when_asked_not_to(engine, tmp_path: Path) -> None:
    key = _first_payment_queued(engine, tmp_path)
    resolve(engine, key, Decision("allocate", parts=(("A-3", None),), learn=False), actor="alice", now=LATER,
            config=CONFIG.queue)
    assert _learned(engine) == []


def test_a_customer_number_written_on_every_payment_is_learned_once_it_repeats(engine, tmp_path: Path) -> None:
    """Payments from changing accounts and names that always carry the customer's own number 'KD-4711'."""
    service.load_ar(engine, write_snapshot(
        tmp_path / "ar",
        customers=[{"customer_id": "C1", "name": "Acme Trading"}, {"customer_id": "C2", "name": "Brick Works"}],
        invoices=[
            {"invoice_number": "A-3", "customer_id": "C1", "amount": "77.00"},
            {"invoice_number": "A-4", "customer_id": "C1", "amount": "45.00"},
            {"invoice_number": "A-5", "customer_id": "C1", "amount": "12.00"},
            {"invoice_number": "B-1", "customer_id": "C2", "amount": "12.00"},
        ],
    ))
    ingest_lines(engine, [
        bank_line("K1", "77.00", name="J SMITH", remittance="KD-4711 october"),
        bank_line("K2", "45.00", name="PAYROLL SERVICES", remittance="Kd-4711 november", booking_date="2026-11-24"),
    ])
    service.run_posting(engine, config=CONFIG, as_of=AS_OF, now=LATER)
    queued = items(engine)
    first = resolve(engine, queued["K1"], Decision("allocate", parts=(("A-3", None),)), actor="alice", now=LATER,
                    config=CONFIG.queue)
    assert not [r for r in first["learned"] if r["value"].startswith("REF:")]  # seen once: not a pattern yet
    second = resolve(engine, queued["K2"], Decision("allocate", parts=(("A-4", None),)), actor="bob", now=LATER,
                     config=CONFIG.queue)
    assert [r["value"] for r in second["learned"] if r["value"].startswith("REF:")] == ["REF:KD4711"]
    ingest_lines(engine, [bank_line("K3", "12.00", name="SOMEONE ELSE", remittance="kd 4711? no: KD-4711 dec",
                                    booking_date="2026-11-24")], digest="third")
    assert service.run_posting(engine, config=CONFIG, as_of=AS_OF, now=LATER).lines_posted == 1
    assert export.allocations_frame(engine).filter(source_ref="K3").select("invoice_number").rows() == [("A-5",)]
