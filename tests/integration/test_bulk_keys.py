"""The bulk key lists a chunk sends (repo.among, update_by_key) reach the database intact, on SQLite and
PostgreSQL: on PostgreSQL they travel as one array literal, so quoting must survive any invoice number."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import Engine, select

from reconcile.store import db, repo, tables

AWKWARD = ['INV "7"', "INV\\8", "a,b", "{braces}", "NULL", "", " spaced ", "Ærø-№5", "tab\tx", "x'y", "1e5"]
NOW = datetime(2026, 12, 4, tzinfo=UTC)


def test_pg_array_quotes_texts_and_leaves_ints_bare() -> None:
    assert repo.pg_array([3, -1, 10**12]) == "{3,-1,1000000000000}"
    assert repo.pg_array(['a"b', "c\\d", None]) == '{"a\\"b","c\\\\d",NULL}'


@pytest.mark.parametrize("count", [len(AWKWARD), 3000])
def test_keys_with_any_characters_select_and_update_exactly_their_rows(engine: Engine, count: int) -> None:
    numbers = [AWKWARD[i] if i < len(AWKWARD) else f"INV-{i:05d}" for i in range(count)]
    with db.transaction(engine) as session:
        session.add(tables.Customer(customer_id="C1", name="Acme", updated_at=NOW))
        session.flush()
        repo.insert_rows(session, tables.Invoice.__table__, [
            {"invoice_number": n, "customer_id": "C1", "issue_date": date(2026, 11, 1),
             "due_date": date(2026, 12, 1), "currency": "EUR", "amount_minor": 1000, "open_amount_minor": 1000,
             "snapshot_open_minor": 1000, "updated_at": NOW} for n in [*numbers, "UNTOUCHED"]])
    chosen = numbers[::2]
    with db.transaction(engine) as session:
        inv = tables.Invoice
        found = [n for _, among in repo.among(session, inv.invoice_number, chosen)
                 for n in session.execute(select(inv.invoice_number).where(among)).scalars()]
        assert sorted(found) == sorted(chosen)
        repo.update_by_key(session, inv.__table__, "invoice_number", "open_amount_minor",
                           [(n, i % 900 + 1) for i, n in enumerate(chosen)])
    with engine.connect() as conn:
        opened = dict(conn.execute(select(tables.Invoice.invoice_number, tables.Invoice.open_amount_minor)).all())
    taken = {n: 1000 - (i % 900 + 1) for i, n in enumerate(chosen)}
    assert opened == {**{n: 1000 for n in numbers}, **taken, "UNTOUCHED": 1000}
