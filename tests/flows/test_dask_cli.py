"""`reconcile run --dask local`: the daily flow's matching on a two-worker local Dask cluster posts
exactly what a single-process run posts."""

from __future__ import annotations

import json
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("distributed", reason='Dask is in the scale extra: pip install -e ".[scale]"')

from reconcile.cli import app
from reconcile.services import daily as service
from reconcile.services import exports as export
from reconcile.services import ledger
from reconcile.store import db
from tests.bulk import write_bulk

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _day(root: Path, files) -> tuple[str, Path]:  # type: ignore[no-untyped-def]
    root.mkdir()
    url = f"sqlite:///{root / 'r.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    service.load_ar(engine, files.snapshot_dir)
    engine.dispose()
    box = root / "inbox"
    box.mkdir()
    shutil.copy(files.statement, box / "day.csv")
    return url, box


def _outcome(url: str) -> tuple[list, list]:
    engine = db.make_engine(url)
    try:
        assert ledger.check(engine) == []
        allocations = sorted(export.allocations_frame(engine).drop("run_id").rows(), key=str)
        return allocations, sorted(export.exceptions_frame(engine).rows(), key=str)
    finally:
        engine.dispose()


@pytest.mark.slow
def test_run_dask_local_posts_exactly_what_one_process_posts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from reconcile.flows import daily, scale

    clusters: list[tuple[str, int]] = []
    decided: list[int] = []

    @contextmanager
    def watched(address: str, workers: int):  # type: ignore[no-untyped-def]
        clusters.append((address, workers))
        with scale.dask_mapper(address, workers) as mapper:
            yield lambda fn, parts: decided.append(len(parts := list(parts))) or mapper(fn, parts)

    monkeypatch.setattr(daily, "dask_mapper", watched)
    files = write_bulk(tmp_path / "data", customers=200, lines=1500)
    single_url, single_box = _day(tmp_path / "single", files)
    dask_url, dask_box = _day(tmp_path / "dask", files)
    common = ["--as-of", "2026-11-24", "--config", str(REPO / "config"), "--json"]

    single = runner.invoke(app, ["run", "--no-flow", "--db", single_url, "--inbox", str(single_box), *common])
    assert single.exit_code == 0, single.output
    scaled = runner.invoke(app, ["run", "--dask", "local", "--db", dask_url, "--inbox", str(dask_box), *common])
    assert scaled.exit_code == 0, scaled.output

    one, two = json.loads(single.stdout), json.loads(scaled.stdout)
    assert two["lines_posted"] == one["lines_posted"] > 0 and two["status"] == "completed"
    assert _outcome(dask_url) == _outcome(single_url)
    assert clusters == [("local", 2)] and decided and decided[0] >= 4  # two workers, partitions for both


def test_dask_with_no_flow_is_refused_in_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    db.upgrade(db.make_engine(url))
    done = runner.invoke(app, ["run", "--no-flow", "--dask", "local", "--db", url])
    assert done.exit_code == 2 and "--dask matches through the flow" in done.stderr
