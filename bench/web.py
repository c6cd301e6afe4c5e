"""The web workspace at a real team's scale: every page's server time and HTML size.

Run: python bench/web.py [--customers 20000] [--queued 11000] [--repeat 15] [--pg URL]
Budgets (issue "The web workspace at a real team's scale"): each page under 300 ms at the median,
under 1 s at p95, under 300 KB of HTML.

The book comes from tests/web/scale.py (real snapshot load, ingest and posting run), so the queue
holds what matching leaves: at least --queued open items. Pages are asked for in-process through
Starlette's TestClient (server time without a network); each is asked --repeat times after one
warm-up. Balances keeps the whole balances() frame and, after a change, recomputes only the
customers the change touched: the first view after a clerk's decision is measured apart, and the
full recomputation a snapshot load causes (once a day) is printed as balances() alone.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from datetime import UTC, datetime
from datetime import time as clock
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import polars as pl
from sqlalchemy import create_engine, text

from reconcile.collectors.balances import balances
from reconcile.config import load_config
from reconcile.queue import views
from reconcile.queue.actions import Decision, resolve
from reconcile.store import db
from reconcile.web import create_app
from reconcile.web.users import add_user
from tests.web.scale import build_book

PASSWORD = "bench password 1"
MEDIAN_MS, P95_MS, MAX_KB = 300, 1000, 300


def sign_in(app, name: str):  # type: ignore[no-untyped-def]
    import re

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    client = TestClient(app, follow_redirects=False)
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
    done = client.post(
        "/login", data={"csrf": token, "name": name, "password": PASSWORD, "next": "/"}
    )
    assert done.status_code == 303, done.text
    return client


def timed(client, url: str, repeat: int) -> tuple[list[float], int, int]:  # type: ignore[no-untyped-def]
    first = client.get(url)
    assert first.status_code == 200, (url, first.status_code, first.text[:300])
    took = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        answer = client.get(url)
        took.append((time.perf_counter() - t0) * 1000)
        assert answer.status_code == 200, url
    return took, len(answer.content), answer.status_code


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def run(url: str, args: argparse.Namespace) -> bool:
    config = load_config(REPO / "config")
    engine = db.make_engine(url)
    db.upgrade(engine)
    book = build_book(engine, config, customers=args.customers, queued=args.queued)
    now = __import__("reconcile.services.daily", fromlist=["utcnow"]).utcnow()
    for name, role in (("alice", "accountant"), ("carl", "collector"), ("vera", "approver")):
        add_user(engine, name, role, PASSWORD, now=now)
    kind = url.split(":", 1)[0].split("+")[0]
    print(
        f"\n{kind}: {book.customers:,} customers, {book.invoices:,} invoices, "
        f"{book.lines:,} payments, "
        f"{book.queued:,} open queue items (built in {book.seconds:.1f} s)",
        flush=True,
    )
    app = create_app(engine, config, secret_key="bench")
    alice, carl = sign_in(app, "alice"), sign_in(app, "carl")
    frame = views.list_items(engine, config=config.queue, limit=1)
    item = int(frame["id"][0])
    payer = str(
        views.list_items(engine, config=config.queue, limit=1, sort="payer")["counterparty_name"][0]
    )
    pages = [
        (alice, "/queue"),
        (alice, "/queue?page=150"),
        (alice, "/queue?sort=largest&reason=amount_mismatch"),
        (alice, f"/queue?q={payer.split()[0]}"),
        (alice, "/queue?q=INV-0001"),
        (alice, "/queue?q=100..200"),
        (alice, "/queue?q=1234.56"),
        (alice, f"/items/{item}"),
        (alice, f"/items/{item}?customer=C00042"),
        (alice, "/approvals"),
        (alice, "/runs"),
        (carl, "/customers"),
        (carl, "/customers?page=300"),
        (carl, "/customers?sort=overdue"),
        (carl, "/customers?q=kalo"),
        (carl, "/customers?q=1000..2000"),
        (carl, "/customers?hold=1"),
        (carl, "/customers/C00042"),
        (carl, "/api/customers?q=C0004"),
        (carl, "/api/customers?q=sen"),
    ]
    ok = True
    print(f"{'page':48s} {'median ms':>10s} {'p95 ms':>8s} {'KB':>7s}  budget", flush=True)
    for client, path in pages:
        took, size, _ = timed(client, path, args.repeat)
        median, high, kb = statistics.median(took), p95(took), size / 1024
        fits = median < MEDIAN_MS and high < P95_MS and kb < MAX_KB
        ok &= fits
        print(
            f"{path[:48]:48s} {median:10.1f} {high:8.1f} {kb:7.1f}  {'ok' if fits else 'OVER'}",
            flush=True,
        )
    # Balances after a clerk's decision: the kept frame recomputes only the customers it touched
    decided_at = datetime.combine(book.as_of, clock(12), tzinfo=UTC)
    open_items = views.list_items(engine, config=config.queue, limit=50, sort="largest")
    open_items = open_items.filter(pl.col("customer_id").is_not_null() & (pl.col("amount_minor") > 0))
    cold = []
    for k in range(min(args.repeat, 5)):
        key, customer = int(open_items["id"][k]), str(open_items["customer_id"][k])
        resolve(engine, key, Decision("on_account", customer=customer), actor="alice", now=decided_at,
                config=config.queue)
        t0 = time.perf_counter()
        assert carl.get(f"/customers?page={k + 2}").status_code == 200
        cold.append((time.perf_counter() - t0) * 1000)
    t0 = time.perf_counter()
    balances(
        engine,
        book.as_of,
        config.aging.buckets,
        broken_after_days=config.collections.plan_broken_after_days,
    )
    alone = (time.perf_counter() - t0) * 1000
    fits = statistics.median(cold) < MEDIAN_MS and p95(cold) < P95_MS
    ok &= fits
    print(
        f"{'/customers first view after a decision':48s} {statistics.median(cold):10.1f} "
        f"{p95(cold):8.1f} {'':>7s}  {'ok' if fits else 'OVER'}",
        flush=True,
    )
    print(f"(after a snapshot load every customer is recomputed once: balances() alone {alone:.0f} ms)", flush=True)
    engine.dispose()
    return ok


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument(
        "--queued",
        type=int,
        default=11_000,
        help="payments meant for the queue "
        "(matching posts some of them: 11,000 leave over 10,000 open items)",
    )
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--pg", help="also run on this PostgreSQL server (a throwaway schema)")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]} on {platform.machine()} {platform.node()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        ok = run(f"sqlite:///{tmp}/web.db", args)
    if args.pg:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(db.resolve_url(args.pg))
        try:
            with admin.begin() as c:
                c.execute(text(f'CREATE SCHEMA "{schema}"'))
            ok &= run(f"{args.pg}?options=-csearch_path%3D{schema}", args)
        finally:
            with admin.begin() as c:
                c.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    print("\nevery page within budget" if ok else "\nsome pages over budget (see OVER)")


if __name__ == "__main__":
    main()
