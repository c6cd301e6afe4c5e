"""`reconcile serve`: run the daily posting run on its schedule from one long-lived process.

Prefect needs a server with its scheduler for served deployments: the one PREFECT_API_URL names,
else one this process starts and supervises (flows/server.py). The deployments (schedule,
parameters, concurrency of one) come from reconcile.flows.deployments; Prefect's Runner runs
them. This module owns the process: the server, the runner, and a clean stop on SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from datetime import datetime
from typing import Annotated, Any

import typer

from reconcile.cli.common import (
    ConfigOption,
    config_for,
    err_console,
    handles_errors,
    print_json,
    quiet_prefect,
    safe,
)
from reconcile.core.errors import ReconcileError


def say(message: str) -> None:
    """One timestamped line on stderr: where the serving process is (journald, a terminal, a log)."""
    err_console.print(f"{datetime.now().astimezone():%Y-%m-%d %H:%M:%S%z} reconcile serve: {safe(message)}",
                      highlight=False, soft_wrap=True)


class Stopper:
    """The first SIGTERM/SIGINT: take no new runs, let the run in progress finish (up to
    `grace` seconds, then stop it: its committed chunks stay and the next run posts the rest),
    then end the runner. A second signal stops at once.

    Prefect's own SIGTERM handling cancels runs in flight; waiting for them needs the Runner's
    internals (`_process_manager`, `_scheduled_run_poller`, `_loop` in Prefect 3.9), read with
    getattr so a Prefect that renames them degrades to "stop at once", never to a crash."""

    def __init__(self, grace: float, runner: Any = None) -> None:
        self.runner = runner
        self.grace = grace
        self.signals = 0

    def running(self) -> int:
        manager = getattr(self.runner, "_process_manager", None)
        return manager.flow_run_count() if manager is not None else 0

    def __call__(self, signum: int, _frame: Any = None) -> None:
        self.signals += 1
        name = signal.Signals(signum).name
        if not getattr(self.runner, "started", False) or getattr(self.runner, "_loop", None) is None:
            say(f"{name} received before serving began: stopping")
            raise KeyboardInterrupt  # unwind; the Prefect server is stopped on the way out
        if self.signals > 1:
            say(f"{name} again: stopping now")
            self.runner.execute_in_background(self.runner.astop)
            return
        poller = getattr(self.runner, "_scheduled_run_poller", None)
        if poller is not None:
            poller.stopping = True  # no new runs from here on
        busy = self.running()
        say(f"{name} received: taking no new runs" + (
            f"; waiting up to {self.grace:.0f} s for the run in progress" if busy else "; stopping"))
        self.runner.execute_in_background(self._drain)

    async def _drain(self) -> None:
        deadline = time.monotonic() + self.grace
        while self.running() and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        if self.running():
            say("the run in progress did not finish in time: stopping it (its committed chunks stay "
                "posted; the next run posts the rest)")
        await self.runner.astop()


def serve_deployments(deployments: list[Any], stopper: Stopper) -> None:
    """Run the deployments' scheduled runs until a signal stops us (one flow run at a time here)."""
    from prefect.runner import Runner

    runner = Runner(name=f"reconcile-serve-{socket.gethostname()}", limit=1, pause_on_shutdown=True)
    for deployment in deployments:
        runner.add_deployment(deployment)
    stopper.runner = runner
    setattr(runner, "handle_sigterm", stopper)  # noqa: B010 - Runner.start installs it for SIGTERM
    asyncio.run(runner.start())


def _announce(described: list[dict[str, Any]]) -> None:
    for item in described:
        if item["schedules"]:
            for s in item["schedules"]:
                every = f"cron {s['cron']}" if "cron" in s else f"every {s['interval_seconds']:g} s"
                say(f"serving {item['name']}: {every} ({s['timezone']}), next runs {', '.join(s['next_runs'])}")
        else:
            say(f"serving {item['name']}: " + ("on its event trigger" if item["triggers"] else "on demand"))


def register(app: typer.Typer) -> None:
    @app.command("serve")
    @handles_errors
    def serve_command(
        inbox: Annotated[str | None, typer.Option(
            "--inbox", help="Inbox folder (default: config \\[inbox] path)")] = None,
        cron: Annotated[str | None, typer.Option(
            "--cron", help="Cron schedule, e.g. \"0 6 * * 1-5\" (default: config \\[schedule] cron)")] = None,
        interval: Annotated[float | None, typer.Option(
            "--interval", help="Run every N seconds instead of the cron schedule")] = None,
        timezone: Annotated[str | None, typer.Option(
            "--timezone", help="IANA time zone of the schedule, e.g. Europe/Amsterdam")] = None,
        dask: Annotated[str | None, typer.Option(
            "--dask",
            help="Match on this Dask cluster: tcp://HOST:8786 or local (default: config \\[scale] dask_address)",
        )] = None,
        prefect_port: Annotated[int | None, typer.Option(
            "--prefect-port",
            help="Port of the Prefect server started when PREFECT_API_URL is unset (default 4200, else a free one)",
        )] = None,
        ui: Annotated[bool, typer.Option(
            "--ui/--no-ui", help="Serve Prefect's web UI from the server started here")] = False,
        grace: Annotated[float, typer.Option(
            "--stop-timeout", help="Seconds a run in progress may take to finish after SIGTERM/SIGINT")] = 60.0,
        show: Annotated[bool, typer.Option(
            "--print", "--dry-run-schedule", help="Print the deployments and their next run times as JSON, and exit",
        )] = False,
        config_dir: ConfigOption = None,
    ) -> None:
        """Serve the daily posting run (on its schedule, one run at a time), the receivables load and the reports.

        Runs until SIGTERM or Ctrl-C: a run in progress finishes first (up to --stop-timeout). The
        database comes from $RECONCILE_DB_URL. With PREFECT_API_URL set, the deployments are served
        against that server; otherwise this process starts its own Prefect server on 127.0.0.1
        (its state in $PREFECT_HOME) and stops it on exit.
        """
        quiet_prefect()
        from reconcile.flows.deployments import build_deployments, describe

        deployments = build_deployments(config_for(config_dir), inbox=inbox, cron=cron, timezone=timezone,
                                        interval=interval, dask=dask)
        described = describe(deployments)
        if show:
            print_json(described)
            return
        from reconcile.flows.server import LocalServer

        stopper = Stopper(grace)  # from here on a signal stops us cleanly, even while starting
        signal.signal(signal.SIGINT, stopper)
        signal.signal(signal.SIGTERM, stopper)
        server = None
        try:
            api = os.environ.get("PREFECT_API_URL")
            if api:
                say(f"using the Prefect server at {api}")
            else:
                server = LocalServer(prefect_port, ui=ui, log=say)
                try:
                    api = server.start()
                except RuntimeError as exc:
                    raise ReconcileError(str(exc)) from None
                os.environ["PREFECT_API_URL"] = api  # the runner here and the flow runs it starts
                if ui:
                    say(f"Prefect UI on {api.removesuffix('/api')}")
            from prefect.settings import PREFECT_API_URL, temporary_settings

            with temporary_settings(updates={PREFECT_API_URL: api}):
                _announce(described)
                where = "$RECONCILE_DB_URL" if os.environ.get("RECONCILE_DB_URL") else \
                    "sqlite:///reconcile.db here (no $RECONCILE_DB_URL)"
                say(f"database: {where}; stop with SIGTERM or Ctrl-C")
                serve_deployments(deployments, stopper)
        except KeyboardInterrupt:
            pass
        finally:
            if server is not None:
                server.stop()
        say("stopped")
