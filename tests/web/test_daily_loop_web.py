"""The daily loop in the browser workspace: answering a closed_elsewhere posting in one click, applying money
kept on account to a later invoice, a payment in another currency allocated with a rate."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy import Engine, select

from reconcile.services import daily as service
from reconcile.services import exports as export
from reconcile.services import ledger
from reconcile.store import db, tables
from tests.builders import bank_line, ingest_lines, write_snapshot
from tests.web.conftest import SETTINGS, signer

DAY = date(2026, 3, 2)
CUSTOMERS = [{"customer_id": "C1", "name": "Acme Trading"}]


def _snapshot(folder: Path, invoices: list[dict]) -> Path:
    write_snapshot(folder, CUSTOMERS, [{"issue_date": "2026-02-01", "due_date": "2026-03-01", **i} for i in invoices])
    return folder


def _item(engine: Engine, reason: str | None = None) -> int:
    with db.transaction(engine) as session:
        ex = tables.ExceptionItem
        query = select(ex.id).where(ex.status == "open")
        return session.execute(query.where(ex.reason == reason) if reason else query).scalar_one()


def test_a_closed_elsewhere_posting_is_kept_on_account_and_applied_later(engine: Engine, tmp_path: Path) -> None:
    inv1 = {"invoice_number": "INV-1", "customer_id": "C1", "amount": "1000.00"}
    inv2 = {"invoice_number": "INV-2", "customer_id": "C1", "amount": "400.00"}
    service.load_ar(engine, _snapshot(tmp_path / "d1", [inv1, inv2]), as_of=DAY)
    ingest_lines(engine, [bank_line("P1", "1000.00", name="Acme Trading", remittance="INV-1",
                                    booking_date="2026-03-02")])
    service.run_posting(engine, config=SETTINGS, as_of=DAY)
    service.load_ar(engine, _snapshot(tmp_path / "d2", [inv2]), as_of=date(2026, 3, 3))   # INV-1 closed there
    alice = signer(engine)("alice")
    key = _item(engine, "closed_elsewhere")
    page = alice.get(f"/items/{key}").text
    assert "closed these invoices before it imported this payment" in page and "Keep it on C1" in page
    assert 'name="action" value="write_off"' not in page          # only the three answers are offered
    assert '<p id="why">queued as closed_elsewhere' in page         # the reason in words, as the CLI says it
    seen = page.split('name="seen" value="')[1].split('"')[0]
    done = alice.post(f"/items/{key}/resolve", {"action": "on_account", "customer": "C1", "seen": seen})
    assert done.status_code == 303
    assert export.exceptions_frame(engine, "open").height == 0
    customer = alice.get("/customers/C1").text
    assert "Credit on account" in customer and "1,000.00" in customer
    applied = alice.post("/customers/C1/credit", {"invoice": "INV-2", "amount": ""})
    assert applied.status_code == 303
    rows = export.allocations_frame(engine).select("kind", "invoice_number", "amount").rows()
    assert rows[-2:] == [("on_account", None, "-400.00"), ("invoice", "INV-2", "400.00")]
    assert ledger.check(engine) == []


def test_a_payment_in_another_currency_is_allocated_with_a_rate(engine: Engine, tmp_path: Path) -> None:
    service.load_ar(engine, _snapshot(tmp_path / "d1", [
        {"invoice_number": "EU-1", "customer_id": "C1", "amount": "1000.00", "currency": "EUR"}]), as_of=DAY)
    ingest_lines(engine, [bank_line("CHF1", "955.00", currency="CHF", name="Someone", remittance="hello",
                                    booking_date="2026-03-02")], account="CH9300762011623852957")
    service.run_posting(engine, config=SETTINGS, as_of=DAY)
    alice = signer(engine)("alice")
    key = _item(engine)
    page = alice.get(f"/items/{key}?customer=C1").text
    seen = page.split('name="seen" value="')[1].split('"')[0]
    done = alice.post(f"/items/{key}/resolve", {"action": "allocate", "target": "EU-1", "amount": "1000.00",
                                                "rate": "1.05", "customer": "C1", "seen": seen})
    assert done.status_code == 303, done.text
    rows = export.allocations_frame(engine).select("kind", "invoice_number", "amount", "currency").rows()
    assert rows == [("invoice", "EU-1", "952.38", "CHF"), ("fx", None, "2.62", "CHF")]
    assert ledger.check(engine) == []
