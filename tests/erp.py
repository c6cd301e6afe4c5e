"""A small simulated receivables system (the ERP): the book of record reconcile runs against every day.

It issues invoices and credit notes, records its own receipts (cheques), cancels invoices, moves an invoice
between customers, imports reconcile's posting batches (CONTRACTS section 5) and writes full snapshots that
name the batches they include. Its rules for imported rows are those of a plain ERP: a payment row settles
what is open on the invoice and books the rest as unapplied cash on the customer's account; a reversal row
undoes exactly what its original row did. Written independently of reconcile's code: it reads only the
batch files.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path


def minor(text: str) -> int:
    return int((Decimal(text) * 100).to_integral_value())


def money(value: int) -> str:
    sign = "-" if value < 0 else ""
    return f"{sign}{abs(value) // 100}.{abs(value) % 100:02d}"


@dataclass
class Item:
    number: str
    customer: str
    issued: date
    due: date
    amount: int            # negative for a credit note
    open: int
    status: str = "open"   # open | cancelled


@dataclass
class Booked:
    """What the ERP did with one imported row: applied to an item, and kept as unapplied cash."""

    number: str | None
    customer: str
    applied: int
    on_account: int


class Erp:
    def __init__(self, customers: dict[str, str]) -> None:
        self.customers = dict(customers)
        self.items: dict[str, Item] = {}
        self.on_account: Counter[str] = Counter()
        self.imported: list[str] = []
        self.booked: dict[str, Booked] = {}

    # --- its own work ------------------------------------------------------------------------

    def issue(self, number: str, customer: str, issued: date, amount: int, days: int = 30) -> Item:
        item = Item(number, customer, issued, date.fromordinal(issued.toordinal() + days), amount, amount)
        self.items[number] = item
        return item

    def cheque(self, number: str) -> None:
        """A receipt the ERP records itself: the item is settled there."""
        self.items[number].open = 0

    def cancel(self, number: str) -> None:
        self.items[number].status = "cancelled"

    def move(self, number: str, customer: str) -> None:
        self.items[number].customer = customer

    def open_items(self) -> list[Item]:
        return [i for i in self.items.values() if i.status == "open" and i.open != 0]

    # --- reconcile's batches --------------------------------------------------------------------

    def import_batch(self, path: Path) -> None:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        for row in rows:
            self._book(row)
        self.imported.append(path.stem)

    def _book(self, row: dict[str, str]) -> None:
        amount, kind, customer = minor(row["amount"]), row["kind"], row["customer_id"]
        if kind == "reversal":
            done = self.booked[row["reverses_posting_id"]]
            if done.number is not None:
                self.items[done.number].open += done.applied
            self.on_account[done.customer] -= done.on_account
            self.booked[row["posting_id"]] = Booked(None, done.customer, 0, 0)
            return
        if kind in ("invoice", "installment"):
            item = self.items[row["invoice_number"]]
            if item.status == "open" and item.open != 0:
                applied = min(item.open, amount) if amount > 0 else max(item.open, amount)
            else:
                applied = 0
            item.open -= applied
            booked = Booked(item.number, customer, applied, amount - applied)
        elif kind == "on_account":
            booked = Booked(None, customer, 0, amount)
        else:  # a write-off is an expense beside an invoice row that settled the item in full
            booked = Booked(None, customer, 0, 0)
        self.on_account[customer] += booked.on_account
        self.booked[row["posting_id"]] = booked

    # --- what it hands over every morning --------------------------------------------------------

    def snapshot(self, folder: Path, day: date) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / "customers.csv").open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["customer_id", "name"])
            writer.writerows(sorted(self.customers.items()))
        with (folder / "invoices.csv").open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["invoice_number", "customer_id", "issue_date", "due_date", "currency", "amount",
                             "open_amount"])
            for i in sorted(self.open_items(), key=lambda i: i.number):
                writer.writerow([i.number, i.customer, i.issued, i.due, "EUR", money(i.amount), money(i.open)])
        taken = datetime.combine(day, time(5, 30), tzinfo=UTC).isoformat()
        lines = [f'taken_at = "{taken}"', 'kind = "full"']
        if self.imported:
            lines.append(f'includes_postings_through = "{self.imported[-1]}"')
        (folder / "snapshot.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return folder

    def balances(self) -> dict[str, tuple[int, int]]:
        """customer -> (open items, credit notes included; unapplied cash on account)."""
        out: dict[str, tuple[int, int]] = {}
        for customer in self.customers:
            items = sum(i.open for i in self.open_items() if i.customer == customer)
            out[customer] = (items, self.on_account[customer])
        return out
