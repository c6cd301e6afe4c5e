"""The `reconcile` command as a user runs it: real processes, real files, exit codes and output."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reconcile.services.demo_data import write_demo_data

CONTRACT_ALLOCATION_COLUMNS = (
    "source_ref,account,booking_date,customer_id,invoice_number,installment_no,kind,amount,currency,rule,confidence,run_id"
)
CONTRACT_EXCEPTION_COLUMNS = "source_ref,account,booking_date,amount,currency,reason,suggestions,status"


def reconcile(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", "COLUMNS": "200"}
    env.pop("RECONCILE_DB_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "reconcile.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"reconcile {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def test_demo_runs_the_whole_job_and_prints_a_summary(tmp_path: Path) -> None:
    done = reconcile("demo", "--no-flow", "--dir", "demo", cwd=tmp_path)
    assert "posting run" in done.stdout
    assert "queued for review" in done.stdout
    assert "re-running the same day posts 0 more line(s)" in done.stdout
    assert (tmp_path / "demo" / "reconcile.db").is_file()


def test_contract_commands_end_to_end(tmp_path: Path) -> None:
    files = write_demo_data(tmp_path / "data")
    db = ["--db", f"sqlite:///{tmp_path / 'r.db'}"]
    reconcile("init", *db, cwd=tmp_path)
    reconcile("load-ar", str(files.snapshot_dir), *db, cwd=tmp_path)
    first = reconcile("ingest", *map(str, files.statements), *db, cwd=tmp_path)
    assert "camt053" in first.stdout
    summary = json.loads(reconcile("run", "--no-flow", "--json", "--as-of", "2026-11-24", *db, cwd=tmp_path).stdout)
    assert summary["lines_posted"] > 0 and summary["lines_exception"] > 0

    again = reconcile("ingest", *map(str, files.statements), *db, cwd=tmp_path)
    assert again.stdout.count("already imported") == 2
    rerun = json.loads(reconcile("run", "--no-flow", "--json", *db, cwd=tmp_path).stdout)
    assert rerun["lines_posted"] == 0

    reconcile("export", "allocations", "-o", "alloc.csv", *db, cwd=tmp_path)
    reconcile("export", "exceptions", "-o", "exc.csv", *db, cwd=tmp_path)
    alloc_lines = (tmp_path / "alloc.csv").read_text().splitlines()
    assert alloc_lines[0] == CONTRACT_ALLOCATION_COLUMNS + ",evidence,runner_up,margin"  # why, after the contract
    assert (tmp_path / "exc.csv").read_text().splitlines()[0] == CONTRACT_EXCEPTION_COLUMNS
    with (tmp_path / "alloc.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert {r["kind"] for r in rows} <= {"invoice", "installment", "on_account", "write_off", "reversal"}
    assert len(rows) >= summary["allocations"]

    listed = json.loads(reconcile("exceptions", "list", "--json", *db, cwd=tmp_path).stdout)
    assert len(listed) == summary["lines_exception"]
    shown = json.loads(reconcile("exceptions", "show", str(listed[0]["id"]), "--json", *db, cwd=tmp_path).stdout)
    assert shown["source_ref"] == listed[0]["source_ref"]
    resolved = reconcile("exceptions", "resolve", str(listed[0]["id"]), "--on-account", "C0001", "--actor", "alice",
                         *db, cwd=tmp_path)
    assert "on_account" in resolved.stdout
    again_resolved = reconcile("exceptions", "resolve", str(listed[0]["id"]), "--on-account", "C0001", *db,
                               cwd=tmp_path, check=False)
    assert again_resolved.returncode == 2 and "already resolved by alice" in again_resolved.stderr
    balances = json.loads(reconcile("balances", "--format", "json", "--as-of", "2026-11-24", *db, cwd=tmp_path).stdout)
    assert balances["customers"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"<?xml version='1.0'?><Document xmlns='urn:iso:std:iso:20022:tech:xsd:camt.053.001.02'><BkToCstmrStmt>",
         "broken.xml"),
        ((b"id,booking_date,value_date,amount,currency,counterparty_name,counterparty_account,remittance\n"
          b"1,2026-11-23,,12.50,EUR,A,,x\n2,2026-13-45,,1.00,EUR,B,,y\n"), "line 3"),
    ],
)
def test_bad_file_is_one_clear_line_and_stores_nothing(tmp_path: Path, content: bytes, expected: str) -> None:
    bad = tmp_path / ("broken.xml" if content.startswith(b"<") else "broken.csv")
    bad.write_bytes(content)
    parsed = reconcile("parse", str(bad), "--json", cwd=tmp_path, check=False)
    assert parsed.returncode == 2
    assert parsed.stdout == ""
    assert len(parsed.stderr.strip().splitlines()) == 1
    assert expected in parsed.stderr and "Traceback" not in parsed.stderr

    db = ["--db", f"sqlite:///{tmp_path / 'r.db'}"]
    reconcile("init", *db, cwd=tmp_path)
    ingested = reconcile("ingest", str(bad), *db, cwd=tmp_path, check=False)
    assert ingested.returncode == 2
    export = reconcile("export", "exceptions", "-o", "exc.csv", *db, cwd=tmp_path)
    assert "0 exception(s)" in export.stdout
    import sqlite3

    with sqlite3.connect(tmp_path / "r.db") as conn:
        assert conn.execute("select count(*) from bank_lines").fetchone() == (0,)
        assert conn.execute("select count(*) from statement_files").fetchone() == (0,)


def test_ingest_with_a_named_profile_reads_the_signs_of_that_layout(tmp_path: Path, corpus: Path) -> None:
    sample = corpus / "csv" / "oca-sheet" / "sample_statement_credit_card_inverse_sign_en.csv"
    db = ["--db", f"sqlite:///{tmp_path / 'r.db'}"]
    reconcile("init", *db, cwd=tmp_path)
    detected = json.loads(reconcile("parse", str(sample), "--json", cwd=tmp_path).stdout)
    named = json.loads(reconcile("parse", str(sample), "--profile", "oca-sheet-credit-card", "--json",
                                 cwd=tmp_path).stdout)
    amounts = [line["amount"] for line in named["statements"][0]["lines"]]
    assert amounts == ["-33.50", "1525.00"]
    assert [line["amount"] for line in detected["statements"][0]["lines"]] == ["33.50", "-1525.00"]
    done = reconcile("ingest", str(sample), "--profile", "oca-sheet-credit-card", *db, cwd=tmp_path)
    assert "csv:oca-sheet-credit-card" in done.stdout
    refused = reconcile("parse", str(sample), "--profile", "no-such-profile", cwd=tmp_path, check=False)
    assert refused.returncode == 2 and "unknown CSV profile 'no-such-profile'" in refused.stderr
