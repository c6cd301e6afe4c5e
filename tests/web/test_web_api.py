"""The web workspace over HTTP (FastAPI TestClient), on SQLite and PostgreSQL.

Roles and CSRF tokens are enforced on every action; bad input, stale pages and
a colleague's earlier decision give a message page and change nothing; every
action is audited with the signed-in person's name.
"""

from __future__ import annotations

from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from reconcile.store import db, tables
from tests.web.conftest import PASSWORD, SETTINGS


def _count(engine: Engine, table) -> int:  # type: ignore[no-untyped-def]
    with db.transaction(engine) as session:
        return session.execute(select(func.count()).select_from(table)).scalar_one()


def _open_items(engine: Engine) -> list[int]:
    ex = tables.ExceptionItem
    with db.transaction(engine) as session:
        return list(session.execute(select(ex.id).where(ex.status == "open").order_by(ex.id)).scalars())


def _invoice(engine: Engine, customer: str, *, at_least: int = 0, closed: bool = False) -> tuple[str, int]:
    inv = tables.Invoice
    query = select(inv.invoice_number, inv.open_amount_minor).where(inv.customer_id == customer)
    query = query.where(inv.open_amount_minor == 0) if closed else query.where(inv.open_amount_minor >= at_least)
    with db.transaction(engine) as session:
        row = session.execute(query.order_by(inv.invoice_number)).first()
    assert row is not None
    return row.invoice_number, row.open_amount_minor


def _closed_invoice(engine: Engine) -> tuple[str, str]:
    inv = tables.Invoice
    with db.transaction(engine) as session:
        row = session.execute(select(inv.invoice_number, inv.customer_id).where(inv.open_amount_minor == 0)
                              .order_by(inv.invoice_number)).first()
    assert row is not None, "the demo run pays some invoices in full"
    return row.invoice_number, row.customer_id


def _unchanged(engine: Engine, before: tuple[int, int, list[int]]) -> None:
    assert (_count(engine, tables.Allocation), _count(engine, tables.Posting), _open_items(engine)) == before


def _state(engine: Engine) -> tuple[int, int, list[int]]:
    return _count(engine, tables.Allocation), _count(engine, tables.Posting), _open_items(engine)


def _item_of(location: str) -> int:
    import re

    return int(re.search(r"/items/(\d+)", location).group(1))  # type: ignore[union-attr]


def _seen(page: str) -> str:
    import re

    return re.search(r'name="seen" value="([^"]*)"', page).group(1)  # type: ignore[union-attr]


def test_sign_in_is_required_and_checks_the_password(engine: Engine, web) -> None:  # type: ignore[no-untyped-def]
    anonymous = web()
    assert anonymous.get("/queue").headers["location"].startswith("/login")
    wrong = anonymous.post("/login", {"name": "alice", "password": "not it"})
    assert wrong.status_code == 401 and "wrong password" in wrong.text
    unknown = anonymous.post("/login", {"name": "nobody", "password": PASSWORD})
    assert unknown.status_code == 401
    with db.transaction(engine) as session:
        stored = session.execute(select(tables.User.password_hash).where(tables.User.name == "alice")).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    alice = web("alice")
    assert alice.get("/queue").status_code == 200
    assert "alice (accountant)" in alice.get("/queue").text


def test_every_role_may_read_but_only_accountants_resolve(engine: Engine, web) -> None:  # type: ignore[no-untyped-def]
    item = _open_items(engine)[0]
    before = _state(engine)
    carl = web("carl")  # collector
    for page in ("/queue", f"/items/{item}", "/customers", "/customers/C0001", "/runs", "/report", "/report.html"):
        assert carl.get(page).status_code == 200, page
    assert 'action="/items/' + str(item) + '/resolve"' not in carl.get(f"/items/{item}").text
    refused = carl.post(f"/items/{item}/resolve", {"action": "on_account", "customer": "C0001"})
    assert refused.status_code == 403 and "carl is a collector" in refused.text and "accountant" in refused.text
    assert carl.post("/queue/claim-next").status_code == 403
    assert carl.post(f"/items/{item}/claim").status_code == 403
    assert web("vera").post(f"/items/{item}/resolve", {"action": "on_account", "customer": "C0001"}).status_code == 403
    _unchanged(engine, before)
    # a collector may add notes, under their own name
    assert carl.post(f"/items/{item}/note", {"text": "called the payer"}).status_code == 303
    with db.transaction(engine) as session:
        note = session.execute(select(tables.ExceptionNote.author, tables.ExceptionNote.text)).one()
    assert tuple(note) == ("carl", "called the payer")


def test_forms_without_the_sessions_csrf_token_are_refused(engine: Engine, web) -> None:  # type: ignore[no-untyped-def]
    item = _open_items(engine)[0]
    before = _state(engine)
    alice = web("alice")
    data = {"action": "on_account", "customer": "C0001"}
    missing = alice.client.post(f"/items/{item}/resolve", data=data)
    assert missing.status_code == 403 and "security token" in missing.text
    forged = alice.client.post(f"/items/{item}/resolve", data={**data, "csrf": "forged"})
    assert forged.status_code == 403
    other = web("bob")  # bob's token is not alice's
    assert alice.client.post(f"/items/{item}/resolve", data={**data, "csrf": other.csrf}).status_code == 403
    assert alice.client.post("/queue/claim-next", data={}).status_code == 403
    assert web().client.post("/login", data={"name": "alice", "password": PASSWORD}).status_code == 403
    _unchanged(engine, before)


def test_claim_next_and_resolve_audits_the_person(engine: Engine, web) -> None:  # type: ignore[no-untyped-def]
    alice = web("alice")
    claimed = alice.post("/queue/claim-next")
    assert claimed.status_code == 303
    item = _item_of(claimed.headers["location"])
    page = alice.get(f"/items/{item}?customer=C0001").text
    assert "Claimed by <strong id=\"claimed-by\">alice" in page
    number, _ = _invoice(engine, "C0001", at_least=10000)
    done = alice.post(f"/items/{item}/resolve", {
        "action": "allocate", "customer": "C0001", "target": [number, ""], "amount": ["100.00", ""],
        "rest_on_account": "1", "seen": _seen(page)})
    assert done.status_code == 303, done.text
    assert "Resolved (allocate) by alice" in alice.get(f"/items/{item}").text
    with db.transaction(engine) as session:
        actors = set(session.execute(select(tables.AuditEntry.actor, tables.AuditEntry.action)
                                     .where(tables.AuditEntry.action.in_(["claim", "resolve", "web_login"]))).all())
    assert {("alice", "claim"), ("alice", "resolve"), ("alice", "web_login")} <= actors


def test_bad_allocations_change_nothing(engine: Engine, web) -> None:  # type: ignore[no-untyped-def]
    item = _open_items(engine)[0]
    alice = web("alice")
    page = alice.get(f"/items/{item}?customer=C0001").text
    seen = _seen(page)
    number, _ = _invoice(engine, "C0001", at_least=10000)
    closed, owner = _closed_invoice(engine)
    before = _state(engine)
    short = alice.post(f"/items/{item}/resolve", {"action": "allocate", "customer": "C0001", "target": number,
                                                  "amount": "100.00", "seen": seen})
    assert short.status_code == 409 and "Nothing was changed" in short.text and "unallocated" in short.text
    too_much = alice.post(f"/items/{item}/resolve", {"action": "allocate", "customer": "C0001", "target": number,
                                                     "amount": "100.00", "on_account_amount": "99999.00", "seen": seen})
    assert too_much.status_code == 409 and "more than the" in too_much.text
    not_money = alice.post(f"/items/{item}/resolve", {"action": "allocate", "target": number, "amount": "1.234",
                                                      "rest_on_account": "1", "seen": seen})
    assert not_money.status_code == 409
    no_target = alice.post(f"/items/{item}/resolve", {"action": "allocate", "target": "", "amount": "5.00",
                                                      "seen": seen})
    assert no_target.status_code == 409 and "which invoice" in no_target.text
    empty = alice.post(f"/items/{item}/resolve", {"action": "allocate", "target": [number, ""], "amount": ["", ""],
                                                  "seen": seen})
    assert empty.status_code == 409 and "at least one invoice" in empty.text
    shut = alice.post(f"/items/{item}/resolve", {"action": "allocate", "customer": owner, "target": closed,
                                                 "amount": "10.00", "rest_on_account": "1", "seen": seen})
    assert shut.status_code == 409 and f"invoice {closed} has 0.00 open" in shut.text
    unknown = alice.post(f"/items/{item}/resolve", {"action": "allocate", "target": "NO-SUCH", "amount": "480.00",
                                                    "seen": seen})
    assert unknown.status_code == 404 and "unknown invoice" in unknown.text
    stale = alice.post(f"/items/{item}/resolve", {"action": "on_account", "customer": "C0001",
                                                  "seen": "resolved:allocate:"})
    assert stale.status_code == 409 and "out of date" in stale.text
    _unchanged(engine, before)


def test_the_second_person_resolving_a_line_gets_a_message(engine: Engine, web) -> None:  # type: ignore[no-untyped-def]
    item = _open_items(engine)[0]
    alice, bob = web("alice"), web("bob")
    seen_by_alice = _seen(alice.get(f"/items/{item}").text)
    seen_by_bob = _seen(bob.get(f"/items/{item}").text)
    assert alice.post(f"/items/{item}/resolve", {"action": "on_account", "customer": "C0001",
                                                 "seen": seen_by_alice}).status_code == 303
    before = _state(engine)
    second = bob.post(f"/items/{item}/resolve", {"action": "on_account", "customer": "C0002", "seen": seen_by_bob})
    assert second.status_code == 409
    assert "alice" in second.text and "Nothing was changed" in second.text and "Traceback" not in second.text
    # without the page's state (a hand-made request) the service's own check answers the same way
    third = bob.post(f"/items/{item}/resolve", {"action": "on_account", "customer": "C0002"})
    assert third.status_code == 409 and "already resolved by alice" in third.text
    _unchanged(engine, before)


def test_claims_keep_colleagues_apart(engine: Engine, web) -> None:  # type: ignore[no-untyped-def]
    alice, bob = web("alice"), web("bob")
    first = alice.post("/queue/claim-next").headers["location"]
    second = bob.post("/queue/claim-next").headers["location"]
    assert first != second
    item = _item_of(first)
    taken = bob.post(f"/items/{item}/resolve", {"action": "on_account", "customer": "C0001"})
    assert taken.status_code == 409 and "claimed by alice" in taken.text
    none_left = web("ada").post("/queue/claim-next")
    assert none_left.status_code == 200 and "Nothing to claim" in none_left.text


def test_a_large_write_off_waits_for_an_approver(engine: Engine, web) -> None:  # type: ignore[no-untyped-def]
    item = _open_items(engine)[0]
    number, _ = _invoice(engine, "C0001", at_least=100000)  # the payment is 480.00: the rest is above the limit
    alice, vera = web("alice"), web("vera")
    asked = alice.post(f"/items/{item}/resolve", {"action": "write_off", "invoice": number, "code": "discount"})
    assert asked.status_code == 200 and "will wait for an approver" in asked.text  # confirmed first
    assert _count(engine, tables.AuditEntry.__table__.select().where(
        tables.AuditEntry.action == "write_off_proposed").subquery()) == 0
    proposed = alice.post(f"/items/{item}/resolve", {"action": "write_off", "invoice": number, "code": "discount",
                                                     "confirm": "1"}, follow_redirects=True)
    assert proposed.status_code == 200 and "waits for an approver" in proposed.text
    assert alice.post(f"/items/{item}/approve").status_code == 403
    assert "Approve" in vera.get(f"/items/{item}").text
    assert vera.post(f"/items/{item}/approve").status_code == 303
    page = vera.get(f"/items/{item}").text
    assert "Resolved (write_off) by alice, approved by vera" in page


def test_users_command_adds_and_removes_people(engine: Engine, web) -> None:  # type: ignore[no-untyped-def]
    from reconcile.cli import app

    url = engine.url.render_as_string(hide_password=False)
    runner = CliRunner()
    added = runner.invoke(app, ["--db", url, "users", "add", "dora", "--role", "collector", "--password", PASSWORD])
    assert added.exit_code == 0, added.output
    bad = runner.invoke(app, ["--db", url, "users", "add", "eve", "--role", "boss", "--password", PASSWORD])
    assert bad.exit_code == 2 and "unknown role" in bad.output
    dora = web("dora")
    assert dora.get("/customers").status_code == 200
    assert runner.invoke(app, ["--db", url, "users", "remove", "dora"]).exit_code == 0
    assert dora.get("/customers").headers["location"].startswith("/login")  # her session ends with her account
    assert runner.invoke(app, ["--db", url, "users", "remove", "dora"]).exit_code == 2


def test_bulk_actions_are_all_or_nothing(engine: Engine, web) -> None:  # type: ignore[no-untyped-def]
    items = [str(i) for i in _open_items(engine)]
    alice = web("alice")
    before = _state(engine)
    assert web("carl").post("/queue/bulk", {"ids": items, "bulk_action": "not_receivable",
                                            "code": "fee"}).status_code == 403
    nothing = alice.post("/queue/bulk", {"ids": items, "bulk_action": "accept"})  # the demo's items have no suggestion
    assert nothing.status_code == 409 and "nothing applied" in nothing.text and "no suggestion" in nothing.text
    bad = alice.post("/queue/bulk", {"ids": items, "bulk_action": "not_receivable", "code": "lunch"})
    assert bad.status_code == 409
    _unchanged(engine, before)
    assigned = alice.post("/queue/bulk", {"ids": items, "bulk_action": "assign", "assignee": "bob"})
    assert assigned.status_code == 200 and "2 item(s) assigned to bob" in assigned.text
    done = alice.post("/queue/bulk", {"ids": items, "bulk_action": "not_receivable", "code": "fee"})
    assert done.status_code == 200 and "2 item(s) resolved as batch" in done.text
    assert _open_items(engine) == []
    again = alice.post("/queue/bulk", {"ids": items, "bulk_action": "assign", "assignee": "bob"})
    assert again.status_code == 409 and "not open" in again.text


def test_a_decisions_csv_is_uploaded_and_applied(engine: Engine, web) -> None:  # type: ignore[no-untyped-def]
    first, second = _open_items(engine)
    alice = web("alice")
    before = _state(engine)
    broken = f"exception,action,customer\n{first},on_account,C0001\n{second},on_account,NOPE\n".encode()
    refused = alice.post("/queue/upload", files={"decisions": ("d.csv", broken, "text/csv")})
    assert refused.status_code == 409 and "line 3" in refused.text and "unknown customer NOPE" in refused.text
    _unchanged(engine, before)
    good = f"exception,action,customer\n{first},on_account,C0001\n{second},on_account,C0002\n".encode()
    applied = alice.post("/queue/upload", files={"decisions": ("d.csv", good, "text/csv")})
    assert applied.status_code == 200 and "2 item(s) resolved" in applied.text
    assert _open_items(engine) == []


def test_suggestions_show_their_evidence_and_are_accepted(engine: Engine, web_suggested) -> None:  # type: ignore[no-untyped-def]
    import polars as pl

    from reconcile.queue import views as queue
    item = int(queue.list_items(engine, config=SETTINGS.queue).filter(pl.col("source_ref") == "Q1")["id"][0])
    alice = web_suggested("alice")
    page = alice.get(f"/items/{item}").text
    assert ("A-1" in page and "A-2" in page and "amount agrees" in page and 'data-key="1"' in page
            and 'data-key="2"' in page)
    done = alice.post(f"/items/{item}/resolve", {"action": "accept", "choice": "2", "seen": _seen(page)})
    assert done.status_code == 303
    with db.transaction(engine) as session:
        paid = session.execute(select(tables.Allocation.invoice_number)
                               .where(tables.Allocation.invoice_number.is_not(None))).scalars().all()
    assert paid == ["A-2"]
    assert "Resolved (accept) by alice" in alice.get(f"/items/{item}").text
