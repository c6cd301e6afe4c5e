"""On PostgreSQL, the references of the ledger's two bulk tables are checked once per statement, not per row.

A declared foreign key makes PostgreSQL look up, and lock, the parent row of every row inserted. Posting
100k allocation rows ran about 600k such lookups (five per allocation row, two per posting): 2.0 s of the
3.2 s the allocation inserts took and 0.3 s of the postings' (bench/post.py, server time). For `allocations`
and `postings` (CHECKED), migration 0009 replaces those constraints with:

- one check per INSERT or UPDATE statement: for each reference, an anti-join of the statement's rows (its
  transition table) against the parent, raising foreign_key_violation (SQLSTATE 23503, as the constraint
  did) that names the table, the column and the first value no parent row has;
- parents that never lose a row a reference may name: the parent tables refuse DELETE and TRUNCATE, and
  their keys never change. The ledger never deletes (it reverses), so nothing changes for reconcile; and
  since a checked reference can never go stale, no row lock is needed to keep it valid.

tables.py keeps declaring every foreign key: SQLite enforces them as constraints (cheap there, and it has
no statement-level triggers), and a test inserts a row breaking each declared reference on both databases.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from alembic import op

CHECKED = ("allocations", "postings")
# (table, column, parent table, parent key): the foreign keys of CHECKED tables when 0009 was written
Reference = tuple[str, str, str, str]
GUARD = "ledger_rows_stay"


def _fk_name(table: str, column: str, parent: str) -> str:
    return f"fk_{table}_{column}_{parent}"  # tables.NAMING's "fk" convention


def _check_function(table: str, references: Sequence[Reference]) -> str:
    probes = "".join(
        f"""
    SELECT a.{column}::text INTO missing FROM added a
     WHERE a.{column} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE p.{key} = a.{column}) LIMIT 1;
    IF FOUND THEN
        RAISE foreign_key_violation USING
            MESSAGE = format('{table}.{column} = %s names no {parent} row', quote_literal(missing)),
            TABLE = '{table}', COLUMN = '{column}', CONSTRAINT = '{_fk_name(table, column, parent)}';
    END IF;"""
        for _, column, parent, key in references
    )
    return (f"CREATE FUNCTION {table}_references() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            f"DECLARE missing text;\nBEGIN{probes}\n    RETURN NULL;\nEND $$")


def install(references: Sequence[Reference]) -> None:
    """Replace the foreign keys listed by statement checks and parent guards (PostgreSQL only)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"""CREATE FUNCTION {GUARD}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE foreign_key_violation USING MESSAGE = format(
        '%s: rows the ledger may reference are never deleted and their keys never change (%s refused)',
        TG_TABLE_NAME, TG_OP);
END $$""")
    for table in sorted({r[0] for r in references}):
        mine = [r for r in references if r[0] == table]
        for _, column, parent, _ in mine:
            op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {_fk_name(table, column, parent)}")
        op.execute(_check_function(table, mine))
        for event in ("INSERT", "UPDATE"):
            op.execute(f"CREATE TRIGGER {table}_references_on_{event.lower()} AFTER {event} ON {table} "
                       f"REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION {table}_references()")
    for parent, key in sorted({(r[2], r[3]) for r in references}):
        op.execute(f"CREATE TRIGGER {parent}_rows_stay BEFORE DELETE OR TRUNCATE ON {parent} "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION {GUARD}()")
        op.execute(f"CREATE TRIGGER {parent}_key_stays BEFORE UPDATE OF {key} ON {parent} FOR EACH ROW "
                   f"WHEN (OLD.{key} IS DISTINCT FROM NEW.{key}) EXECUTE FUNCTION {GUARD}()")


def uninstall(references: Sequence[Reference]) -> None:
    """Back to declared foreign keys (PostgreSQL only)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for parent, _ in sorted({(r[2], r[3]) for r in references}):
        op.execute(f"DROP TRIGGER {parent}_rows_stay ON {parent}")
        op.execute(f"DROP TRIGGER {parent}_key_stays ON {parent}")
    for table in sorted({r[0] for r in references}):
        for event in ("insert", "update"):
            op.execute(f"DROP TRIGGER {table}_references_on_{event} ON {table}")
        op.execute(f"DROP FUNCTION {table}_references()")
    for table, column, parent, key in references:
        op.create_foreign_key(_fk_name(table, column, parent), table, parent, [column], [key])
    op.execute(f"DROP FUNCTION {GUARD}()")


def compared(dialect: str) -> Callable[..., bool]:
    """Alembic's include_object for comparing a database with tables.py: on PostgreSQL the foreign keys of
    CHECKED tables are statement checks, not constraints."""

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        return not (dialect == "postgresql" and type_ == "foreign_key_constraint"
                    and obj.table.name in CHECKED)

    return include
