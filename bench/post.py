"""Posting throughput: 100k allocations into the ledger, on SQLite and on PostgreSQL.

Run: python bench/post.py [--allocations 100000] [--pg postgresql://postgres@127.0.0.1:5432/test]
Targets: posting 100k allocations <= 10 s on each database (issue 4); <= 3 s on PostgreSQL (issue 17).
PostgreSQL is measured twice, on fresh schemas: chunks posted one at a time, and over the [posting]
connections of config/reconcile.toml. Its floor is a bare COPY of the same allocation rows into a
table without keys, constraints or indexes.

The data: 50k invoices, 50k payments; most pay one invoice exactly, some pay
two, some pay more (an on-account row), so each line carries 1-3 allocation
rows (~100k in all). Timed separately: matching (decide) and posting
(post_result: every chunk's transaction with allocations, open amounts,
statuses, postings and audit entries), then the invariant check.
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
from sqlalchemy import create_engine, text

from reconcile.config import load_config
from reconcile.core import frames
from reconcile.ledger import check as ledger_check
from reconcile.parsers.base import ParsedFile, Statement
from reconcile.receivables.snapshot import Snapshot
from reconcile.receivables.store import store_snapshot
from reconcile.services import daily as service
from reconcile.statements.ingest import store_parsed
from reconcile.store import db

NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[1]


def data(allocations: int, seed: int = 1) -> tuple[Snapshot, ParsedFile]:
    rng = random.Random(seed)
    n_invoices = allocations * 5 // 6  # ~1.2 allocation rows per invoice
    customers = pl.DataFrame({"customer_id": [f"C{i:05d}" for i in range((n_invoices + 9) // 10)],
                              "name": [f"Customer {i}" for i in range((n_invoices + 9) // 10)]})
    amounts = [rng.randrange(1_000, 900_000) for _ in range(n_invoices)]
    invoices = pl.DataFrame({
        "invoice_number": [f"INV-{i:07d}" for i in range(n_invoices)],
        "customer_id": [f"C{i // 10:05d}" for i in range(n_invoices)],
        "issue_date": [date(2026, 9, 1)] * n_invoices, "due_date": [date(2026, 10, 1)] * n_invoices,
        "currency": ["EUR"] * n_invoices, "amount_minor": amounts, "open_minor": amounts,
        "payment_reference": [None] * n_invoices,
    })
    lines, i = [], 0
    while i < n_invoices:
        roll = rng.random()
        if roll < 0.3 and i + 1 < n_invoices and (i + 1) // 10 == i // 10:  # two invoices of one customer
            lines.append((f"INV-{i:07d} INV-{i + 1:07d}", amounts[i] + amounts[i + 1]))
            i += 2
        elif roll < 0.5:  # overpaid: invoice + on account
            lines.append((f"INV-{i:07d}", amounts[i] + 500))
            i += 1
        else:
            lines.append((f"INV-{i:07d}", amounts[i]))
            i += 1
    frame = pl.DataFrame({
        "source_ref": [f"B{k:07d}" for k in range(len(lines))],
        "booking_date": [date(2026, 11, 24)] * len(lines), "value_date": [None] * len(lines),
        "amount_minor": [a for _, a in lines], "currency": ["EUR"] * len(lines),
        "counterparty_name": [None] * len(lines), "counterparty_account": [None] * len(lines),
        "remittance": [r for r, _ in lines],
    }, schema_overrides={"value_date": pl.Date(), "counterparty_name": pl.String(),
                         "counterparty_account": pl.String()})
    parsed = ParsedFile("bench", [Statement("NL91ABNA0417164300", "EUR", frames.conform(frame, frames.BANK_LINES))])
    snapshot = Snapshot(
        customers=customers, invoices=invoices,
        aliases=pl.DataFrame(schema={"customer_id": pl.String(), "alias": pl.String()}),
        accounts=pl.DataFrame(schema={"customer_id": pl.String(), "account": pl.String()}),
        installments=pl.DataFrame(schema={"plan_id": pl.String(), "invoice_number": pl.String(),
                                          "installment_no": pl.Int64(), "due_date": pl.Date(),
                                          "amount_minor": pl.Int64(), "paid_minor": pl.Int64()}),
    )
    return snapshot, parsed


def bench(url: str, allocations: int, connections: int = 1) -> None:
    engine = db.make_engine(url)
    db.upgrade(engine)
    snapshot, parsed = data(allocations)
    with db.transaction(engine) as session:
        store_snapshot(session, snapshot, NOW)
    with db.transaction(engine) as session:
        store_parsed(session, Path("bench.csv"), uuid.uuid4().hex, parsed, NOW)
    settings = load_config(REPO / "config")
    rules = settings.matching

    t0 = time.perf_counter()
    lines, book = service.run_inputs(engine)
    result = service.decide_run(engine, lines, book, rules)
    t1 = time.perf_counter()
    run_id = service.new_run_id(NOW)
    service.begin_run(engine, run_id, NOW.date(), "bench", NOW)
    service.post_result(engine, run_id, lines, book, result, "bench", NOW, connections=connections)
    t2 = time.perf_counter()
    with db.transaction(engine) as session:
        violations = ledger_check.check_ledger(session)
    t3 = time.perf_counter()
    kind = engine.dialect.name
    floor = f"  floor {_bare_copy(engine):5.2f} s" if kind == "postgresql" else ""
    print(f"{kind:10s} lines {lines.height:7d}  allocations {result.allocations.height:7d}  "
          f"match {t1 - t0:6.2f} s  post {t2 - t1:6.2f} s ({result.allocations.height / (t2 - t1):8.0f} alloc/s, "
          f"{connections} connection{'s' if connections > 1 else ''})  "
          f"check {t3 - t2:5.2f} s  violations {len(violations)}{floor}")
    engine.dispose()


def _bare_copy(engine) -> float:  # type: ignore[no-untyped-def]
    """Seconds to COPY the posted allocation rows, as CSV from the client, into a table without keys."""
    with engine.connect() as connection:
        cursor = connection.connection.driver_connection.cursor()
        body = bytearray()
        with cursor.copy("COPY allocations TO STDOUT WITH (FORMAT csv)") as out:
            for block in out:
                body += block
        cursor.execute("CREATE TEMPORARY TABLE bare (LIKE allocations)")
        start = time.perf_counter()
        with cursor.copy("COPY bare FROM STDIN WITH (FORMAT csv)") as into:
            into.write(bytes(body))
        connection.connection.driver_connection.commit()
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--allocations", type=int, default=100_000)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]} on {platform.machine()}, {platform.processor() or ''}".rstrip(", "))
    with tempfile.TemporaryDirectory() as tmp:
        bench(f"sqlite:///{tmp}/bench.db", args.allocations)
    admin = create_engine(db.resolve_url(args.pg))
    for connections in sorted({1, load_config(REPO / "config").posting.connections}):
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        try:
            with admin.begin() as c:
                c.execute(text(f'CREATE SCHEMA "{schema}"'))
            bench(f"{args.pg}?options=-csearch_path%3D{schema}", args.allocations, connections)
        finally:
            with admin.begin() as c:
                c.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


if __name__ == "__main__":
    main()
