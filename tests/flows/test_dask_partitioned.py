"""A two-worker local Dask cluster posts exactly what the in-process run posts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("prefect_dask", reason="prefect-dask is in the test extra; install with pip install -e '.[test]'")

from reconcile.config import load_config
from reconcile.flows.scale import run_scaled
from reconcile.parsers.base import ParseOptions
from reconcile.services import daily as service
from reconcile.services import exports as export
from reconcile.services import ledger
from reconcile.store import db
from tests.bulk import write_bulk

REPO = Path(__file__).resolve().parents[2]


def _prepared(url: str, files) -> None:  # type: ignore[no-untyped-def]
    engine = db.make_engine(url)
    db.upgrade(engine)
    service.load_ar(engine, files.snapshot_dir)
    service.ingest_file(engine, files.statement, ParseOptions.builtin())
    engine.dispose()


def _outcome(url: str) -> tuple[list, list]:
    engine = db.make_engine(url)
    allocations = export.allocations_frame(engine).drop("run_id")
    queued = export.exceptions_frame(engine)
    assert ledger.check(engine) == []
    engine.dispose()
    return sorted(allocations.rows(), key=str), sorted(queued.rows(), key=str)


def test_a_two_worker_dask_cluster_posts_exactly_what_one_process_posts(tmp_path: Path) -> None:
    files = write_bulk(tmp_path / "data", customers=200, lines=2000, seed=5)
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    local, scaled = f"sqlite:///{tmp_path / 'local.db'}", f"sqlite:///{tmp_path / 'scaled.db'}"
    _prepared(local, files)
    _prepared(scaled, files)
    engine = db.make_engine(local)
    service.run_posting(engine, config=load_config(config), partitions=1)
    engine.dispose()
    summary = run_scaled(scaled, str(config), partitions=6)
    assert summary["status"] == "completed" and summary["lines_posted"] > 1000
    assert _outcome(scaled) == _outcome(local)
