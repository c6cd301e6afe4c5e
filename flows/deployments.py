"""The deployments `reconcile serve` runs: the same names, schedules and parameters as prefect.yaml.

The daily posting run on a cron schedule (config [schedule]) with at most one
run at a time (it publishes the day's balances itself when it completes); the
receivables load before it; the reports on demand (with a CSV when given an
output folder).
"""

from __future__ import annotations

import asyncio
import inspect
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import EntrypointType, RunnerDeployment
from prefect.schedules import Cron, Interval

from reconcile.config import Config
from reconcile.core.errors import ConfigError
from reconcile.flows.daily import load_ar_flow, posting_run_flow, reports_flow

DEFAULT_CRON = "0 6 * * 1-5"
DEFAULT_TIMEZONE = "UTC"
POSTING_RUN = "daily-posting-run"


def schedule_settings(config: Config, cron: str | None = None, timezone: str | None = None) -> dict[str, str]:
    """The schedule from config [schedule], with --cron / --timezone given on the command line winning."""
    values = {
        "cron": cron or config.schedule.cron,
        "timezone": timezone or config.schedule.timezone,
        "load_ar_cron": config.schedule.load_ar_cron,
    }
    for key in ("cron", "load_ar_cron"):
        if values[key]:
            check_cron(values[key], f"[schedule] {key}" if key != "cron" or not cron else "--cron")
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(values["timezone"])
    except (KeyError, ValueError):
        raise ConfigError(f"[schedule] timezone {values['timezone']!r} is not an IANA time zone name") from None
    return values


def check_cron(expression: str, where: str) -> None:
    """A ConfigError naming `where` unless `expression` is a five-field cron Prefect accepts."""
    example = 'e.g. "0 6 * * 1-5" (06:00 Monday to Friday) or "*/15 * * * *"'
    if len(expression.split()) != 5:
        raise ConfigError(f"{where} {expression!r} is not a cron expression (five fields: minute hour "
                          f"day-of-month month day-of-week), {example}")
    try:
        Cron(expression)
    except ValueError:
        raise ConfigError(f"{where} {expression!r} is not a valid cron expression, {example}") from None


def build_deployments(
    config: Config, *, inbox: str | None = None, cron: str | None = None, timezone: str | None = None,
    interval: float | None = None, dask: str | None = None,
) -> list[RunnerDeployment]:
    """The served deployments; `interval` (seconds) replaces the posting run's cron, `dask` (an
    address or "local") sends its matching to a Dask cluster instead of [scale] dask_address."""
    when = schedule_settings(config, cron, timezone)
    if interval is not None and interval < 1:
        raise ConfigError(f"--interval {interval:g} must be at least 1 second, e.g. --interval 900")
    schedule = (Interval(timedelta(seconds=interval), timezone=when["timezone"]) if interval
                else Cron(when["cron"], timezone=when["timezone"]))
    # the served runs read the configuration this process was started with, not whatever their cwd holds
    folder = str(config.directory.resolve())
    module = EntrypointType.MODULE_PATH  # importable wherever reconcile is installed
    posting = posting_run_flow.to_deployment(
        name=POSTING_RUN,
        schedules=[schedule],
        # a second run waits for the first (the ledger's lock would serialise them anyway)
        concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE),
        parameters={"config_dir": folder, "inbox": inbox, "as_of": None, "dry_run": False, "dask": dask},
        description="Ingest the inbox, match and post, archive; one run at a time.",
        tags=["reconcile"],
        entrypoint_type=module,
    )
    load_ar = load_ar_flow.to_deployment(
        name="load-ar",
        schedules=[Cron(when["load_ar_cron"], timezone=when["timezone"])] if when["load_ar_cron"] else None,
        concurrency_limit=1,
        parameters={"config_dir": folder},
        description="Load the receivables snapshot from [inbox] receivables.",
        tags=["reconcile"],
        entrypoint_type=module,
    )
    reports = reports_flow.to_deployment(
        name="reports",
        parameters={"config_dir": folder},
        description="Balances and aging on demand; each completed posting run publishes them too.",
        tags=["reconcile"],
        entrypoint_type=module,
    )
    # to_deployment answers synchronously here (called outside an event loop, whether the flow is async or
    # not); its union with a coroutine is Prefect's typing
    return [cast(RunnerDeployment, d) for d in (posting, load_ar, reports)]


def next_runs(schedule: Any, count: int = 3, after: datetime | None = None) -> list[str]:
    """The next `count` times a client-side schedule fires, ISO 8601 in its time zone (Prefect's own
    server-side arithmetic, so what is printed is what the scheduler does)."""
    from prefect.server.schemas import schedules as server

    kind = server.CronSchedule if getattr(schedule, "cron", None) else server.IntervalSchedule
    dates = kind(**schedule.model_dump()).get_dates(count, start=after or datetime.now(UTC))
    if inspect.isawaitable(dates):  # the interval schedule's is a coroutine, the cron one's is not
        dates = asyncio.run(dates)  # type: ignore[arg-type]
    return [d.isoformat() for d in dates]  # type: ignore[attr-defined]


def _schedule(s: Any) -> dict[str, Any]:
    if getattr(s, "cron", None):
        out: dict[str, Any] = {"cron": s.cron, "timezone": s.timezone}
    else:
        out = {"interval_seconds": s.interval.total_seconds(), "timezone": s.timezone}
    return {**out, "next_runs": next_runs(s)}


def describe(deployments: list[RunnerDeployment]) -> list[dict[str, Any]]:
    """What would be served, as plain data (for `reconcile serve --print`), with the next run times."""
    out = []
    for d in deployments:
        limit = d.concurrency_limit
        out.append({
            "name": d.name,
            "flow": d.flow_name,
            "entrypoint": d.entrypoint,
            "schedules": [_schedule(s.schedule) for s in d.schedules or []],
            "triggers": [sorted(getattr(t, "expect", ())) for t in d.triggers or []],
            "concurrency_limit": getattr(limit, "limit", limit),
            "collision_strategy": getattr(getattr(d.concurrency_options, "collision_strategy", None), "value", None),
            "parameters": d.parameters,
        })
    return out
