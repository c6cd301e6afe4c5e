"""A posting run whose run lock is lost (its PostgreSQL backend terminated) stops before its next
chunk, while a second run takes the lock and posts the rest: nothing is posted twice."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import text

from reconcile.config import load_config
from reconcile.parsers.base import ParseOptions
from reconcile.services import daily as service
from reconcile.services import exports as export
from reconcile.services import ledger
from reconcile.store import db
from reconcile.store.runlock import LockLost, lock_holder
from tests.bulk import write_bulk
from tests.conftest import _fresh_pg_schema

REPO = Path(__file__).resolve().parents[2]
AS_OF = date(2026, 11, 24)
pytestmark = pytest.mark.pg


def _prepared(url: str, files) -> None:  # type: ignore[no-untyped-def]
    engine = db.make_engine(url)
    db.upgrade(engine)
    service.load_ar(engine, files.snapshot_dir, as_of=AS_OF)
    service.ingest_file(engine, files.statement, ParseOptions.builtin())
    engine.dispose()


def _allocations(url: str) -> list[tuple]:
    engine = db.make_engine(url)
    try:
        assert ledger.check(engine) == []
        return sorted(export.allocations_frame(engine).drop("run_id").rows(), key=str)
    finally:
        engine.dispose()


@pytest.mark.parametrize("connections", [1, 2])
def test_a_run_that_loses_its_lock_stops_and_the_next_posts_each_line_once(
    pg_url: str, tmp_path: Path, connections: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With two connections the first run's second chunk is already posting when the lock is lost; it is
    held back until the second run has the lock (else it could take the free lock back, which is allowed),
    and must then be refused whole."""
    files = write_bulk(tmp_path / "data", customers=120, lines=900)
    base = load_config(REPO / "config")
    config = replace(base, posting=replace(base.posting, chunk_lines=100, connections=connections))
    _prepared(pg_url, files)
    engine = db.make_engine(pg_url)
    second: dict[str, object] = {}
    committed_when_lost: list[int] = []
    second_has_the_lock = threading.Event()
    post_one = service._post_one_chunk

    def held_back(engine_, run_id, chunk, result, actor, now, marker, *rest):  # type: ignore[no-untyped-def]
        if actor == "first" and not marker.startswith("chunk 1 "):
            assert second_has_the_lock.wait(timeout=120)
        post_one(engine_, run_id, chunk, result, actor, now, marker, *rest)

    monkeypatch.setattr(service, "_post_one_chunk", held_back)

    def after_chunk(phase: str, done: int, total: int) -> None:
        if phase != "posting" or done != 1:
            return
        pid = lock_holder(engine)
        assert pid is not None, "the first run holds the lock while it posts"
        with engine.connect() as admin:
            assert admin.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
            # chunks posted at once ([posting] connections): those in flight may have committed before
            committed_when_lost.append(admin.execute(text(
                "SELECT count(*) FROM audit_log WHERE action = 'run_chunk' AND actor = 'first'")).scalar_one())
        # the lock is free now: a second run takes it and posts everything still unposted
        worker = threading.Thread(target=lambda: second.update(
            summary=service.run_posting(engine, config=config, as_of=AS_OF, actor="second")))
        worker.start()
        deadline = time.monotonic() + 120
        while lock_holder(engine) in (None, pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        second_has_the_lock.set()
        worker.join(timeout=240)
        assert "summary" in second, "the second run finished while the first was between chunks"

    with pytest.raises(LockLost, match="lost its run lock"):
        service.run_posting(engine, config=config, as_of=AS_OF, actor="first", progress=after_chunk)

    with engine.connect() as conn:
        runs = dict(conn.execute(text("SELECT actor, status FROM posting_runs")).all())
        chunks = conn.execute(text("SELECT count(*) FROM audit_log WHERE action = 'run_chunk' AND run_id IN "
                                   "(SELECT run_id FROM posting_runs WHERE actor = 'first')")).scalar()
        twice = conn.execute(text(
            "SELECT count(*) FROM (SELECT bank_line_id FROM allocations WHERE reverses_id IS NULL "
            "GROUP BY bank_line_id, invoice_number, installment_no, kind HAVING count(*) > 1) d")).scalar()
    engine.dispose()
    assert runs == {"first": "failed", "second": "completed"}
    assert chunks == committed_when_lost[0] >= 1  # nothing of the first run committed after it lost the lock
    assert twice == 0

    # and the ledger ends exactly where one uninterrupted run leaves it
    with contextmanager(_fresh_pg_schema)() as clean_url:
        _prepared(clean_url, files)
        clean = db.make_engine(clean_url)
        service.run_posting(clean, config=config, as_of=AS_OF)
        clean.dispose()
        assert _allocations(pg_url) == _allocations(clean_url)
