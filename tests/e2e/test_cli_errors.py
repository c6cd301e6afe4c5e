"""Bad input is one line on stderr, exit 2, saying what is wrong and what a right one looks like;
every command that writes speaks JSON with --json; multi-file ingest reports every file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reconcile.cli import app
from reconcile.services.demo_data import write_demo_data

runner = CliRunner()


def _refused(*args: str) -> str:
    done = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    assert done.exit_code == 2, done.output
    assert done.stdout == "" and "Traceback" not in done.output
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.parametrize("url, said", [
    ("big.db", "--db 'big.db' is not a database URL: use sqlite:///big.db for that file"),
    ("sqlite://big.db", "SQLite URLs have three slashes, sqlite:///big.db"),
    ("mysql://u:p@db/ledger", "'mysql' databases are not supported: use sqlite:///reconcile.db"),
    ("nonsense", "--db 'nonsense' is not a database URL: use sqlite:///reconcile.db"),
])
def test_a_bad_database_url_says_what_a_good_one_looks_like(url: str, said: str) -> None:
    line = _refused("balances", "--db", url)
    assert said in line and "postgresql://USER@HOST:5432/DB" in line
    assert "p@db" not in line or url.startswith("mysql")  # nothing but the URL given is echoed


@pytest.mark.parametrize("day, said", [
    ("2026-02-30", "--as-of '2026-02-30': day is out of range for month; e.g. --as-of 2026-02-27"),
    ("yesterday", "--as-of 'yesterday': not a date in YYYY-MM-DD form"),
])
def test_a_bad_as_of_is_one_line(tmp_path: Path, day: str, said: str) -> None:
    assert said in _refused("run", "--no-flow", "--as-of", day, "--db", f"sqlite:///{tmp_path / 'r.db'}")
    assert said in _refused("balances", "--as-of", day, "--db", f"sqlite:///{tmp_path / 'r.db'}")


def test_run_help_names_the_config_key() -> None:
    done = runner.invoke(app, ["run", "--help"], env={"COLUMNS": "200"})
    assert "(default: config [inbox] path)" in done.output
    assert "(default: config [scale] dask_address)" in done.output


def test_multi_file_ingest_reports_each_file_and_goes_on(tmp_path: Path) -> None:
    files = write_demo_data(tmp_path / "data")
    db = ["--db", f"sqlite:///{tmp_path / 'r.db'}"]
    assert runner.invoke(app, ["init", *db]).exit_code == 0
    bad = tmp_path / "broken.xml"
    bad.write_text("<Document><BkToCstmrStmt>")  # cut off
    first, second = (str(p) for p in files.statements[:2])
    done = runner.invoke(app, ["ingest", first, str(bad), second, str(tmp_path / "missing.ofx"), "--json", *db])
    assert done.exit_code == 2
    report = json.loads(done.stdout)
    status = {f["file"]: f["status"] for f in report["files"]}
    assert status == {Path(first).name: "stored", "broken.xml": "refused", Path(second).name: "stored",
                      "missing.ofx": "refused"}
    assert (report["stored"], report["already_imported"], report["refused"]) == (2, 0, 2)
    assert all(f["reason"] for f in report["files"] if f["status"] == "refused")
    line = done.stderr.strip().splitlines()
    assert len(line) == 1 and "2 of 4 file(s) refused" in line[0] and "broken.xml" in line[0]
    assert f"stored: {Path(first).name}, {Path(second).name}" in line[0]

    again = runner.invoke(app, ["ingest", first, "--json", *db])
    assert again.exit_code == 0 and json.loads(again.stdout)["files"][0]["status"] == "already imported"


def test_every_writing_command_speaks_json(tmp_path: Path) -> None:
    files = write_demo_data(tmp_path / "data")
    db = ["--db", f"sqlite:///{tmp_path / 'r.db'}"]

    def as_json(*args: str) -> object:
        done = runner.invoke(app, [*args, "--json", *db])
        assert done.exit_code == 0, done.output
        return json.loads(done.stdout)

    assert as_json("init")["schema"] == "ready"
    assert as_json("load-ar", str(files.snapshot_dir))
    assert as_json("ingest", *map(str, files.statements))["stored"] == len(files.statements)
    ran = as_json("run", "--no-flow", "--as-of", files.as_of.isoformat(), "--inbox", str(tmp_path / "none"))
    assert ran["status"] == "completed" and ran["lines_posted"] > 0
    assert as_json("export", "allocations", "-o", str(tmp_path / "a.csv"))["rows"] > 0
    assert "rows" in as_json("export", "exceptions", "-o", str(tmp_path / "e.csv"))
    assert as_json("balances")["customers"]
    assert as_json("users", "add", "ann", "--role", "accountant", "--password", "a long passphrase 1")["added"]
    assert as_json("users", "list") == [{"name": "ann", "role": "accountant"}]
    assert as_json("check")["ok"] is True
    assert as_json("report", "-o", str(tmp_path / "r.html"))["file"].endswith("r.html")


def test_run_without_a_prefect_server_goes_without_prefect_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))  # no `reconcile serve` note here
    if "prefect.settings" in sys.modules:  # the flow tests' session server may be set in this process
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(restore_defaults={PREFECT_API_URL}):
            _run_without_a_server(tmp_path)
    else:
        _run_without_a_server(tmp_path)


def _run_without_a_server(tmp_path: Path) -> None:
    files = write_demo_data(tmp_path / "data")
    db = ["--db", f"sqlite:///{tmp_path / 'r.db'}"]
    for args in (["init"], ["load-ar", str(files.snapshot_dir)]):
        assert runner.invoke(app, [*args, *db]).exit_code == 0
    box = tmp_path / "inbox"
    box.mkdir()
    for path in files.statements:
        (box / path.name).write_bytes(path.read_bytes())
    done = runner.invoke(app, ["run", "--json", "--inbox", str(box), "--as-of", files.as_of.isoformat(), *db])
    assert done.exit_code == 0, done.output
    assert "no Prefect server here" in done.stderr and "--flow starts a temporary one" in done.stderr
    summary = json.loads(done.stdout)
    assert summary["status"] == "completed" and {f["status"] for f in summary["files"]} == {"ingested"}
