"""Undo, approvals and the queue's views over HTTP: what a person sees after each action.

A decision is undone by reopening (reversal rows beside the originals, audited), a bulk batch as a
whole; unapplying a posted line sends it back to the queue; the approvals page states the amount a
write-off would write off; "all N matching" applies to exactly the view it showed; the customer
picker searches on the server.
"""

from __future__ import annotations

import re

from sqlalchemy import Engine, select

from reconcile.queue import views
from reconcile.queue.views import QueueFilter
from reconcile.store import db, tables
from tests.web.conftest import SETTINGS


def _open(engine: Engine) -> list[int]:
    ex = tables.ExceptionItem
    with db.transaction(engine) as session:
        return list(
            session.execute(select(ex.id).where(ex.status == "open").order_by(ex.id)).scalars()
        )


def _rows(engine: Engine, kind: str) -> int:
    with db.transaction(engine) as session:
        return len(
            session.execute(
                select(tables.Allocation.id).where(tables.Allocation.kind == kind)
            ).all()
        )


def test_a_decision_is_shown_with_its_rows_and_undone(engine: Engine, web) -> None:  # type: ignore[no-untyped-def]
    item = _open(engine)[0]
    alice = web("alice")
    done = alice.post(f"/items/{item}/resolve", {"action": "on_account", "customer": "C0001"})
    assert done.status_code == 303
    page = alice.get(done.headers["location"]).text
    assert f"Exception {item} resolved (on_account)" in page and 'id="flash-rows"' in page
    assert "on_account" in page and f'action="/items/{item}/reopen"' in page
    assert _rows(engine, "reversal") == 0
    undone = alice.post(f"/items/{item}/reopen", {"reason": "wrong customer"})
    assert undone.status_code == 303
    reopened = int(re.search(r"/items/(\d+)", undone.headers["location"]).group(1))  # type: ignore[union-attr]
    assert reopened in _open(engine) and _rows(engine, "reversal") == 1
    page = alice.get(undone.headers["location"]).text
    assert "reopened (was on_account)" in page and "reversal" in page and "wrong customer" in page
    with db.transaction(engine) as session:
        actors = session.execute(
            select(tables.AuditEntry.actor).where(tables.AuditEntry.action == "reopen")
        ).all()
    assert [tuple(a) for a in actors] == [("alice",)]
    assert (
        alice.post(f"/items/{reopened}/reopen", {"reason": "again"}).status_code == 409
    )  # open: nothing to undo


def test_a_bulk_batch_is_undone_as_a_whole(engine: Engine, web) -> None:  # type: ignore[no-untyped-def]
    items = [str(i) for i in _open(engine)]
    alice = web("alice")
    done = alice.post("/queue/bulk", {"ids": items, "bulk_action": "not_receivable", "code": "fee"})
    assert done.status_code == 200
    batch = re.search(r"as batch (batch-[\w-]+)", done.text).group(1)  # type: ignore[union-attr]
    assert f'action="/queue/batches/{batch}/undo"' in done.text and _open(engine) == []
    undone = alice.post(f"/queue/batches/{batch}/undo", {"reason": "wrong category"})
    assert undone.status_code == 303
    assert [str(i) for i in _open(engine)] == items
    assert f"Batch {batch} undone: 2 item(s) open again" in alice.get("/queue").text
    assert alice.post(f"/queue/batches/{batch}/undo").status_code == 409  # once only


def test_all_matching_applies_to_the_view_it_showed(engine: Engine, web) -> None:  # type: ignore[no-untyped-def]
    alice = web("alice")
    items = _open(engine)
    view = {"q": "", "reason": "", "status": "open", "sort": "oldest", "scope": "matching"}
    stale = alice.post(
        "/queue/bulk",
        {**view, "expected": str(len(items) + 1), "bulk_action": "assign", "assign_to": "bob"},
    )
    assert stale.status_code == 409 and "nothing was applied" in stale.text
    done = alice.post(
        "/queue/bulk",
        {**view, "expected": str(len(items)), "bulk_action": "assign", "assign_to": "bob"},
    )
    assert done.status_code == 200 and f"{len(items)} item(s) assigned to bob" in done.text


def test_the_queue_pages_with_the_true_total_and_keeps_the_view(engine: Engine, web) -> None:  # type: ignore[no-untyped-def]
    alice = web("alice")
    total = views.count_items(engine, filters=QueueFilter())
    page = alice.get("/queue?sort=largest").text
    assert f"1–{total} of {total}" in page
    claimed = alice.post("/queue/claim-next", {"sort": "largest", "reason": "", "q": ""})
    largest = int(views.list_items(engine, config=SETTINGS.queue, sort="largest", limit=1)["id"][0])
    assert claimed.headers["location"] == f"/items/{largest}?view=sort%3Dlargest"
    nothing = alice.get("/queue?q=nobody+pays+like+this").text
    assert "No item matches this search" in nothing and "0 of 0" in nothing


def test_the_approver_sees_the_write_off_amount(engine: Engine, web) -> None:  # type: ignore[no-untyped-def]
    item = _open(engine)[0]
    inv = tables.Invoice
    with db.transaction(engine) as session:
        number, open_minor = session.execute(
            select(inv.invoice_number, inv.open_amount_minor)
            .where(inv.customer_id == "C0001", inv.open_amount_minor >= 100000)
            .order_by(inv.invoice_number)
        ).first()
    alice, vera = web("alice"), web("vera")
    asked = alice.post(
        f"/items/{item}/resolve", {"action": "write_off", "invoice": number, "code": "discount"}
    )
    payment = views.get_item(engine, item, config=SETTINGS.queue)["amount"]
    difference = open_minor - int(payment.replace(".", ""))
    shown = f"{difference // 100:,}.{difference % 100:02d}"
    assert asked.status_code == 200 and shown in asked.text
    alice.post(
        f"/items/{item}/resolve",
        {"action": "write_off", "invoice": number, "code": "discount", "confirm": "1"},
    )
    listing = vera.get("/approvals").text
    assert f"/items/{item}" in listing and f"{shown} EUR" in listing and "alice" in listing
    banner = vera.get(f"/items/{item}").text
    assert (
        f'id="write-off-amount">{shown} EUR' in banner
        and f"Approve the write-off of {shown} EUR" in banner
    )
    approved = vera.post(f"/items/{item}/approve", {"back": "/approvals"})
    assert approved.status_code == 303 and approved.headers["location"] == "/approvals"
    assert "No write-off waits for approval" in vera.get("/approvals").text


def test_the_customer_picker_searches_on_the_server(engine: Engine, web) -> None:  # type: ignore[no-untyped-def]
    carl = web("carl")
    found = carl.get("/api/customers?q=C000").json()
    assert found and all(c["customer_id"].startswith("C000") for c in found) and len(found) <= 20
    with db.transaction(engine) as session:
        name = session.execute(
            select(tables.Customer.name).order_by(tables.Customer.customer_id)
        ).scalar()
    by_name = carl.get(f"/api/customers?q={name.split()[0].lower()}").json()
    assert any(c["name"] == name for c in by_name)
    item_page = web("alice").get(f"/items/{_open(engine)[0]}").text
    assert (
        "<option value=" not in item_page.split('id="customer-picks"')[1][:200]
    )  # no list in the page
