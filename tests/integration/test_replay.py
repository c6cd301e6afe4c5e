"""Replay: another configuration tried on past days, exactly, with the ledger untouched."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import Engine, text

from reconcile.config import load_config
from reconcile.services import daily as service
from reconcile.services.replay import replay
from tests.builders import bank_line, ingest_lines, write_snapshot

REPO = Path(__file__).resolve().parents[2]
CONFIG = load_config(REPO / "config")
DAY = date(2026, 11, 24)


def _strict(tmp_path: Path, threshold: str) -> Path:
    folder = tmp_path / f"config-{threshold}"
    shutil.copytree(REPO / "config", folder)
    toml = folder / "reconcile.toml"
    toml.write_text(toml.read_text().replace("auto_post_threshold = 0.90", f"auto_post_threshold = {threshold}"))
    return folder


def _dump(engine: Engine) -> list:
    with engine.connect() as c:
        return [c.execute(text(f"SELECT * FROM {t} ORDER BY 1")).all()
                for t in ("bank_lines", "postings", "allocations", "exception_items", "invoices", "audit_log")]


def test_replay_reports_exactly_the_lines_another_threshold_would_decide_otherwise(
        engine: Engine, tmp_path: Path) -> None:
    service.load_ar(engine, write_snapshot(tmp_path / "ar", [{"customer_id": "C1", "name": "Acme Trading"},
                                                              {"customer_id": "C2", "name": "Brick Works"}], [
        {"invoice_number": "INV-2026-0101", "customer_id": "C1", "amount": "100.00"},
        {"invoice_number": "INV-2026-0102", "customer_id": "C1", "amount": "250.00"},
        {"invoice_number": "INV-2026-0201", "customer_id": "C2", "amount": "80.00"},
    ]), as_of=DAY)
    ingest_lines(engine, [
        bank_line("E1", "100.00", name="Acme Trading", remittance="INV-2026-0101", booking_date="2026-11-24"),
        bank_line("M1", "250.00", name="Acme Trading", remittance="inv 2026 0l02", booking_date="2026-11-24"),
        bank_line("U1", "42.00", name="Nobody", remittance="hello", booking_date="2026-11-24"),
    ])
    summary = service.run_posting(engine, config=CONFIG, as_of=DAY,
                                  now=datetime(2026, 11, 24, 7, tzinfo=UTC))
    assert (summary.lines_posted, summary.lines_exception) == (2, 1)
    before = _dump(engine)

    same, same_summary = replay(engine, CONFIG)
    assert same.height == 0 and same_summary.lines == 3 and same_summary.posted_then == same_summary.posted_now == 2

    strict = load_config(_strict(tmp_path, "0.98"))
    diff, s = replay(engine, strict, start=DAY, end=DAY)
    # the mangled reference (confidence 0.97) would now be queued; the exact one stays posted
    assert diff.select("source_ref", "change", "then_outcome", "then_items", "now_outcome", "now_rule").rows() == [
        ("M1", "posted_to_queued", "posted", "INV-2026-0102=250.00", "queued", "low_confidence")]
    assert (s.posted_then, s.posted_now, s.changed, s.posted_elsewhere) == (2, 1, 1, 0)
    assert replay(engine, strict, start=date(2026, 11, 25))[1].lines == 0
    assert _dump(engine) == before                       # nothing was written
