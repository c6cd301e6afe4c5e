"""Which Prefect API a `reconcile run` records its flow run on, chosen before Prefect is imported.

PREFECT_API_URL (or an API already set in this process's Prefect settings) when there is one;
else the server a `reconcile serve` on this machine runs (its note in PREFECT_HOME), which saves
the temporary server's start; else (`run --flow`) Prefect's temporary server, which this starts at
once so it boots while the flow's modules load, and stops on exit. Running the flow is the
caller's; `server_available` tells it whether a flow run is worth recording at all.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from reconcile.flows.server import TemporaryServer, running_server


def _configured() -> bool:
    if os.environ.get("PREFECT_API_URL"):
        return True
    if "prefect.settings" in sys.modules:  # already loaded here (tests, an embedding program)
        from prefect.settings import get_current_settings

        return bool(get_current_settings().api.url)
    return False


def server_available() -> bool:
    """Is there a Prefect server to record a flow run on, without starting one? (Cheap: Prefect is
    not imported unless it already is.)"""
    return _configured() or running_server() is not None


@contextmanager
def prefect_api() -> Iterator[TemporaryServer | None]:
    """The temporary server started for this run (call its `wait()` before the flow), or None when
    a configured server or a serving process's server is used."""
    if _configured():
        yield None
        return
    url = running_server()
    if url:
        os.environ["PREFECT_API_URL"] = url
        try:
            yield None
        finally:
            os.environ.pop("PREFECT_API_URL", None)
        return
    server = TemporaryServer()
    try:
        yield server
    finally:
        _drain()
        server.stop()


def _drain() -> None:
    """Let the run's logs and events reach the temporary server before it goes."""
    if "prefect.logging.handlers" not in sys.modules:
        return
    try:
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        for worker in (APILogWorker, EventsWorker):
            worker.drain_all(timeout=5)
    except Exception as exc:  # noqa: BLE001 - a shutdown nicety: never a reason to fail the command
        logging.getLogger("reconcile.cli").debug("draining Prefect's workers: %s", exc)
