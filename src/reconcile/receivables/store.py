"""Writes a validated receivables snapshot to the database (load-ar).

New rows are inserted, changed rows updated, identical rows left alone, so
loading the same snapshot twice changes nothing. A snapshot's open amount is
the amount open before anything this ledger posted: the stored open amount
becomes snapshot open minus the ledger's net allocations, and a snapshot that
would take it below zero is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from reconcile.core.errors import InputError
from reconcile.core.money import format_minor
from reconcile.receivables.snapshot import Snapshot
from reconcile.store import repo, tables


@dataclass(frozen=True)
class LoadCounts:
    customers_new: int = 0
    customers_changed: int = 0
    invoices_new: int = 0
    invoices_changed: int = 0
    installments_new: int = 0
    installments_changed: int = 0
    aliases_new: int = 0
    accounts_new: int = 0


def _existing(session: Session, query, schema: dict[str, pl.DataType]) -> pl.DataFrame:  # type: ignore[no-untyped-def]
    return repo.frame_of(session, query, schema)


def _changed(new: pl.DataFrame, old: pl.DataFrame, key: list[str], compare: list[str]) -> pl.DataFrame:
    joined = new.join(old, on=key, how="inner", suffix="_old")
    differs = pl.lit(False)
    for column in compare:
        differs = differs | pl.col(column).ne_missing(pl.col(f"{column}_old"))
    return joined.filter(differs)


def _store_customers(session: Session, snap: Snapshot, now: datetime) -> tuple[int, int]:
    c = tables.Customer
    old = _existing(session, select(c.customer_id, c.name), {"customer_id": pl.String(), "name": pl.String()})
    new = snap.customers.join(old, on="customer_id", how="anti")
    changed = _changed(snap.customers, old, ["customer_id"], ["name"])
    repo.insert_rows(session, c.__table__, [{**r, "updated_at": now} for r in new.iter_rows(named=True)])
    if changed.height:
        t = c.__table__
        session.execute(
            update(t).where(t.c.customer_id == bindparam("k")).values(name=bindparam("v"), updated_at=now),
            [{"k": k, "v": v} for k, v in changed.select("customer_id", "name").iter_rows()],
        )
    return new.height, changed.height


def _store_known(session: Session, table, column: str, frame: pl.DataFrame, now: datetime) -> int:  # type: ignore[no-untyped-def]
    """Snapshot aliases / payer accounts: add new ones; learned ones are never touched."""
    old = _existing(
        session, select(table.customer_id, getattr(table, column)),
        {"customer_id": pl.String(), column: pl.String()},
    )
    new = frame.join(old, on=["customer_id", column], how="anti")
    repo.insert_rows(session, table.__table__, [
        {**r, "source": "snapshot", "created_by": "load-ar", "created_at": now, "active": True}
        for r in new.iter_rows(named=True)
    ])
    return new.height


def _store_invoices(session: Session, snap: Snapshot, now: datetime) -> tuple[int, int]:
    i = tables.Invoice
    old = _existing(
        session,
        select(i.invoice_number, i.customer_id, i.issue_date, i.due_date, i.currency, i.amount_minor,
               i.snapshot_open_minor, i.open_amount_minor, i.payment_reference),
        {"invoice_number": pl.String(), "customer_id": pl.String(), "issue_date": pl.Date(),
         "due_date": pl.Date(), "currency": pl.String(), "amount_minor": pl.Int64(),
         "open_minor": pl.Int64(), "ledger_open_minor": pl.Int64(), "payment_reference": pl.String()},
    )
    snapshot = snap.invoices
    new = snapshot.join(old, on="invoice_number", how="anti")
    repo.insert_rows(session, i.__table__, [
        {
            "invoice_number": r["invoice_number"], "customer_id": r["customer_id"],
            "issue_date": r["issue_date"], "due_date": r["due_date"], "currency": r["currency"],
            "amount_minor": r["amount_minor"], "snapshot_open_minor": r["open_minor"],
            "open_amount_minor": r["open_minor"], "payment_reference": r["payment_reference"],
            "updated_at": now,
        }
        for r in new.iter_rows(named=True)
    ])
    compare = ["customer_id", "issue_date", "due_date", "currency", "amount_minor", "open_minor", "payment_reference"]
    changed = _changed(snapshot, old, ["invoice_number"], compare).with_columns(
        # what this ledger has applied so far stays applied against the new snapshot figure
        (pl.col("open_minor") - (pl.col("open_minor_old") - pl.col("ledger_open_minor"))).alias("ledger_open")
    )
    applied = changed.filter(pl.col("open_minor_old") != pl.col("ledger_open_minor"))
    bad = applied.filter((pl.col("ledger_open") < 0) | (pl.col("currency") != pl.col("currency_old")))
    if bad.height:
        r = bad.row(0, named=True)
        raise InputError(
            "invoices", r["invoice_number"],
            f"snapshot open amount {format_minor(r['open_minor'], r['currency'])} is less than the "
            f"{format_minor(r['open_minor_old'] - r['ledger_open_minor'], r['currency_old'])} this ledger "
            "has already applied (or the currency changed); reverse those allocations first",
        )
    if changed.height:
        t = i.__table__
        session.execute(
            update(t).where(t.c.invoice_number == bindparam("k")).values(
                customer_id=bindparam("customer_id"), issue_date=bindparam("issue_date"),
                due_date=bindparam("due_date"), currency=bindparam("currency"),
                amount_minor=bindparam("amount_minor"), snapshot_open_minor=bindparam("open_minor"),
                open_amount_minor=bindparam("ledger_open"), payment_reference=bindparam("payment_reference"),
                updated_at=now,
            ),
            [{"k": r["invoice_number"], **{c: r[c] for c in compare}, "ledger_open": r["ledger_open"]}
             for r in changed.iter_rows(named=True)],
        )
    return new.height, changed.height


def _store_installments(session: Session, snap: Snapshot) -> tuple[int, int]:
    if snap.installments.height == 0:
        return 0, 0
    plans = snap.installments.select("plan_id", "invoice_number").unique(maintain_order=True)
    repo.insert_ignore(session, tables.PaymentPlan.__table__, plans.to_dicts())
    s = tables.Installment
    old = _existing(
        session,
        select(s.plan_id, s.installment_no, s.amount_minor, s.snapshot_paid_minor, s.open_amount_minor, s.due_date),
        {"plan_id": pl.String(), "installment_no": pl.Int64(), "amount_minor": pl.Int64(),
         "paid_minor": pl.Int64(), "ledger_open_minor": pl.Int64(), "due_date": pl.Date()},
    )
    new = snap.installments.join(old, on=["plan_id", "installment_no"], how="anti")
    repo.insert_rows(session, s.__table__, [
        {
            "plan_id": r["plan_id"], "invoice_number": r["invoice_number"], "installment_no": r["installment_no"],
            "due_date": r["due_date"], "amount_minor": r["amount_minor"], "snapshot_paid_minor": r["paid_minor"],
            "open_amount_minor": r["amount_minor"] - r["paid_minor"],
        }
        for r in new.iter_rows(named=True)
    ])
    changed = _changed(
        snap.installments, old, ["plan_id", "installment_no"], ["amount_minor", "paid_minor", "due_date"]
    ).with_columns(
        (pl.col("amount_minor") - pl.col("paid_minor")
         - (pl.col("amount_minor_old") - pl.col("paid_minor_old") - pl.col("ledger_open_minor"))).alias("ledger_open")
    )
    if changed.filter(pl.col("ledger_open") < 0).height:
        r = changed.filter(pl.col("ledger_open") < 0).row(0, named=True)
        raise InputError("installments", f"{r['plan_id']}/{r['installment_no']}",
                         "snapshot leaves less open than this ledger has already applied")
    if changed.height:
        t = s.__table__
        session.execute(
            update(t).where(t.c.plan_id == bindparam("p"), t.c.installment_no == bindparam("n")).values(
                amount_minor=bindparam("amount_minor"), snapshot_paid_minor=bindparam("paid_minor"),
                due_date=bindparam("due_date"), open_amount_minor=bindparam("ledger_open"),
            ),
            [{"p": r["plan_id"], "n": r["installment_no"], "amount_minor": r["amount_minor"],
              "paid_minor": r["paid_minor"], "due_date": r["due_date"], "ledger_open": r["ledger_open"]}
             for r in changed.iter_rows(named=True)],
        )
    return new.height, changed.height


def store_snapshot(session: Session, snap: Snapshot, now: datetime) -> LoadCounts:
    customers_new, customers_changed = _store_customers(session, snap, now)
    aliases_new = _store_known(session, tables.CustomerAlias, "alias", snap.aliases, now)
    accounts_new = _store_known(session, tables.PayerAccount, "account", snap.accounts, now)
    invoices_new, invoices_changed = _store_invoices(session, snap, now)
    installments_new, installments_changed = _store_installments(session, snap)
    return LoadCounts(
        customers_new, customers_changed, invoices_new, invoices_changed,
        installments_new, installments_changed, aliases_new, accounts_new,
    )
