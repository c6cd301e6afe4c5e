"""A larger, deterministic day of receivables and payments for process-level tests.

Most payments name their invoice (some pay two at once, some pay part, some
pay more); the rest name nothing and are queued. Written as the files a user
has: a snapshot folder and one generic CSV statement.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path

ACCOUNT = "NL91ABNA0417164300"


@dataclass
class BulkFiles:
    snapshot_dir: Path
    statement: Path
    lines: int


def _money(minor: int) -> str:
    sign = "-" if minor < 0 else ""
    return f"{sign}{abs(minor) // 100}.{abs(minor) % 100:02d}"


def write_bulk(folder: Path, customers: int = 300, lines: int = 3000, seed: int = 7) -> BulkFiles:
    rng = random.Random(seed)
    snapshot = folder / "ar"
    snapshot.mkdir(parents=True, exist_ok=True)
    invoices = []
    with (snapshot / "customers.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["customer_id", "name"])
        for c in range(customers):
            writer.writerow([f"C{c:05d}", f"Customer {c} Ltd"])
    for n in range(lines + lines // 4):
        customer = rng.randrange(customers)
        invoices.append((f"INV-{n + 100000}", f"C{customer:05d}", rng.randrange(1_000, 500_000)))
    with (snapshot / "invoices.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["invoice_number", "customer_id", "issue_date", "due_date", "currency", "amount",
                         "open_amount"])
        for number, customer, amount in invoices:
            day = rng.randrange(1, 28)
            writer.writerow([number, customer, f"2026-09-{day:02d}", f"2026-10-{day:02d}", "EUR",
                             _money(amount), _money(amount)])

    statement = folder / "statement.csv"
    with statement.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "booking_date", "value_date", "amount", "currency", "counterparty_name",
                         "counterparty_account", "remittance", "account", "reference"])
        for n in range(lines):
            number, customer, amount = invoices[rng.randrange(len(invoices))]
            kind = rng.random()
            if kind < 0.70:
                text = f"Invoice {number}"
            elif kind < 0.80:
                other = invoices[rng.randrange(len(invoices))]
                text, amount = f"{number} and {other[0]}", amount + other[2]
            elif kind < 0.88:
                text, amount = f"part payment {number}", amount // 2
            elif kind < 0.93:
                text, amount = f"{number} incl. next month", amount + 10_000
            else:
                text = "payment thank you"
            day = 1 + n * 20 // lines
            writer.writerow([f"B-{n:06d}", f"2026-11-{day:02d}", f"2026-11-{day:02d}", _money(amount), "EUR",
                             f"Customer {customer}", "", text, ACCOUNT, ""])
    return BulkFiles(snapshot, statement, lines)
