"""Open amounts of invoices and installments, moved by postings and reversals and reset by snapshots.

The only writer of `open_amount_minor` and `excess_minor`. The rules are core/allocation.py's; this
module reads the items a change touches (locked on PostgreSQL), applies the rule and writes the new
values in bulk. A take beyond what is open fails the caller's transaction (the database's sign check is
the backstop).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl
from sqlalchemy import Table, bindparam, select, text, update
from sqlalchemy.orm import Session

from reconcile.core.allocation import OverApplied, clamp_open, move
from reconcile.core.codes import Kind
from reconcile.core.errors import LedgerError
from reconcile.store import repo, tables

SETTLING = (Kind.INVOICE, Kind.INSTALLMENT)  # kinds that move open amounts (a write_off is an expense beside them)


def _current(session: Session, table: Table, key: str, keys: Sequence[Any], sign_column: str) -> dict[Any, tuple]:
    """key -> (is credit note, open, excess) of the rows named, locked for this transaction on PostgreSQL."""
    found: dict[Any, tuple] = {}
    for _, among in repo.among(session, table.c[key], list(keys)):
        query = select(table.c[key], table.c[sign_column] < 0, table.c.open_amount_minor, table.c.excess_minor) \
            .where(among)
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        found.update({r[0]: (bool(r[1]), r[2], r[3]) for r in session.execute(query).all()})
    return found


def write_open(session: Session, table: Table, key: str, values: Sequence[tuple[Any, int, int]]) -> None:
    """Set (open, excess) per key: one statement on PostgreSQL, executemany elsewhere."""
    if not values:
        return
    if session.get_bind().dialect.name == "postgresql":
        keys = [v[0] for v in values]
        key_type = "text" if isinstance(keys[0], str) else "bigint"
        session.execute(text(
            f'UPDATE "{table.name}" AS t SET open_amount_minor = v.o, excess_minor = v.e '
            f"FROM unnest(CAST(:k AS {key_type}[]), CAST(:o AS bigint[]), CAST(:e AS bigint[])) AS v(k, o, e) "
            f'WHERE t."{key}" = v.k'
        ), {"k": repo.pg_array(keys), "o": repo.pg_array([v[1] for v in values]),
            "e": repo.pg_array([v[2] for v in values])})
        return
    session.execute(
        update(table).where(table.c[key] == bindparam("k")).values(
            open_amount_minor=bindparam("o"), excess_minor=bindparam("e")),
        [{"k": k, "o": o, "e": e} for k, o, e in values],
    )


def _apply(session: Session, table: Table, key: str, sign_column: str, deltas: pl.DataFrame, what: str) -> None:
    if deltas.height == 0:
        return
    current = _current(session, table, key, deltas.to_series(0).to_list(), sign_column)
    values = []
    for k, delta in deltas.iter_rows():
        if k not in current:
            raise LedgerError(f"{what} {k} does not exist")
        credit_note, open_, excess = current[k]
        try:
            values.append((k, *move(open_, excess, delta, credit_note)))
        except OverApplied as exc:
            raise LedgerError(f"{what} {k}: {exc}; nothing from this posting was applied") from None
    write_open(session, table, key, values)


def move_open(session: Session, allocations: pl.DataFrame, *, giving_back: bool = False) -> None:
    """Move open amounts by allocation rows (kind, invoice_number, installment_id, amount_minor).

    A posting takes (giving_back False): one bulk `open -= amount` per table, and the database's sign check
    refuses any take beyond what is open (an item whose open amount is zero because the receivables system
    closed it has nothing to take). A reversal gives back (the rows it reverses, amounts negated): each item
    is read, the rule of core/allocation.move applied (the excess first), and written.
    """
    settling = allocations.filter(pl.col("kind").is_in(SETTLING))
    if "settled_amount_minor" in settling.columns:
        # paid in another currency: the item moves by what the row settles in the item's own currency
        settling = settling.with_columns(pl.coalesce("settled_amount_minor", "amount_minor").alias("amount_minor"))
    on_invoices = settling.group_by("invoice_number").agg(pl.col("amount_minor").sum()).sort("invoice_number") \
        .filter(pl.col("amount_minor") != 0)
    on_installments = settling.filter(pl.col("installment_id").is_not_null()) \
        .group_by("installment_id").agg(pl.col("amount_minor").sum()).sort("installment_id") \
        .filter(pl.col("amount_minor") != 0)
    invoices, installments = tables.Invoice.__table__, tables.Installment.__table__
    if not giving_back:
        repo.update_by_key(session, invoices, "invoice_number", "open_amount_minor", on_invoices.rows())
        repo.update_by_key(session, installments, "id", "open_amount_minor", on_installments.rows())
        return
    _apply(session, invoices, "invoice_number", "amount_minor", on_invoices, "invoice")
    _apply(session, installments, "id", "amount_minor", on_installments, "installment")


def reset_open(session: Session, table: Table, key: str, rows: pl.DataFrame) -> None:
    """Set open and excess from (key, unclamped, credit_note) rows: a snapshot gave the items new figures."""
    values = [(k, *clamp_open(u, bool(c))) for k, u, c in rows.iter_rows()]
    write_open(session, table, key, values)
