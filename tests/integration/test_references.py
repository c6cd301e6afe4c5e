"""Every reference tables.py declares for allocations and postings holds on both databases.

SQLite enforces them as foreign-key constraints; PostgreSQL checks them once per statement and keeps
the parent rows from ever going away (store/migrations/references.py). Each test breaks one reference of a
real posted row and expects the database to refuse it, leaving the ledger as it was.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from reconcile.config import load_config
from reconcile.services import daily as service
from reconcile.services import ledger
from reconcile.store import db
from reconcile.store.migrations.references import CHECKED
from reconcile.store.tables import Base
from tests.builders import NOW, bank_line, ingest_lines, write_snapshot

CONFIG = load_config(Path(__file__).resolve().parents[2] / "config")
DECLARED = [(table, fk.parent.name) for table in CHECKED for fk in sorted(
    Base.metadata.tables[table].foreign_keys, key=lambda fk: fk.parent.name)]


@pytest.fixture
def posted(engine: Engine, tmp_path: Path) -> Engine:
    """One invoice with a payment plan, paid by one bank line: a posting with an installment allocation."""
    service.load_ar(engine, write_snapshot(
        tmp_path / "ar", customers=[{"customer_id": "C1", "name": "Acme Trading"}],
        invoices=[{"invoice_number": "INV-1", "customer_id": "C1", "amount": "300.00"}],
        installments=[{"plan_id": "P1", "invoice_number": "INV-1", "installment_no": n, "due_date": due,
                       "amount": "150.00"} for n, due in ((1, "2026-11-01"), (2, "2026-12-01"))]))
    ingest_lines(engine, [bank_line("B1", "150.00", remittance="INV-1")])
    assert service.run_posting(engine, config=CONFIG, now=NOW).status == "completed"
    return engine


def _one(engine: Engine, table: str) -> dict[str, Any]:
    t = Base.metadata.tables[table]
    with engine.connect() as c:
        return dict(c.execute(select(t).order_by(t.c.id).limit(1)).mappings().one())


def _counts(engine: Engine) -> tuple[int, int]:
    with engine.connect() as c:
        return tuple(c.execute(select(func.count()).select_from(Base.metadata.tables[t])).scalar_one()
                     for t in CHECKED)  # type: ignore[return-value]


def _missing(column: Any) -> Any:
    return 10**9 if column.type.python_type is int else "no-such-key"


def test_every_declared_reference_is_covered() -> None:
    assert ("allocations", "invoice_number") in DECLARED and ("postings", "bank_line_id") in DECLARED
    assert len(DECLARED) == 9


@pytest.mark.parametrize(("table", "column"), DECLARED)
def test_a_row_naming_a_missing_parent_is_refused(posted: Engine, table: str, column: str) -> None:
    row = _one(posted, table)
    assert row[column] is not None or column in ("reverses_id",)  # the posted row really uses the reference
    t = Base.metadata.tables[table]
    row.pop("id")
    row[column] = _missing(t.c[column])
    if table == "postings":
        row["generation"] += 1  # not refused as a second posting of the line
    before = _counts(posted)
    with pytest.raises(IntegrityError) as refused, posted.begin() as c:
        c.execute(insert(t).values(**row))
    if posted.dialect.name == "postgresql":
        assert f"{table}.{column} = " in str(refused.value) and "names no" in str(refused.value)
    # ...and an update that points an existing row at a missing parent is refused as well
    with pytest.raises(IntegrityError), posted.begin() as c:
        c.execute(update(t).values({column: _missing(t.c[column])}))
    assert _counts(posted) == before
    assert ledger.check(posted) == []


@pytest.mark.parametrize(("parent", "key"), [("bank_lines", "id"), ("invoices", "invoice_number"),
                                             ("customers", "customer_id"), ("postings", "id"),
                                             ("installments", "id"), ("posting_runs", "run_id")])
def test_a_referenced_parent_is_never_deleted_nor_rekeyed(posted: Engine, parent: str, key: str) -> None:
    t = Base.metadata.tables[parent]
    value = _one(posted, parent)[key] if key == "id" else None
    where = t.c[key] == value if value is not None else t.c[key].isnot(None)
    with pytest.raises(IntegrityError), posted.begin() as c:
        c.execute(t.delete().where(where))
    changed = t.c[key] + 1000 if t.c[key].type.python_type is int else t.c[key] + "-renamed"
    with pytest.raises(IntegrityError), posted.begin() as c:
        c.execute(update(t).where(where).values({key: changed}))
    assert ledger.check(posted) == []


def test_postgresql_keeps_the_parents_of_the_ledger(pg_url: str, tmp_path: Path) -> None:
    """On PostgreSQL even an unreferenced parent row stays (nothing in the ledger deletes), TRUNCATE too."""
    engine = db.make_engine(pg_url)
    try:
        db.upgrade(engine)
        service.load_ar(engine, write_snapshot(
            tmp_path / "ar", customers=[{"customer_id": "C8", "name": "Acme"}, {"customer_id": "C9", "name": "Nobody"}],
            invoices=[{"invoice_number": "INV-8", "customer_id": "C8", "amount": "80.00"}]))
        for sql in ("DELETE FROM customers WHERE customer_id = 'C9'", "TRUNCATE customers CASCADE"):
            with pytest.raises(IntegrityError, match="never deleted"), engine.begin() as c:
                c.execute(text(sql))
        with engine.connect() as c:
            assert c.execute(text("SELECT count(*) FROM customers")).scalar_one() == 2
            names = {r[0] for r in c.execute(text(
                "SELECT conname FROM pg_constraint WHERE contype = 'f' AND conrelid = 'allocations'::regclass"))}
        assert names == set()  # checked per statement, not per row
    finally:
        engine.dispose()
