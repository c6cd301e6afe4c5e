"""The daily posting run through Prefect: a good day, a bad file, a re-run, a dry run, and a failed posting.

Each case drops files into an inbox folder and runs the flow; the plain
`inbox.run_day` on a twin database is the reference for what must be posted.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.states import State
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from reconcile.config import load_config
from reconcile.core.errors import ReconcileError
from reconcile.flows import daily
from reconcile.flows.daily import load_ar_flow, reports_flow, run_posting_flow
from reconcile.services import daily as service
from reconcile.services import exports as export
from reconcile.services.demo_data import ACCOUNT, write_demo_data
from reconcile.statements import inbox
from reconcile.store import db, tables

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "config")
AS_OF = "2026-11-24"
EXTRA_CSV = (
    "id,booking_date,value_date,amount,currency,counterparty_name,counterparty_account,remittance,account,reference\n"
    f"X-1,2026-11-24,2026-11-24,310.00,EUR,NORDLICHT GMBH,,Payment for services,{ACCOUNT},\n"
    f"X-2,2026-11-24,2026-11-24,77.70,EUR,SOMEONE ELSE,,gift,{ACCOUNT},\n"
)
CORRUPT = "<?xml version='1.0'?><Document xmlns='urn:iso:std:iso:20022:tech:xsd:camt.053.001.08'><BkToCstm"


@dataclass
class Day:
    url: str
    inbox: Path
    names: list[str]

    @property
    def engine(self):  # type: ignore[no-untyped-def]
        return db.make_engine(self.url)

    def run(self, **kwargs: Any) -> State:
        return run_posting_flow(db_url=self.url, config_dir=CONFIG_DIR, inbox=str(self.inbox), as_of=AS_OF,
                                return_state=True, **kwargs)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("demo")
    write_demo_data(folder)
    (folder / "statements" / "bank-export-extra.csv").write_text(EXTRA_CSV, encoding="utf-8")
    return folder


def _day(demo: Path, folder: Path, url: str | None = None, corrupt: bool = False) -> Day:
    folder.mkdir(parents=True, exist_ok=True)
    url = url or f"sqlite:///{folder / 'r.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    service.load_ar(engine, demo / "snapshot")
    engine.dispose()
    box = folder / "inbox"
    box.mkdir(parents=True)
    for path in sorted((demo / "statements").iterdir()):
        shutil.copy(path, box / path.name)
    if corrupt:
        (box / "broken-camt.xml").write_text(CORRUPT, encoding="utf-8")
    return Day(url, box, sorted(p.name for p in box.iterdir()))


def _counts(engine) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with db.transaction(engine) as session:
        return {t.__tablename__: session.execute(select(func.count()).select_from(t)).scalar_one()
                for t in (tables.StatementFile, tables.BankLine, tables.Allocation, tables.PostingRun,
                          tables.ExceptionItem)}


def _artifacts(state: State) -> dict[str, Any]:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])))
    return {a.key: a for a in found}


def test_good_day_posts_what_the_plain_run_posts_and_archives_the_files(
    demo: Path, tmp_path: Path, db_url: str,
) -> None:
    day = _day(demo, tmp_path / "flow", url=db_url)
    twin = _day(demo, tmp_path / "plain")
    state = day.run()
    assert state.is_completed() and state.name == "Completed"
    report = state.result()
    expected = inbox.run_day(twin.engine, load_config(CONFIG_DIR), inbox=twin.inbox,
                             as_of=date.fromisoformat(AS_OF)).to_dict()

    assert len(day.names) == 3 and [f["status"] for f in report["files"]] == ["ingested"] * 3
    assert sum(f["new_lines"] for f in report["files"]) == 26
    assert report["lines_posted"] > 0
    for key in ("lines_posted", "lines_exception", "posted", "on_account", "exceptions_by_reason", "auto_rate"):
        assert report[key] == expected[key], key
    drop = ["run_id"]
    assert export.allocations_frame(day.engine).drop(drop).equals(export.allocations_frame(twin.engine).drop(drop))

    archive = day.inbox / "archive" / AS_OF
    assert sorted(p.name for p in archive.iterdir()) == day.names
    assert inbox.pending_files(day.inbox) == []

    artifacts = _artifacts(state)
    assert set(artifacts) == {"posting-run-summary", "posting-run-table", "receivables-balances"}
    table = artifacts["posting-run-table"].data
    rows = {r["measure"]: r["value"] for r in (json.loads(table) if isinstance(table, str) else table)}
    assert rows["files"] == "3" and rows["lines posted"] == str(report["lines_posted"])
    assert rows["posted amount"] == f"{report['posted']['EUR']} EUR"
    assert {"automatic posting rate", "duration", "exceptions: no_candidate"} <= set(rows)
    assert f"{report['posted']['EUR']} EUR" in artifacts["posting-run-summary"].data
    # the completed run published the day's balances (what the reports flow computes), after its posting
    published = artifacts["receivables-balances"].data
    totals = json.loads(published) if isinstance(published, str) else published
    assert totals == daily._balance_totals(day.url, CONFIG_DIR, AS_OF, None)["totals"]
    assert totals[0]["currency"] == "EUR" and totals[0]["open"] != "0.00"

    # the same day again: the inbox is empty, nothing is posted
    again = day.run().result()
    assert (again["files"] == [] and again["lines_posted"] == 0
            and again["lines_considered"] == report["lines_exception"])

    # the bank delivers the same files once more: read as already imported, nothing new, archived beside the first
    for name in day.names:
        shutil.copy(archive / name, day.inbox / name)
    redelivered = day.run().result()
    assert [f["status"] for f in redelivered["files"]] == ["already imported"] * 3
    assert redelivered["lines_posted"] == 0
    assert len(list(archive.iterdir())) == 6


def test_a_corrupt_file_is_quarantined_with_its_reason_and_the_others_post(demo: Path, tmp_path: Path) -> None:
    day = _day(demo, tmp_path, corrupt=True)
    state = day.run()

    assert state.is_completed()
    assert "warnings" in state.message and "broken-camt.xml" in state.message
    report = state.result()
    by_file = {f["file"]: f for f in report["files"]}
    assert by_file["broken-camt.xml"]["status"] == "quarantined"
    assert report["files_quarantined"] == 1 and report["lines_posted"] > 0
    assert sorted(f for f, o in by_file.items() if o["status"] == "ingested") == [
        n for n in day.names if n != "broken-camt.xml"]

    moved = day.inbox / "quarantine" / "broken-camt.xml"
    assert moved.read_text(encoding="utf-8") == CORRUPT
    reason = (day.inbox / "quarantine" / "broken-camt.xml.reason.txt").read_text(encoding="utf-8")
    assert "broken-camt.xml" in reason and "XML" in reason.upper()
    assert len(list((day.inbox / "archive" / AS_OF).iterdir())) == 3
    assert "broken-camt.xml" in _artifacts(state)["posting-run-summary"].data


def test_dry_run_writes_nothing_moves_nothing_and_previews_the_real_run(demo: Path, tmp_path: Path) -> None:
    day = _day(demo, tmp_path, corrupt=True)
    before = _counts(day.engine)
    preview = day.run(dry_run=True).result()

    assert _counts(day.engine) == before
    assert sorted(p.name for p in day.inbox.iterdir()) == day.names  # no archive or quarantine folder either
    assert {f["file"]: f["status"] for f in preview["files"]}["broken-camt.xml"] == "would quarantine"
    assert preview["dry_run"] and preview["lines_posted"] > 0

    real = day.run().result()
    for key in ("lines_considered", "lines_posted", "lines_exception", "posted", "on_account", "exceptions_by_reason"):
        assert preview[key] == real[key], key


def test_posting_failure_fails_the_flow_and_leaves_the_files(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    day = _day(demo, tmp_path)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise ReconcileError("database connection lost while posting chunk 1 of 1")

    monkeypatch.setattr(service, "run_posting", broken)
    state = day.run()
    assert state.is_failed()
    with pytest.raises(ReconcileError, match="connection lost"):
        state.result()
    assert [p.name for p in inbox.pending_files(day.inbox)] == day.names  # stored, not archived: a re-run finishes
    assert "failed" in _artifacts(state)["posting-run-summary"].data


def test_a_run_whose_ledger_check_fails_ends_failed_with_its_summary(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    day = _day(demo, tmp_path)
    monkeypatch.setattr(service, "check_ledger_now", lambda *_: ["invoice INV-1: open amount below zero"])
    state = day.run()

    assert state.is_failed() and "open amount below zero" in state.message
    failure = state.result(raise_on_failure=False)
    assert isinstance(failure, inbox.RunFailed)
    assert failure.report["status"] == "failed" and failure.report["lines_posted"] > 0
    assert len(inbox.pending_files(day.inbox)) == 3


def test_balances_that_cannot_be_published_leave_the_posted_run_completed(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    day = _day(demo, tmp_path)

    def broken(*_: Any) -> dict[str, Any]:
        raise RuntimeError("balances unavailable")

    monkeypatch.setattr(daily, "_balance_totals", broken)
    state = day.run()
    assert state.is_completed() and state.result()["lines_posted"] > 0
    assert set(_artifacts(state)) == {"posting-run-summary", "posting-run-table"}


def test_load_ar_and_reports_flows(demo: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    db.upgrade(db.make_engine(url))
    counts = load_ar_flow(db_url=url, config_dir=CONFIG_DIR, folder=str(demo / "snapshot"))
    assert counts["customers_new"] == 20 and counts["invoices_new"] > 0

    report = reports_flow(db_url=url, config_dir=CONFIG_DIR, as_of=AS_OF, output=str(tmp_path / "reports"))
    assert report["customers"] == 20 and [t["currency"] for t in report["totals"]] == ["EUR"]
    written = (tmp_path / "reports" / f"balances-{AS_OF}.csv").read_text().splitlines()
    assert len(written) == 21 and written[0].startswith("customer_id,name,currency,open")


def test_a_passing_io_error_is_retried_and_a_bad_file_is_not(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    day = _day(demo, tmp_path, corrupt=True)
    real, calls = service.ingest_file, Counter()

    def flaky(engine, path, options, now=None, account=None):  # type: ignore[no-untyped-def]
        calls[Path(path).name] += 1
        if Path(path).name == "bank-export-extra.csv" and calls[Path(path).name] == 1:
            raise OperationalError("INSERT", {}, sqlite3.OperationalError("disk I/O error"))
        return real(engine, path, options, now=now, account=account)

    monkeypatch.setattr(service, "ingest_file", flaky)
    monkeypatch.setattr(daily, "ingest_statement", daily.ingest_statement.with_options(retry_delay_seconds=0))
    report = day.run().result()

    assert calls == {"bank-export-2026-11-24.csv": 1, "bank-export-extra.csv": 2, "broken-camt.xml": 1,
                     "camt053-2026-11-23.xml": 1}
    statuses = {f["file"]: f["status"] for f in report["files"]}
    assert statuses["bank-export-extra.csv"] == "ingested" and statuses["broken-camt.xml"] == "quarantined"
