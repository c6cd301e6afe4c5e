"""Collection KPIs as of a date, over the period of N days that ends on it.

Per currency: DSO, Collection Effectiveness Index, average days to pay;
per posting run: automatic-posting rate and the exception backlog the run
left; the open queue by reason and age; cash applied per day. Only rows
dated on or before the as-of date count (balances.py defines "as of"), so a
past date gives the same figures tomorrow as today. Money sums are exact
integers; the ratios are Decimals rounded for display. The HTML report
draws these; nothing here formats or prints.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import polars as pl
from sqlalchemy import Engine, Integer, cast, func, select
from sqlalchemy.orm import Session, aliased

from reconcile.collectors.balances import (
    Collections,
    cutoff,
    one_snapshot,
    open_invoices,
    queue_open_on,
    read_frame,
    utc_naive,
)
from reconcile.core.codes import Kind
from reconcile.store import repo, tables

DSO_FORMULA = "DSO = open receivables at the end of the period / amount invoiced in the period x days in the period"
CEI_FORMULA = ("CEI = (receivables at the start + invoiced in the period - receivables at the end) / "
               "(receivables at the start + invoiced in the period - current (not yet due) receivables at the end) "
               "x 100")
DAYS_TO_PAY_FORMULA = ("average days to pay = sum(amount applied x (bank booking date - invoice issue date)) / "
                       "sum(amount applied); days late likewise from the due date (the installment's, for plans); "
                       "over invoice and installment allocations posted in the period and "
                       "not reversed by the as-of date")
AUTO_RATE_FORMULA = ("automatic-posting rate = lines posted by the run / (lines posted + lines left in the queue "
                     "by the run; a run looks again at the open queue, so those count too)")
AGE_EDGES = (3, 7, 14, 30)  # queue age buckets, in days since the bank booked the line


@dataclass(frozen=True)
class Kpis:
    as_of: date
    period_days: int
    per_currency: pl.DataFrame   # currency, ar_start, invoiced, ar_end, current_end (minor), dso, cei, days_to_pay...
    runs: pl.DataFrame           # run_id, started_at, as_of, status, lines_posted, lines_queued, auto_rate, backlog
    backlog: pl.DataFrame        # reason, age, items, currency, amount_minor (open queue on the as-of date)
    cash_per_day: pl.DataFrame   # day, currency, applied_minor, reversed_minor

    @property
    def period_start(self) -> date:
        """The first day of the period (the period is period_start .. as_of, both included)."""
        return self.as_of - timedelta(days=self.period_days - 1)


def ratio(numerator: int, denominator: int, scale: int = 1, places: str = "0.1") -> Decimal | None:
    """numerator / denominator x scale as an exact Decimal rounded half-even; None when undefined."""
    if denominator == 0:
        return None
    return (Decimal(numerator) * scale / Decimal(denominator)).quantize(Decimal(places), ROUND_HALF_EVEN)


def _receivables(session: Session, as_of: date) -> pl.DataFrame:
    invoices = open_invoices(session, as_of)
    return invoices.group_by("currency").agg(
        pl.col("open_minor").sum().alias("open"),
        pl.col("open_minor").filter(pl.col("due_date") >= as_of).sum().alias("current"),
    )


def _invoiced(session: Session, start: date, end: date) -> pl.DataFrame:
    inv = tables.Invoice
    return read_frame(session, select(inv.currency, func.sum(inv.amount_minor)).where(
        inv.issue_date >= start, inv.issue_date <= end).group_by(inv.currency),
        {"currency": pl.String(), "invoiced": pl.Int64()})


def _days_to_pay(session: Session, start: date, as_of: date) -> pl.DataFrame:
    """Amount-weighted days from issue (and from due date) to the bank's booking date, per currency."""
    al, bl, inv = tables.Allocation, tables.BankLine, tables.Invoice
    undone = aliased(tables.Allocation)
    def between(later, earlier):  # type: ignore[no-untyped-def]
        # whole days as an integer on both databases (SQLite keeps dates as text), so the sums stay exact
        if session.get_bind().dialect.name == "sqlite":
            return cast(func.julianday(later) - func.julianday(earlier), Integer)
        return later - earlier

    settled = repo.settled_amount(al)
    days = func.sum(settled * between(bl.booking_date, inv.issue_date))
    ins = tables.Installment
    late = func.sum(settled * between(bl.booking_date, func.coalesce(ins.due_date, inv.due_date)))
    query = (
        select(repo.settled_currency(al), func.sum(settled), cast(days, tables.Money),
               cast(late, tables.Money), func.count(func.distinct(al.invoice_number)))
        .join(bl, bl.id == al.bank_line_id)
        .join(inv, inv.invoice_number == al.invoice_number)
        .outerjoin(ins, ins.id == al.installment_id)
        .where(al.kind.in_((Kind.INVOICE, Kind.INSTALLMENT)), al.business_date >= start, al.business_date <= as_of,
               # not taken back by the as-of date (NOT IN, not a correlated EXISTS: reverses_id has no index)
               al.id.not_in(select(undone.reverses_id).where(undone.reverses_id.is_not(None),
                                                             undone.business_date <= as_of)))
        .group_by(repo.settled_currency(al))
    )
    return read_frame(session, query, {
        "currency": pl.String(), "paid": pl.Int64(), "weighted_days": pl.Int64(), "weighted_late": pl.Int64(),
        "items_paid": pl.Int64(),
    })


def _cash_per_day(session: Session, start: date, as_of: date) -> pl.DataFrame:
    """Cash applied to customers per business day: posted rows, and reversals apart, per currency."""
    al = tables.Allocation
    day = al.business_date
    rows = session.execute(
        select(day, al.currency, al.kind, func.sum(al.amount_minor))
        .where(al.business_date >= start, al.business_date <= as_of)
        .group_by(day, al.currency, al.kind)
    ).all()
    frame = pl.DataFrame(
        {"day": [date.fromisoformat(str(r[0])) for r in rows], "currency": [r[1] for r in rows],
         "reversal": [r[2] == "reversal" for r in rows], "amount_minor": [int(r[3]) for r in rows]},
        schema={"day": pl.Date(), "currency": pl.String(), "reversal": pl.Boolean(), "amount_minor": pl.Int64()},
    )
    return frame.group_by("day", "currency").agg(
        pl.col("amount_minor").filter(~pl.col("reversal")).sum().alias("applied_minor"),
        pl.col("amount_minor").filter(pl.col("reversal")).sum().alias("reversed_minor"),
    ).sort("day", "currency")


def _runs(session: Session, as_of: date) -> pl.DataFrame:
    """Completed and failed posting runs started by `as_of`, with the queue backlog each one left."""
    run, ex = tables.PostingRun, tables.ExceptionItem
    cut = cutoff(as_of)
    runs = session.execute(
        select(run.run_id, run.started_at, run.as_of, run.status, run.summary)
        .where(run.started_at < cut, run.dry_run.is_(False), run.status != "running")
        .order_by(run.started_at, run.run_id)
    ).all()
    items = read_frame(session, select(ex.created_at, ex.resolved_at).where(ex.created_at < cut), {
        "created_at": pl.Datetime("us"), "resolved_at": pl.Datetime("us"),
    })
    created = items["created_at"].sort()
    resolved = items.filter(pl.col("resolved_at") < utc_naive(cut))["resolved_at"].sort()
    records = []
    for run_id, started, run_as_of, status, summary in runs:
        data = json.loads(summary or "{}")
        posted, queued = int(data.get("lines_posted", 0)), int(data.get("lines_exception", 0))
        # the run stamps its queue items and resolutions with its start time (service.run_posting's `now`)
        at = utc_naive(started)
        backlog = int(created.search_sorted(at, side="right")) - int(resolved.search_sorted(at, side="right"))
        records.append({
            "run_id": run_id, "started_at": utc_naive(started), "run_as_of": run_as_of, "status": status,
            "lines_posted": posted, "lines_queued": queued,
            "auto_rate": ratio(posted, posted + queued, 100, "0.1"),
            "queued_by_reason": json.dumps(data.get("exceptions_by_reason", {}), sort_keys=True),
            "backlog_after": backlog,
        })
    schema = {"run_id": pl.String(), "started_at": pl.Datetime("us"), "run_as_of": pl.Date(), "status": pl.String(),
              "lines_posted": pl.Int64(), "lines_queued": pl.Int64(), "auto_rate": pl.Decimal(6, 1),
              "queued_by_reason": pl.String(), "backlog_after": pl.Int64()}
    return pl.DataFrame(records, schema=schema) if records else pl.DataFrame(schema=schema)


def age_label(days: pl.Expr) -> pl.Expr:
    expr: Any = pl.when(days <= AGE_EDGES[0]).then(pl.lit(f"0-{AGE_EDGES[0]} days"))
    for low, high in itertools.pairwise(AGE_EDGES):
        expr = expr.when(days <= high).then(pl.lit(f"{low + 1}-{high} days"))
    return expr.otherwise(pl.lit(f"over {AGE_EDGES[-1]} days"))


def age_labels() -> list[str]:
    return [f"0-{AGE_EDGES[0]} days", *[f"{lo + 1}-{hi} days" for lo, hi in itertools.pairwise(AGE_EDGES)],
            f"over {AGE_EDGES[-1]} days"]


def _backlog(session: Session, as_of: date) -> pl.DataFrame:
    """The queue as it stood at the end of `as_of`: items and amounts by reason, age and currency."""
    ex, bl = tables.ExceptionItem, tables.BankLine
    items = read_frame(session, select(ex.reason, bl.booking_date, bl.currency, bl.amount_minor)
                       .join(bl, bl.id == ex.bank_line_id).where(queue_open_on(as_of)), {
        "reason": pl.String(), "booking_date": pl.Date(), "currency": pl.String(), "amount_minor": pl.Int64(),
    })
    return (
        items.with_columns(age_label((pl.lit(as_of) - pl.col("booking_date")).dt.total_days()).alias("age"))
        .group_by("reason", "age", "currency")
        .agg(pl.len().cast(pl.Int64).alias("items"), pl.col("amount_minor").sum())
        .sort("reason", "age", "currency")
    )


def kpis(engine: Engine, as_of: date, collections: Collections | None = None) -> Kpis:
    period = (collections or Collections()).dso_period_days
    start = as_of - timedelta(days=period - 1)
    with one_snapshot(engine) as session:
        end = _receivables(session, as_of).rename({"open": "ar_end", "current": "current_end"})
        begin = _receivables(session, start - timedelta(days=1)).select(
            "currency", pl.col("open").alias("ar_start"))
        invoiced = _invoiced(session, start, as_of)
        paid = _days_to_pay(session, start, as_of)
        cash = _cash_per_day(session, start, as_of)
        runs = _runs(session, as_of)
        backlog = _backlog(session, as_of)
    currencies = pl.concat([f.select("currency") for f in (end, begin, invoiced, paid)]).unique()
    money = ["ar_start", "invoiced", "ar_end", "current_end", "paid", "weighted_days", "weighted_late", "items_paid"]
    table = (
        currencies.join(begin, on="currency", how="left").join(invoiced, on="currency", how="left")
        .join(end, on="currency", how="left").join(paid, on="currency", how="left")
        .with_columns(pl.col(money).fill_null(0).cast(pl.Int64)).sort("currency")
    )
    extra = []
    for r in table.iter_rows(named=True):
        collectable = r["ar_start"] + r["invoiced"]
        extra.append({
            "currency": r["currency"],
            "dso": ratio(r["ar_end"] * period, r["invoiced"]),
            "cei": ratio(collectable - r["ar_end"], collectable - r["current_end"], 100),
            "days_to_pay": ratio(r["weighted_days"], r["paid"]),
            "days_late": ratio(r["weighted_late"], r["paid"]),
        })
    ratios = pl.DataFrame(extra, schema={"currency": pl.String(), "dso": pl.Decimal(12, 1), "cei": pl.Decimal(12, 1),
                                         "days_to_pay": pl.Decimal(12, 1), "days_late": pl.Decimal(12, 1)})
    return Kpis(as_of, period, table.join(ratios, on="currency", how="left"), runs, backlog, cash)


def kpis_json(k: Kpis) -> dict:
    """Plain JSON-ready view of the KPIs (ratios as decimal strings), with the formulas and the period."""
    from reconcile.services.exports import decimal_text

    money = ["ar_start", "invoiced", "ar_end", "current_end", "paid"]
    per_currency = k.per_currency.with_columns(
        [decimal_text(pl.col(c), pl.col("currency")).alias(c) for c in money]
    ).with_columns(pl.col(["dso", "cei", "days_to_pay", "days_late"]).cast(pl.String))
    return {
        "as_of": k.as_of.isoformat(),
        "period": {"from": k.period_start.isoformat(), "to": k.as_of.isoformat(), "days": k.period_days},
        "formulas": {"dso": DSO_FORMULA, "cei": CEI_FORMULA, "days_to_pay": DAYS_TO_PAY_FORMULA,
                     "auto_rate": AUTO_RATE_FORMULA},
        "per_currency": per_currency.drop("weighted_days", "weighted_late").to_dicts(),
        "runs": k.runs.with_columns(pl.col("auto_rate").cast(pl.String),
                                    pl.col("started_at").dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_dicts(),
        "backlog": k.backlog.with_columns(decimal_text(pl.col("amount_minor"), pl.col("currency")).alias("amount"))
        .drop("amount_minor").to_dicts(),
    }

