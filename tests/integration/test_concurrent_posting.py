"""Chunks posted over several PostgreSQL connections at once end exactly as chunks posted one by one.

The data is made to collide: every invoice is paid in three parts booked on three days (so its open amount
moves in chunks that run at the same time), and the second day's statement returns payments posted on the
first day (a return reads the status of the payment it takes back, so its chunk must run alone).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from reconcile.config import load_config
from reconcile.core.errors import ReconcileError
from reconcile.services import daily as service
from reconcile.services import exports as export
from reconcile.services import ledger
from reconcile.store import db
from reconcile.store.runlock import LockLost
from tests.builders import NOW, bank_line, ingest_lines, write_snapshot

REPO = Path(__file__).resolve().parents[2]
INVOICES = 60


def _first_day() -> list[dict]:
    return [bank_line(f"F-{i:03d}", "100.00", remittance=f"Invoice INV-{200 + i}", end_to_end_id=f"E-F{i:03d}")
            for i in range(INVOICES)]


def _second_day() -> list[dict]:
    parts = [bank_line(f"P-{i:03d}-{day}", amount, booking_date=f"2026-11-2{day}",
                       remittance=f"part payment INV-{100 + i}")
             for day, amount in ((4, "30.00"), (5, "30.00"), (6, "40.00")) for i in range(INVOICES)]
    returns = [bank_line(f"R-{i:03d}", "-100.00", booking_date="2026-11-25", remittance="RETURN AC04",
                         end_to_end_id=f"E-F{i:03d}", is_reversal=True) for i in range(0, INVOICES, 7)]
    return parts + returns


def _ledger(url: str, tmp_path: Path, connections: int, spy: Callable | None = None) -> tuple:
    engine = db.make_engine(url)
    db.upgrade(engine)
    try:
        invoices = [{"invoice_number": f"INV-{100 + i}", "customer_id": f"C{i % 12:02d}", "amount": "100.00"}
                    for i in range(INVOICES)]
        invoices += [{"invoice_number": f"INV-{200 + i}", "customer_id": f"C{i % 12:02d}", "amount": "100.00"}
                     for i in range(INVOICES)]
        customers = [{"customer_id": f"C{c:02d}", "name": f"Customer {c}"} for c in range(12)]
        service.load_ar(engine, write_snapshot(tmp_path / f"ar-{connections}", customers, invoices))
        config = load_config(REPO / "config")
        config = replace(config, posting=replace(config.posting, chunk_lines=20, connections=connections))
        ingest_lines(engine, _first_day(), digest="first-day")
        first = service.run_posting(engine, config=config, as_of=date(2026, 11, 23), now=NOW)
        ingest_lines(engine, _second_day(), digest="second-day")
        if spy is not None:
            spy()
        second = service.run_posting(engine, config=config, as_of=date(2026, 11, 26), now=NOW + timedelta(days=3))
        allocations = sorted(export.allocations_frame(engine).drop("run_id").rows(), key=repr)
        with db.transaction(engine) as session:
            lines = sorted(session.execute(text("SELECT source_ref, status FROM bank_lines")).all())
            open_ = sorted(session.execute(text("SELECT invoice_number, open_amount_minor FROM invoices")).all())
        assert ledger.check(engine) == []
        return (first.status, second.status, second.returns), allocations, lines, open_
    finally:
        engine.dispose()


@pytest.mark.pg
def test_two_connections_post_exactly_what_one_posts(pg_url: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    one_by_one = _ledger(f"sqlite:///{tmp_path / 'one.db'}", tmp_path, connections=1)
    assert one_by_one[0] == ("completed", "completed", len(range(0, INVOICES, 7)))
    returned = {ref for ref, status in one_by_one[2] if status == "returned"}
    assert len(returned) == len(range(0, INVOICES, 7))
    partly_paid = {row for row in one_by_one[1] if str(row[0]).startswith("P-")}
    assert len(partly_paid) >= 2 * INVOICES, "the parts should post, colliding on their invoices"

    in_flight, most, alone_with = [0], [0], []
    guard = threading.Lock()
    post_one = service._post_one_chunk

    def counting(engine: Engine, run_id: str, chunk: dict, *args: object) -> None:
        with guard:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
            if chunk["returns"] is not None:
                alone_with.append(in_flight[0])
        try:
            threading.Event().wait(0.01)  # long enough for the next chunk to start beside this one
            post_one(engine, run_id, chunk, *args)
        finally:
            with guard:
                in_flight[0] -= 1

    at_once = _ledger(pg_url, tmp_path, connections=2,
                      spy=lambda: monkeypatch.setattr(service, "_post_one_chunk", counting))
    assert most[0] == 2, "two chunks should have been posting at the same time"
    assert alone_with and set(alone_with) == {1}, "a chunk with returns must run by itself"
    assert at_once == one_by_one


def test_the_first_failure_stops_new_chunks_and_those_in_flight_finish() -> None:
    started, finished, progress = [], [], []
    lock = threading.Lock()

    def post(number: int) -> None:
        with lock:
            started.append(number)
        if number == 3:
            raise ReconcileError("chunk 3 refused")
        threading.Event().wait(0.02)
        with lock:
            finished.append(number)

    with pytest.raises(ReconcileError, match="chunk 3 refused"):
        service._post_chunks(10, 2, post, lambda n: None, progress.append, alone=set())
    assert 3 in started and max(started) <= 5, started  # nothing started long after the failure
    assert sorted(finished) == sorted(n for n in started if n != 3)  # whatever started, finished
    assert progress == list(range(1, len(finished) + 1))


def test_a_lost_lock_stops_before_the_next_chunk() -> None:
    started: list[int] = []

    def ready(number: int) -> None:
        if number == 4:
            raise LockLost("the posting run lost its run lock")

    counted: list[int] = []
    with pytest.raises(LockLost):
        service._post_chunks(10, 2, started.append, ready, counted.append, alone=set())
    assert sorted(started) == [1, 2, 3]
    assert counted == [1, 2, 3]  # the chunks in flight finished and were reported before it stopped


def test_a_deadlock_victim_chunk_is_posted_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL rolled the chunk back whole to break a deadlock: it is simply posted again."""
    from psycopg import errors
    from sqlalchemy.exc import OperationalError

    calls: list[str] = []

    def post_one(*args: object) -> None:
        calls.append("post")
        if len(calls) == 1:
            raise OperationalError("UPDATE invoices ...", {}, errors.DeadlockDetected("deadlock detected"))

    def committed(*args: object) -> bool:
        raise AssertionError("a deadlock's victim was rolled back: no need to ask whether it committed")

    monkeypatch.setattr(service, "_post_one_chunk", post_one)
    monkeypatch.setattr(service, "_chunk_committed", committed)
    monkeypatch.setattr(service, "RETRY_PAUSE_SECONDS", 0)
    service._post_chunk_retrying(None, "run", {}, None, "test", NOW, 1, 3)  # type: ignore[arg-type]
    assert calls == ["post", "post"]
