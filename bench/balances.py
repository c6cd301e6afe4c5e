"""Collectors' view at scale: `balances` and the HTML report over 20,000 customers and 200k invoices.

Run: python bench/balances.py [--customers 20000] [--invoices 200000] [--days 10]
                              [--pg postgresql://postgres@127.0.0.1:5432/test | --no-pg] [--report out.html]
Targets (issue 7): balances <= 5 s, report <= 15 s, on each database.

The data: invoices issued over six months (10 % in USD), 1 in 50 under a
three-installment payment plan; then `--days` daily posting runs (real
matching and posting) of payments that mostly name their invoice, some pay
part or more, and some name nothing (found by name and amount, or queued
with the payer guessed). Only balances() and write_report() are timed.
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
from sqlalchemy import create_engine, text

from reconcile.collectors.balances import Collections, balances
from reconcile.collectors.report import write_report
from reconcile.config import load_config
from reconcile.core import frames
from reconcile.parsers.base import ParsedFile, Statement
from reconcile.receivables.snapshot import Snapshot
from reconcile.receivables.store import store_snapshot
from reconcile.services import daily as service
from reconcile.statements.ingest import store_parsed
from reconcile.store import db

REPO = Path(__file__).resolve().parents[1]
FIRST_DAY = date(2026, 11, 16)
ACCOUNT = "NL91ABNA0417164300"


SYLLABLES = ["ka", "lo", "mi", "ra", "ve", "tu", "sen", "dor", "bri", "fal", "gon", "hul", "jas", "kor", "lan",
             "mer", "nov", "pel", "quin", "ros", "sal", "tor", "ul", "vin", "wes", "xan", "yor", "zel", "ast", "bel"]
SUFFIXES = ["Ltd", "GmbH", "BV", "SA", "AB", "Oy", "SpA", "Inc"]


def name(i: int) -> str:
    """A distinct made-up company name per customer number (names decide who a bare payment is from)."""
    n = len(SYLLABLES)
    word = SYLLABLES[i % n] + SYLLABLES[(i // n) % n] + SYLLABLES[(i // n // n) % n]
    return f"{word.capitalize()} {SYLLABLES[(i * 7) % n].capitalize()}{SYLLABLES[(i * 11) % n]} {SUFFIXES[i % 8]}"


def snapshot(customers: int, invoices: int, rng: random.Random) -> tuple[Snapshot, list[tuple[str, str, str, int]]]:
    ids = [f"C{i:05d}" for i in range(customers)]
    numbers = [f"INV-{i:07d}" for i in range(invoices)]
    owner = [ids[rng.randrange(customers)] for _ in range(invoices)]
    currency = ["USD" if rng.random() < 0.1 else "EUR" for _ in range(invoices)]
    amount = [rng.randrange(5_000, 900_000) for _ in range(invoices)]
    issued = [date(2026, 5, 1) + timedelta(days=rng.randrange(200)) for _ in range(invoices)]
    inv = pl.DataFrame({
        "invoice_number": numbers, "customer_id": owner, "issue_date": issued,
        "due_date": [d + timedelta(days=30) for d in issued], "currency": currency, "amount_minor": amount,
        "open_minor": amount, "payment_reference": [None] * invoices,
    }, schema_overrides={"payment_reference": pl.String()})
    plans = []
    for i in range(0, invoices, 50):
        third = amount[i] // 3
        for n in range(3):
            plans.append({"plan_id": f"PLAN-{i:07d}", "invoice_number": numbers[i], "installment_no": n + 1,
                          "due_date": issued[i] + timedelta(days=30 * (n + 1)),
                          "amount_minor": third if n < 2 else amount[i] - 2 * third, "paid_minor": 0})
    snap = Snapshot(
        customers=pl.DataFrame({"customer_id": ids, "name": [name(i) for i in range(customers)]}),
        invoices=inv,
        aliases=pl.DataFrame(schema={"customer_id": pl.String(), "alias": pl.String()}),
        accounts=pl.DataFrame(schema={"customer_id": pl.String(), "account": pl.String()}),
        installments=pl.DataFrame(plans, schema={
            "plan_id": pl.String(), "invoice_number": pl.String(), "installment_no": pl.Int64(),
            "due_date": pl.Date(), "amount_minor": pl.Int64(), "paid_minor": pl.Int64()}),
    )
    planned = {p["invoice_number"] for p in plans}
    payable = [(n, c, cur, a) for n, c, cur, a in zip(numbers, owner, currency, amount) if n not in planned]
    return snap, payable


def day_of_payments(payable: list[tuple[str, str, str, int]], count: int, day: date, rng: random.Random,
                    taken: set[str]) -> ParsedFile:
    rows = []
    while len(rows) < count:
        number, customer, currency, amount = payable[rng.randrange(len(payable))]
        if number in taken:
            continue
        taken.add(number)
        roll = rng.random()
        if roll < 0.80:
            remittance = f"Invoice {number}"
        elif roll < 0.87:
            remittance, amount = f"part payment {number}", amount // 2
        elif roll < 0.92:
            remittance, amount = f"{number} and a bit more", amount + 1_000
        elif roll < 0.96:
            remittance = "payment, thank you"  # found by the payer's name and the amount
        else:
            remittance, amount = "payment, thank you", amount + 1_234  # fits nothing: queued, payer guessed
        rows.append({"source_ref": f"{day:%Y%m%d}-{len(rows):06d}", "booking_date": day, "value_date": None,
                     "amount_minor": amount, "currency": currency, "counterparty_name": name(int(customer[1:])),
                     "counterparty_account": None, "remittance": remittance})
    frame = pl.DataFrame(rows, schema_overrides={"value_date": pl.Date(), "counterparty_account": pl.String()})
    return ParsedFile("bench", [Statement(ACCOUNT, None, frames.conform(frame, frames.BANK_LINES))])


def build(url: str, customers: int, invoices: int, days: int, seed: int = 7) -> tuple[float, date]:
    """Load the snapshot and post `days` daily runs; returns the seconds it took and the last day."""
    rng = random.Random(seed)
    engine = db.make_engine(url)
    db.upgrade(engine)
    started = time.perf_counter()
    snap, payable = snapshot(customers, invoices, rng)
    with db.transaction(engine) as session:
        store_snapshot(session, snap, datetime(2026, 11, 15, 6, tzinfo=UTC))
    settings = load_config(REPO / "config")
    taken: set[str] = set()
    per_day = max(invoices // 25, 10)
    day = FIRST_DAY
    for k in range(days):
        day = FIRST_DAY + timedelta(days=k)
        now = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=UTC) + timedelta(hours=6)
        with db.transaction(engine) as session:
            store_parsed(session, Path(f"bank-{day}.csv"), uuid.uuid4().hex,
                         day_of_payments(payable, per_day, day, rng, taken), now)
        service.run_posting(engine, config=settings, as_of=now.date(), now=now)
    engine.dispose()
    return time.perf_counter() - started, day + timedelta(days=1)


def measure(url: str, as_of: date, report: Path) -> tuple[float, float, int]:
    engine = db.make_engine(url)
    collections = Collections.from_config(load_config(REPO / "config"))
    t0 = time.perf_counter()
    frame = balances(engine, as_of, collections.edges, broken_after_days=collections.broken_after_days)
    t1 = time.perf_counter()
    write_report(engine, report, as_of, collections)
    t2 = time.perf_counter()
    engine.dispose()
    return t1 - t0, t2 - t1, frame.height


def bench(url: str, args: argparse.Namespace, report: Path) -> None:
    setup, as_of = build(url, args.customers, args.invoices, args.days)
    took_balances, took_report, rows = measure(url, as_of, report)
    kind = url.split(":", 1)[0].split("+")[0]
    print(f"{kind:10s} customers {args.customers:6d}  invoices {args.invoices:7d}  rows {rows:6d}  "
          f"balances {took_balances:5.2f} s (target 5)  report {took_report:5.2f} s (target 15)  "
          f"[setup {setup:.0f} s, {args.days} runs]", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--invoices", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--no-pg", action="store_true")
    parser.add_argument("--report", type=Path, help="keep the SQLite run's HTML report here")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]} on {platform.machine()} {platform.processor()}".rstrip(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        bench(f"sqlite:///{tmp}/bench.db", args, args.report or Path(tmp) / "report.html")
        if args.no_pg:
            return
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(db.resolve_url(args.pg))
        try:
            with admin.begin() as c:
                c.execute(text(f'CREATE SCHEMA "{schema}"'))
            bench(f"{args.pg}?options=-csearch_path%3D{schema}", args, Path(tmp) / "report-pg.html")
        finally:
            with admin.begin() as c:
                c.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


if __name__ == "__main__":
    main()
