"""A team-sized book for the web workspace: thousands of customers, thousands of queued payments.

The customers, invoices and one day of payments go through the real snapshot load, ingest and
posting run, so the queue holds what matching really leaves there: payments whose payer is known
but whose amount fits nothing (unapplied cash of that customer), payments naming two invoices whose
sum does not fit (ranked suggestions), payments from strangers (no candidate) and a share of
payments that post at once (lines to unapply). bench/web.py and the browser tests build from here.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
from sqlalchemy import Engine

from reconcile.config import Config
from reconcile.core import frames
from reconcile.parsers.base import ParsedFile, Statement
from reconcile.receivables.snapshot import Snapshot
from reconcile.receivables.store import store_snapshot
from reconcile.services import daily as service
from reconcile.statements.ingest import store_parsed
from reconcile.store import db

ACCOUNT = "NL91ABNA0417164300"
DAY = date(2026, 11, 20)
SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ra",
    "ve",
    "tu",
    "sen",
    "dor",
    "bri",
    "fal",
    "gon",
    "hul",
    "jas",
    "kor",
    "lan",
    "mer",
    "nov",
    "pel",
    "quin",
    "ros",
    "sal",
    "tor",
    "ul",
    "vin",
    "wes",
    "xan",
    "yor",
    "zel",
    "ast",
    "bel",
]
SUFFIXES = ["Ltd", "GmbH", "BV", "SA", "AB", "Oy", "SpA", "Inc"]


@dataclass(frozen=True)
class ScaleBook:
    customers: int
    invoices: int
    lines: int
    queued: int
    as_of: date
    seconds: float


def company(i: int) -> str:
    """A distinct made-up company name per customer number."""
    n = len(SYLLABLES)
    word = SYLLABLES[i % n] + SYLLABLES[(i // n) % n] + SYLLABLES[(i // n // n) % n]
    return (
        f"{word.capitalize()} {SYLLABLES[(i * 7) % n].capitalize()}{SYLLABLES[(i * 11) % n]} "
        f"{SUFFIXES[i % 8]}"
    )


def _snapshot(
    customers: int, per_customer: int, rng: random.Random
) -> tuple[Snapshot, list[tuple]]:
    ids = [f"C{i:05d}" for i in range(customers)]
    rows = []
    for c in range(customers):
        for k in range(per_customer):
            issued = date(2026, 7, 1) + timedelta(days=rng.randrange(130))
            amount = rng.randrange(5_000, 900_000)
            rows.append(
                (
                    f"INV-{c * per_customer + k:07d}",
                    ids[c],
                    issued,
                    issued + timedelta(days=30),
                    "USD" if c % 10 == 9 else "EUR",
                    amount,
                )
            )
    inv = pl.DataFrame(
        rows,
        schema={
            "invoice_number": pl.String(),
            "customer_id": pl.String(),
            "issue_date": pl.Date(),
            "due_date": pl.Date(),
            "currency": pl.String(),
            "amount_minor": pl.Int64(),
        },
        orient="row",
    )
    inv = inv.with_columns(
        pl.col("amount_minor").alias("open_minor"),
        pl.lit(None, pl.String()).alias("payment_reference"),
    )
    snap = Snapshot(
        customers=pl.DataFrame(
            {"customer_id": ids, "name": [company(i) for i in range(customers)]}
        ),
        invoices=inv,
        aliases=pl.DataFrame(schema={"customer_id": pl.String(), "alias": pl.String()}),
        accounts=pl.DataFrame(schema={"customer_id": pl.String(), "account": pl.String()}),
        installments=pl.DataFrame(
            schema={
                "plan_id": pl.String(),
                "invoice_number": pl.String(),
                "installment_no": pl.Int64(),
                "due_date": pl.Date(),
                "amount_minor": pl.Int64(),
                "paid_minor": pl.Int64(),
            }
        ),
    )
    return snap, rows


def _payments(invoices: list[tuple], queued: int, rng: random.Random) -> ParsedFile:
    """`queued` payments that matching leaves in the queue, and one in ten that posts at once."""
    out = []
    posted = max(queued // 10, 1)
    for n in range(queued + posted):
        number, customer, _, _, currency, amount = invoices[rng.randrange(len(invoices))]
        payer = company(int(customer[1:]))
        if n < posted:
            remittance = f"Invoice {number}"
        else:
            roll = n % 4
            if roll == 0:  # names two invoices of the customer whose sum does not fit: suggestions
                other = invoices[rng.randrange(len(invoices))][0]
                remittance, amount = f"{number} {other}", amount + 777
            elif roll == 1:  # the payer is known, the amount fits nothing: unapplied cash
                remittance, amount = "payment, thank you", amount + 1_234
            elif roll == 2:  # a payment whose remittance names no invoice of the book
                remittance, amount = f"order PO-{n:06d}", amount + 4_321
            else:  # a stranger
                payer, remittance, amount = (
                    f"Unknown Payer {n}",
                    "transfer",
                    rng.randrange(100, 90_000),
                )
        day = DAY - timedelta(days=n % 9)
        out.append(
            {
                "source_ref": f"W{n:07d}",
                "booking_date": day,
                "value_date": None,
                "amount_minor": amount,
                "currency": currency,
                "counterparty_name": payer,
                "counterparty_account": None,
                "remittance": remittance,
            }
        )
    frame = pl.DataFrame(
        out, schema_overrides={"value_date": pl.Date(), "counterparty_account": pl.String()}
    )
    return ParsedFile("scale", [Statement(ACCOUNT, None, frames.conform(frame, frames.BANK_LINES))])


def build_book(
    engine: Engine,
    config: Config,
    *,
    customers: int,
    queued: int,
    invoices_per_customer: int = 3,
    seed: int = 11,
) -> ScaleBook:
    """Load the book into a migrated, empty database and run one posting run over the payments."""
    started = time.perf_counter()
    rng = random.Random(seed)
    snap, invoices = _snapshot(customers, invoices_per_customer, rng)
    with db.transaction(engine) as session:
        store_snapshot(session, snap, datetime(2026, 11, 1, 6, tzinfo=UTC))
    now = datetime.combine(DAY + timedelta(days=1), datetime.min.time(), tzinfo=UTC) + timedelta(
        hours=6
    )
    parsed = _payments(invoices, queued, rng)
    with db.transaction(engine) as session:
        store_parsed(session, Path("scale-payments.csv"), uuid.uuid4().hex, parsed, now)
    service.run_posting(engine, config=config, as_of=now.date(), now=now)
    from reconcile.queue import views

    waiting = views.count_items(engine, filters=views.QueueFilter(), as_of=now.date())
    return ScaleBook(
        customers,
        len(invoices),
        parsed.statements[0].lines.height,
        waiting,
        now.date(),
        time.perf_counter() - started,
    )
