"""Tell people when a posting run fails: a JSON POST to [notify] webhook_url and/or a Prefect
notification block named in [notify] prefect_block.

The flow's on_failure / on_crashed hooks call `notify_failure`, and so does `reconcile run
--no-flow`. Sending never raises: a notification that cannot be delivered is logged and the run's
own outcome stands. What went wrong is the caller's to say; this module only delivers it.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

import httpx

from reconcile.config import NotifyConfig

EVENT = "reconcile.posting_run.failed"
log = logging.getLogger("reconcile.notify")


def failure_payload(*, state: str, message: str, flow_run: str | None = None,
                    flow_run_id: str | None = None, report: dict[str, Any] | None = None,
                    ui_url: str | None = None) -> dict[str, Any]:
    """The JSON a webhook receives (docs/cli.md, "notifications")."""
    report = report or {}
    return {
        "event": EVENT,
        "state": state,
        "message": message,
        "flow_run": flow_run,
        "flow_run_id": flow_run_id,
        "run_id": report.get("run_id"),
        "as_of": report.get("as_of"),
        "violations": report.get("violations", []),
        "host": socket.gethostname(),
        "ui_url": ui_url,
    }


def notify_failure(config: NotifyConfig, payload: dict[str, Any]) -> list[str]:
    """Send `payload` wherever [notify] says; the channels it reached (errors are logged)."""
    reached = []
    if config.webhook_url:
        try:
            response = httpx.post(config.webhook_url, json=payload, timeout=config.timeout_seconds)
            response.raise_for_status()
            reached.append("webhook")
        except httpx.HTTPError as exc:
            log.warning("failure notification to [notify] webhook_url not delivered: %s", exc)
    if config.prefect_block:
        try:
            from prefect.blocks.core import Block

            block: Any = Block.load(config.prefect_block)
            subject = f"reconcile: posting run {payload['state'].lower()}"
            block.notify(f"{subject}: {payload['message']}", subject=subject)
            reached.append("prefect_block")
        except Exception as exc:  # noqa: BLE001 - a missing block or an unreachable service: log, go on
            log.warning("failure notification through Prefect block %r not delivered: %s",
                        config.prefect_block, exc)
    return reached
