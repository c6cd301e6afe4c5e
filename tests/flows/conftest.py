"""One Prefect test server for the whole session: no telemetry, a throwaway PREFECT_HOME."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def prefect_server() -> Iterator[None]:
    home = tempfile.mkdtemp(prefix="prefect-home-")
    settings = {
        "PREFECT_HOME": home,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    }
    saved = {k: os.environ.get(k) for k in [*settings, "PREFECT_API_URL"]}
    os.environ.update(settings)
    os.environ.pop("PREFECT_API_URL", None)
    from prefect.logging.configuration import ensure_logging_setup
    from prefect.testing.utilities import prefect_test_harness

    # Prefect binds its console log handler to sys.stderr when first set up; do it now, on
    # pytest's stream, not inside a CliRunner.invoke whose stream closes when the command ends
    ensure_logging_setup()
    with prefect_test_harness(server_startup_timeout=120):
        yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
