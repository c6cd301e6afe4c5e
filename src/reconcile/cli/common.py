"""Shared CLI plumbing: the --db/--config options, engines, tables and error exits."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from functools import wraps
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from reconcile.config import Config, load_config
from reconcile.core.errors import ReconcileError
from reconcile.store import db

console = Console()
err_console = Console(stderr=True)

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Database URL (default: $RECONCILE_DB_URL or sqlite:///reconcile.db)", show_default=False),
]
ConfigOption = Annotated[
    str | None,
    typer.Option("--config", help="Configuration folder (default: $RECONCILE_CONFIG_DIR, ./config, built-in)", show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on standard output")]

F = TypeVar("F", bound=Callable[..., Any])


class State:
    db_url: str | None = None
    config_dir: str | None = None


state = State()


def engine_for(db_url: str | None, *, must_exist: bool = True) -> Engine:
    engine = db.make_engine(db_url or state.db_url)
    if must_exist and not db.is_initialised(engine):
        raise ReconcileError(
            f"database {engine.url.render_as_string(hide_password=True)} has no reconcile schema: run `reconcile init` first"
        )
    return engine


def config_for(config_dir: str | None) -> Config:
    """The configuration of this command: its --config, else the one given before the command, else the
    default search (built once per command and passed down)."""
    return load_config(config_dir or state.config_dir)


def fail(message: str, code: int = 2) -> None:
    # escaped: file content in messages ("20120720[-4:EDT]") must not be read as rich markup
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def handles_errors(fn: F) -> F:
    """Turn the project's own errors into one clear line on stderr and exit status 2."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ReconcileError as exc:
            fail(str(exc))
        except DBAPIError as exc:
            # the server went away or refused: say so in one line, never a traceback
            fail(f"database error ({type(exc.orig).__name__}): {str(exc.orig).strip().splitlines()[0]}")
        except KeyboardInterrupt:
            fail("interrupted", 130)

    return wrapper  # type: ignore[return-value]


def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]], right: Sequence[str] = ()) -> None:
    table = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        table.add_column(column, justify="right" if column in right else "left")
    for row in rows:
        table.add_row(*["" if v is None else str(v) for v in row])
    console.print(table)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=1, default=str, ensure_ascii=False) + "\n")


def quiet_prefect() -> None:
    """Nothing leaves the machine: no telemetry from Prefect's temporary server."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
