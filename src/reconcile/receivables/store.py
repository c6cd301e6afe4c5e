"""Writes a validated receivables snapshot to the database (load-ar), keeping every load.

The snapshot's open amounts already include the posting batches its manifest names
(`includes_postings_through`; none without it): an item's usable open amount is the snapshot's minus
reconcile's postings that are in a later batch or in none (ledger/open_items.py applies the rule of
core/allocation.py). A `full` snapshot closes the items it no longer lists; a `delta` changes only the
rows it lists. Where the receivables system leaves less open than reconcile's not-yet-included postings
take, the posting is shown to a person (ledger/conflicts.py). Every load is kept with the item versions
it set, so balances of a past day read the snapshot of that day. Loading the same snapshot again
changes nothing. Changes that would break the ledger (an item with postings moving to another customer
or currency) are refused naming the row.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any

import polars as pl
from sqlalchemy import bindparam, case, func, or_, select, update
from sqlalchemy.orm import Session

from reconcile.core.codes import Kind
from reconcile.core.errors import InputError
from reconcile.ledger.batches import batch_id, batch_seq
from reconcile.ledger.conflicts import settle_conflicts
from reconcile.ledger.open_items import reset_open
from reconcile.receivables.snapshot import MANIFEST, Snapshot
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
    invoices_closed: int = 0          # no longer listed by a full snapshot: closed in the receivables system
    closed_elsewhere: int = 0         # postings shown to a person because the system closed their item
    snapshot_id: int | None = None
    business_date: str | None = None
    kind: str = "full"
    includes_postings_through: str | None = None
    already_loaded: bool = False

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


INVOICE_COLUMNS = {
    "invoice_number": pl.String(), "customer_id": pl.String(), "issue_date": pl.Date(), "due_date": pl.Date(),
    "currency": pl.String(), "amount_minor": pl.Int64(), "open_minor": pl.Int64(), "payment_reference": pl.String(),
    "basis_seq": pl.Int64(), "erp_status": pl.String(),
}


def _changed(new: pl.DataFrame, old: pl.DataFrame, key: list[str], compare: list[str]) -> pl.DataFrame:
    joined = new.join(old, on=key, how="inner", suffix="_old")
    differs = pl.lit(False)
    for column in compare:
        differs = differs | pl.col(column).ne_missing(pl.col(f"{column}_old"))
    return joined.filter(differs)


def _store_customers(session: Session, snap: Snapshot, now: datetime) -> tuple[int, int]:
    c = tables.Customer
    old = repo.frame_of(session, select(c.customer_id, c.name), {"customer_id": pl.String(), "name": pl.String()})
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


def _store_known(session: Session, table: Any, column: str, frame: pl.DataFrame, now: datetime) -> int:
    """Snapshot aliases / payer accounts: add new ones; learned ones are never touched."""
    old = repo.frame_of(
        session, select(table.customer_id, getattr(table, column)),
        {"customer_id": pl.String(), column: pl.String()},
    )
    new = frame.join(old, on=["customer_id", column], how="anti")
    repo.insert_rows(session, table.__table__, [
        {**r, "source": "snapshot", "created_by": "load-ar", "created_at": now, "active": True}
        for r in new.iter_rows(named=True)
    ])
    return new.height


def _settling(al: Any) -> Any:
    """Allocation rows that move an item's open amount: invoice and installment rows and their reversals."""
    original = tables.Allocation.__table__.alias("settled_original")
    reversed_kind = select(original.c.kind).where(original.c.id == al.reverses_id).scalar_subquery()
    return al.kind.in_((Kind.INVOICE, Kind.INSTALLMENT)) | (
        (al.kind == Kind.REVERSAL) & reversed_kind.in_((Kind.INVOICE, Kind.INSTALLMENT)))


def not_included(session: Session, key: Any, seq: int, dtype: pl.DataType) -> pl.DataFrame:
    """key -> net of reconcile's settling rows the receivables system had not imported by batch `seq`."""
    al = tables.Allocation
    rows = session.execute(
        select(key, func.sum(repo.settled_amount(al))).where(
            key.is_not(None), _settling(al), or_(al.batch_seq.is_(None), al.batch_seq > seq),
        ).group_by(key)
    ).all()
    return pl.DataFrame([tuple(r) for r in rows], schema={"key": dtype, "pending": pl.Int64()}, orient="row")


def _with_postings(session: Session, numbers: list[str]) -> set[str]:
    """Invoices (of these) that carry reconcile's postings: settling or write-off rows not fully reversed."""
    al = tables.Allocation
    original = tables.Allocation.__table__.alias("posted_original")
    base = case((al.kind == Kind.REVERSAL, original.c.kind), else_=al.kind)
    found: set[str] = set()
    for _, among in repo.among(session, al.invoice_number, numbers):
        rows = session.execute(
            select(al.invoice_number).outerjoin(original, original.c.id == al.reverses_id)
            .where(among, base.in_(("invoice", "installment", "write_off")))
            .group_by(al.invoice_number, base).having(func.sum(repo.settled_amount(al)) != 0)
        ).scalars().all()
        found.update(r for r in rows if r is not None)
    return found


def _old_invoices(session: Session) -> pl.DataFrame:
    i = tables.Invoice
    return repo.frame_of(session, select(
        i.invoice_number, i.customer_id, i.issue_date, i.due_date, i.currency, i.amount_minor,
        i.snapshot_open_minor, i.payment_reference, i.basis_seq, i.erp_status,
    ), INVOICE_COLUMNS)


def _refuse_breaking_changes(session: Session, changed: pl.DataFrame) -> None:
    """An invoice with postings cannot move to another customer or currency: the postings say otherwise."""
    moved = changed.filter((pl.col("customer_id") != pl.col("customer_id_old"))
                           | (pl.col("currency") != pl.col("currency_old")))
    if moved.height == 0:
        return
    posted = _with_postings(session, moved["invoice_number"].to_list())
    bad = moved.filter(pl.col("invoice_number").is_in(list(posted))).sort("invoice_number")
    if bad.height:
        r = bad.row(0, named=True)
        what = (f"customer {r['customer_id_old']} to {r['customer_id']}" if r["customer_id"] != r["customer_id_old"]
                else f"currency {r['currency_old']} to {r['currency']}")
        more = f" (and {bad.height - 1} more)" if bad.height > 1 else ""
        raise InputError("invoices", r["invoice_number"], (
            f"moves from {what}, but reconcile has posted payments to it{more}: unapply those postings "
            "first (reconcile unapply REF), or correct the snapshot"))


def _store_invoices(session: Session, snap: Snapshot, seq: int, snapshot_id: int, day: date,
                    now: datetime) -> tuple[int, int, int, list[str]]:
    """Insert new invoices, update changed ones, close the ones a full snapshot left out; returns the counts
    and the invoices whose figures changed (their open amounts are recomputed)."""
    old = _old_invoices(session)
    listed = snap.invoices.with_columns(pl.lit(seq, dtype=pl.Int64).alias("basis_seq"),
                                        pl.lit("open").alias("erp_status"))
    new = listed.join(old, on="invoice_number", how="anti")
    compare = ["customer_id", "issue_date", "due_date", "currency", "amount_minor", "open_minor", "payment_reference",
               "basis_seq", "erp_status"]
    changed = _changed(listed, old, ["invoice_number"], compare)
    _refuse_breaking_changes(session, changed)
    closed = pl.DataFrame(schema=INVOICE_COLUMNS)
    if snap.manifest.kind == "full":
        closed = old.filter(pl.col("erp_status") == "open").join(listed, on="invoice_number", how="anti") \
            .with_columns(pl.lit(0, dtype=pl.Int64).alias("open_minor"), pl.lit(seq, dtype=pl.Int64).alias("basis_seq"),
                          pl.lit("closed").alias("erp_status"))
    t = tables.Invoice.__table__
    repo.insert_frame(session, t, new.select(
        "invoice_number", "customer_id", "issue_date", "due_date", "currency", "amount_minor",
        pl.col("open_minor").alias("snapshot_open_minor"), pl.col("open_minor").alias("open_amount_minor"),
        pl.lit(0, dtype=pl.Int64).alias("excess_minor"), "payment_reference", pl.lit(now).alias("updated_at"),
        pl.lit(seq, dtype=pl.Int64).alias("basis_seq"), pl.lit("open").alias("erp_status"),
        pl.lit(snapshot_id, dtype=pl.Int64).alias("snapshot_id"),
    ))
    updates = pl.concat([changed.select(list(INVOICE_COLUMNS)).cast(INVOICE_COLUMNS),  # type: ignore[arg-type]
                         closed.select(list(INVOICE_COLUMNS)).cast(INVOICE_COLUMNS)])  # type: ignore[arg-type]
    if updates.height:
        session.execute(
            update(t).where(t.c.invoice_number == bindparam("k")).values(
                customer_id=bindparam("customer_id"), issue_date=bindparam("issue_date"),
                due_date=bindparam("due_date"), currency=bindparam("currency"), amount_minor=bindparam("amount_minor"),
                snapshot_open_minor=bindparam("open_minor"), payment_reference=bindparam("payment_reference"),
                basis_seq=bindparam("basis_seq"), erp_status=bindparam("erp_status"), closed_on=bindparam("closed_on"),
                snapshot_id=snapshot_id, updated_at=now,
            ),
            [{**{c: r[c] for c in INVOICE_COLUMNS if c != "invoice_number"}, "k": r["invoice_number"],
              "closed_on": day if r["erp_status"] == "closed" else None}
             for r in updates.iter_rows(named=True)],
        )
    versions = pl.concat([new.select(list(INVOICE_COLUMNS)).cast(INVOICE_COLUMNS), updates])  # type: ignore[arg-type]
    repo.insert_frame(session, tables.InvoiceVersion.__table__, versions.select(
        pl.lit(snapshot_id, dtype=pl.Int64).alias("snapshot_id"), "invoice_number", "customer_id", "issue_date",
        "due_date", "currency", "amount_minor", pl.col("open_minor").alias("snapshot_open_minor"), "basis_seq",
        "erp_status",
    ))
    return new.height, changed.height, closed.height, updates["invoice_number"].to_list()


def _recompute_invoices(session: Session, numbers: list[str], seq: int) -> None:
    """open and excess of these invoices from their new snapshot figure and the postings it does not include."""
    if not numbers:
        return
    i = tables.Invoice
    figures = pl.concat([
        repo.frame_of(session, select(i.invoice_number, i.snapshot_open_minor, i.amount_minor)
                      .where(among),
                      {"key": pl.String(), "snapshot_open": pl.Int64(), "amount": pl.Int64()})
        for _, among in repo.among(session, i.invoice_number, numbers)
    ])
    pending = not_included(session, tables.Allocation.invoice_number, seq, pl.String())
    figures = figures.join(pending, on="key", how="left")
    rows = figures.select("key", (pl.col("snapshot_open") - pl.col("pending").fill_null(0)).alias("unclamped"),
                          (pl.col("amount") < 0).alias("credit_note"))
    reset_open(session, tables.Invoice.__table__, "invoice_number", rows)


def _store_installments(session: Session, snap: Snapshot, seq: int, snapshot_id: int,
                        closed_invoices: list[str]) -> tuple[int, int]:
    s = tables.Installment
    schema = {"plan_id": pl.String(), "invoice_number": pl.String(), "installment_no": pl.Int64(),
              "due_date": pl.Date(), "amount_minor": pl.Int64(), "paid_minor": pl.Int64(), "basis_seq": pl.Int64()}
    old = repo.frame_of(session, select(s.plan_id, s.invoice_number, s.installment_no, s.due_date, s.amount_minor,
                                        s.snapshot_paid_minor, s.basis_seq), schema)
    listed = snap.installments.with_columns(pl.lit(seq, dtype=pl.Int64).alias("basis_seq"))
    if listed.height:
        plans = listed.select("plan_id", "invoice_number").unique(maintain_order=True)
        repo.insert_ignore(session, tables.PaymentPlan.__table__, plans)
    new = listed.join(old, on=["plan_id", "installment_no"], how="anti")
    repo.insert_rows(session, s.__table__, [
        {"plan_id": r["plan_id"], "invoice_number": r["invoice_number"], "installment_no": r["installment_no"],
         "due_date": r["due_date"], "amount_minor": r["amount_minor"], "snapshot_paid_minor": r["paid_minor"],
         "open_amount_minor": r["amount_minor"] - r["paid_minor"], "basis_seq": seq, "excess_minor": 0}
        for r in new.iter_rows(named=True)
    ])
    changed = _changed(listed, old, ["plan_id", "installment_no"],
                       ["amount_minor", "paid_minor", "due_date", "basis_seq"])
    # the installments of an invoice the receivables system closed are settled there too
    settled = old.filter(pl.col("invoice_number").is_in(closed_invoices)
                         & (pl.col("paid_minor") != pl.col("amount_minor"))) \
        .with_columns(pl.col("amount_minor").alias("paid_minor"), pl.lit(seq, dtype=pl.Int64).alias("basis_seq"))
    updates = pl.concat([changed.select(list(schema)), settled.select(list(schema))])
    if updates.height:
        t = s.__table__
        session.execute(
            update(t).where(t.c.plan_id == bindparam("p"), t.c.installment_no == bindparam("n")).values(
                amount_minor=bindparam("amount_minor"), snapshot_paid_minor=bindparam("paid_minor"),
                due_date=bindparam("due_date"), basis_seq=bindparam("basis_seq")),
            [{"p": r["plan_id"], "n": r["installment_no"], "amount_minor": r["amount_minor"],
              "paid_minor": r["paid_minor"], "due_date": r["due_date"], "basis_seq": r["basis_seq"]}
             for r in updates.iter_rows(named=True)],
        )
    versions = pl.concat([new.select(list(schema)), updates])
    repo.insert_rows(session, tables.InstallmentVersion.__table__, [
        {"snapshot_id": snapshot_id, "plan_id": r["plan_id"], "installment_no": r["installment_no"],
         "invoice_number": r["invoice_number"], "due_date": r["due_date"], "amount_minor": r["amount_minor"],
         "snapshot_paid_minor": r["paid_minor"], "basis_seq": r["basis_seq"]}
        for r in versions.iter_rows(named=True)
    ])
    keys = updates.select("plan_id", "installment_no")
    if keys.height:
        ids = repo.frame_of(session, select(s.id, s.plan_id, s.installment_no, s.amount_minor, s.snapshot_paid_minor),
                            {"key": pl.Int64(), "plan_id": pl.String(), "installment_no": pl.Int64(),
                             "amount": pl.Int64(), "paid": pl.Int64()}).join(keys, on=["plan_id", "installment_no"])
        pending = not_included(session, tables.Allocation.installment_id, seq, pl.Int64())
        ids = ids.join(pending, on="key", how="left")
        reset_open(session, s.__table__, "id", ids.select(
            "key", (pl.col("amount") - pl.col("paid") - pl.col("pending").fill_null(0)).alias("unclamped"),
            pl.lit(False).alias("credit_note")))
    return new.height, changed.height


def _basis(session: Session, snap: Snapshot) -> int:
    """The batch sequence the snapshot already includes (0: none); a batch never made is refused."""
    named = snap.manifest.includes_postings_through
    if named is None:
        return 0
    try:
        seq = batch_seq(named)
    except Exception as exc:  # noqa: BLE001 - the message names the manifest key
        raise InputError(f"{snap.source}/{MANIFEST}", "includes_postings_through", str(exc)) from None
    last = session.execute(select(func.max(tables.PostingBatch.seq))).scalar() or 0
    if seq > last:
        made = f"the last batch made is {batch_id(last)}" if last else "no batch has been made yet"
        raise InputError(f"{snap.source}/{MANIFEST}", "includes_postings_through",
                         f"names {batch_id(seq)}, which reconcile never exported ({made})")
    return seq


def _latest(session: Session) -> tables.Snapshot | None:
    return session.execute(select(tables.Snapshot).order_by(tables.Snapshot.id.desc()).limit(1)).scalar()


def store_snapshot(session: Session, snap: Snapshot, now: datetime, *, actor: str = "load-ar",
                   as_of: date | None = None, closed_elsewhere: str = "queue") -> LoadCounts:
    """Store a validated snapshot in the caller's transaction (all or nothing).

    as_of: the business day the snapshot belongs to when its manifest has no taken_at (default: today).
    closed_elsewhere: what happens to a posting whose item the receivables system closed before it included
    the posting ("queue": a person decides; "on_account"; "unapply"), config [receivables].
    """
    latest = _latest(session)
    if latest is not None and latest.content_sha256 == snap.content_sha256:
        return LoadCounts(snapshot_id=latest.id, business_date=latest.business_date.isoformat(), kind=latest.kind,
                          already_loaded=True,
                          includes_postings_through=batch_id(latest.includes_through_seq)
                          if latest.includes_through_seq else None)
    taken = snap.manifest.taken_at
    if latest is not None and taken is not None and latest.taken_at is not None \
            and taken < _aware(latest.taken_at):
        raise InputError(f"{snap.source}/{MANIFEST}", "taken_at", (
            f"the snapshot was taken at {taken.isoformat()}, before the one already loaded "
            f"({_aware(latest.taken_at).isoformat()}): an older snapshot would undo newer figures"))
    seq = _basis(session, snap)
    day = snap.manifest.business_date or as_of or now.date()
    # stored in UTC: SQLite keeps a date-time's wall clock and drops its offset, and _aware reads it back as UTC
    record = tables.Snapshot(loaded_at=now, loaded_by=actor, taken_at=taken.astimezone(UTC) if taken else None,
                             business_date=day,
                             kind=snap.manifest.kind, includes_through_seq=seq, content_sha256=snap.content_sha256,
                             source=snap.source)
    session.add(record)
    session.flush()
    customers_new, customers_changed = _store_customers(session, snap, now)
    aliases_new = _store_known(session, tables.CustomerAlias, "alias", snap.aliases, now)
    accounts_new = _store_known(session, tables.PayerAccount, "account", snap.accounts, now)
    invoices_new, invoices_changed, invoices_closed, touched = _store_invoices(session, snap, seq, record.id, day, now)
    _recompute_invoices(session, touched, seq)
    closed_now = session.execute(
        select(tables.Invoice.invoice_number).where(tables.Invoice.invoice_number.in_(touched),
                                                    tables.Invoice.erp_status == "closed")
    ).scalars().all() if touched else []
    installments_new, installments_changed = _store_installments(session, snap, seq, record.id, list(closed_now))
    conflicts = settle_conflicts(session, touched, policy=closed_elsewhere, snapshot_id=record.id, actor=actor,
                                 now=now, business_date=day)
    counts = LoadCounts(
        customers_new, customers_changed, invoices_new, invoices_changed, installments_new, installments_changed,
        aliases_new, accounts_new, invoices_closed, conflicts, record.id, day.isoformat(), snap.manifest.kind,
        batch_id(seq) if seq else None,
    )
    record.summary = json.dumps(counts.to_dict())
    session.add(tables.AuditEntry(at=now, actor=actor, action="load_ar", reason=snap.source,
                                  details=record.summary))
    return counts


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)
