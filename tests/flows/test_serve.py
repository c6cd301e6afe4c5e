"""`reconcile serve` alone: its own Prefect server, a scheduled run that posts, a clean stop on
SIGTERM; failed runs reach the [notify] webhook (a local HTTP receiver)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reconcile.cli import app
from reconcile.flows.server import free_port
from reconcile.services import daily as service
from reconcile.services.demo_data import write_demo_data
from reconcile.store import db

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict]]]:
    """A webhook receiver on 127.0.0.1: the URL, and the JSON bodies it was sent."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()


def _config_with_webhook(tmp_path: Path, url: str, block: str = "") -> Path:
    folder = tmp_path / "config"
    shutil.copytree(REPO / "config", folder)
    text = (folder / "reconcile.toml").read_text()
    text = text.replace('webhook_url = ""', f'webhook_url = "{url}"')
    (folder / "reconcile.toml").write_text(text.replace('prefect_block = ""', f'prefect_block = "{block}"'))
    return folder


def _ready_day(tmp_path: Path) -> tuple[str, Path]:
    files = write_demo_data(tmp_path / "data")
    url = f"sqlite:///{tmp_path / 'r.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    service.load_ar(engine, files.snapshot_dir)
    engine.dispose()
    box = tmp_path / "inbox"
    box.mkdir()
    for path in files.statements:
        shutil.copy(path, box / path.name)
    return url, box


def _runs(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT run_id, status FROM posting_runs ORDER BY started_at").fetchall()


@pytest.mark.slow
def test_serve_alone_runs_on_its_schedule_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    url, box = _ready_day(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update(RECONCILE_DB_URL=url, PREFECT_HOME=str(tmp_path / "prefect"), DO_NOT_TRACK="1",
               PREFECT_SERVER_ANALYTICS_ENABLED="false", COLUMNS="200")
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        serving = subprocess.Popen(
            [sys.executable, "-m", "reconcile.cli", "serve", "--interval", "5", "--inbox", str(box),
             "--prefect-port", str(free_port()), "--config", str(REPO / "config")],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 240
        runs: list[tuple[str, str]] = []
        while time.monotonic() < deadline and serving.poll() is None:
            if (tmp_path / "r.db").exists():
                runs = [r for r in _runs(tmp_path / "r.db") if r[1] != "running"]
            if runs:
                break
            time.sleep(1)
        text = log.read_text(errors="replace")
        assert runs, f"no posting run happened; serve said:\n{text[-3000:]}"
        assert runs[0][1] == "completed", text[-3000:]
        # the scheduled run took the inbox's statements in and archived them
        assert not [p for p in box.iterdir() if p.is_file()]
        assert "Prefect server ready on" in text
        assert "serving daily-posting-run: every 5 s" in text
        serving.send_signal(signal.SIGTERM)
        assert serving.wait(timeout=90) == 0
    finally:
        if serving.poll() is None:
            serving.kill()
            serving.wait()
    text = log.read_text(errors="replace")
    assert "SIGTERM received: taking no new runs" in text
    assert "Prefect server stopped" in text and text.rstrip().endswith("stopped")
    assert "Traceback" not in text.split("SIGTERM received")[1]
    # the server it started went with it: nothing answers on its port, no run is left running
    assert all(status != "running" for _, status in _runs(tmp_path / "r.db"))


def test_serve_print_shows_the_next_run_times_and_refuses_a_bad_cron() -> None:
    result = CliRunner().invoke(app, ["serve", "--print", "--cron", "15 7 * * 1-5", "--timezone",
                                      "Europe/Amsterdam", "--config", str(REPO / "config")])
    assert result.exit_code == 0, result.output
    posting = {d["name"]: d for d in json.loads(result.stdout)}["daily-posting-run"]
    nexts = posting["schedules"][0]["next_runs"]
    assert len(nexts) == 3 and all("T07:15:00+01:00" in n or "T07:15:00+02:00" in n for n in nexts)
    bad = CliRunner().invoke(app, ["serve", "--print", "--cron", "61 * * * *", "--config", str(REPO / "config")])
    assert bad.exit_code == 2
    assert "--cron '61 * * * *' is not a valid cron expression, e.g. \"0 6 * * 1-5\"" in bad.stderr
    assert "Traceback" not in bad.output


def test_a_failed_run_is_sent_to_the_webhook_and_the_prefect_block(
    tmp_path: Path, receiver: tuple[str, list[dict]],
) -> None:
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    hook, received = receiver
    # a notification block on the Prefect server (here the test server), posting to the same receiver
    CustomWebhookNotificationBlock(name="reconcile-test", url=f"{hook}?via=block",
                                   json_data={"via": "prefect-block", "text": "{{subject}}: {{body}}"}
                                   ).save("reconcile-test", overwrite=True)
    config = _config_with_webhook(tmp_path, hook, "custom-webhook/reconcile-test")
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)  # no receivables snapshot: the posting run refuses to start
    box = tmp_path / "inbox"
    box.mkdir()
    result = CliRunner().invoke(app, ["run", "--db", url, "--config", str(config), "--inbox", str(box),
                                      "--as-of", "2026-11-24"])
    assert result.exit_code != 0
    assert len(received) == 2, received
    via_block = [r for r in received if r.get("via") == "prefect-block"]
    assert len(via_block) == 1 and "receivables snapshot" in via_block[0]["text"]
    sent = next(r for r in received if r.get("event"))
    assert sent["event"] == "reconcile.posting_run.failed" and sent["state"] == "Failed"
    assert "receivables snapshot" in sent["message"]
    assert sent["flow_run_id"]
