"""`reconcile serve`: run the daily posting run on its schedule from this process (flow.serve, no worker).

The deployments (names, schedule, parameters, concurrency) are built in
reconcile.flows.deployments, the same ones prefect.yaml declares for workers.
"""

from __future__ import annotations

from typing import Annotated

import typer

from reconcile.cli.common import (
    ConfigOption,
    config_for,
    console,
    handles_errors,
    print_json,
    quiet_prefect,
)


def register(app: typer.Typer) -> None:
    @app.command("serve")
    @handles_errors
    def serve_command(
        inbox: Annotated[str | None, typer.Option("--inbox", help="Inbox folder (default: config [inbox] path)")] = None,
        cron: Annotated[str | None, typer.Option("--cron", help="Cron schedule (default: config [schedule] cron)")] = None,
        timezone: Annotated[str | None, typer.Option("--timezone", help="IANA time zone of the schedule")] = None,
        show: Annotated[bool, typer.Option(
            "--print", "--dry-run-schedule", help="Print the deployments that would be served as JSON, and exit",
        )] = False,
        config_dir: ConfigOption = None,
    ) -> None:
        """Serve the daily posting run (cron, one run at a time), the receivables load and the reports.

        Runs until interrupted; the database comes from $RECONCILE_DB_URL in this
        process's environment. With no PREFECT_API_URL, Prefect starts a local
        server for the scheduler.
        """
        quiet_prefect()
        from reconcile.flows.deployments import build_deployments, describe

        deployments = build_deployments(config_for(config_dir), inbox=inbox, cron=cron, timezone=timezone)
        if show:
            print_json(describe(deployments))
            return
        from prefect import serve

        for item in describe(deployments):
            when = ", ".join(f"{s['cron']} ({s['timezone']})" for s in item["schedules"]) or "on trigger / by hand"
            console.print(f"serving [bold]{item['name']}[/bold]: {when}")
        serve(*deployments)
