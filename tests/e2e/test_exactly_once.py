"""Exactly once, for real: runs racing in separate processes, runs killed with SIGKILL and started again.

Every scenario ends compared with one clean run of the same data on a fresh
database: the same allocations, row for row, and the same lines queued.
"""

from __future__ import annotations

import csv
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import text

from reconcile.config import load_config
from reconcile.core.errors import LedgerError
from reconcile.parsers.base import ParseOptions
from reconcile.services import daily as service
from reconcile.services import ledger
from reconcile.store import db
from tests.bulk import BulkFiles, write_bulk

REPO = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, chunk_lines: int) -> Path:
    folder = tmp_path / "config"
    shutil.copytree(REPO / "config", folder)
    toml = folder / "reconcile.toml"
    toml.write_text(toml.read_text().replace("chunk_lines = 5000", f"chunk_lines = {chunk_lines}"))
    return folder


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "reconcile.cli", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def _call(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(_cli(*args), capture_output=True, text=True, env=_env(), timeout=600, check=False)
    assert done.returncode == 0, f"reconcile {' '.join(args)}: {done.stdout}\n{done.stderr}"
    return done


def _prepare(url: str, files: BulkFiles) -> None:
    _call("init", "--db", url)
    _call("load-ar", str(files.snapshot_dir), "--db", url)
    _call("ingest", str(files.statement), "--db", url)


def _run_args(url: str, config: Path) -> tuple[str, ...]:
    return ("run", "--no-flow", "--as-of", "2026-11-25", "--db", url, "--config", str(config))


def _outcome(url: str, tmp_path: Path, name: str) -> tuple[list[tuple[str, ...]], list[str]]:
    """Allocations (without run ids) and queued lines, sorted, as exported."""
    out = tmp_path / f"{name}.csv"
    _call("export", "allocations", "-o", str(out), "--db", url)
    with out.open() as fh:
        rows = sorted(tuple(v for k, v in row.items() if k != "run_id") for row in csv.DictReader(fh))
    _call("export", "exceptions", "-o", str(out), "--db", url)
    with out.open() as fh:
        queued = sorted(row["source_ref"] for row in csv.DictReader(fh) if row["status"] == "open")
    return rows, queued


def _consistent(url: str) -> None:
    engine = db.make_engine(url)
    try:
        assert ledger.check(engine) == []
    finally:
        engine.dispose()


def _posted(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        return connection.execute(text("SELECT count(*) FROM postings")).scalar_one()


@pytest.fixture(scope="module")
def bulk(tmp_path_factory: pytest.TempPathFactory) -> BulkFiles:
    return write_bulk(tmp_path_factory.mktemp("bulk"))


@pytest.fixture(scope="module")
def clean_outcome(bulk: BulkFiles, tmp_path_factory: pytest.TempPathFactory) -> tuple[list, list]:
    """One uninterrupted run on a fresh SQLite database: the reference every scenario must equal."""
    folder = tmp_path_factory.mktemp("clean")
    url = f"sqlite:///{folder / 'clean.db'}"
    _prepare(url, bulk)
    _call(*_run_args(url, _config(folder, 2000)))
    outcome = _outcome(url, folder, "clean")
    assert len(outcome[0]) > bulk.lines // 2 and outcome[1], "the data should both post and queue"
    return outcome


def test_two_runs_started_together_post_each_line_once(
    db_url: str, bulk: BulkFiles, clean_outcome: tuple, tmp_path: Path
) -> None:
    _prepare(db_url, bulk)
    config = _config(tmp_path, 200)
    racers = [subprocess.Popen(_cli(*_run_args(db_url, config)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=_env()) for _ in range(2)]
    for racer in racers:
        _, err = racer.communicate(timeout=600)
        assert racer.returncode == 0, err
    assert _outcome(db_url, tmp_path, "raced") == clean_outcome
    _consistent(db_url)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_run_killed_at_a_random_point_then_rerun_equals_a_clean_run(
    db_url: str, bulk: BulkFiles, clean_outcome: tuple, tmp_path: Path, seed: int
) -> None:
    _prepare(db_url, bulk)
    config = _config(tmp_path, 100)
    rng = random.Random(seed)
    watcher = db.make_engine(db_url)
    partial = []
    for _ in range(2):  # kill twice, mid-posting, before letting a run finish
        before = _posted(watcher)
        target = before + rng.randrange(1, 1200)
        victim = subprocess.Popen(_cli(*_run_args(db_url, config)), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, env=_env())
        while victim.poll() is None and _posted(watcher) < target:
            time.sleep(0.005)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=60)
        partial.append(_posted(watcher))
        _consistent(db_url)  # whole chunks or nothing, at every point
    watcher.dispose()
    _call(*_run_args(db_url, config))
    final = len({row[0] for row in clean_outcome[0]})
    assert any(0 < n < final for n in partial), f"no kill landed mid-run: posted lines after kills {partial}"
    assert _outcome(db_url, tmp_path, "resumed") == clean_outcome
    _consistent(db_url)


def test_without_the_run_lock_the_database_still_refuses_a_second_posting(engine, bulk: BulkFiles) -> None:
    """Two posters that decided on the same lines: one commits, the other's chunk is refused whole."""
    service.load_ar(engine, bulk.snapshot_dir)
    service.ingest_file(engine, bulk.statement, ParseOptions.builtin())
    rules = load_config(REPO / "config").matching
    decided = []
    for _ in range(2):
        lines, book = service.run_inputs(engine)
        decided.append((lines, book, service.decide_run(engine, lines, book, rules)))
    now = service.utcnow()
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def post(n: int) -> None:
        lines, book, result = decided[n]
        run_id = f"race-{n}"
        service.begin_run(engine, run_id, now.date(), "test", now)
        barrier.wait()
        try:
            service.post_result(engine, run_id, lines, book, result, "test", now, chunk_lines=100_000)
        except Exception as exc:  # noqa: BLE001 - the loser's error is the point of the test
            errors.append(exc)

    threads = [threading.Thread(target=post, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert len(errors) == 1, errors
    assert isinstance(errors[0], LedgerError) or "unique" in str(errors[0]).lower() or "lock" in str(errors[0]).lower()
    assert ledger.check(engine) == []



def test_connections_dropped_mid_run_are_retried_without_double_posting(
    pg_url: str, bulk: BulkFiles, clean_outcome: tuple, tmp_path: Path
) -> None:
    """The server kills every connection of the run, twice, while it posts: the run still ends exactly right."""
    _prepare(pg_url, bulk)
    engine = db.make_engine(f"{pg_url}&application_name=reconcile-dropped-run")
    killer = db.make_engine(pg_url)
    kills: list[int] = []

    def drop_connections() -> None:
        for threshold in (300, 1500):
            while _posted(killer) < threshold:
                time.sleep(0.002)
            with killer.connect() as c:
                kills.append(c.execute(text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE application_name = 'reconcile-dropped-run'")).scalar_one())

    thread = threading.Thread(target=drop_connections)
    thread.start()
    settings = load_config(_config(tmp_path, 100))
    summary = service.run_posting(engine, config=settings, as_of=date(2026, 11, 25))
    thread.join(timeout=60)
    engine.dispose()
    killer.dispose()
    assert len(kills) == 2 and all(kills), kills
    assert summary.status == "completed"
    assert _outcome(pg_url, tmp_path, "dropped") == clean_outcome
    _consistent(pg_url)
