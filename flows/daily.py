"""The daily posting run as a Prefect flow.

Each task is a few lines calling reconcile.service and passes ids and counts,
never frames. Caching is off for every task that writes to the database:
exactly-once comes from the ledger, not from Prefect.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from reconcile import db, service
from reconcile.config import load_settings


@task(cache_policy=NO_CACHE)
def ingest_statement(db_url: str, path: str) -> dict[str, Any]:
    result = service.ingest_file(db.make_engine(db_url), path)
    return {"file": Path(path).name, "format": result.format, "lines": result.lines, "new": result.new_lines}


@task(cache_policy=NO_CACHE)
def match_and_post(db_url: str, config_dir: str | None, as_of: str | None, dry_run: bool, actor: str) -> dict[str, Any]:
    summary = service.run_posting(
        db.make_engine(db_url),
        settings=load_settings(config_dir),
        as_of=date.fromisoformat(as_of) if as_of else None,
        dry_run=dry_run,
        actor=actor,
    )
    return summary.to_dict()


def summary_markdown(summary: dict[str, Any], files: list[dict[str, Any]]) -> str:
    lines = [
        f"# Posting run {summary['run_id']} ({summary['as_of']})" + (" - dry run" if summary["dry_run"] else ""),
        "",
        "| | value |",
        "|---|---|",
        f"| files | {len(files)} |",
        f"| lines considered | {summary['lines_considered']} |",
        f"| lines posted | {summary['lines_posted']} |",
        f"| posted amount | {', '.join(f'{a} {c}' for c, a in summary['posted'].items()) or '-'} |",
        f"| queued for review | {summary['lines_exception']} |",
        f"| automatic posting rate | {summary['auto_rate'] * 100:.1f} % |",
    ]
    for reason, count in summary["exceptions_by_reason"].items():
        lines.append(f"| exceptions: {reason} | {count} |")
    return "\n".join(lines)


@flow(name="daily-posting-run", log_prints=True)
def posting_run_flow(
    db_url: str,
    config_dir: str | None = None,
    files: list[str] | None = None,
    as_of: str | None = None,
    dry_run: bool = False,
    actor: str = "system",
) -> dict[str, Any]:
    ingested = [ingest_statement(db_url, f) for f in files or []]
    summary = match_and_post(db_url, config_dir, as_of, dry_run, actor)
    create_markdown_artifact(markdown=summary_markdown(summary, ingested), key="posting-run-summary")
    return summary
