"""`reconcile exceptions ...` as a person runs it: the real command on a file database, exit codes and output.

Commands run in-process (typer's CliRunner: a process start costs ~2 s); one refusal
runs as a real process to show the exit status and the one-line error a shell sees.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from reconcile.cli import app
from tests.e2e.test_cli import reconcile

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "config")
runner = CliRunner()

CUSTOMERS = "customer_id,name\nC1,Acme Trading\nC2,Brick Works\n"
INVOICES = """invoice_number,customer_id,issue_date,due_date,currency,amount,open_amount,payment_reference
A-1,C1,2026-10-01,2026-10-15,EUR,30.00,30.00,
A-2,C1,2026-10-01,2026-10-31,EUR,30.00,30.00,
A-3,C1,2026-10-01,2026-11-30,EUR,77.00,77.00,
B-1,C2,2026-10-01,2026-10-31,EUR,200.00,200.00,
"""
STATEMENT = """id,booking_date,value_date,amount,currency,counterparty_name,counterparty_account,remittance
Q1,2026-11-10,,30.00,EUR,ACME TRADING,,payment
Q2,2026-11-20,,250.00,USD,Nobody,,
Q3,2026-11-23,,77.00,EUR,Zephyr Holdings,DE89370400440532013000,thanks
Q4,2026-11-23,,150.00,EUR,Brick Works,,thanks
"""


@pytest.fixture
def queued(tmp_path: Path) -> list[str]:
    (tmp_path / "ar").mkdir()
    (tmp_path / "ar" / "customers.csv").write_text(CUSTOMERS)
    (tmp_path / "ar" / "invoices.csv").write_text(INVOICES)
    (tmp_path / "stmt.csv").write_text(STATEMENT)
    db = ["--db", f"sqlite:///{tmp_path / 'r.db'}"]
    for args in (["init"], ["load-ar", str(tmp_path / "ar")],
                 ["ingest", str(tmp_path / "stmt.csv"), "--account", "NL91ABNA0417164300"],
                 ["run", "--no-flow", "--as-of", "2026-11-24"]):
        done = runner.invoke(app, ["--config", CONFIG_DIR, *args, *db])
        assert done.exit_code == 0, done.output
    return db


def exceptions(*args: str, cwd: Path, check: bool = True) -> SimpleNamespace:
    done = runner.invoke(app, ["--config", CONFIG_DIR, "exceptions", *args], env={"COLUMNS": "200"})
    if check and done.exit_code != 0:
        raise AssertionError(f"exceptions {' '.join(args)} exited {done.exit_code}:\n{done.output}")
    return SimpleNamespace(returncode=done.exit_code, stdout=done.stdout, stderr=done.stderr)


def refused(*args: str, cwd: Path, match: str) -> None:
    done = exceptions(*args, cwd=cwd, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and match in done.stderr, done.stderr


def test_clearing_the_queue_from_the_command_line(queued: list[str], tmp_path: Path) -> None:
    db = queued
    listed = json.loads(exceptions("list", "--as-of", "2026-11-24", "--json", *db, cwd=tmp_path).stdout)
    ids = {row["source_ref"]: row["id"] for row in listed}
    assert (sorted(ids) == ["Q1", "Q2", "Q3", "Q4"]
            and {r["source_ref"] for r in listed if r["over_sla"]} == {"Q1", "Q2"})
    table = exceptions("list", "--as-of", "2026-11-24", *db, cwd=tmp_path).stdout
    assert "4 exception(s)" in table and f"{ids['Q1']}!" in table

    claimed = json.loads(exceptions("claim", "--sort", "largest", "--actor", "alice", "--json", *db,
                                    cwd=tmp_path).stdout)
    assert (claimed["source_ref"], claimed["claimed_by"]) == ("Q2", "alice")
    # a real process: exit status 2 and one line on standard error
    shell = reconcile("exceptions", "resolve", str(ids["Q2"]), "--not-receivable", "transfer", "--actor", "bob", *db,
                      cwd=tmp_path, check=False)
    assert shell.returncode == 2 and shell.stdout == "" and "Traceback" not in shell.stderr
    assert len(shell.stderr.strip().splitlines()) == 1 and "claimed by alice" in shell.stderr
    exceptions("resolve", str(ids["Q2"]), "--not-receivable", "transfer", "--actor", "alice", *db, cwd=tmp_path)

    refused("resolve", "Q3", "--invoice", "A-3=70.00", "--actor", "alice", *db, cwd=tmp_path,
            match="the amounts add up to 70.00, the payment is 77.00: 7.00 is unallocated")
    refused("resolve", "Q3", "--invoice", "NOPE=77.00", *db, cwd=tmp_path, match="unknown invoice NOPE")
    refused("resolve", "Q3", "--accept", "1", "--refund", *db, cwd=tmp_path, match="choose one decision")
    done = json.loads(exceptions("resolve", "Q3", "--invoice", "A-3=77.00", "--actor", "alice", "--json", *db,
                                 cwd=tmp_path).stdout)
    assert (done["allocations"][0]["invoice_number"] == "A-3"
            and {r["kind"] for r in done["learned"]} == {"account", "alias"})
    refused("resolve", "Q3", "--invoice", "A-3", *db, cwd=tmp_path, match="already resolved by alice")

    exceptions("note", str(ids["Q1"]), "customer says A-2", "--actor", "bob", *db, cwd=tmp_path)
    exceptions("assign", str(ids["Q4"]), "carol", "--actor", "bob", *db, cwd=tmp_path)
    shown = json.loads(exceptions("show", "Q1", "--json", *db, cwd=tmp_path).stdout)
    assert [n["text"] for n in shown["notes"]] == ["customer says A-2"]
    assert [s["items"] for s in shown["ranked_suggestions"]] == [["A-1"], ["A-2"]]
    assert "suggestions, best first" in exceptions("show", "Q1", *db, cwd=tmp_path).stdout

    bad = tmp_path / "bad.csv"
    bad.write_text("exception,action,invoices\nQ1,accept,\nQ4,allocate,B-1=100.00\nQ9,accept,\n")
    refused("bulk", str(bad), *db, cwd=tmp_path, match="line 3: the amounts add up to 100.00")
    assert "line 4: no exception item 'Q9'" in exceptions("bulk", str(bad), *db, cwd=tmp_path, check=False).stderr
    good = tmp_path / "good.csv"
    good.write_text("exception,action,invoices,choice\nQ1,accept,,2\nQ4,allocate,B-1=150.00,\n")
    batch = json.loads(exceptions("bulk", str(good), "--actor", "carol", "--json", *db, cwd=tmp_path).stdout)
    assert batch["applied"] == 2
    summary = json.loads(exceptions("summary", "--json", *db, cwd=tmp_path).stdout)
    assert summary == []
    exceptions("undo", batch["batch"], "--reason", "wrong file", *db, cwd=tmp_path)
    assert {r["source_ref"] for r in json.loads(exceptions("list", "--json", *db, cwd=tmp_path).stdout)} == {"Q1", "Q4"}
    refused("undo", batch["batch"], *db, cwd=tmp_path, match="already undone")

    forgot = exceptions("forget", "--account", "DE89 3704 0044 0532 0130 00", *db, cwd=tmp_path).stdout
    assert "forgot account 'DE89370400440532013000' of customer C1" in forgot
    learned = json.loads(exceptions("learned", "--all", "--json", *db, cwd=tmp_path).stdout)
    assert {(r["kind"], r["active"]) for r in learned} == {("account", False), ("alias", True)}


def test_why_a_line_was_posted_or_queued(queued: list[str], tmp_path: Path) -> None:
    db = queued
    (tmp_path / "day2.csv").write_text(STATEMENT.splitlines()[0] + "\nQ5,2026-11-24,,200.00,EUR,BRICK WORKS,,B-1\n")
    for args in (["ingest", str(tmp_path / "day2.csv"), "--account", "NL91ABNA0417164300"],
                 ["run", "--no-flow", "--as-of", "2026-11-24"]):
        assert runner.invoke(app, ["--config", CONFIG_DIR, *args, *db]).exit_code == 0
    posted = runner.invoke(app, ["explain", "Q5", "--json", *db])
    why = json.loads(posted.stdout)
    # "B-1" is too short to be read as a reference: the payer's name and the amount decided
    assert (why["decision"], why["rule"], why["signals"]["payer"]["customer"]) == ("posted", "amount_unique", "C2")
    assert why["summary"].startswith("posted by rule amount_unique") and "'Brick Works'" in why["summary"]
    # `exceptions show` of a line that never was queued explains it instead of refusing
    assert json.loads(exceptions("show", "Q5", "--json", *db, cwd=tmp_path).stdout)["rule"] == "amount_unique"
    audit = runner.invoke(app, ["audit", "--line", "Q5", *db], env={"COLUMNS": "200"}).stdout
    assert "why: posted by rule amount_unique" in audit
    # a queued line: the reason in words, beside the suggestions
    shown = json.loads(exceptions("show", "Q1", "--json", *db, cwd=tmp_path).stdout)
    assert shown["why"].startswith("queued as ") and shown["reason"] in shown["why"]
    refused("show", "NOPE", *db, cwd=tmp_path, match="no exception item and no bank line 'NOPE'")
