"""Names and texts from files, snapshots and people are shown literally by every command that shows
them: Rich markup in data is not markup, and escape sequences never reach the terminal."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reconcile.cli import app
from reconcile.cli.common import clean

REPO = Path(__file__).resolve().parents[2]
CLEAR = "\x1b[2J"
LINK = "\x1b]8;;http://127.0.0.1/evil\x07click me\x1b]8;;\x07"
CUSTOMERS = {
    "C1": "Acme [/] Trading",
    "C2": "O[ne] AG",
    "C3": f"[bold]Bold[/bold] {CLEAR}Clear {LINK} Ltd",
}
runner = CliRunner()


def _write(folder: Path) -> tuple[Path, Path]:
    snap = folder / "snapshot"
    snap.mkdir(parents=True)
    (snap / "customers.csv").write_text(
        "customer_id,name,aliases,accounts\n"
        + "".join(f'{cid},"{name}",,\n' for cid, name in CUSTOMERS.items()), encoding="utf-8")
    (snap / "invoices.csv").write_text(
        "invoice_number,customer_id,issue_date,due_date,currency,amount,open_amount,payment_reference\n"
        "INV-1,C1,2026-10-01,2026-10-31,EUR,1234567.50,1234567.50,\n"
        "INV-2,C2,2026-10-01,2026-10-31,EUR,200.00,200.00,\n"
        "INV-3,C3,2026-10-01,2026-10-31,EUR,300.00,300.00,\n", encoding="utf-8")
    statement = folder / "hostile.csv"
    statement.write_text(
        "id,booking_date,value_date,amount,currency,counterparty_name,counterparty_account,remittance,account,reference\n"
        "L1,2026-11-02,2026-11-02,1234567.50,EUR,Acme [/] Trading,,INV-1 [/bold],NL91ABNA0417164300,\n"
        'L2,2026-11-02,2026-11-02,77.00,EUR,[/],,"[/bold] nothing [link=http://127.0.0.1]x[/link]",NL91ABNA0417164300,\n'
        "L3,2026-11-02,2026-11-02,50.00,EUR,O[ne] AG,,part of something,NL91ABNA0417164300,\n",
        encoding="utf-8")
    return snap, statement


def _ok(*args: str) -> str:
    done = runner.invoke(app, list(args), env={"COLUMNS": "250"})
    assert done.exit_code == 0, f"{args}: {done.output}"
    assert done.exception is None or isinstance(done.exception, SystemExit)
    # nothing that moves the cursor, clears the screen or makes a link reaches the terminal
    assert "\x1b" not in done.output and "\x00" not in done.output and "\x07" not in done.output, args
    return done.output


def test_hostile_names_show_literally_in_every_command(tmp_path: Path) -> None:
    snap, statement = _write(tmp_path)
    db = ["--db", f"sqlite:///{tmp_path / 'r.db'}"]
    _ok("init", *db)
    _ok("load-ar", str(snap), *db)
    out = _ok("ingest", str(statement), *db)
    assert "hostile.csv" in out and "stored" in out
    # a statement carrying escape sequences is refused, and the reason names them without sending them
    escaping = tmp_path / "escaping.csv"
    escaping.write_text(statement.read_text().replace("part of something", f"part{CLEAR} of {LINK}"))
    refused = runner.invoke(app, ["ingest", str(escaping), *db], env={"COLUMNS": "250"})
    assert refused.exit_code == 2 and "refused" in refused.output and "\x1b" not in refused.output
    parsed = _ok("parse", str(statement))
    assert "Acme [/] Trading" in parsed and "[/bold]" in parsed and "O[ne] AG" in parsed
    assert "1,234,567.50" in parsed  # amounts through format_amount, whole
    _ok("run", "--no-flow", "--as-of", "2026-11-03", *db)

    listed = _ok("exceptions", "list", "--as-of", "2026-11-03", *db)
    assert "[/]" in listed and "O[ne] AG" in listed
    items = json.loads(_ok("exceptions", "list", "--json", *db))
    assert items, "the unmatched payments are queued"
    for item in items:
        shown = _ok("exceptions", "show", str(item["id"]), *db)
        assert item["source_ref"] in shown
    shown = _ok("exceptions", "show", "L2", *db)
    assert "[/bold] nothing [link=http://127.0.0.1]x[/link]" in shown and "[/]" in shown

    balances = _ok("balances", *db)
    for cid in ("C2", "C3"):  # C1 paid in full: nothing open, no balance row
        assert clean(CUSTOMERS[cid]) in balances
    assert "[bold]Bold[/bold] Clear click me Ltd" in balances
    statement_of_account = _ok("customer", "C1", *db)
    assert "Acme [/] Trading" in statement_of_account and "1,234,567.50" in statement_of_account
    assert "[bold]Bold[/bold] Clear click me Ltd" in _ok("customer", "C3", *db)
    audit = _ok("audit", "--line", "L1", *db)
    assert "INV-1" in audit
    _ok("kpis", "--as-of", "2026-11-03", *db)
    _ok("exceptions", "summary", *db)


@pytest.mark.parametrize("text, shown", [
    ("Acme [/] Trading", "Acme [/] Trading"),
    ("O[ne] AG", "O[ne] AG"),
    (f"a{CLEAR}b", "ab"),
    (f"x{LINK}y", "xclick mey"),
    ("nul\x00byte\x07bell", "nulbytebell"),
    ("bidi \u202eevil", "bidi evil"),
])
def test_clean_keeps_the_text_and_drops_the_escapes(text: str, shown: str) -> None:
    assert clean(text) == shown
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", clean(text))


def test_amounts_are_whole_on_a_narrow_terminal_and_large_tables_stream(tmp_path: Path) -> None:
    from reconcile.cli import common
    from reconcile.core.money import format_amount, to_minor
    from reconcile.services.demo_data import write_demo_data

    files = write_demo_data(tmp_path / "data")
    db = ["--db", f"sqlite:///{tmp_path / 'r.db'}"]
    for args in (["init"], ["load-ar", str(files.snapshot_dir)]):
        assert runner.invoke(app, [*args, *db]).exit_code == 0
    rows = json.loads(runner.invoke(app, ["balances", "--json", *db]).stdout)["customers"]
    narrow = runner.invoke(app, ["balances", *db], env={"COLUMNS": "60"}).stdout
    for row in rows:
        assert format_amount(to_minor(row["open"], row["currency"]), row["currency"]) in narrow
    # single-word columns (dates, ids, invoice numbers) are never cut in the middle either
    customer = rows[0]["customer_id"]
    entries = json.loads(runner.invoke(app, ["customer", customer, "--json", *db]).stdout)["entries"]
    statement = runner.invoke(app, ["customer", customer, *db], env={"COLUMNS": "60"}).stdout
    assert entries and all(e["date"] in statement and e["reference"] in statement for e in entries)
    # past STREAM_ROWS rows the table is aligned plain text: the same amounts, no box drawing
    original = common.STREAM_ROWS
    common.STREAM_ROWS = 2
    try:
        plain = runner.invoke(app, ["balances", *db], env={"COLUMNS": "60"}).stdout
    finally:
        common.STREAM_ROWS = original
    assert "┃" not in plain
    for row in rows:
        assert format_amount(to_minor(row["open"], row["currency"]), row["currency"]) in plain
