"""Bulk decisions from a CSV: validated as a whole (errors name the row, nothing applied), one batch, undone as one."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconcile.core.errors import InputError, ReconcileError
from reconcile.queue import views as queue
from reconcile.queue.bulk import BulkError, bulk_resolve, undo_batch
from reconcile.services import exports as export
from reconcile.services import ledger
from tests.integration.test_queue_actions import (
    CONFIG,
    LATER,
    allocations,
    line_status,
    open_amounts,
    queued_book,
    snapshot,
)


def decisions(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "decisions.csv"
    path.write_text("exception,action,invoices,customer,choice,code,note\n" + body, encoding="utf-8")
    return path


GOOD = (
    "Q1,accept,,,2,,\n"
    "Q3,allocate,A-1=30.00|on_account=47.00,,,,phone call\n"
    "Q4,allocate,B-1#1=100.00|B-1#2=50.00,,,,\n"
    "Q2,not_receivable,,,,transfer,own account\n"
)


def test_a_good_file_is_one_batch_and_undo_reverses_all_of_it(engine, tmp_path: Path) -> None:
    ids = queued_book(engine, tmp_path)
    before = open_amounts(engine)
    dry = bulk_resolve(engine, decisions(tmp_path, GOOD), actor="alice", now=LATER, config=CONFIG.queue, dry_run=True)
    assert dry.batch is None and len(dry.rows) == 4 and allocations(engine) == []
    done = bulk_resolve(engine, decisions(tmp_path, GOOD), actor="alice", now=LATER, config=CONFIG.queue)
    assert done.applied == 4 and done.batch.startswith("batch-")
    assert allocations(engine) == [
        ("Q1", "invoice", "A-2", None, "30.00"),
        ("Q3", "invoice", "A-1", None, "30.00"), ("Q3", "on_account", None, None, "47.00"),
        ("Q4", "installment", "B-1", 1, "100.00"), ("Q4", "installment", "B-1", 2, "50.00"),
    ]
    resolved = queue.list_items(engine, filters=queue.QueueFilter(status="resolved"), config=CONFIG.queue)
    assert set(resolved["resolution_batch"]) == {done.batch} and line_status(engine, "Q2") == "skipped"
    assert ledger.check(engine) == []

    undone = undo_batch(engine, done.batch, actor="bob", now=LATER, reason="wrong file")
    assert len(undone["reopened"]) == 4
    assert open_amounts(engine) == before
    assert export.exceptions_frame(engine, status="open")["source_ref"].sort().to_list() == ["Q1", "Q2", "Q3", "Q4"]
    assert {line_status(engine, r) for r in ("Q1", "Q2", "Q3", "Q4")} == {"exception"}
    assert ledger.check(engine) == []
    with pytest.raises(ReconcileError, match="already undone"):
        undo_batch(engine, done.batch, actor="bob", now=LATER)
    with pytest.raises(ReconcileError, match="no resolved items in batch nope"):
        undo_batch(engine, "nope", actor="bob", now=LATER)
    assert ids  # the reopened lines are open items again, under new ids for the reversed postings


def test_errors_name_every_bad_row_and_nothing_is_applied(engine, tmp_path: Path) -> None:
    queued_book(engine, tmp_path)
    before = snapshot(engine)
    path = decisions(tmp_path, (
        "Q1,accept,,,2,,\n"                       # line 2: fine alone
        "Q3,allocate,A-1=40.00|A-2=37.00,,,,\n"   # line 3: A-1 has 30.00 open
        "Q4,allocate,B-1=100.00,,,,\n"            # line 4: does not add up to 150.00
        "Q1,not_receivable,,,,interest,\n"        # line 5: Q1 twice
        "Q9,accept,,,,,\n"                        # line 6: no such item
        "Q2,explode,,,,,\n"                       # line 7: unknown action
        "Q2,allocate,A-2=250.00,,,,\n"           # line 8: A-2 is taken by line 2
    ))
    with pytest.raises(BulkError) as caught:
        bulk_resolve(engine, path, actor="alice", now=LATER, config=CONFIG.queue)
    by_line = {e.where: e.why for e in caught.value.errors}
    assert sorted(by_line) == ["line 3", "line 4", "line 5", "line 6", "line 7", "line 8"]
    assert "A-1 has 30.00 open" in by_line["line 3"]
    assert "add up to 100.00, the payment is 150.00" in by_line["line 4"]
    assert "decided twice in this file (also line 2)" in by_line["line 5"]
    assert "no exception item 'Q9'" in by_line["line 6"]
    assert "action 'explode' is not one of" in by_line["line 7"]
    assert "A-2 has 0.00 open" in by_line["line 8"]
    assert str(path) in str(caught.value) and "nothing applied" in str(caught.value)
    assert snapshot(engine) == before


@pytest.mark.parametrize(("body", "match"), [
    ("exception,verdict\nQ1,accept\n", r"line 1: unknown column\(s\) verdict; missing column\(s\) action"),
    ("exception,action\n", "no decisions in the file"),
    ("exception,action\nQ1,accept,extra\n", "line 2: more fields than the header has"),
])
def test_files_that_are_not_decisions_are_refused(engine, tmp_path: Path, body: str, match: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(InputError, match=match):
        bulk_resolve(engine, path, actor="alice", now=LATER, config=CONFIG.queue)
