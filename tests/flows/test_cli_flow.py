"""`reconcile run --inbox` through the flow and without it, `reconcile serve --print`, and prefect.yaml's schedule."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml
from typer.testing import CliRunner

from reconcile.cli import app
from reconcile.config import load_config
from reconcile.services import daily as service
from reconcile.services.demo_data import write_demo_data
from reconcile.store import db

REPO = Path(__file__).resolve().parents[2]
CONFIG_DIR = str(REPO / "config")
runner = CliRunner()


def _day(tmp_path: Path) -> tuple[str, Path]:
    files = write_demo_data(tmp_path / "data")
    url = f"sqlite:///{tmp_path / 'r.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    service.load_ar(engine, files.snapshot_dir)
    box = tmp_path / "inbox"
    box.mkdir()
    for path in files.statements:
        shutil.copy(path, box / path.name)
    (box / "empty.csv").write_text("")
    return url, box


def test_run_with_inbox_through_the_flow_and_without(tmp_path: Path) -> None:
    url, box = _day(tmp_path)
    common = ["--db", url, "--config", CONFIG_DIR, "--inbox", str(box), "--as-of", "2026-11-24", "--json"]

    dry = runner.invoke(app, ["run", "--no-flow", "--dry-run", *common])
    assert dry.exit_code == 0, dry.output
    preview = json.loads(dry.stdout)
    assert preview["dry_run"] and preview["lines_posted"] > 0 and len(list(box.iterdir())) == 3

    result = runner.invoke(app, ["run", *common])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert {f["file"]: f["status"] for f in summary["files"]}["empty.csv"] == "quarantined"
    assert summary["lines_posted"] == preview["lines_posted"]
    assert (box / "quarantine" / "empty.csv.reason.txt").read_text().strip().endswith("file is empty")

    again = json.loads(runner.invoke(app, ["run", "--no-flow", *common]).stdout)
    assert again["files"] == [] and again["lines_posted"] == 0

    table = runner.invoke(app, ["run", "--db", url, "--config", CONFIG_DIR, "--inbox", str(box)])
    assert table.exit_code == 0 and "automatic posting rate" in table.output


def test_serve_print_shows_the_deployments_without_serving() -> None:
    result = runner.invoke(app, ["serve", "--print", "--config", CONFIG_DIR, "--timezone", "Europe/Amsterdam"])
    assert result.exit_code == 0, result.output
    served = {d["name"]: d for d in json.loads(result.stdout)}
    posting = served["daily-posting-run"]
    [schedule] = posting["schedules"]
    assert (schedule["cron"], schedule["timezone"]) == ("0 6 * * 1-5", "Europe/Amsterdam")
    assert len(schedule["next_runs"]) == 3 and all("T06:00:00+01:00" in t or "T06:00:00+02:00" in t
                                                    for t in schedule["next_runs"])
    assert posting["concurrency_limit"] == 1 and posting["collision_strategy"] == "ENQUEUE"
    # the served runs read the configuration serve was started with, wherever their working directory is
    folder = str(Path(CONFIG_DIR).resolve())
    assert posting["parameters"] == {"config_dir": folder, "inbox": None, "as_of": None, "dry_run": False,
                                     "dask": None}
    assert served["load-ar"]["parameters"] == served["reports"]["parameters"] == {"config_dir": folder}
    assert served["load-ar"]["schedules"][0]["cron"] == "30 5 * * 1-5"
    # on demand: each completed posting run publishes the balances itself (test_daily_flow)
    assert served["reports"]["triggers"] == [] and served["reports"]["schedules"] == []

    bad = runner.invoke(app, ["serve", "--dry-run-schedule", "--config", CONFIG_DIR, "--timezone", "Mars/Olympus"])
    assert bad.exit_code == 2 and "not an IANA time zone" in bad.output


def test_prefect_yaml_schedules_what_the_configuration_says() -> None:
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    deployments = {d["name"]: d for d in spec["deployments"]}
    schedule = load_config(CONFIG_DIR).schedule
    posting = deployments["daily-posting-run"]
    assert posting["schedules"][0]["cron"] == schedule.cron == "0 6 * * 1-5"
    assert posting["schedules"][0]["timezone"] == schedule.timezone
    assert posting["concurrency_limit"]["limit"] == 1
    assert set(posting["parameters"]) == {"inbox", "as_of", "dry_run"}
    assert deployments["load-ar"]["schedules"][0]["cron"] == schedule.load_ar_cron
    for d in deployments.values():
        module, name = d["entrypoint"].rsplit(".", 1)
        assert hasattr(__import__(module, fromlist=[name]), name)
