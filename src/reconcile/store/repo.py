"""Bulk reads that return polars frames, and bulk writes, over a Session.

Callers own the transaction (service.py). Reads select only the columns the
caller needs; writes are Core executemany statements, never per-row ORM
objects, so 100k rows stay cheap on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import polars as pl
from sqlalchemy import BigInteger, Select, String, Table, Text, bindparam, cast, func, literal_column, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from reconcile.core import frames
from reconcile.core.codes import OPEN_LINE_STATUSES
from reconcile.store import tables

BATCH = 5000


def frame_of(session: Session, query: Select, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """Run a select and return its rows as a frame in the given schema (column order = select order)."""
    if all(type(d) in _PLAIN for d in schema.values()):
        return _raw_frame(session, query, schema)
    rows = session.execute(query).all()
    names = list(schema)
    if not rows:
        return frames.empty(schema)
    columns = {name: [row[i] for row in rows] for i, name in enumerate(names)}
    return pl.DataFrame(columns, schema=dict(schema), strict=False)


_PLAIN = (pl.String, pl.Int64, pl.Int32, pl.Float64, pl.Boolean, pl.Date)


def _raw_frame(session: Session, query: Select, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """The driver's rows straight into polars: half the time of SQLAlchemy's per-row Row objects and result
    processing on the large reads of a run. SQLite gives dates as ISO text (parsed column-wise here);
    psycopg gives date objects."""
    result = session.connection().execute(query)  # Core execution: SQLAlchemy binds, the driver's cursor reads
    try:
        rows = result.cursor.fetchall()  # type: ignore[union-attr]
    finally:
        result.close()
    if not rows:
        return frames.empty(schema)
    text_dates = session.get_bind().dialect.name == "sqlite"
    as_read = {n: pl.String() if text_dates and isinstance(d, pl.Date) else d for n, d in schema.items()}
    frame = pl.DataFrame(rows, schema=as_read, orient="row", strict=False)
    if not text_dates:
        return frame
    return frame.with_columns(pl.col(n).str.to_date("%Y-%m-%d") for n, d in schema.items() if isinstance(d, pl.Date))


def chunks(rows: Sequence[Any], size: int = BATCH) -> Iterable[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def pg_array(values: Sequence[Any]) -> str:
    """A PostgreSQL array literal of ints or texts, for `CAST(:param AS type[])`: one string the server parses.
    psycopg dumps a Python list element by element, 4-5 ms of client CPU per 5,000 keys against under 1 ms
    here, and a posting chunk sends several such lists."""
    if all(type(v) is int for v in values):
        return "{" + ",".join(map(str, values)) + "}"
    if all(type(v) is str for v in values):
        plain = "".join(values)
        if '"' not in plain and "\\" not in plain:  # nothing to escape: one join, not a call per key
            return '{"' + '","'.join(values) + '"}'

    def element(value: Any) -> str:
        if value is None:
            return "NULL"
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'

    return "{" + ",".join(map(element, values)) + "}"


def among(session: Session, column: Any, values: Sequence[Any]) -> list[tuple[Sequence[Any], Any]]:
    """`column IN values` for a long list, as (part, condition) pairs in as few statements as the database allows.

    PostgreSQL: one condition, the whole list as an array read as a relation (`IN (SELECT unnest(...))`, a hashed
    semi-join); `IN (v1, v2, ...)` or `= ANY(array)` is a filter that walks the list for every row it looks at,
    quadratic at the thousands of lines of a chunk. SQLite: parts of 900, its limit on bound parameters.
    """
    if not values:
        return []
    if session.get_bind().dialect.name == "postgresql":
        element = BigInteger() if isinstance(values[0], int) else String()
        array = cast(bindparam(None, value=pg_array(values), type_=Text()), postgresql.ARRAY(element))
        return [(values, column.in_(select(func.unnest(array))))]
    # one expanding parameter per part: in_(list) would coerce each value into its own bound literal
    return [(part, column.in_(bindparam(None, value=list(part), expanding=True, type_=column.type)))
            for part in chunks(values, 900)]


COPY_FROM = 500  # rows from which PostgreSQL gets COPY instead of an executemany INSERT


def insert_rows(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert rows in the session's transaction: COPY on PostgreSQL for many rows, executemany otherwise."""
    if not rows:
        return
    dialect = session.get_bind().dialect
    if dialect.name == "postgresql" and len(rows) >= COPY_FROM:
        _copy_rows(session, table, rows)
        return
    if dialect.name == "sqlite" and len(rows) >= COPY_FROM and _plain_defaults(table, rows[0]):
        _insert_tuples(session, table, rows)
        return
    for part in chunks(rows):
        session.execute(table.insert(), list(part))


def _plain_defaults(table: Table, row: Mapping[str, Any]) -> bool:
    """True when every column the rows leave out has no default or a constant one (which the fast path
    writes itself); a callable or SQL default needs SQLAlchemy's own INSERT."""
    return all(column.default is None or column.default.is_scalar
               for column in table.columns if column.name not in row)


def _insert_tuples(session: Session, table: Table, rows: Sequence[Mapping[str, Any]], verb: str = "INSERT") -> int:
    """SQLite executemany with plain tuples, each column's bind conversion (dates, booleans) applied
    once per value: SQLAlchemy's per-row parameter building is ~2/3 of a large INSERT's time."""
    names = list(rows[0])
    return _insert_columns(session, table, names, [[row[name] for row in rows] for name in names], verb)


def _insert_columns(session: Session, table: Table, names: list[str], values: list[list[Any]],
                    verb: str = "INSERT") -> int:
    """_insert_tuples from the values column by column (zip() then makes the rows' tuples in C); the number of
    rows stored (sqlite3 sums an executemany's changes, so INSERT OR IGNORE counts only the new ones)."""
    dialect = session.get_bind().dialect

    def converter(name: str) -> Any:
        return table.c[name].type.dialect_impl(dialect).bind_processor(dialect)

    count = len(values[0])
    constants = [column.name for column in table.columns if column.name not in names and column.default is not None]
    columns_of_values = [_converted(column, f) if (f := converter(name)) else column
                         for name, column in zip(names, values, strict=True)]
    for name in constants:
        value = table.c[name].default.arg  # type: ignore[union-attr]
        columns_of_values.append([converter(name)(value) if converter(name) else value] * count)
    data = list(zip(*columns_of_values, strict=True))
    columns = ", ".join(f'"{n}"' for n in [*names, *constants])
    marks = ", ".join("?" for _ in range(len(names) + len(constants)))
    result = session.connection().exec_driver_sql(f'{verb} INTO "{table.name}" ({columns}) VALUES ({marks})', data)
    return int(result.rowcount)


def _converted(values: list[Any], convert: Any) -> list[Any]:
    """convert(v) for each value, once per distinct value: a run's rows share their stamps and days."""
    done: dict[Any, Any] = {}
    out = []
    for value in values:
        if value not in done:
            done[value] = convert(value)
        out.append(done[value])
    return out


def _insert_sqlite_frame(session: Session, table: Table, frame: pl.DataFrame, verb: str,
                         at_least: int = COPY_FROM) -> int | None:
    """A frame of at least `at_least` rows into SQLite column by column (_insert_columns): rows stored, None
    when that path does not apply."""
    if session.get_bind().dialect.name != "sqlite" or frame.height < at_least \
            or not _plain_defaults(table, dict.fromkeys(frame.columns)):
        return None
    return _insert_columns(session, table, frame.columns, [frame.get_column(n).to_list() for n in frame.columns],
                           verb)


def insert_frame(session: Session, table: Table, frame: pl.DataFrame) -> None:
    """insert_rows for rows already in a frame: COPY straight from it on PostgreSQL, column lists into
    the driver on SQLite, without a dict per row in between."""
    if frame.height == 0 or _insert_sqlite_frame(session, table, frame, "INSERT") is not None:
        return
    if frame.height >= COPY_FROM and session.get_bind().dialect.name == "postgresql":
        copy_frame(session, table, frame)
    else:
        insert_rows(session, table, frame.to_dicts())


def _copy_rows(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """PostgreSQL COPY on the session's own connection (same transaction): the rows are written as CSV by
    polars in one pass and streamed in one piece, ~10x an executemany INSERT and ~3x row-by-row COPY."""
    names = list(rows[0])
    frame = pl.DataFrame({n: [row[n] for row in rows] for n in names}, strict=False)
    copy_frame(session, table, frame)


def copy_frame(session: Session, table: Table | str, frame: pl.DataFrame) -> None:
    """A frame into `table` with COPY ... (FORMAT csv): NULL is an unquoted \\N, every text quoted, so an
    empty string stays an empty string and no text can be read as NULL."""
    name = table if isinstance(table, str) else table.name
    cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
    quoted = ", ".join(f'"{n}"' for n in frame.columns)
    body = frame.write_csv(include_header=False, null_value="\\N", quote_style="non_numeric")
    with cursor.copy(f'COPY "{name}" ({quoted}) FROM STDIN WITH (FORMAT csv, NULL \'\\N\')') as copy:
        copy.write(body.encode("utf-8"))


def _copy_ignore(session: Session, table: Table, frame: pl.DataFrame) -> int:
    """insert_ignore on PostgreSQL: COPY into a column-only staging table (no keys, no
    constraints), then one INSERT ... SELECT ... ON CONFLICT DO NOTHING in the frame's order, so ids follow
    the file as they do row by row. At 65k bank lines: 1.8x the single-row INSERTs it replaces when all are
    new, 2.9x when all are already stored."""
    staging = f"staging_{table.name}"
    columns = ", ".join(f'"{n}"' for n in frame.columns)
    session.execute(text(f'CREATE TEMPORARY TABLE "{staging}" ON COMMIT DROP AS '
                         f'SELECT {columns}, 0::bigint AS staged_order FROM "{table.name}" WITH NO DATA'))
    copy_frame(session, staging, frame.with_row_index("staged_order").select(*frame.columns, "staged_order"))
    stored = changed(session, text(f'INSERT INTO "{table.name}" ({columns}) SELECT {columns} FROM "{staging}" '
                                   "ORDER BY staged_order ON CONFLICT DO NOTHING"))
    session.execute(text(f'DROP TABLE "{staging}"'))  # a second frame in this transaction stages afresh
    return stored


@contextmanager
def probing_by_key(session: Session) -> Iterator[None]:
    """PostgreSQL: the statements inside join a list of keys to a table by looking each key up in its
    primary key. Left to itself the planner hashes the whole table instead, in every chunk: it prices an
    index probe as a disk read, and a table just loaded has no statistics yet. At 83k invoices that was 26-37
    ms of a chunk's 44-62 ms open-amount update (auto_explain), and it grows with the history, not the day."""
    session.execute(text("SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off"))
    yield  # a failure aborts the transaction, and rolling it back (or its savepoint) undoes the SETs
    session.execute(text("SET LOCAL enable_hashjoin = on; SET LOCAL enable_mergejoin = on"))


def update_by_key(session: Session, table: Table, key: str, column: str, pairs: Sequence[tuple[Any, int]]) -> None:
    """column -= amount for each (key value, amount): one statement on PostgreSQL, executemany elsewhere."""
    if not pairs:
        return
    if session.get_bind().dialect.name == "postgresql":
        keys, amounts = [k for k, _ in pairs], [a for _, a in pairs]
        key_type = "text" if isinstance(keys[0], str) else "bigint"
        with probing_by_key(session):
            session.execute(
                text(
                    f'UPDATE "{table.name}" AS t SET "{column}" = t."{column}" - v.amount '
                    f"FROM unnest(CAST(:keys AS {key_type}[]), CAST(:amounts AS bigint[])) AS v(k, amount) "
                    f'WHERE t."{key}" = v.k'
                ),
                {"keys": pg_array(keys), "amounts": pg_array(amounts)},
            )
        return
    # plain tuples into the driver: SQLAlchemy's per-row parameter building costs more than SQLite's update
    session.connection().exec_driver_sql(
        f'UPDATE "{table.name}" SET "{column}" = "{column}" - ? WHERE "{key}" = ?', [(a, k) for k, a in pairs])


def insert_ignore(session: Session, table: Table, frame: pl.DataFrame) -> int:
    """Insert a frame's rows, silently skipping those that hit a unique constraint (idempotent imports); the
    number stored.

    The count is the database's own (rows the statement stored), not a count of the table before and after:
    that would read the whole history and, on PostgreSQL, take in rows another import committed meanwhile.
    PostgreSQL goes through a staging table at any size: an executemany's rowcount is not reliable there.
    """
    if frame.height == 0:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        if session.execute(text("SELECT has_database_privilege(current_database(), 'TEMPORARY')")).scalar():
            return _copy_ignore(session, table, frame)
        # a server that revoked PostgreSQL's default TEMPORARY privilege: row inserts, counted by what RETURNING
        # gives back (only the rows stored)
        statement: Any = postgresql.insert(table).on_conflict_do_nothing().returning(literal_column("1"))
        return sum(len(session.execute(statement, list(part)).all()) for part in chunks(frame.to_dicts()))
    if (stored := _insert_sqlite_frame(session, table, frame, "INSERT OR IGNORE", at_least=1)) is not None:
        return stored
    return changed(session, sqlite.insert(table).on_conflict_do_nothing(), frame.to_dicts())


def known_invoices(session: Session) -> pl.DataFrame:
    """Every invoice, open or settled: a payment naming a settled invoice must be seen as naming it
    (a duplicate, or a sign of whose money it is), so decisions do not change as invoices close."""
    inv = tables.Invoice
    return frame_of(
        session,
        select(
            inv.invoice_number, inv.customer_id, inv.issue_date, inv.due_date, inv.currency,
            inv.amount_minor, inv.open_amount_minor, inv.payment_reference,
        ),
        frames.INVOICES,
    )


def open_installments(session: Session) -> pl.DataFrame:
    ins = tables.Installment
    return frame_of(
        session,
        select(
            ins.id, ins.plan_id, ins.invoice_number, ins.installment_no, ins.due_date,
            ins.amount_minor, ins.open_amount_minor,
        ).where(ins.open_amount_minor > 0),
        frames.INSTALLMENTS,
    )


def customers(session: Session) -> pl.DataFrame:
    return frame_of(session, select(tables.Customer.customer_id, tables.Customer.name), frames.CUSTOMERS)


def aliases(session: Session) -> pl.DataFrame:
    a = tables.CustomerAlias
    return frame_of(session, select(a.customer_id, a.alias).where(a.active.is_(True)), frames.ALIASES)


def payer_accounts(session: Session) -> pl.DataFrame:
    p = tables.PayerAccount
    return frame_of(session, select(p.customer_id, p.account).where(p.active.is_(True)), frames.PAYER_ACCOUNTS)


BANK_LINE_COLUMNS = (
    "id", "account", "source_ref", "booking_date", "value_date", "amount_minor", "currency",
    "counterparty_name", "counterparty_account", "remittance", "reference", "end_to_end_id",
    "bank_code", "is_reversal", "instructed_amount_minor", "instructed_currency", "exchange_rate",
    "charges_minor",
)


def open_lines_to_match(session: Session) -> pl.DataFrame:
    """The bank lines a run may still decide (open_lines: unmatched or exception), in the matcher's schema,
    with their generation: read through open_lines, so the cost follows the open work, not the history."""
    bl, ol = tables.BankLine, tables.OpenLine
    query = select(*[getattr(bl, c) for c in BANK_LINE_COLUMNS], bl.generation) \
        .join(ol, ol.bank_line_id == bl.id).where(bl.status.in_(OPEN_LINE_STATUSES))
    schema = {"bank_line_id": pl.Int64(), **{c: frames.MATCH_LINES[c] for c in BANK_LINE_COLUMNS[1:]},
              "generation": pl.Int64()}
    return frame_of(session, query, schema)


def posted_credits(session: Session, accounts: Sequence[str], amounts: Sequence[int]) -> pl.DataFrame:
    """Posted credit lines on these accounts with one of these amounts: candidates a return takes back."""
    bl = tables.BankLine
    columns = ("id", "account", "source_ref", "amount_minor", "currency", "remittance", "reference",
               "end_to_end_id", "is_reversal")
    schema = {"bank_line_id": pl.Int64(), **{c: frames.MATCH_LINES[c] for c in columns[1:]}}
    found = [
        frame_of(session, select(*[getattr(bl, c) for c in columns]).where(
            bl.status == "posted", bl.account.in_(accounts), amount_in), schema)
        for _, amount_in in among(session, bl.amount_minor, list(amounts))
    ]
    return pl.concat(found) if found else frames.empty(schema)


def settled_amount(allocation: Any = None) -> Any:
    """SQL: what an allocation row settles on its item, in the item's currency (a payment in another
    currency carries settled_amount_minor; otherwise the row's own amount)."""
    from sqlalchemy import func

    al = allocation if allocation is not None else tables.Allocation
    return func.coalesce(al.settled_amount_minor, al.amount_minor)


def settled_currency(allocation: Any = None) -> Any:
    from sqlalchemy import func

    al = allocation if allocation is not None else tables.Allocation
    return func.coalesce(al.settled_currency, al.currency)


def changed(session: Session, statement: Any, params: Sequence[Mapping[str, Any]] | None = None) -> int:
    """Run an INSERT, UPDATE or DELETE (once, or once per params row) in the session's transaction; the number
    of rows it changed. sqlite3 sums an executemany's; psycopg through SQLAlchemy answers -1 (insert_ignore)."""
    from sqlalchemy.engine import CursorResult

    result = session.execute(statement, params) if params is not None else session.execute(statement)
    assert isinstance(result, CursorResult)  # DML runs on a cursor: its rowcount is what changed
    return result.rowcount
