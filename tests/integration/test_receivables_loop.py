"""The rules of the daily loop, one at a time: snapshots that include batches, full and delta snapshots,
credit notes, closed-elsewhere postings, changes that would break the ledger, batches, credit on account,
history by business day, run hygiene. Both databases (the `engine` fixture)."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text

from reconcile.collectors.balances import balances
from reconcile.config import load_config
from reconcile.core.errors import InputError, LedgerError, ReconcileError
from reconcile.ledger.batches import export_postings, rewrite_batch
from reconcile.ledger.credit import apply_credit, credit_available
from reconcile.queue.actions import Decision, resolve
from reconcile.services import daily as service
from reconcile.services import exports as export
from reconcile.services import ledger
from reconcile.store import db, tables
from tests.builders import bank_line, ingest_lines, write_snapshot

CONFIG = load_config(Path(__file__).resolve().parents[2] / "config")
DAY1, DAY2, DAY3 = date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4)
CUSTOMERS = [{"customer_id": "C1", "name": "Acme"}, {"customer_id": "C2", "name": "Brick"}]


def _now(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 18, 0, tzinfo=UTC)


def _snapshot(folder: Path, invoices: list[dict], *, day: date, through: str | None = None,
              kind: str = "full", **extra: list[dict]) -> Path:
    dated = [{"issue_date": "2026-02-01", "due_date": "2026-03-15", **row} for row in invoices]
    write_snapshot(folder, CUSTOMERS, dated, **extra)
    manifest = [f'taken_at = "{day.isoformat()}T05:00:00+00:00"', f'kind = "{kind}"']
    if through:
        manifest.append(f'includes_postings_through = "{through}"')
    (folder / "snapshot.toml").write_text("\n".join(manifest) + "\n")
    return folder


def _run(engine: Engine, day: date) -> service.RunSummary:
    summary = service.run_posting(engine, config=CONFIG, as_of=day, now=_now(day))
    assert summary.violations == []
    return summary


def _open(engine: Engine, day: date) -> dict[str, tuple[int, int]]:
    frame = balances(engine, day)
    return {r["customer_id"]: (r["open"], r["on_account"]) for r in frame.iter_rows(named=True)}


INV1 = {"invoice_number": "INV-1", "customer_id": "C1", "amount": "1000.00"}
INV2 = {"invoice_number": "INV-2", "customer_id": "C1", "amount": "500.00"}


def test_next_mornings_snapshot_that_includes_the_batch_is_not_counted_twice(engine: Engine, tmp_path: Path) -> None:
    service.load_ar(engine, _snapshot(tmp_path / "d1", [INV1, INV2], day=DAY1))
    ingest_lines(engine, [bank_line("P1", "300.00", name="Acme", remittance="INV-1", booking_date="2026-03-02")])
    _run(engine, DAY1)
    assert _open(engine, DAY1) == {"C1": (120000, 0)}
    made = export_postings(engine, tmp_path / "out", actor="erp-export", now=_now(DAY1))
    assert (made.batch_id, made.rows) == ("B000001", 1)
    # the ERP imported B000001: INV-1 shows 700.00 open; the snapshot says so
    day2 = _snapshot(tmp_path / "d2", [{**INV1, "open_amount": "700.00"}, INV2], day=DAY2, through="B000001")
    counts = service.load_ar(engine, day2)
    assert counts.includes_postings_through == "B000001" and not counts.already_loaded
    assert _open(engine, DAY2) == {"C1": (120000, 0)}           # 700 + 500, not 400 + 500
    assert ledger.check(engine) == []
    # loading the same snapshot again changes nothing
    assert service.load_ar(engine, day2).already_loaded
    # without a manifest the snapshot includes none of reconcile's postings (the subledger mode)
    (day2 / "snapshot.toml").unlink()
    service.load_ar(engine, day2, as_of=DAY3)
    assert _open(engine, DAY3) == {"C1": (90000, 0)}             # 700 - 300 + 500: what the file says, less ours


def test_a_full_snapshot_closes_what_it_no_longer_lists_and_a_delta_changes_only_its_rows(
        engine: Engine, tmp_path: Path) -> None:
    service.load_ar(engine, _snapshot(tmp_path / "d1", [INV1, INV2], day=DAY1))
    service.load_ar(engine, _snapshot(tmp_path / "d2", [INV1], day=DAY2))    # INV-2 paid by cheque in the ERP
    with db.transaction(engine) as session:
        inv2 = session.get(tables.Invoice, "INV-2")
        assert (inv2.erp_status, inv2.open_amount_minor, inv2.closed_on) == ("closed", 0, DAY2)
    assert _open(engine, DAY2) == {"C1": (100000, 0)}
    assert _open(engine, DAY1) == {"C1": (150000, 0)}            # the past stays as it was
    new = {"invoice_number": "INV-3", "customer_id": "C2", "amount": "80.00"}
    service.load_ar(engine, _snapshot(tmp_path / "d3", [new], day=DAY3, kind="delta"))
    assert _open(engine, DAY3) == {"C1": (100000, 0), "C2": (8000, 0)}


def test_a_posting_the_receivables_system_overtook_goes_to_a_person(engine: Engine, tmp_path: Path) -> None:
    service.load_ar(engine, _snapshot(tmp_path / "d1", [INV1, INV2], day=DAY1))
    ingest_lines(engine, [bank_line("P1", "1000.00", name="Acme", remittance="INV-1", booking_date="2026-03-02")])
    _run(engine, DAY1)
    # the ERP closed INV-1 by cheque before importing reconcile's posting: the next snapshot lacks it
    counts = service.load_ar(engine, _snapshot(tmp_path / "d2", [INV2], day=DAY2))
    assert (counts.invoices_closed, counts.closed_elsewhere) == (1, 1)
    frame = balances(engine, DAY2).row(0, named=True)
    # not counted twice, not dropped: INV-1 is not open, the 1000.00 is shown as cash waiting for a decision
    assert (frame["open"], frame["on_account"], frame["pending_application"], frame["hold_calls"]) == (
        50000, 0, 100000, True)
    assert ledger.check(engine) == []
    queued = export.exceptions_frame(engine, "open").select("source_ref", "reason", "suggestions").rows()
    assert queued == [("P1", "closed_elsewhere", "INV-1")]
    with pytest.raises(ReconcileError, match="answer it with --unapply, --on-account"):
        resolve(engine, "P1", Decision("accept"), actor="alice", now=_now(DAY2), config=CONFIG.queue)
    done = resolve(engine, "P1", Decision("on_account"), actor="alice", now=_now(DAY2), config=CONFIG.queue)
    assert done["resolution"] == "on_account"
    assert _open(engine, DAY2) == {"C1": (50000, 100000)}
    rows = export.allocations_frame(engine).select("kind", "invoice_number", "amount").rows()
    assert rows == [("invoice", "INV-1", "1000.00"), ("reversal", "INV-1", "-1000.00"), ("on_account", None, "1000.00")]
    assert ledger.check(engine) == []


def test_the_closed_elsewhere_policy_can_unapply_automatically(engine: Engine, tmp_path: Path) -> None:
    service.load_ar(engine, _snapshot(tmp_path / "d1", [INV1, INV2], day=DAY1))
    ingest_lines(engine, [bank_line("P1", "1000.00", name="Acme", remittance="INV-1", booking_date="2026-03-02")])
    _run(engine, DAY1)
    service.load_ar(engine, _snapshot(tmp_path / "d2", [INV2], day=DAY2), closed_elsewhere="unapply")
    queued = export.exceptions_frame(engine, "open").select("source_ref", "reason").rows()
    assert queued == [("P1", "unapplied")]
    assert ledger.check(engine) == []


def test_changes_that_would_break_the_ledger_are_refused_naming_the_row(engine: Engine, tmp_path: Path) -> None:
    service.load_ar(engine, _snapshot(tmp_path / "d1", [INV1, INV2], day=DAY1))
    ingest_lines(engine, [bank_line("P1", "300.00", name="Acme", remittance="INV-1", booking_date="2026-03-02")])
    _run(engine, DAY1)
    moved = [{**INV1, "customer_id": "C2"}, INV2]
    with pytest.raises(InputError, match="moves from customer C1 to C2, but reconcile has posted payments to it"):
        service.load_ar(engine, _snapshot(tmp_path / "d2", moved, day=DAY2))
    with pytest.raises(InputError, match="currency EUR to USD"):
        service.load_ar(engine, _snapshot(tmp_path / "d3", [{**INV1, "currency": "USD"}, INV2], day=DAY2))
    # an unpaid invoice may move
    service.load_ar(engine, _snapshot(tmp_path / "d4", [INV1, {**INV2, "customer_id": "C2"}], day=DAY2))
    assert _open(engine, DAY2) == {"C1": (70000, 0), "C2": (50000, 0)}
    plan = [{"plan_id": "PL", "invoice_number": "INV-2", "installment_no": n, "due_date": "2026-04-01",
             "amount": "300.00"} for n in (1, 2)]
    with pytest.raises(InputError) as caught:
        service.load_ar(engine, _snapshot(tmp_path / "d5", [INV1, INV2], day=DAY3, installments=plan))
    assert "installments add up to 600.00, more than invoice INV-2 (500.00)" in str(caught.value)
    assert ledger.check(engine) == []


def test_manifest_problems_are_refused(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="names B000003, which reconcile never exported"):
        service.load_ar(engine, _snapshot(tmp_path / "a", [INV1], day=DAY1, through="B000003"))
    folder = _snapshot(tmp_path / "b", [INV1], day=DAY1)
    (folder / "snapshot.toml").write_text('taken_at = "2026-03-02T05:00:00+00:00"\nkynd = "full"\n')
    with pytest.raises(InputError, match="kynd: unknown key"):
        service.load_ar(engine, folder)
    service.load_ar(engine, _snapshot(tmp_path / "c", [INV1], day=DAY2))
    with pytest.raises(InputError, match="before the one already loaded"):
        service.load_ar(engine, _snapshot(tmp_path / "d", [INV1, INV2], day=DAY1))


def test_credit_notes_are_open_items_and_payments_net_them(engine: Engine, tmp_path: Path) -> None:
    note = {"invoice_number": "CN-1", "customer_id": "C1", "amount": "-200.00"}
    service.load_ar(engine, _snapshot(tmp_path / "d1", [INV1, note], day=DAY1))
    assert _open(engine, DAY1) == {"C1": (80000, 0)}
    bad = {"invoice_number": "CN-2", "customer_id": "C1", "amount": "-200.00", "open_amount": "150.00"}
    with pytest.raises(InputError, match="open_amount is positive on a credit note"):
        service.load_ar(engine, _snapshot(tmp_path / "bad", [INV1, note, bad], day=DAY2))
    # a person applies a payment to the invoice net of the credit note
    ingest_lines(engine, [bank_line("P1", "800.00", name="Nobody", remittance="thanks", booking_date="2026-03-02")])
    _run(engine, DAY1)
    resolve(engine, "P1", Decision("allocate", parts=(("INV-1", "1000.00"), ("CN-1", "-200.00"))),
            actor="alice", now=_now(DAY1), config=CONFIG.queue)
    assert _open(engine, DAY1) == {}
    assert ledger.check(engine) == []


def test_credit_on_account_is_applied_to_a_later_invoice_and_can_be_taken_back(engine: Engine, tmp_path: Path) -> None:
    service.load_ar(engine, _snapshot(tmp_path / "d1", [INV2], day=DAY1))
    ingest_lines(engine, [bank_line("P1", "650.00", name="Acme", remittance="INV-2", booking_date="2026-03-02")])
    _run(engine, DAY1)
    assert _open(engine, DAY1) == {"C1": (0, 15000)}
    service.load_ar(engine, _snapshot(tmp_path / "d2", [INV2, {**INV1, "amount": "100.00"}], day=DAY2))
    with pytest.raises(ReconcileError, match="has 150.00 EUR on account, not 200.00"):
        apply_credit(engine, "C1", ["INV-1"], amount="200.00", actor="alice", now=_now(DAY2), business_date=DAY2)
    done = apply_credit(engine, "C1", ["INV-1"], amount=None, actor="alice", now=_now(DAY2), business_date=DAY2)
    assert done["applied"] == "100.00"
    assert _open(engine, DAY2) == {"C1": (0, 5000)}
    assert credit_available(engine, "C1")[0]["credit"] == "50.00"
    assert ledger.check(engine) == []
    # unapplying the payment takes the credit applied from it back as well
    ledger.unapply(engine, "P1", reason="wrong customer", actor="bob", now=_now(DAY2), business_date=DAY2)
    assert _open(engine, DAY2) == {"C1": (60000, 0)} or _open(engine, DAY2)["C1"][:2] == (60000, 0)
    assert ledger.check(engine) == []


def test_posting_batches_hold_every_row_once_and_never_change(engine: Engine, tmp_path: Path) -> None:
    service.load_ar(engine, _snapshot(tmp_path / "d1", [INV1, INV2], day=DAY1))
    out = tmp_path / "out"
    assert export_postings(engine, out, actor="x", now=_now(DAY1)).batch_id is None     # nothing yet: no file
    assert list(out.iterdir()) == []
    ingest_lines(engine, [bank_line("P1", "1000.00", name="Acme", remittance="INV-1", booking_date="2026-03-02")])
    _run(engine, DAY1)
    first = export_postings(engine, out, actor="x", now=_now(DAY1))
    ledger.unapply(engine, "P1", reason="paid by the parent", actor="bob", now=_now(DAY2), business_date=DAY2)
    second = export_postings(engine, out, actor="x", now=_now(DAY2))
    assert (first.batch_id, second.batch_id) == ("B000001", "B000002")
    b1 = list(csv.DictReader((out / "B000001.csv").open()))
    b2 = list(csv.DictReader((out / "B000002.csv").open()))
    assert [(r["kind"], r["amount"], r["reverses_posting_id"]) for r in b2] == [("reversal", "-1000.00",
                                                                                b1[0]["posting_id"])]
    original = (out / "B000001.csv").read_bytes()
    (out / "B000001.csv").unlink()
    rewrite_batch(engine, "B000001", out)
    assert (out / "B000001.csv").read_bytes() == original
    with db.transaction(engine) as session:
        audit = session.execute(select(tables.AuditEntry.actor, tables.AuditEntry.reason)
                                .where(tables.AuditEntry.action == "export_batch")).all()
    assert audit == [("x", "B000001"), ("x", "B000002")]


def test_a_batch_made_while_a_run_posts_holds_only_committed_rows(pg_url: str, tmp_path: Path) -> None:
    engine = db.make_engine(pg_url)
    db.upgrade(engine)
    service.load_ar(engine, _snapshot(tmp_path / "d1", [INV1, INV2], day=DAY1))
    ingest_lines(engine, [bank_line("P1", "1000.00", name="Acme", remittance="INV-1", booking_date="2026-03-02")])
    _run(engine, DAY1)
    with engine.connect() as posting:      # a posting in flight: rows inserted, not committed
        posting.execute(text(
            "INSERT INTO allocations (posting_id, bank_line_id, run_id, kind, customer_id, invoice_number,"
            " amount_minor, currency, rule, confidence, posted_at, business_date)"
            " SELECT posting_id, bank_line_id, NULL, 'on_account', 'C1', NULL, 1, 'EUR', 'x', 1, now(), :d"
            " FROM allocations LIMIT 1"), {"d": DAY1})
        made = export_postings(engine, tmp_path / "out", actor="x", now=_now(DAY1))
        assert made.rows == 1
        posting.rollback()
    engine.dispose()


def test_history_is_by_business_day_not_by_the_clock(engine: Engine, tmp_path: Path) -> None:
    service.load_ar(engine, _snapshot(tmp_path / "d1", [INV1, INV2], day=DAY1))
    ingest_lines(engine, [bank_line("P1", "1000.00", name="Acme", remittance="INV-1", booking_date="2026-03-02")])
    service.run_posting(engine, config=CONFIG, as_of=DAY1)          # run today for a past business day
    assert _open(engine, DAY2) == {"C1": (50000, 0)}
    assert _open(engine, DAY1) == {"C1": (50000, 0)}
    assert _open(engine, date(2026, 3, 1)) == {"C1": (150000, 0)}   # before the run's day: unpaid


def test_run_hygiene(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(ReconcileError, match="no receivables snapshot has been loaded"):
        service.run_posting(engine, config=CONFIG, as_of=DAY1)
    service.load_ar(engine, _snapshot(tmp_path / "d1", [INV1], day=DAY1))
    with db.transaction(engine) as session:     # a run that died without finishing
        session.add(tables.PostingRun(run_id="run-dead", started_at=_now(DAY1), as_of=DAY1, status="running",
                                      dry_run=False, actor="system"))
    _run(engine, DAY1)
    with db.transaction(engine) as session:
        dead = session.get(tables.PostingRun, "run-dead")
        assert dead.status == "abandoned" and dead.finished_at is not None
    # a queued line re-matched after new data carries the new reason and suggestions
    ingest_lines(engine, [bank_line("P1", "500.00", name="Brick", remittance="INV-2", booking_date="2026-03-02")])
    _run(engine, DAY1)
    assert export.exceptions_frame(engine, "open").select("reason", "suggestions").rows() == [("no_candidate", None)]
    service.load_ar(engine, _snapshot(tmp_path / "d2", [INV1, INV2, {"invoice_number": "INV-3",
                                                                        "customer_id": "C2", "amount": "500.00"}],
                                      day=DAY2))
    _run(engine, DAY2)
    rows = export.exceptions_frame(engine).select("reason", "suggestions", "status").rows()
    assert rows[0][2] == "resolved" or rows[0][:2] != ("no_candidate", None)


def test_over_application_is_refused_by_the_ledger(engine: Engine, tmp_path: Path) -> None:
    from reconcile.core.allocation import OverApplied, move

    assert move(10000, 0, 4000, False) == (6000, 0)
    assert move(0, 30000, -30000, False) == (0, 0)          # giving back first undoes the excess
    assert move(0, 30000, -50000, False) == (20000, 0)
    assert move(-5000, 0, -5000, True) == (0, 0)            # a credit note taken
    with pytest.raises(OverApplied):
        move(10000, 0, 10001, False)
    with pytest.raises(OverApplied):
        move(0, 100, 1, False)
    assert LedgerError


def test_a_manual_decision_that_breaks_the_due_order_is_refused_before_it_is_posted(
        engine: Engine, tmp_path: Path) -> None:
    plan_invoice = {"invoice_number": "INV-8001", "customer_id": "C1", "amount": "3000.00"}
    plan = [{"plan_id": "PL-8001", "invoice_number": "INV-8001", "installment_no": n, "due_date": due,
             "amount": "1000.00"} for n, due in ((1, "2026-03-01"), (2, "2026-04-01"), (3, "2026-05-01"))]
    service.load_ar(engine, _snapshot(tmp_path / "d1", [plan_invoice], day=DAY1, installments=plan))
    ingest_lines(engine, [
        bank_line("P1", "1000.00", name="Acme", remittance="INV-8001 1", booking_date="2026-03-02"),
        bank_line("P2", "1500.00", name="Nobody", remittance="thanks", booking_date="2026-03-02"),
    ])
    _run(engine, DAY1)                                   # P1 pays installment 1, P2 is queued
    parts = (("INV-8001#3", "1000.00"), ("INV-8001#2", "500"))
    with pytest.raises(ReconcileError, match=r"installment #3 cannot be paid while #2 \(due earlier\) is still open"):
        resolve(engine, "P2", Decision("allocate", parts=parts), actor="alice", now=_now(DAY1), config=CONFIG.queue)
    assert export.allocations_frame(engine).height == 1   # nothing from the refused decision
    # typed out of order but complete, the same plan is taken in due order
    done = resolve(engine, "P2", Decision("allocate", parts=(("INV-8001#3", "500.00"), ("INV-8001#2", "1000.00"))),
                   actor="alice", now=_now(DAY1), config=CONFIG.queue)
    assert [(r["installment_no"], r["amount"]) for r in done["allocations"]] == [(2, "1000.00"), (3, "500.00")]
    assert ledger.check(engine) == []
    assert _run(engine, DAY2).status == "completed"     # the next run is not failed by a person's decision


def test_a_runs_own_check_covers_what_it_touched_and_reconcile_check_everything(
        engine: Engine, tmp_path: Path) -> None:
    other = {"invoice_number": "INV-9", "customer_id": "C2", "amount": "70.00"}
    service.load_ar(engine, _snapshot(tmp_path / "d1", [INV1, INV2, other], day=DAY1))
    with engine.begin() as c:      # damage outside what the next run touches
        c.execute(text("UPDATE invoices SET open_amount_minor = 1 WHERE invoice_number = 'INV-9'"))
    ingest_lines(engine, [bank_line("P1", "300.00", name="Acme", remittance="INV-1", booking_date="2026-03-02")])
    assert service.run_posting(engine, config=CONFIG, as_of=DAY1, now=_now(DAY1)).status == "completed"
    assert [v.subject for v in ledger.check(engine)] == ["invoice INV-9", "customer C2 (EUR)"]
    with engine.begin() as c:      # damage inside it: the run after that is failed
        c.execute(text("UPDATE invoices SET open_amount_minor = 2 WHERE invoice_number = 'INV-2'"))
    ingest_lines(engine, [bank_line("P2", "100.00", name="Acme", remittance="INV-2", booking_date="2026-03-02")])
    failed = service.run_posting(engine, config=CONFIG, as_of=DAY1, now=_now(DAY1))
    assert failed.status == "failed" and any("INV-2" in v for v in failed.violations)


def test_snapshot_times_compare_in_utc_whatever_offset_the_erp_writes(engine: Engine, tmp_path: Path) -> None:
    """An ERP in Central Europe writes +01:00: a snapshot taken 15 minutes after the loaded one is newer (it
    was refused as older when the offset was dropped on storing), and one taken earlier in UTC is refused."""
    def taken(folder: Path, at: str, amount: str) -> Path:
        _snapshot(folder, [{**INV1, "amount": amount}], day=DAY2)
        (folder / "snapshot.toml").write_text(f'taken_at = "{at}"\nkind = "full"\n')
        return folder

    service.load_ar(engine, taken(tmp_path / "a", "2026-03-03T05:30:00+01:00", "1000.00"))
    service.load_ar(engine, taken(tmp_path / "b", "2026-03-03T05:45:00+01:00", "1100.00"))
    with pytest.raises(InputError, match="before the one already loaded"):
        service.load_ar(engine, taken(tmp_path / "c", "2026-03-03T04:40:00+00:00", "1200.00"))
    assert _open(engine, DAY2)["C1"][0] == 110_000
