"""Queue actions on both databases: each decision posts once through the ledger, audited; bad input changes nothing."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from reconcile.config import load_config
from reconcile.core.errors import NotFoundError, ReconcileError
from reconcile.queue import views as queue
from reconcile.queue.actions import (
    Decision,
    add_note,
    approve,
    assign,
    claim,
    release,
    reopen,
    resolve,
    withdraw,
)
from reconcile.services import daily as service
from reconcile.services import exports as export
from reconcile.services import ledger
from reconcile.store import db, tables
from tests.builders import NOW, bank_line, ingest_lines, write_snapshot

CONFIG = load_config(Path(__file__).resolve().parents[2] / "config")
AS_OF = date(2026, 11, 24)
LATER = NOW + timedelta(minutes=5)


def queued_book(engine: Engine, tmp_path: Path) -> dict[str, int]:
    """Four queued lines; returns exception id by source_ref.

    Q1 30.00 from Acme, which has two invoices of 30.00 (ambiguous); Q2 in USD, which nobody owes;
    Q3 77.00 from an unknown payer with an account; Q4 150.00 from Brick, whose invoice is a plan of 2 x 100.00.
    """
    service.load_ar(engine, write_snapshot(
        tmp_path / "ar",
        customers=[{"customer_id": "C1", "name": "Acme Trading"}, {"customer_id": "C2", "name": "Brick Works"}],
        invoices=[
            {"invoice_number": "A-1", "customer_id": "C1", "amount": "30.00", "due_date": "2026-10-15"},
            {"invoice_number": "A-2", "customer_id": "C1", "amount": "30.00"},
            {"invoice_number": "B-1", "customer_id": "C2", "amount": "200.00"},
        ],
        installments=[
            {"plan_id": "P1", "invoice_number": "B-1", "installment_no": "1", "due_date": "2026-11-01",
             "amount": "100.00"},
            {"plan_id": "P1", "invoice_number": "B-1", "installment_no": "2", "due_date": "2026-12-01",
             "amount": "100.00"},
        ],
    ))
    ingest_lines(engine, [
        bank_line("Q1", "30.00", name="ACME TRADING", booking_date="2026-11-10", remittance="payment"),
        bank_line("Q2", "250.00", currency="USD", name="Nobody", booking_date="2026-11-20"),
        bank_line("Q3", "77.00", name="Zephyr Holdings", account="DE89 3704 0044 0532 0130 00", remittance="thanks"),
        bank_line("Q4", "150.00", name="Brick Works", remittance="thanks"),
    ])
    summary = service.run_posting(engine, config=CONFIG, as_of=AS_OF, now=NOW)
    assert summary.lines_exception == 4 and summary.lines_posted == 0
    return items(engine)


def items(engine: Engine) -> dict[str, int]:
    with db.transaction(engine) as session:
        ex, bl = tables.ExceptionItem, tables.BankLine
        return dict(session.execute(
            select(bl.source_ref, ex.id).join(bl, bl.id == ex.bank_line_id).where(ex.status == "open")).all())


def open_amounts(engine: Engine) -> dict[str, int]:
    with db.transaction(engine) as session:
        inv, ins = tables.Invoice, tables.Installment
        found = dict(session.execute(select(inv.invoice_number, inv.open_amount_minor)).all())
        found.update({f"{n}#{no}": o for n, no, o in session.execute(
            select(ins.invoice_number, ins.installment_no, ins.open_amount_minor)).all()})
        return found


def audit(engine: Engine, action: str) -> list[tuple[str, str | None]]:
    with db.transaction(engine) as session:
        a = tables.AuditEntry
        return [tuple(r) for r in session.execute(select(a.actor, a.reason).where(a.action == action)
                                                  .order_by(a.id)).all()]


def line_status(engine: Engine, ref: str) -> str:
    with db.transaction(engine) as session:
        return session.execute(select(tables.BankLine.status).where(tables.BankLine.source_ref == ref)).scalar_one()


def allocations(engine: Engine) -> list[tuple]:
    return (export.allocations_frame(engine)
            .select("source_ref", "kind", "invoice_number", "installment_no", "amount").rows())


def snapshot(engine: Engine) -> tuple:
    """Everything a refused decision must leave alone."""
    with db.transaction(engine) as session:
        audit_rows = session.execute(select(func.count()).select_from(tables.AuditEntry)).scalar_one()
    return allocations(engine), open_amounts(engine), export.exceptions_frame(engine).rows(), audit_rows


def test_show_has_ranked_suggestions_with_evidence_and_the_customers_open_items(engine, tmp_path: Path) -> None:
    ids = queued_book(engine, tmp_path)
    item = queue.get_item(engine, "Q1", as_of=AS_OF, config=CONFIG.queue)
    assert item["id"] == ids["Q1"] and item["reason"] == "ambiguous"
    assert (item["counterparty_name"], item["remittance"], item["amount"]) == ("ACME TRADING", "payment", "30.00")
    assert [s["items"] for s in item["ranked_suggestions"]] == [["A-1"], ["A-2"]]
    best = item["ranked_suggestions"][0]
    assert (best["difference"], best["customer_name"]) == ("0.00", "Acme Trading")
    assert best["evidence"]["amount_agrees"] and best["evidence"]["name_score"] >= 90
    assert [o["invoice_number"] for o in item["open_items"]] == ["A-1", "A-2"]
    assert item["age_days"] == 14 and item["over_sla"] is True
    brick = queue.get_item(engine, ids["Q4"], as_of=AS_OF, config=CONFIG.queue)
    assert [(i["installment_no"], i["open"]) for i in brick["open_items"][0]["installments"]] == [
        (1, "100.00"), (2, "100.00")]


def test_accept_a_suggestion_posts_once_and_is_audited(engine, tmp_path: Path) -> None:
    ids = queued_book(engine, tmp_path)
    done = resolve(engine, ids["Q1"], Decision("accept", choice=2), actor="alice", now=LATER, config=CONFIG.queue)
    assert done["resolution"] == "accept" and done["customer_id"] == "C1"
    assert allocations(engine) == [("Q1", "invoice", "A-2", None, "30.00")]
    assert open_amounts(engine)["A-2"] == 0 and open_amounts(engine)["A-1"] == 3000
    item = queue.get_item(engine, ids["Q1"], config=CONFIG.queue)
    assert (item["status"], item["resolution"], item["resolved_by"]) == ("resolved", "accept", "alice")
    assert ("alice", None) in audit(engine, "resolve") and [a for a, _ in audit(engine, "post")] == ["alice"]
    with pytest.raises(ReconcileError, match="already resolved by alice"):
        resolve(engine, ids["Q1"], Decision("accept"), actor="bob", now=LATER, config=CONFIG.queue)
    assert len(allocations(engine)) == 1 and ledger.check(engine) == []


def test_manual_allocation_across_installments_with_amounts(engine, tmp_path: Path) -> None:
    ids = queued_book(engine, tmp_path)
    decision = Decision("allocate", parts=(("B-1#1", "100.00"), ("B-1#2", "50.00")), note="per phone call")
    resolve(engine, ids["Q4"], decision, actor="alice", now=LATER, config=CONFIG.queue)
    assert allocations(engine) == [("Q4", "installment", "B-1", 1, "100.00"), ("Q4", "installment", "B-1", 2, "50.00")]
    assert {k: v for k, v in open_amounts(engine).items() if k.startswith("B-1")} == {
        "B-1": 5000, "B-1#1": 0, "B-1#2": 5000}
    assert ledger.check(engine) == []


def test_remainder_on_account(engine, tmp_path: Path) -> None:
    ids = queued_book(engine, tmp_path)
    decision = Decision("allocate", parts=(("A-1", "30.00"), ("A-2", "30.00")), rest_on_account=True)
    resolve(engine, ids["Q3"], decision, actor="alice", now=LATER, config=CONFIG.queue)
    assert allocations(engine) == [("Q3", "invoice", "A-1", None, "30.00"), ("Q3", "invoice", "A-2", None, "30.00"),
                                   ("Q3", "on_account", None, None, "17.00")]
    assert export.allocations_frame(engine)["customer_id"].to_list() == ["C1", "C1", "C1"]


def test_whole_line_on_account(engine, tmp_path: Path) -> None:
    ids = queued_book(engine, tmp_path)
    resolve(engine, ids["Q3"], Decision("on_account", customer="C2"), actor="alice", now=LATER, config=CONFIG.queue)
    assert allocations(engine) == [("Q3", "on_account", None, None, "77.00")]


BAD_DECISIONS = [
    (Decision("allocate", parts=(("A-1", "30.00"), ("A-2", "30.00"))), ReconcileError,
     r"add up to 60.00, the payment is 77.00: 17.00 is unallocated"),
    (Decision("allocate", parts=(("A-1", "40.00"), ("A-2", "37.00"))), ReconcileError, "A-1 has 30.00 open"),
    (Decision("allocate", parts=(("NOPE", "77.00"),)), NotFoundError, "unknown invoice NOPE"),
    (Decision("allocate", parts=(("B-1#3", "77.00"),)), NotFoundError, "no installment 3"),
    (Decision("allocate", parts=(("A-1", "30.00"), ("B-1", "47.00"))), ReconcileError, "one customer"),
    (Decision("allocate", parts=(("A-1", "30.001"), ("A-2", "46.999"))), ReconcileError, "more decimals than EUR"),
    (Decision("allocate", parts=(("A-1", "abc"),)), ReconcileError, "not a decimal amount"),
    (Decision("allocate", parts=(("A-1", "30.00"), ("A-2", None))), ReconcileError, "amount for every invoice"),
    (Decision("allocate", parts=(("A-1", "50.00"), ("A-2", "30.00"))), ReconcileError, "A-1 has 30.00 open"),
    (Decision("accept", choice=1), ReconcileError, "no suggestion to accept"),
    (Decision("on_account"), ReconcileError, "name the customer"),
    (Decision("on_account", customer="C9"), NotFoundError, "unknown customer C9"),
    (Decision("not_receivable", code="gift"), ReconcileError, "category 'gift' is not one of"),
    (Decision("write_off", invoice="A-1", code="fee"), ReconcileError, "covers invoice A-1"),
    (Decision("write_off", invoice="B-1"), ReconcileError, "reason code"),
    (Decision("shred"), ReconcileError, "unknown action"),
    (Decision("refund"), ReconcileError, "claimed by bob"),
]


def test_bad_decisions_get_a_clear_error_and_change_nothing(engine, tmp_path: Path) -> None:
    """Q3 is 77.00 from an unknown payer; every decision below is refused and leaves everything as it was."""
    ids = queued_book(engine, tmp_path)
    before = snapshot(engine)
    for number, (decision, error, match) in enumerate(BAD_DECISIONS):
        if number == len(BAD_DECISIONS) - 1:
            claim(engine, ids["Q3"], actor="bob", now=LATER, config=CONFIG.queue)
            before = snapshot(engine)
        with pytest.raises(error, match=match):
            resolve(engine, ids["Q3"], decision, actor="alice", now=LATER, config=CONFIG.queue)
        assert snapshot(engine) == before, decision


def test_not_a_receivable_skips_the_line_and_reopen_queues_it_again(engine, tmp_path: Path) -> None:
    ids = queued_book(engine, tmp_path)
    done = resolve(engine, ids["Q2"], Decision("not_receivable", code="transfer", note="own account"),
                   actor="alice", now=LATER, config=CONFIG.queue)
    assert (done["resolution"], done["category"]) == ("not_receivable", "transfer")
    assert line_status(engine, "Q2") == "skipped" and allocations(engine) == []
    assert ledger.check(engine) == []
    back = reopen(engine, ids["Q2"], actor="bob", now=LATER, reason="it was a customer after all")
    assert back["reopened_as"] == ids["Q2"]
    assert line_status(engine, "Q2") == "exception" and items(engine)["Q2"] == ids["Q2"]
    assert ledger.check(engine) == []


def test_refund_takes_the_line_out_of_receivables(engine, tmp_path: Path) -> None:
    ids = queued_book(engine, tmp_path)
    done = resolve(engine, ids["Q3"], Decision("refund", note="not ours"), actor="alice", now=LATER,
                   config=CONFIG.queue)
    assert (done["resolution"], done["refund_to"], done["refund_amount"]) == (
        "refund", "DE89 3704 0044 0532 0130 00", "77.00")
    assert line_status(engine, "Q3") == "skipped" and ledger.check(engine) == []


def test_reopen_a_posted_resolution_reverses_it_exactly(engine, tmp_path: Path) -> None:
    ids = queued_book(engine, tmp_path)
    before = open_amounts(engine)
    resolve(engine, ids["Q1"], Decision("accept"), actor="alice", now=LATER, config=CONFIG.queue)
    back = reopen(engine, ids["Q1"], actor="bob", now=LATER, reason="wrong invoice")
    assert open_amounts(engine) == before
    assert [r[1] for r in allocations(engine)] == ["invoice", "reversal"]
    reopened = queue.get_item(engine, back["reopened_as"], config=CONFIG.queue)
    assert reopened["status"] == "open" and reopened["suggestions"] == ["A-1", "A-2"]
    assert reopened["evidence"]["original_reason"] == "ambiguous"
    with pytest.raises(ReconcileError, match="only a resolved item can be reopened"):
        reopen(engine, back["reopened_as"], actor="bob", now=LATER, reason="again")
    # a person reopened it: the next run leaves it to a person
    assert service.run_posting(engine, config=CONFIG, as_of=AS_OF, now=LATER).lines_posted == 0
    resolve(engine, back["reopened_as"], Decision("accept", choice=2), actor="bob", now=LATER, config=CONFIG.queue)
    assert ledger.check(engine) == []


def test_write_off_above_the_limit_waits_for_a_second_person(engine, tmp_path: Path) -> None:
    ids = queued_book(engine, tmp_path)
    before = snapshot(engine)[:3]
    done = resolve(engine, ids["Q3"], Decision("write_off", invoice="B-1", code="goodwill"),
                   actor="alice", now=LATER, config=CONFIG.queue)
    assert (done["status"], done["write_off"]) == ("pending_approval", "123.00")
    assert snapshot(engine)[:3] == before and line_status(engine, "Q3") == "exception"
    item = queue.get_item(engine, ids["Q3"], config=CONFIG.queue)
    assert (item["proposal"]["invoice"], item["proposed_by"], item["claimed_by"]) == ("B-1", "alice", "alice")
    assert queue.list_items(engine, filters=queue.QueueFilter(pending=True),
                            config=CONFIG.queue)["id"].to_list() == [ids["Q3"]]
    with pytest.raises(ReconcileError, match="alice proposed this write-off and cannot also approve it"):
        approve(engine, ids["Q3"], actor="alice", now=LATER, config=CONFIG.queue)
    with pytest.raises(ReconcileError, match="awaiting a second person's approval"):
        resolve(engine, ids["Q3"], Decision("on_account", customer="C2"), actor="alice", now=LATER, config=CONFIG.queue)
    assert service.run_posting(engine, config=CONFIG, as_of=AS_OF, now=LATER).lines_considered == 3
    withdraw(engine, ids["Q3"], actor="bob", now=LATER, reason="call the customer first")
    assert queue.get_item(engine, ids["Q3"], config=CONFIG.queue)["proposal"] is None
    assert [a for a, _ in audit(engine, "write_off_proposed")] == ["alice"]
    assert snapshot(engine)[:2] == before[:2]


def test_an_approved_write_off_posts_the_payment_and_the_difference(engine, tmp_path: Path) -> None:
    ids = queued_book(engine, tmp_path)
    resolve(engine, ids["Q3"], Decision("write_off", invoice="B-1", code="goodwill"), actor="alice", now=LATER,
            config=CONFIG.queue)
    done = approve(engine, ids["Q3"], actor="bob", now=LATER, config=CONFIG.queue)
    assert done["resolution"] == "write_off"
    # the plan's installments settled in full, the difference a negative write_off row: the rows add up to 77.00
    assert allocations(engine) == [("Q3", "installment", "B-1", 1, "100.00"), ("Q3", "installment", "B-1", 2, "100.00"),
                                   ("Q3", "write_off", "B-1", None, "-123.00")]
    assert export.allocations_frame(engine).filter(kind="write_off")["rule"].to_list() == ["goodwill"]
    assert open_amounts(engine)["B-1"] == 0 and open_amounts(engine)["B-1#2"] == 0
    assert audit(engine, "write_off") == [("bob", "goodwill")]
    item = queue.get_item(engine, ids["Q3"], config=CONFIG.queue)
    assert (item["resolved_by"], item["approved_by"], item["category"]) == ("alice", "bob", "goodwill")
    assert ledger.check(engine) == []


def test_write_off_within_the_limit_posts_at_once(engine, tmp_path: Path) -> None:
    ids = queued_book(engine, tmp_path)
    done = resolve(engine, ids["Q4"], Decision("write_off", invoice="B-1", code="bank_fee"), actor="alice",
                   now=LATER, config=CONFIG.queue)
    assert done["status"] == "resolved" and open_amounts(engine)["B-1"] == 0
    assert allocations(engine)[-1] == ("Q4", "write_off", "B-1", None, "-50.00")
    assert ledger.check(engine) == []
    reopen(engine, ids["Q4"], actor="bob", now=LATER, reason="customer will pay the rest")
    assert open_amounts(engine)["B-1"] == 20000 and ledger.check(engine) == []


def test_claims_notes_and_assignment(engine, tmp_path: Path) -> None:
    ids = queued_book(engine, tmp_path)
    claim(engine, ids["Q1"], actor="alice", now=LATER, config=CONFIG.queue)
    with pytest.raises(ReconcileError, match="claimed by alice"):
        resolve(engine, ids["Q1"], Decision("accept"), actor="bob", now=LATER, config=CONFIG.queue)
    with pytest.raises(ReconcileError, match="claimed by alice"):
        claim(engine, ids["Q1"], actor="bob", now=LATER, config=CONFIG.queue)
    with pytest.raises(ReconcileError, match="not bob"):
        release(engine, ids["Q1"], actor="bob", now=LATER)
    # a claim nobody acts on lapses
    claim(engine, ids["Q1"], actor="bob", now=LATER + timedelta(hours=5), config=CONFIG.queue)
    add_note(engine, ids["Q1"], "customer says A-2", actor="bob", now=LATER)
    with pytest.raises(ReconcileError, match="needs some text"):
        add_note(engine, ids["Q1"], "  ", actor="bob", now=LATER)
    assign(engine, ids["Q4"], "carol", actor="bob", now=LATER)
    item = queue.get_item(engine, ids["Q1"], config=CONFIG.queue)
    assert item["claimed_by"] == "bob" and [n["text"] for n in item["notes"]] == ["customer says A-2"]
    mine = queue.list_items(engine, filters=queue.QueueFilter(assignee="carol"), config=CONFIG.queue)
    assert mine["source_ref"].to_list() == ["Q4"]
    assert [a for a, _ in audit(engine, "claim")] == ["alice", "bob"] and audit(engine, "assign") == [("bob", "carol")]
    resolve(engine, ids["Q1"], Decision("accept", choice=2), actor="bob", now=LATER, config=CONFIG.queue)
    with pytest.raises(ReconcileError, match="only open items"):
        assign(engine, ids["Q1"], "carol", actor="bob", now=LATER)
