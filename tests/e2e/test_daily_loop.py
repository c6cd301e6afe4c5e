"""Ten business days against a simulated receivables system (CONTRACTS section 5), on SQLite and PostgreSQL.

Every morning the ERP takes a full snapshot naming the posting batches it has imported (one day behind),
reconcile loads it, ingests the day's bank statement, runs, a person clears the queue, and the evening's
batch is exported for the ERP to import the next day. Meanwhile the ERP issues invoices and a credit note,
records cheques (two of them for invoices reconcile had just posted payments to: `closed_elsewhere`),
cancels an invoice and moves an unpaid one to another customer. Once the ERP has imported every batch,
reconcile's balances equal the ERP's customer by customer, to the cent.
"""

from __future__ import annotations

import csv
import random
from datetime import date, timedelta
from pathlib import Path

import polars as pl
from sqlalchemy import Engine, func, select

from reconcile.collectors.balances import balances
from reconcile.config import load_config
from reconcile.ledger.batches import export_postings
from reconcile.parsers.base import ParseOptions
from reconcile.queue.actions import Decision, resolve
from reconcile.services import daily as service
from reconcile.services import ledger
from reconcile.store import db, tables
from tests.builders import NOW
from tests.erp import Erp, money

CONFIG = load_config(Path(__file__).resolve().parents[2] / "config")
FIRST_DAY = date(2026, 3, 2)
CUSTOMERS = {f"C{n:02d}": name for n, name in enumerate([
    "Acme Trading GmbH", "Brick & Mortar BV", "Cedar Logistics Ltd", "Delta Foods SA", "Elm Software Oy",
    "Fjord Shipping AS", "Granite Works Inc", "Harbour Retail SpA", "Iris Textiles SARL", "Juniper Health AG",
    "Kestrel Media Ltd", "Lumen Optics BV"], start=1)}


def _business_days(count: int) -> list[date]:
    days, day = [], FIRST_DAY
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


class Loop:
    """One team running reconcile against the ERP: the days' steps and the people's decisions."""

    def __init__(self, engine: Engine, folder: Path) -> None:
        self.engine, self.folder = engine, folder
        self.rng = random.Random(20260302)
        self.erp = Erp(CUSTOMERS)
        self.sequence = 0
        self.bank_paid: set[str] = set()      # invoices a bank payment already went to (or will)
        self.owner: dict[str, str] = {}       # bank reference -> the customer who paid
        self.batch: Path | None = None        # last evening's batch, imported by the ERP the next day
        self.closed_elsewhere: list[int] = []
        self.history: dict[date, pl.DataFrame] = {}
        for customer in CUSTOMERS:
            for k in range(3):
                self._invoice(customer, FIRST_DAY - timedelta(days=20 - 3 * k))

    def _invoice(self, customer: str, issued: date) -> str:
        self.sequence += 1
        number = f"INV-{self.sequence:04d}"
        self.erp.issue(number, customer, issued, self.rng.randrange(100, 2000) * 100 + self.rng.choice([0, 50, 99]))
        return number

    def _unpaid(self) -> list[str]:
        return sorted(i.number for i in self.erp.open_items() if i.amount > 0 and i.number not in self.bank_paid)

    # --- one business day ----------------------------------------------------------------------

    def morning(self, n: int, day: date) -> None:
        """The ERP's own work before it takes the day's snapshot."""
        for _ in range(2):
            self._invoice(self.rng.choice(sorted(CUSTOMERS)), day)
        if n == 2:
            self.erp.issue("CN-0001", "C03", day, -5000, days=0)
        if n == 3:
            self.erp.cancel(self._unpaid()[-1])
        if n == 4:
            moved = next(i for i in self._unpaid() if self.erp.items[i].customer == "C05")
            self.erp.move(moved, "C06")
            self.moved = moved
        if n == 5:
            self.erp.cheque(self._unpaid()[0])            # a receipt the ERP records on its own
        if n in (4, 7):
            self.erp.cheque(self.conflict)                # ...for an invoice reconcile posted a payment to yesterday
        if n == 8:
            self.duplicate = self._unpaid()[1]
            self.erp.cheque(self.duplicate)               # paid by cheque, and by bank the same day

    def statement(self, n: int, day: date) -> Path:
        """The day's bank statement: payments by reference, a partial one, an overpayment, an unknown payer."""
        unpaid = self._unpaid()
        self.rng.shuffle(unpaid)
        rows: list[tuple[str, str, int, str]] = []   # (ref, invoice or "", amount, remittance)

        def pay(invoice: str, amount: int, remittance: str | None = None) -> None:
            ref = f"D{n:02d}-{len(rows) + 1:02d}"
            rows.append((ref, invoice, amount, remittance if remittance is not None else f"Invoice {invoice}"))
            self.owner[ref] = self.erp.items[invoice].customer
            self.bank_paid.add(invoice)

        for invoice in unpaid[:3]:
            pay(invoice, self.erp.items[invoice].open)
        partial = unpaid[3]
        pay(partial, self.erp.items[partial].open * 6 // 10)
        over = unpaid[4]
        pay(over, self.erp.items[over].open + 1000)
        unknown = unpaid[5]
        pay(unknown, 12345, remittance="thank you")       # no reference, a payer nobody knows
        self.bank_paid.discard(unknown)
        if n in (3, 6):
            self.conflict = unpaid[6]
            pay(self.conflict, self.erp.items[self.conflict].open)
        if n == 8:
            pay(self.duplicate, self.erp.items[self.duplicate].amount)
        path = self.folder / f"bank-{day}.csv"
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["id", "booking_date", "value_date", "amount", "currency", "counterparty_name",
                             "counterparty_account", "remittance"])
            for ref, invoice, amount, remittance in rows:
                payer = "J. Nobody" if remittance == "thank you" else CUSTOMERS[self.owner[ref]]
                writer.writerow([ref, day, day, money(amount), "EUR", payer, "", remittance])
        return path

    def clear_queue(self, day: date) -> None:
        """A person works the queue: overtaken postings as the day's script says, the rest on account."""
        now = NOW.replace(year=day.year, month=day.month, day=day.day)
        ex, bl = tables.ExceptionItem, tables.BankLine
        with db.transaction(self.engine) as session:
            items = session.execute(select(ex.id, ex.reason, bl.source_ref).join(bl, bl.id == ex.bank_line_id)
                                    .where(ex.status == "open").order_by(ex.id)).all()
        for item_id, reason, ref in items:
            if reason == "closed_elsewhere":
                self.closed_elsewhere.append(item_id)
                action = "on_account" if len(self.closed_elsewhere) == 1 else "unapply"
                resolve(self.engine, item_id, Decision(action, customer=self.owner[ref]), actor="alice", now=now,
                        config=CONFIG.queue)
            else:
                resolve(self.engine, item_id, Decision("on_account", customer=self.owner[ref]), actor="alice",
                        now=now, config=CONFIG.queue)
        # an unapplied posting comes back to the queue at once: it is decided the same day
        with db.transaction(self.engine) as session:
            again = session.execute(select(ex.id, bl.source_ref).join(bl, bl.id == ex.bank_line_id)
                                    .where(ex.status == "open")).all()
        for item_id, ref in again:
            resolve(self.engine, item_id, Decision("on_account", customer=self.owner[ref]), actor="alice", now=now,
                    config=CONFIG.queue)

    def day(self, n: int, day: date) -> None:
        self.morning(n, day)
        snapshot = self.erp.snapshot(self.folder / f"ar-{day}", day)
        service.load_ar(self.engine, snapshot)
        if self.batch is not None:                 # the ERP imports yesterday's batch after its snapshot
            self.erp.import_batch(self.batch)
        service.ingest_file(self.engine, self.statement(n, day), ParseOptions.builtin(), account="NL01BANK0001")
        summary = service.run_posting(self.engine, config=CONFIG, as_of=day)
        assert summary.status == "completed", summary.violations
        self.clear_queue(day)
        assert ledger.check(self.engine) == [], day
        made = export_postings(self.engine, self.folder / "outbox", actor="evening-export", now=NOW)
        self.batch = Path(made.path) if made.path else None
        self.history[day] = balances(self.engine, day)


def _reconcile_balances(engine: Engine, day: date) -> dict[str, tuple[int, int]]:
    frame = balances(engine, day)
    return {r["customer_id"]: (r["open"], r["on_account"]) for r in frame.iter_rows(named=True)}


def test_ten_business_days_against_the_receivables_system(engine: Engine, tmp_path: Path) -> None:
    loop = Loop(engine, tmp_path)
    days = _business_days(11)
    for n, day in enumerate(days[:10], start=1):
        loop.day(n, day)

    # the last evening's batch is imported, and the final morning's snapshot includes every batch
    assert loop.batch is not None
    loop.erp.import_batch(loop.batch)
    service.load_ar(engine, loop.erp.snapshot(tmp_path / "ar-final", days[10]))

    erp = {c: v for c, v in loop.erp.balances().items() if v != (0, 0)}
    ours = {c: v for c, v in _reconcile_balances(engine, days[10]).items() if v != (0, 0)}
    assert ours == erp

    # the two postings the ERP overtook reached a person, who kept one on account and unapplied the other
    with db.transaction(engine) as session:
        ex = tables.ExceptionItem
        answered = session.execute(select(ex.resolution).where(ex.reason == "closed_elsewhere")
                                   .order_by(ex.id)).scalars().all()
        assert answered == ["on_account", "unapply"]
        # nothing was posted twice: one active posting per posted line, never two
        p = tables.Posting
        active = session.execute(select(p.bank_line_id, func.count()).where(p.reversed_at.is_(None))
                                 .group_by(p.bank_line_id).having(func.count() > 1)).all()
        assert active == []
        # every batch row went to the ERP exactly once
        batched = session.execute(select(func.count()).select_from(tables.Allocation)
                                  .where(tables.Allocation.batch_seq.is_(None))).scalar_one()
        assert batched == 0
    assert ledger.check(engine) == []
    # the invoice moved between customers while unpaid is the new customer's
    assert loop.erp.items[loop.moved].customer == "C06"
    # a past day reads as it did that day
    for day, frame in loop.history.items():
        assert balances(engine, day).equals(frame), day
