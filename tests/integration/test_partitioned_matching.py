"""Partitioned matching (what the Dask cluster runs) decides exactly what one in-process run decides."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from reconcile.config import load_config
from reconcile.match import match_lines
from reconcile.match.partition import match_partitioned, prepare, split
from reconcile.parsers.base import ParseOptions
from reconcile.services import daily as service
from tests.bulk import write_bulk

RULES = load_config(Path(__file__).resolve().parents[2] / "config").matching


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(frame.columns)


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from reconcile.store import db
    folder = tmp_path_factory.mktemp("partitioned")
    files = write_bulk(folder, customers=150, lines=1500, seed=11)
    engine = db.make_engine(f"sqlite:///{folder / 'r.db'}")
    db.upgrade(engine)
    service.load_ar(engine, files.snapshot_dir)
    service.ingest_file(engine, files.statement, ParseOptions.builtin())
    lines, book = service.run_inputs(engine)
    engine.dispose()
    return lines.drop("generation"), book


@pytest.mark.parametrize("count", [1, 2, 7])
def test_partitions_decide_exactly_what_one_run_decides(day, count: int) -> None:  # type: ignore[no-untyped-def]
    lines, book = day
    whole = match_lines(lines, book, RULES)
    parted = match_partitioned(lines, book, RULES, count)
    assert whole.allocations.height > 500 and whole.exceptions.height > 50
    for name in ("allocations", "exceptions", "skipped"):
        assert _sorted(getattr(parted, name)).equals(_sorted(getattr(whole, name))), name


def test_partitions_share_no_customer(day) -> None:  # type: ignore[no-untyped-def]
    lines, book = day
    parts = split(prepare(lines, book, RULES), book, 4)
    seen: set[str] = set()
    for part in parts:
        mine = set(part.book.customers["customer_id"].to_list())
        assert not mine & seen
        seen |= mine
    assert sum(p.prepared.credits.height for p in parts) == lines.filter(pl.col("amount_minor") > 0).height
    assert sum(1 for p in parts if p.prepared.credits.height) > 1
