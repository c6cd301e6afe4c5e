"""The Prefect daily run posts exactly what the plain service call posts, and a re-run posts nothing."""

from __future__ import annotations

from pathlib import Path

from reconcile import db, export, service
from reconcile.config import load_settings
from reconcile.demo_data import write_demo_data
from reconcile.flows.daily import posting_run_flow

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "config")


def _prepared(folder: Path) -> str:
    files = write_demo_data(folder / "data")
    url = f"sqlite:///{folder / 'r.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    service.load_ar(engine, files.snapshot_dir)
    engine.dispose()
    return url


def test_flow_matches_the_direct_service_call(tmp_path: Path) -> None:
    files = write_demo_data(tmp_path / "files")
    via_flow = _prepared(tmp_path / "flow")
    direct = _prepared(tmp_path / "direct")

    summary = posting_run_flow(db_url=via_flow, config_dir=CONFIG_DIR, files=[str(p) for p in files.statements],
                               as_of="2026-11-24")
    direct_engine = db.make_engine(direct)
    for path in files.statements:
        service.ingest_file(direct_engine, path)
    expected = service.run_posting(direct_engine, settings=load_settings(CONFIG_DIR)).to_dict()

    assert {k: summary[k] for k in ("lines_posted", "lines_exception", "posted", "on_account")} == \
        {k: expected[k] for k in ("lines_posted", "lines_exception", "posted", "on_account")}
    drop = ["run_id"]
    assert export.allocations_frame(db.make_engine(via_flow)).drop(drop).equals(export.allocations_frame(direct_engine).drop(drop))

    again = posting_run_flow(db_url=via_flow, config_dir=CONFIG_DIR, files=[str(p) for p in files.statements])
    assert again["lines_posted"] == 0
