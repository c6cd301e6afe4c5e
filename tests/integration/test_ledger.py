"""The ledger's safety on both databases: invariants checked, reversals exact, bank returns, audit history."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text

from reconcile.config import load_config
from reconcile.core.errors import NotFoundError, ReconcileError
from reconcile.queue.actions import resolve_item
from reconcile.services import daily as service
from reconcile.services import exports as export
from reconcile.services import ledger
from reconcile.store import db, tables
from tests.builders import NOW, bank_line, ingest_lines, write_snapshot

CONFIG = load_config(Path(__file__).resolve().parents[2] / "config")
LATER = NOW + timedelta(days=1)


def _book(engine: Engine, tmp_path: Path) -> None:
    service.load_ar(engine, write_snapshot(
        tmp_path / "ar",
        customers=[{"customer_id": "C1", "name": "Acme"}, {"customer_id": "C2", "name": "Brick"}],
        invoices=[
            {"invoice_number": "INV-101", "customer_id": "C1", "amount": "60.00"},
            {"invoice_number": "INV-102", "customer_id": "C1", "amount": "30.00"},
            {"invoice_number": "INV-201", "customer_id": "C2", "amount": "10.00"},
        ],
    ))


def _run(engine: Engine, now=NOW) -> service.RunSummary:  # type: ignore[no-untyped-def]
    return service.run_posting(engine, config=CONFIG, as_of=now.date(), now=now)


def _open(engine: Engine) -> dict[str, int]:
    with db.transaction(engine) as session:
        inv = tables.Invoice
        return dict(session.execute(select(inv.invoice_number, inv.open_amount_minor)).all())


def _status(engine: Engine, source_ref: str) -> tuple[str, int]:
    with db.transaction(engine) as session:
        bl = tables.BankLine
        return tuple(session.execute(select(bl.status, bl.generation).where(bl.source_ref == source_ref)).one())


def _posted_day(engine: Engine, tmp_path: Path) -> None:
    _book(engine, tmp_path)
    ingest_lines(engine, [
        bank_line("P1", "100.00", name="ACME", remittance="INV-101 INV-102", end_to_end_id="E2E-P1"),
        bank_line("P2", "10.00", name="BRICK", remittance="invoice INV-201"),
    ])
    summary = _run(engine)
    assert summary.lines_posted == 2 and summary.violations == []


def test_a_clean_ledger_passes_every_check(engine: Engine, tmp_path: Path) -> None:
    _posted_day(engine, tmp_path)
    assert ledger.check(engine) == []


@pytest.mark.parametrize(("tamper", "rule", "subject"), [
    ("UPDATE invoices SET open_amount_minor = open_amount_minor + 1 WHERE invoice_number = 'INV-102'",
     "invoice_open", "invoice INV-102"),
    ("UPDATE allocations SET amount_minor = amount_minor - 5 WHERE invoice_number = 'INV-201'",
     "line_unbalanced", "bank line NL91ABNA0417164300/P2"),
    ("UPDATE bank_lines SET status = 'unmatched' WHERE source_ref = 'P2'",
     "unposted_line_allocated", "bank line NL91ABNA0417164300/P2"),
])
def test_check_names_each_violation(engine: Engine, tmp_path: Path, tamper: str, rule: str, subject: str) -> None:
    _posted_day(engine, tmp_path)
    with engine.begin() as connection:
        connection.execute(text(tamper))
    found = ledger.check(engine)
    assert (rule, subject) in [(v.rule, v.subject) for v in found]


@pytest.mark.parametrize("index_walk_customers", [0, 2_000], ids=["read-all", "index-walk"])
def test_a_runs_own_check_finds_a_tampered_item_of_a_customer_it_touched(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, index_walk_customers: int,
) -> None:
    """The run's scoped check reads a few customers through the index and many by reading everything: both find
    what is wrong with a customer the run touched, and neither reports a customer it did not touch."""
    from reconcile.ledger import check

    monkeypatch.setattr(check, "INDEX_WALK_CUSTOMERS", index_walk_customers)
    service.load_ar(engine, write_snapshot(
        tmp_path / "ar",
        customers=[{"customer_id": "C1", "name": "Acme"}, {"customer_id": "C3", "name": "Quiet Ltd"}],
        invoices=[
            {"invoice_number": "INV-101", "customer_id": "C1", "amount": "60.00"},
            {"invoice_number": "INV-102", "customer_id": "C1", "amount": "30.00"},
            {"invoice_number": "INV-301", "customer_id": "C3", "amount": "45.00"},
        ],
    ))
    ingest_lines(engine, [bank_line("P1", "90.00", name="ACME", remittance="INV-101 INV-102")])
    assert _run(engine).lines_posted == 1
    with engine.begin() as connection:
        connection.execute(text("UPDATE invoices SET open_amount_minor = open_amount_minor + 1 "
                                "WHERE invoice_number IN ('INV-102', 'INV-301')"))
        run_id = connection.execute(select(tables.PostingRun.run_id)).scalar_one()
    with db.transaction(engine) as session:
        found = {(v.rule, v.subject) for v in check.check_ledger(session, check.Scope(run_id))}
    assert ("invoice_open", "invoice INV-102") in found
    assert not any("INV-301" in subject for _, subject in found)  # C3's: the run did not touch it
    assert ("invoice_open", "invoice INV-301") in {(v.rule, v.subject) for v in ledger.check(engine)}


def test_unapply_reverses_exactly_and_queues_the_line(engine: Engine, tmp_path: Path) -> None:
    _book(engine, tmp_path)
    before = _open(engine)
    _posted_day_lines = [bank_line("P1", "100.00", name="ACME", remittance="INV-101 INV-102")]
    ingest_lines(engine, _posted_day_lines)
    _run(engine)
    assert _open(engine) == {**before, "INV-101": 0, "INV-102": 0}

    done = ledger.unapply(engine, "P1", reason="paid by the parent company", actor="alice", now=LATER)
    assert [(r["kind"], r["invoice_number"], r["amount"]) for r in done["reversed"]] == [
        ("invoice", "INV-101", "60.00"), ("invoice", "INV-102", "30.00"), ("on_account", None, "10.00"),
    ]
    assert _open(engine) == before
    assert _status(engine, "P1") == ("exception", 1)
    rows = export.allocations_frame(engine).select("kind", "invoice_number", "amount").rows()
    assert sorted(rows, key=str) == sorted([
        ("invoice", "INV-101", "60.00"), ("invoice", "INV-102", "30.00"), ("on_account", None, "10.00"),
        ("reversal", "INV-101", "-60.00"), ("reversal", "INV-102", "-30.00"), ("reversal", None, "-10.00"),
    ], key=str)
    assert ledger.check(engine) == []

    # an unapplied line waits for a person: the next run does not post it again
    assert _run(engine, LATER).lines_posted == 0
    assert _status(engine, "P1") == ("exception", 1)
    with db.transaction(engine) as session:
        item = session.execute(select(tables.ExceptionItem).where(tables.ExceptionItem.status == "open")).scalar_one()
        assert (item.reason, item.suggestions, item.customer_id) == ("unapplied", "INV-101|INV-102", "C1")
    resolve_item(engine, item.id, ["INV-102"], actor="alice", now=LATER, config=CONFIG.queue)
    assert _open(engine) == {**before, "INV-102": 0}
    assert _status(engine, "P1") == ("posted", 1)
    assert ledger.check(engine) == []


def test_unapply_with_rematch_lets_the_next_run_post_it_again(engine: Engine, tmp_path: Path) -> None:
    _posted_day(engine, tmp_path)
    ledger.unapply(engine, "P2", reason="snapshot corrected", actor="alice", now=LATER, rematch=True)
    assert _status(engine, "P2") == ("unmatched", 1)
    assert _run(engine, LATER).lines_posted == 1
    assert _status(engine, "P2") == ("posted", 1)
    assert _open(engine)["INV-201"] == 0
    assert ledger.check(engine) == []


@pytest.mark.parametrize(("ref", "error", "match"), [
    ("NOPE", NotFoundError, "no bank line NOPE$"),
    ("NL91ABNA0417164300/P1", NotFoundError, r"give the line's source_ref, and its account with --account"),
    ("Q1", ReconcileError, "is exception, not posted"),
])
def test_unapply_refuses_what_is_not_posted(engine: Engine, tmp_path: Path, ref: str, error: type, match: str) -> None:
    _posted_day(engine, tmp_path)
    ingest_lines(engine, [bank_line("Q1", "5.00", remittance="nothing to see")])
    _run(engine)
    allocations = export.allocations_frame(engine).height
    with pytest.raises(error, match=match):
        ledger.unapply(engine, ref, reason="test", actor="alice", now=LATER)
    assert export.allocations_frame(engine).height == allocations


def test_unapply_twice_is_refused(engine: Engine, tmp_path: Path) -> None:
    _posted_day(engine, tmp_path)
    ledger.unapply(engine, "P2", reason="first", actor="alice", now=LATER)
    with pytest.raises(ReconcileError, match="not posted"):
        ledger.unapply(engine, "P2", reason="second", actor="bob", now=LATER)
    assert ledger.check(engine) == []


def test_a_bank_return_reverses_the_payment_it_takes_back(engine: Engine, tmp_path: Path) -> None:
    _posted_day(engine, tmp_path)
    ingest_lines(engine, [bank_line("R1", "-100.00", booking_date="2026-11-25", remittance="RETURN AC04 account closed",
                                    end_to_end_id="E2E-P1", is_reversal=True)])
    summary = _run(engine, LATER)
    assert (summary.returns, summary.lines_exception) == (1, 0)
    assert _status(engine, "P1") == ("returned", 1)
    assert _status(engine, "R1")[0] == "skipped"
    assert _open(engine) == {"INV-101": 6000, "INV-102": 3000, "INV-201": 0}
    assert ledger.check(engine) == []
    assert _run(engine, LATER).lines_considered == 0
    actions = ledger.history(engine, line_ref="P1")["action"].to_list()
    assert actions == ["post", "reverse"]


def test_a_payment_returned_in_the_same_run_is_never_posted(engine: Engine, tmp_path: Path) -> None:
    _book(engine, tmp_path)
    ingest_lines(engine, [
        bank_line("P9", "10.00", remittance="INV-201", end_to_end_id="E9"),
        bank_line("R9", "-10.00", booking_date="2026-11-24", remittance="return", end_to_end_id="E9"),
    ])
    summary = _run(engine)
    assert (summary.returns, summary.lines_posted) == (1, 0)
    assert _status(engine, "P9")[0] == "returned"
    assert _open(engine)["INV-201"] == 1000
    assert ledger.check(engine) == []


def test_a_reversal_entry_naming_no_payment_is_queued(engine: Engine, tmp_path: Path) -> None:
    _posted_day(engine, tmp_path)
    ingest_lines(engine, [bank_line("R2", "-42.00", remittance="RVSL", is_reversal=True)])
    summary = _run(engine, LATER)
    assert summary.exceptions_by_reason == {"return_unmatched": 1}
    assert _status(engine, "P1")[0] == "posted"


def test_audit_history_of_an_invoice_shows_postings_and_reversals(engine: Engine, tmp_path: Path) -> None:
    _posted_day(engine, tmp_path)
    ledger.unapply(engine, "P1", reason="wrong customer", actor="alice", now=LATER)
    history = ledger.history(engine, invoice="INV-102")
    assert history.select("actor", "action", "source_ref", "reason").rows() == [
        ("system", "post", "P1", None), ("alice", "reverse", "P1", "wrong customer"),
    ]
    with pytest.raises(NotFoundError):
        ledger.history(engine, invoice="NOPE")


def test_a_write_off_settles_the_item_and_is_reversed_with_it(engine: Engine, tmp_path: Path) -> None:
    _book(engine, tmp_path)
    ingest_lines(engine, [bank_line("F1", "58.75", remittance="INV-101 less bank charges")])
    _run(engine)
    rows = export.allocations_frame(engine).select("kind", "invoice_number", "amount").rows()
    assert sorted(rows, key=str) == [("invoice", "INV-101", "60.00"), ("write_off", "INV-101", "-1.25")]
    assert _open(engine)["INV-101"] == 0
    assert ledger.check(engine) == []
    ledger.unapply(engine, "F1", reason="fee was ours", actor="alice", now=LATER)
    assert _open(engine)["INV-101"] == 6000
    assert ledger.check(engine) == []


def test_installments_paid_out_of_due_order_are_a_violation(engine: Engine, tmp_path: Path) -> None:
    service.load_ar(engine, write_snapshot(
        tmp_path / "ar", customers=[{"customer_id": "C1", "name": "Acme"}],
        invoices=[{"invoice_number": "INV-900", "customer_id": "C1", "amount": "300.00"}],
        installments=[{"plan_id": "PL1", "invoice_number": "INV-900", "installment_no": n,
                       "due_date": f"2026-1{n - 1}-01", "amount": "100.00"} for n in (1, 2, 3)],
    ))
    ingest_lines(engine, [bank_line("I1", "100.00", remittance="INV-900 first instalment")])
    _run(engine)
    rows = export.allocations_frame(engine).select("kind", "invoice_number", "installment_no", "amount").rows()
    assert rows == [("installment", "INV-900", 1, "100.00")]
    assert ledger.check(engine) == []
    with engine.begin() as connection:  # the same money moved onto the second installment, open amounts kept in step
        connection.execute(text(
            "UPDATE allocations SET installment_no = 2,"
            " installment_id = (SELECT id FROM installments WHERE installment_no = 2)"))
        connection.execute(text(
            "UPDATE installments SET open_amount_minor = CASE installment_no WHEN 1 THEN 10000 WHEN 2 THEN 0"
            " ELSE open_amount_minor END"))
    assert [(v.rule, v.subject) for v in ledger.check(engine)] == [("installment_order", "plan PL1 installment 2")]
