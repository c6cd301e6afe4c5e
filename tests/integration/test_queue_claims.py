"""Claiming the next item: oldest or largest first, filtered, and never the same item to two people at once."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, text

from reconcile.queue import views as queue
from reconcile.queue.actions import assign, claim_next
from reconcile.services import daily as service
from reconcile.store import db
from tests.builders import NOW, bank_line, ingest_lines, write_snapshot
from tests.integration.test_queue_actions import AS_OF, CONFIG, LATER, queued_book


def test_claim_next_oldest_or_largest_first_with_filters(engine, tmp_path: Path) -> None:
    ids = queued_book(engine, tmp_path)
    assert claim_next(engine, actor="alice", now=LATER, config=CONFIG.queue) == ids["Q1"]           # booked 11-10
    assert claim_next(engine, actor="bob", now=LATER, sort="largest", config=CONFIG.queue) == ids["Q2"]  # 250.00
    only = queue.QueueFilter(reason="no_candidate")
    assert claim_next(engine, actor="bob", now=LATER, filters=only, config=CONFIG.queue) == ids["Q3"]
    assert claim_next(engine, actor="bob", now=LATER, filters=only, config=CONFIG.queue) is None
    assign(engine, ids["Q4"], "carol", actor="lead", now=LATER)
    # Q4 is carol's: bob is not handed it, carol is
    assert claim_next(engine, actor="bob", now=LATER, config=CONFIG.queue) is None
    assert claim_next(engine, actor="carol", now=LATER, config=CONFIG.queue) == ids["Q4"]
    # a claim nobody acted on lapses after claim_expiry_minutes
    later = LATER + timedelta(minutes=CONFIG.queue.claim_expiry_minutes + 1)
    assert claim_next(engine, actor="dave", now=later, config=CONFIG.queue) == ids["Q1"]
    shown = queue.list_items(engine, config=CONFIG.queue)
    assert dict(zip(shown["source_ref"], shown["claimed_by"])) == {
        "Q1": "dave", "Q2": "bob", "Q3": "bob", "Q4": "carol"}


def _many_queued(engine: Engine, tmp_path: Path, count: int) -> None:
    service.load_ar(engine, write_snapshot(
        tmp_path / "ar", customers=[{"customer_id": "C1", "name": "Acme Trading"}],
        invoices=[{"invoice_number": "A-1", "customer_id": "C1", "amount": "30.00"}],
    ))
    ingest_lines(engine, [bank_line(f"M{i:03d}", f"{i + 1}.00", name=f"Payer Number{i}", remittance="x")
                          for i in range(count)], digest="many")
    assert service.run_posting(engine, config=CONFIG, as_of=AS_OF, now=NOW).lines_exception == count


def test_concurrent_claimers_never_get_the_same_item(db_url: str, tmp_path: Path) -> None:
    engine = db.make_engine(db_url)
    db.upgrade(engine)
    count, workers = 40, 6
    _many_queued(engine, tmp_path, count)
    got: dict[str, list[int]] = {f"clerk{w}": [] for w in range(workers)}
    start = threading.Barrier(workers)
    failures: list[BaseException] = []

    def clerk(name: str) -> None:
        mine = db.make_engine(db_url)  # each clerk has its own connections, as separate people would
        try:
            start.wait()
            while (found := claim_next(mine, actor=name, now=LATER, sort="largest", config=CONFIG.queue)) is not None:
                got[name].append(found)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)
        finally:
            mine.dispose()

    threads = [threading.Thread(target=clerk, args=(name,)) for name in got]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert failures == []
    handed = [i for ids in got.values() for i in ids]
    assert len(handed) == len(set(handed)) == count
    shown = queue.list_items(engine, config=CONFIG.queue)
    assert {(r["id"], r["claimed_by"]) for r in shown.iter_rows(named=True)} == {
        (i, name) for name, ids in got.items() for i in ids}
    engine.dispose()


def test_postgresql_skips_a_row_a_colleague_is_claiming(pg_url: str, tmp_path: Path) -> None:
    """A claim in flight holds its row lock; the next claimer is handed the next item at once, not made to wait."""
    engine = db.make_engine(pg_url)
    db.upgrade(engine)
    _many_queued(engine, tmp_path, 3)
    first = queue.list_items(engine, sort="largest", config=CONFIG.queue)["id"].to_list()
    with engine.connect() as colleague:
        colleague.execute(text("SET lock_timeout = '2s'"))
        held = colleague.execute(text("SELECT id FROM exception_items WHERE id = :i FOR UPDATE"),
                                 {"i": first[0]}).scalar()
        assert held == first[0]
        assert claim_next(engine, actor="bob", now=LATER, sort="largest", config=CONFIG.queue) == first[1]
        colleague.rollback()
    assert claim_next(engine, actor="carol", now=LATER, sort="largest", config=CONFIG.queue) == first[0]
    engine.dispose()
