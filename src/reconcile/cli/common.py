"""Shared CLI plumbing: the --db/--config options, engines, tables and error exits.

Every text that came from a file, a snapshot or a person goes to the terminal through `clean`
(control and escape sequences removed) and, inside markup, `safe` (also escaped for Rich);
`print_table` does both for every cell. Tables of many rows are streamed as plain aligned
text, amounts never cut.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import textwrap
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from functools import wraps
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from reconcile.config import Config, load_config
from reconcile.core.errors import ReconcileError
from reconcile.core.money import format_amount, to_minor
from reconcile.store import db

console = Console()
err_console = Console(stderr=True)

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Database URL (default: $RECONCILE_DB_URL or sqlite:///reconcile.db)",
                 show_default=False),
]
ConfigOption = Annotated[
    str | None,
    typer.Option("--config", help="Configuration folder (default: $RECONCILE_CONFIG_DIR, ./config, built-in)",
                 show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on standard output")]

F = TypeVar("F", bound=Callable[..., Any])


class State:
    db_url: str | None = None
    config_dir: str | None = None


state = State()


DB_EXAMPLES = "sqlite:///reconcile.db (a file here), sqlite:////srv/reconcile.db (an absolute path) or " \
    "postgresql://USER@HOST:5432/DB"


def check_db_url(url: str | None) -> None:
    """A ReconcileError naming what is wrong with a database URL and what a right one looks like."""
    given = url or os.environ.get("RECONCILE_DB_URL")
    if not given:
        return
    where = "--db" if url else "$RECONCILE_DB_URL"
    shown = clean(given)
    if "://" not in given:
        hint = f"sqlite:///{shown}" if given.endswith((".db", ".sqlite", ".sqlite3")) or "/" in given else None
        raise ReconcileError(f"{where} {shown!r} is not a database URL: use "
                             + (f"{hint} for that file, or " if hint else "") + DB_EXAMPLES)
    try:
        parsed = make_url(db.resolve_url(given))
    except ArgumentError:
        raise ReconcileError(f"{where} {shown!r} is not a database URL: use {DB_EXAMPLES}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.host:
            raise ReconcileError(
                f"{where} {shown!r} names a host, not a file: SQLite URLs have three slashes, "
                f"sqlite:///{parsed.host}{'/' + parsed.database if parsed.database else ''} (four for an absolute "
                "path, sqlite:////srv/reconcile.db); or postgresql://USER@HOST:5432/DB")
        return
    if backend != "postgresql":
        raise ReconcileError(f"{where}: {backend!r} databases are not supported: use {DB_EXAMPLES}")


def engine_for(db_url: str | None, *, must_exist: bool = True) -> Engine:
    check_db_url(db_url or state.db_url)
    engine = db.make_engine(db_url or state.db_url)
    if must_exist and not db.is_initialised(engine):
        raise ReconcileError(
            f"database {engine.url.render_as_string(hide_password=True)} has no reconcile schema: "
            "run `reconcile init` first"
        )
    return engine


def config_for(config_dir: str | None) -> Config:
    """The configuration of this command: its --config, else the one given before the command, else the
    default search (built once per command and passed down)."""
    return load_config(config_dir or state.config_dir)


# ESC sequences (CSI such as "\x1b[2J", OSC such as OSC 8 hyperlinks, the rest), C0/C1 controls
# except tab and newline, and the bidirectional overrides that reorder what a person reads
_ESCAPES = re.compile(
    r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"       # OSC ... BEL or ST
    r"|\x1b\[[0-?]*[ -/]*[@-~]?"                  # CSI
    r"|\x1b[@-_]?"                                # other two-byte escapes, or a lone ESC
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def clean(value: Any) -> str:
    """`value` as text safe for a terminal: escape sequences and control characters removed."""
    text = "" if value is None else str(value)
    if text.isprintable():
        return text  # the common case, and fast
    return _ESCAPES.sub("", text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " "))


def safe(value: Any) -> str:
    """`clean(value)` escaped for Rich markup: for data inside a markup message ("[bold]{safe(x)}")."""
    return escape(clean(value))


def parse_as_of(text: str | None) -> date | None:
    """--as-of as a date, or a ReconcileError saying what is wrong with it and what is right."""
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        why = "not a date in YYYY-MM-DD form" if "format" in str(exc) else str(exc)
        raise ReconcileError(f"--as-of {clean(text)!r}: {why}; e.g. --as-of 2026-02-27") from None


def amount(value: Any, currency: str | None) -> str:
    """An amount for a table: minor units (int) or a decimal string, with the currency's decimals
    and thousands separators (format_amount); text that is not an amount is shown as it is."""
    if value is None or value == "":
        return ""
    if not currency:
        return clean(value)
    try:
        minor = value if isinstance(value, int) else to_minor(str(value), currency)
    except (ValueError, ArithmeticError):
        return clean(value)
    return format_amount(minor, currency)


def echo(message: Any, *, err: bool = False) -> None:
    """A plain message line built from data: cleaned, never read as markup."""
    (err_console if err else console).print(clean(message), markup=False, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 2) -> None:
    # cleaned and escaped: file content in messages ("20120720[-4:EDT]", a payer "[/]") is data
    first = clean(message).strip().splitlines() or [""]
    err_console.print(f"[red]error:[/red] {escape(' '.join(first))}", highlight=False, soft_wrap=True)
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


STREAM_ROWS = 500  # above this many rows a table is streamed as aligned plain text
TEXT_WIDTH = 40    # a text column of a streamed table folds at this width
TEXT_MIN = 8       # ... and of a drawn table is never narrower than this
WORD_MAX = 34      # a column of single words up to this long (dates, ids, IBANs) is never broken


def _whole_columns(columns: Sequence[str], rows: list[list[str]], right: Sequence[str]) -> list[bool]:
    """Which columns are shown whole: amounts and counts, and columns of single words (a date, an
    invoice number, an IBAN) that a fold would cut in the middle ("2026-10-0" / "1")."""
    return [c in right or all(len(r[i]) <= WORD_MAX and not any(ch.isspace() for ch in r[i]) for r in rows)
            for i, c in enumerate(columns)]


def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]],
                right: Sequence[str] = ()) -> None:
    """A table of data: every cell cleaned and shown literally (never read as markup). Columns in
    `right` (amounts, counts) are right-aligned and never cut or folded; text columns fold."""
    cells: list[list[str]] = [[clean(v) for v in row] for row in rows]
    if len(cells) > STREAM_ROWS:
        stream_table(title, columns, cells, right)
        return
    table = Table(title=Text(clean(title)) if title else None, title_justify="left", header_style="bold")
    needed = 1
    for i, (column, whole) in enumerate(zip(columns, _whole_columns(columns, cells, right), strict=True)):
        longest = max([len(column), *(len(r[i]) for r in cells)])
        if whole:  # on one line: the table grows past the terminal rather than cut one
            # min_width keeps it whole (overflow="ignore" would also drop rich's right justification)
            table.add_column(column, justify="right" if column in right else "left", no_wrap=True,
                             min_width=longest)
            needed += longest + 3
        else:  # free text folds between words, never narrower than its header or a word (up to WORD_MAX)
            word = max((len(w) for r in cells for w in r[i].split()), default=0)
            narrowest = min(longest, max(TEXT_MIN, len(column), min(word, WORD_MAX)))
            table.add_column(column, justify="left", overflow="fold", min_width=narrowest)
            needed += narrowest + 3
    if needed > console.width:
        table.width = needed
    for row in cells:
        table.add_row(*[Text(v) for v in row])
    console.print(table, crop=False)


def stream_table(title: str | None, columns: Sequence[str], rows: list[list[str]], right: Sequence[str]) -> None:
    """A large table as aligned plain lines: linear in the rows, amounts whole, text folded."""
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]
    fixed = sum(w for w, c in zip(widths, columns, strict=True) if c in right)
    folded = [i for i, whole in enumerate(_whole_columns(columns, rows, right)) if not whole]
    room = max(shutil.get_terminal_size((200, 24)).columns - fixed - 2 * (len(columns) - 1), 0)
    cap = max(TEXT_WIDTH, room // max(len(folded), 1))
    for i in folded:
        widths[i] = min(widths[i], cap)

    def lines(row: Sequence[str]) -> list[str]:
        cells = [textwrap.wrap(v, widths[i], break_long_words=True) or [""] if i in folded else [v]
                 for i, v in enumerate(row)]
        out = []
        for n in range(max(len(c) for c in cells)):
            parts = [(c[n] if n < len(c) else "") for c in cells]
            out.append("  ".join(p.rjust(widths[i]) if columns[i] in right else p.ljust(widths[i])
                                 for i, p in enumerate(parts)).rstrip())
        return out

    write = sys.stdout.write
    if title:
        write(clean(title) + "\n")
    write("\n".join(lines(columns)) + "\n")
    write("  ".join("-" * w for w in widths) + "\n")
    chunk: list[str] = []
    for row in rows:
        chunk.extend(lines(row))
        if len(chunk) >= 2000:
            write("\n".join(chunk) + "\n")
            chunk = []
    if chunk:
        write("\n".join(chunk) + "\n")
    sys.stdout.flush()


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=1, default=str, ensure_ascii=False) + "\n")


def quiet_prefect() -> None:
    """Nothing leaves the machine: no telemetry from Prefect's temporary server."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
