"""Benchmark data for the matcher: receivables snapshot, bank statements and the true allocations.

Run: python bench/matching/generate.py OUT --customers 200 [--seed 1]

Writes OUT/ar/ (customers, invoices, installments .csv: CONTRACTS §1), OUT/statements/
(CAMT.053, OFX SGML and generic CSV over five business days, with overlapping files, and the remittance
advices that arrive apart from their payments, as generic-advice CSV), OUT/truth.csv
(one row per expected allocation) and OUT/truth_lines.csv (one row per bank line: scenario, variant,
should_post). Deterministic for a given seed. Scenarios and their shares are listed in SCENARIOS;
README.md explains them. Money is integer minor units throughout; nothing here uses floats for amounts.
"""

from __future__ import annotations

import argparse
import bisect
import csv
import math
import random
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from names import COUNTRIES, PEOPLE, SUPPLIERS, fold, make_name, variant

AS_OF = date(2026, 11, 20)                           # snapshot date (a Friday)
DAYS = [AS_OF + timedelta(days=d) for d in (3, 4, 5, 6, 7)]  # Mon..Fri after it
CAMT_ACCOUNT, CSV_ACCOUNT, OFX_ACCOUNT = "DE89370400440532013000", "NL91ABNA0417164300", "4012345678"
LINES_PER_INVOICE = 0.40                             # bank lines over the period per open invoice
DEBIT_SHARE = 0.12
FEE_TOLERANCE = 100                                  # minor units: a deducted bank fee is at most 1.00
DISCOUNT_PERCENT = 2

# scenario: (share of credit lines, should_post). Most payments are exact or lightly mangled, as in real AR.
SCENARIOS: dict[str, tuple[float, bool]] = {
    "exact": (0.496, True),        # 0.52 before the advice_* scenarios took their share from it
    "rf_reference": (0.14, True),
    "mangled_reference": (0.07, True),
    "known_account": (0.05, True),
    "name_variant": (0.035, True),
    "multi_listed": (0.03, True),
    "multi_unlisted": (0.01, True),
    "partial": (0.015, True),
    "installments": (0.015, True),
    "bank_fee": (0.012, True),
    "discount": (0.012, True),
    "overpayment": (0.01, True),
    "parent_pays": (0.008, True),
    "group_pays": (0.006, True),
    "credit_note": (0.012, True),
    "several_payers": (0.012, True),
    "namesake": (0.01, True),      # variant fits_both must not post (should_post set per line)
    "same_amount": (0.006, False),
    "unknown_payer": (0.015, False),
    "non_receivable": (0.02, False),
    "returned": (0.005, False),
    # remittance advices that arrive apart from the payment (a generic-advice CSV in OUT/statements)
    "advice_listed": (0.01, True),
    "advice_deduction": (0.008, True),  # variant above_limit must not post (should_post set per line)
    "advice_name_only": (0.006, True),
}
# The advice scenarios are made after every other line, from a random stream of their own, each in place of
# an exact payment (same day and statement, so every other line keeps its data and source ref for a seed).
ADVICE_SCENARIOS = ("advice_listed", "advice_deduction", "advice_name_only")
ADVICE_REASONS = ["DAMAGED", "PROMO", "SHORTAGE", "PRICING", "RETURN", "FREIGHT", "COOP"]
ADVICE_TEXTS = {  # the bank text of a payment with an advice: the advice's payment reference, nothing else
    "EUR": ["PAYMENT ADV {r}", "Zahlungsavis {r}", "Avis de paiement {r}", "REMITTANCE {r}", "ADV {r} see advice",
            "Pagamento distinta {r}"],
    "USD": ["ACH CTX {r}", "CCD+ {r}", "ACH CTX PAYREF {r}", "EFT PAYMENT {r}", "CHECK {r}"],
}
ADVICE_LIMIT = 5000        # minor units: config/reconcile.toml [queue] write_off_approval_limit, 50.00
MANGLE_KINDS = ["separators", "case", "leading_zeros", "no_prefix", "ocr", "transposition", "split", "truncated"]
NAME_KINDS = ["suffix", "umlaut", "word_order", "abbreviation", "typo", "truncate32", "truncate35",
              "truncate70", "alias"]

EXACT_TEMPLATES = {
    "EN": ["Invoice {n}", "Payment of invoice {n}", "INV {n} thank you", "{n}", "Settlement {n}",
           "Inv. {n} PO {po}"],
    "DE": ["Rechnung {n}", "RE-Nr. {n} vom {d}", "Rg. {n} Kd.Nr. {c}", "{n} Zahlung"],
    "FR": ["Facture {n}", "Règlement facture {n}", "FACT {n} DU {d}"],
    "IT": ["Fattura n. {n}", "Saldo fattura {n}", "Bonifico fatt. {n}"],
    "ES": ["Factura {n}", "Pago factura {n}"],
    "NL": ["Factuur {n}", "Betaling factuur {n}"],
    "PL": ["Faktura {n}", "Zapłata za FV {n}"],
    "NORDIC": ["Faktura {n}", "Betalning {n}", "Lasku {n}"],
}
LANGUAGE = {"DE": "DE", "AT": "DE", "CH": "DE", "FR": "FR", "BE": "NL", "NL": "NL", "IT": "IT", "ES": "ES",
            "PT": "ES", "PL": "PL", "SE": "NORDIC", "DK": "NORDIC", "NO": "NORDIC", "FI": "NORDIC"}
INTERMEDIARIES = ["WISE EUROPE SA", "PAYPAL (EUROPE) S.A R.L. ET CIE", "REVOLUT LTD", "SEPA UEBERWEISUNG", ""]
NO_REF_TEXTS = ["PAYMENT", "Zahlung", "Paiement fournisseur", "Overboeking", "", "Monthly payment",
                "Pago proveedor", "Pagamento", "Betalning", "TRANSFER", "Rechnungsausgleich", "Settlement of account"]
NON_RECEIVABLE = [
    ("interest", "{bank}", "Credit interest Q4 2026"), ("interest", "{bank}", "Habenzinsen 01.10.-31.10.2026"),
    ("supplier_refund", "{supplier}", "Refund credit note CN-{k}"),
    ("supplier_refund", "{supplier}", "Gutschrift Retoure {k}"),
    ("card_settlement", "ADYEN N.V.", "Settlement batch {k} merchant 4711"),
    ("card_settlement", "STRIPE PAYMENTS EUROPE LTD", "STRIPE PAYOUT po_{k}"),
    ("tax_refund", "FINANZAMT MUENCHEN", "Erstattung USt 10/2026 StNr {k}"),
]
DEBITS = [("{supplier}", "Invoice {k} supplier payment"), ("BANK", "Account maintenance fee"),
          ("TAX OFFICE", "VAT return Q3"), ("SALARY RUN", "Salaries November"),
          ("{supplier}", "Direct debit mandate M-{k}")]


@dataclass
class Customer:
    cid: str
    name: str
    core: str
    form: str
    country: str
    currency: str
    aliases: list[str] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)
    parent: int | None = None
    invoices: list[int] = field(default_factory=list)
    subscription: bool = False
    has_plan: bool = False
    name_safe: bool = False
    series: str = "INV"         # INV-2026-001234, or FA26/01234 (a second invoicing system, "/" inside)
    twin: int | None = None      # another customer with the same name (a namesake)
    treasury: str = ""          # a group's account that pays for every member (on file for each of them)


@dataclass
class Line:
    day: int
    channel: str               # camt | csv | ofx
    amount: int                # signed minor units
    currency: str
    name: str
    account: str
    remittance: list[str]      # unstructured lines (35-char chunks when split)
    scenario: str
    variant: str
    should_post: bool
    reference: str = ""        # structured creditor reference
    e2e: str = ""
    bank_code: str = ""
    truth: list[tuple] = field(default_factory=list)  # (customer_id, invoice_number, installment_no, kind, amount)
    source_ref: str = ""
    candidates: list[str] = field(default_factory=list)  # a line that must not post: what a person picks from


def rf_reference(base: str) -> str:
    """ISO 11649 creditor reference for `base` with valid check digits."""
    digits = "".join(str(int(ch, 36)) for ch in (base + "RF00").upper())
    return f"RF{98 - int(digits) % 97:02d}{base}"


def iban(rng: random.Random, country: str) -> str:
    lengths = {"DE": 22, "AT": 20, "CH": 21, "FR": 27, "BE": 16, "NL": 18, "IT": 27, "ES": 24, "PT": 25,
               "PL": 28, "CZ": 24, "SE": 24, "DK": 18, "NO": 15, "FI": 18, "GR": 27, "TR": 26, "GB": 22}
    if country not in lengths:  # US / JP: a plain account number
        return "".join(rng.choice("0123456789") for _ in range(10))
    n = lengths[country] - 4
    letters = 4 if country in ("NL", "GB") else 0
    bban = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(letters)) + \
        "".join(rng.choice("0123456789") for _ in range(n - letters))
    digits = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    return f"{country}{98 - int(digits) % 97:02d}{bban}"


def money(minor: int) -> str:
    sign = "-" if minor < 0 else ""
    minor = abs(minor)
    return f"{sign}{minor // 100}.{minor % 100:02d}"


def subset_sums(values: np.ndarray) -> np.ndarray:
    sums = np.zeros(1, dtype=np.int64)
    for v in values:
        sums = np.concatenate([sums, sums + v])
    return sums


def fits(values: list[int], lo: int, hi: int) -> int:
    """How many non-empty subsets of `values` sum into [lo, hi] (meet in the middle)."""
    arr = np.asarray(values, dtype=np.int64)
    left, right = subset_sums(arr[: len(arr) // 2]), np.sort(subset_sums(arr[len(arr) // 2:]))
    count = np.searchsorted(right, hi - left, side="right") - np.searchsorted(right, lo - left, side="left")
    return int(count.sum()) - (1 if lo <= 0 <= hi else 0)


class World:
    """The snapshot and the statement lines being generated."""

    def __init__(self, customers: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.advices: list[dict] = []  # remittance advices: payment reference, date, amount, payer, rows
        self.advice_refs: set[str] = set()
        self.customers: list[Customer] = []
        self.inv_number: list[str] = []
        self.inv_customer: list[int] = []
        self.inv_issue: list[date] = []
        self.inv_amount: list[int] = []
        self.inv_open: list[int] = []
        self.inv_payref: list[str] = []
        self.inv_discount: list[bool] = []
        self.inv_plan: list[bool] = []
        self.used: list[bool] = []
        self.plans: dict[int, list[list]] = {}  # invoice -> [[no, due, amount, paid], ...]
        self.lines: list[Line] = []
        self.number_index: set[str] = set()
        self._make_customers(customers)
        self._make_invoices()

    # ---- snapshot ---------------------------------------------------------------------------------
    def _make_customers(self, n: int) -> None:
        rng = self.rng
        countries = list(COUNTRIES)
        weights = [COUNTRIES[c][0] for c in countries]
        seen: set[str] = set()
        by_country: dict[str, list[int]] = {}
        for i in range(n):
            country = rng.choices(countries, weights)[0]
            name, core, form = make_name(rng, country)
            places = COUNTRIES[country][5]
            tries = 0
            while fold(core) in seen:
                tries += 1
                core = f"{core} {rng.choice(places)}" if tries < 3 else f"{core} {tries}"
                name = f"{core} {form}"
            twin = None
            same_country = by_country.setdefault(country, [])
            if same_country and rng.random() < 0.04:  # a namesake: the same name, another company
                twin = rng.choice(same_country)
                other = self.customers[twin]
                if other.twin is None:
                    core, form = other.core, rng.choice([f for f in [form, other.form] if f])
                    name = f"{core} {form}"
                else:
                    twin = None
            same_country.append(i)
            seen.add(fold(core))
            accounts = [iban(rng, country) for _ in range(1 if rng.random() < 0.8 else 2)]
            c = Customer(f"C{i + 1:06d}", name, core, form, country, COUNTRIES[country][1], accounts=accounts)
            c.series = "FA" if rng.random() < 0.15 else "INV"
            if twin is not None:
                c.twin, self.customers[twin].twin = twin, i
            if rng.random() < 0.12:
                c.aliases.append(f"{core.split()[0]} {rng.choice(COUNTRIES[country][4])}")
            self.customers.append(c)
        # groups: a parent company pays some of its subsidiaries' invoices
        for c in self.customers:
            if rng.random() < 0.05:
                parent = rng.randrange(n)
                if self.customers[parent] is not c and self.customers[parent].currency == c.currency \
                        and self.customers[parent].parent is None:
                    c.parent = parent
                    if rng.random() < 0.5:
                        c.aliases.append(self.customers[parent].name)
        # half the groups pay through one treasury account, on file for the parent and every subsidiary
        for c in self.customers:
            if c.parent is not None:
                parent = self.customers[c.parent]
                if not parent.treasury and rng.random() < 0.5:
                    parent.treasury = iban(rng, parent.country)
                    parent.accounts.append(parent.treasury)
                if parent.treasury:
                    c.treasury = parent.treasury
                    c.accounts.append(parent.treasury)
        # a name is safe for name-only matching when no other customer's name holds all its core words
        by_token: dict[str, set[int]] = {}
        tokens = [set(fold(c.core).replace("&", " ").split()) for c in self.customers]
        for i, toks in enumerate(tokens):
            for t in toks:
                by_token.setdefault(t, set()).add(i)
        for i, toks in enumerate(tokens):
            others = set.intersection(*(by_token[t] for t in toks)) if toks else set()
            self.customers[i].name_safe = others == {i}
        self.folded_names = sorted(fold(c.name) for c in self.customers)

    def _make_invoices(self) -> None:
        rng = self.rng
        drafts = []
        for ci, c in enumerate(self.customers):
            count = min(40, 1 + int(rng.expovariate(1 / 9.5)))
            c.subscription = rng.random() < 0.04 and count >= 3
            recurring = int(math.exp(rng.gauss(6.5, 0.8)) * 100) + rng.randrange(100)
            for k in range(count):
                issued = AS_OF - timedelta(days=int(rng.triangular(1, 150, 20)))
                amount = recurring if c.subscription and k < 3 else \
                    max(2000, min(25_000_000, int(math.exp(rng.gauss(7.0, 1.1)) * 100) + rng.randrange(100)))
                drafts.append((issued, ci, amount))
        drafts.sort(key=lambda d: d[0])
        seq: dict[tuple[str, int], int] = {}
        for issued, ci, amount in drafts:
            series = self.customers[ci].series
            seq[(series, issued.year)] = seq.get((series, issued.year), 0) + 1
            n = seq[(series, issued.year)]
            number = f"INV-{issued.year}-{n:06d}" if series == "INV" else f"FA{issued.year % 100:02d}/{n:05d}"
            index = len(self.inv_number)
            self.inv_number.append(number)
            self.number_index.add(number)
            self.inv_customer.append(ci)
            self.inv_issue.append(issued)
            self.inv_amount.append(amount)
            roll = rng.random()
            open_amount = amount if roll > 0.07 else amount - rng.randrange(1, amount // 2 + 2)
            self.inv_open.append(open_amount)
            c = self.customers[ci]
            ref = ""
            if c.currency == "EUR" and rng.random() < 0.35:
                ref = rf_reference(f"{c.cid[1:]}{index:07d}")
            self.inv_payref.append(ref)
            self.inv_discount.append(amount == open_amount and (AS_OF - issued).days <= 6 and rng.random() < 0.6)
            plan = amount > 300_000 and amount == open_amount and rng.random() < 0.15 and not c.subscription
            self.inv_plan.append(plan)
            self.used.append(False)
            c.invoices.append(index)
            if plan:
                c.has_plan = True
                parts = rng.randint(3, 6)
                each = amount // parts
                paid = rng.randint(0, min(2, parts - 2))
                due = issued + timedelta(days=30)
                rows = []
                for no in range(1, parts + 1):
                    share = each if no < parts else amount - each * (parts - 1)
                    rows.append([no, due + timedelta(days=30 * (no - 1)), share, share if no <= paid else 0])
                self.plans[index] = rows
                self.inv_open[index] = amount - sum(r[3] for r in rows)
        self._make_credit_notes()

    def _make_credit_notes(self) -> None:
        """A credit note (negative amount, open) for some customers: a return, a price correction."""
        rng = self.rng
        k = 0
        for ci, c in enumerate(self.customers):
            if rng.random() >= 0.05 or c.subscription or len(c.invoices) < 2:
                continue
            k += 1
            amount = -(rng.randrange(2000, 40000))
            issued = AS_OF - timedelta(days=rng.randrange(3, 40))
            index = len(self.inv_number)
            number = f"CN-{issued.year}-{k:05d}"
            self.inv_number.append(number)
            self.number_index.add(number)
            self.inv_customer.append(ci)
            self.inv_issue.append(issued)
            self.inv_amount.append(amount)
            self.inv_open.append(amount)
            self.inv_payref.append("")
            self.inv_discount.append(False)
            self.inv_plan.append(False)
            self.used.append(False)
            c.invoices.append(index)

    def open_items(self, ci: int) -> list[int]:
        """Open invoices without a plan (credit notes excluded)."""
        return [i for i in self.customers[ci].invoices if self.inv_open[i] > 0 and not self.inv_plan[i]]

    def credit_notes(self, ci: int) -> list[int]:
        return [i for i in self.customers[ci].invoices if self.inv_open[i] < 0]

    # ---- picking ----------------------------------------------------------------------------------
    def pick_invoice(self, ok=lambda i: True) -> int | None:
        rng, n = self.rng, len(self.inv_number)
        for _ in range(200):
            i = rng.randrange(n)
            if not self.used[i] and not self.inv_plan[i] and self.inv_open[i] > 0 and ok(i):
                self.used[i] = True
                return i
        return None

    def pick_customer(self, ok) -> int | None:
        for _ in range(300):
            ci = self.rng.randrange(len(self.customers))
            if ok(self.customers[ci]):
                return ci
        return None

    def unique_fit(self, ci: int, amount: int) -> bool:
        """Exactly one subset of the customer's open items fits `amount`, allowing for fee or discount."""
        values = [self.inv_open[i] for i in self.open_items(ci) + self.credit_notes(ci)]
        if len(values) > 30:
            return False
        near = fits(values, amount, amount + FEE_TOLERANCE)
        gross = amount * 100 // (100 - DISCOUNT_PERCENT)
        return near == 1 and fits(values, gross - 2, gross + 2) == 0

    # ---- lines ------------------------------------------------------------------------------------
    def channel(self, c: Customer, camt_only: bool = False) -> str:
        if c.currency == "USD":
            return "ofx"
        return "camt" if camt_only or self.rng.random() < 0.7 else "csv"

    def payer(self, c: Customer, with_account: bool = True) -> tuple[str, str]:
        rng = self.rng
        name = c.name if rng.random() < 0.5 else fold(c.name)
        account = rng.choice(c.accounts) if with_account and rng.random() < 0.9 else ""
        return name, account

    def text(self, c: Customer, number: str) -> str:
        rng = self.rng
        lang = LANGUAGE.get(c.country, "EN") if rng.random() < 0.7 else "EN"
        template = rng.choice(EXACT_TEMPLATES[lang])
        return template.format(n=number, po=f"45{rng.randrange(10**8):08d}", c=c.cid,
                               d=(AS_OF - timedelta(days=rng.randrange(5, 60))).strftime("%d.%m.%Y"))

    def add(self, c: Customer | None, scenario: str, variant_: str, amount: int, currency: str, name: str,
            account: str, remittance: list[str] | str, truth: list[tuple], *, channel: str | None = None,
            reference: str = "", e2e: str = "", day: int | None = None, bank_code: str = "") -> Line:
        rng = self.rng
        if isinstance(remittance, str):
            remittance = [remittance] if remittance else []
        if not e2e and channel in (None, "camt") and rng.random() < 0.4:
            e2e = f"E2E{rng.randrange(16**10):010X}"
        line = Line(
            day=rng.randrange(len(DAYS)) if day is None else day,
            channel=channel or (self.channel(c) if c else rng.choice(["camt", "camt", "csv"])),
            amount=amount, currency=currency, name=name, account=account, remittance=remittance,
            scenario=scenario, variant=variant_, should_post=SCENARIOS.get(scenario, (0, False))[1],
            reference=reference, e2e=e2e, truth=truth,
            bank_code=bank_code or ("PMNT/RCDT/ESCT" if amount > 0 else "PMNT/ICDT/ESCT"),
        )
        self.lines.append(line)
        return line

    def inv_row(self, i: int, amount: int | None = None, kind: str = "invoice") -> tuple:
        c = self.customers[self.inv_customer[i]]
        return (c.cid, self.inv_number[i], "", kind, self.inv_open[i] if amount is None else amount)

    def one_invoice(self, scenario: str, ok=lambda i: True) -> tuple[int, Customer] | None:
        i = self.pick_invoice(ok)
        return None if i is None else (i, self.customers[self.inv_customer[i]])

    def gen_exact(self) -> bool:
        got = self.one_invoice("exact")
        if not got:
            return False
        i, c = got
        name, account = self.payer(c)
        number = self.inv_number[i]
        if c.currency == "EUR" and self.rng.random() < 0.05:  # the payer's system puts the number in EndToEndId
            self.add(c, "exact", "end_to_end_id", self.inv_open[i], c.currency, name, account,
                     self.rng.choice(NO_REF_TEXTS), [self.inv_row(i)], channel="camt", e2e=number)
            return True
        self.add(c, "exact", "text", self.inv_open[i], c.currency, name, account, self.text(c, number),
                 [self.inv_row(i)])
        return True

    def gen_rf_reference(self) -> bool:
        got = self.one_invoice("rf", lambda i: bool(self.inv_payref[i]))
        if not got:
            return False
        i, c = got
        name, account = self.payer(c)
        ref = self.inv_payref[i]
        if self.rng.random() < 0.7:
            self.add(c, "rf_reference", "structured", self.inv_open[i], c.currency, name, account, "",
                     [self.inv_row(i)], reference=ref)
        else:  # typed into the free text, grouped in fours as printed on the invoice
            grouped = " ".join(ref[k:k + 4] for k in range(0, len(ref), 4))
            self.add(c, "rf_reference", "in_text", self.inv_open[i], c.currency, name, account,
                     f"{grouped}", [self.inv_row(i)])
        return True

    def mangle(self, number: str, kind: str) -> list[str] | None:
        rng = self.rng
        prefix, year, seq = re.fullmatch(r"([A-Z]+)-?([0-9]+)[-/]([0-9]+)", number).groups()
        style = "{p}-{y}-{s}" if "-" in number[len(prefix):] else "{p}{y}/{s}"
        if kind == "separators":
            return [rng.choice(["{p} {y} {s}", "{p}{y}{s}", "{p}/{y}/{s}", "{p}.{y}.{s}", "{p}-{y}{s}",
                                "{p} - {y} - {s}"]).format(p=prefix, y=year, s=seq)]
        if kind == "case":
            return [rng.choice([number.lower(), prefix.capitalize() + number[len(prefix):]])]
        if kind == "leading_zeros":
            return [style.format(p=prefix, y=year, s=int(seq))] if seq.startswith("0") else None
        if kind == "no_prefix":
            return [rng.choice([f"{year}-{seq}", f"{year}{seq}", f"{year}/{seq}"])]
        if kind == "ocr":
            confusable = {"0": "O", "1": "I", "5": "S", "8": "B"}
            spots = [k for k, ch in enumerate(number) if ch in confusable]
            if not spots:
                return None
            chars = list(number)
            for k in rng.sample(spots, min(len(spots), rng.choice([1, 1, 2]))):
                chars[k] = confusable[chars[k]]
            return ["".join(chars)]
        if kind == "transposition":
            spots = [k for k in range(len(seq) - 1) if seq[k] != seq[k + 1]]
            rng.shuffle(spots)
            for k in spots:
                new = seq[:k] + seq[k + 1] + seq[k] + seq[k + 2:]
                candidate = style.format(p=prefix, y=year, s=new)
                if candidate not in self.number_index:
                    return [candidate]
            return None
        if kind == "split":  # a number across the bank's 35-character remittance lines
            lead = rng.choice(["Payment for goods delivered, ", "Zahlung fuer Lieferung laut ",
                               "Reglement de la livraison selon "])
            cut = rng.randrange(3, len(number) - 2)
            lead = (lead * 3)[: 35 - cut]
            text = lead + number + " thank you"
            return [text[k:k + 35] for k in range(0, len(text), 35)]
        if kind == "truncated":
            lead = rng.choice(["Invoice ", "Rechnung Nr. ", "Facture no "])
            keep = len(number) - rng.choice([1, 2])
            if number[:keep] in self.number_index:  # cut off, it is another invoice's number: nobody can tell
                return None
            text = (lead + number)[: len(lead) + keep]
            return [text]
        raise ValueError(kind)

    def gen_mangled_reference(self) -> bool:
        kind = self.rng.choice(MANGLE_KINDS)
        got = self.one_invoice("mangled")
        if not got:
            return False
        i, c = got
        remittance = self.mangle(self.inv_number[i], kind)
        if remittance is None:
            self.used[i] = False
            return False
        if kind not in ("split", "truncated"):
            remittance = [self.text(c, remittance[0])]
        name, account = self.payer(c)
        if self.rng.random() < 0.5:  # sent through a payment service or by a person: only the reference says who
            name = self.rng.choice(INTERMEDIARIES + PEOPLE)
            account = "" if self.rng.random() < 0.5 else iban(self.rng, c.country)
        self.add(c, "mangled_reference", kind, self.inv_open[i], c.currency, name, account, remittance,
                 [self.inv_row(i)])
        return True

    def no_ref_customer(self, extra=lambda c: True) -> int | None:
        return self.pick_customer(lambda c: not c.subscription and not c.has_plan and c.currency == "EUR"
                                  and extra(c))

    def single_unique(self, ci: int) -> int | None:
        items = [i for i in self.open_items(ci) if not self.used[i]]
        self.rng.shuffle(items)
        for i in items[:3]:
            if self.unique_fit(ci, self.inv_open[i]):
                self.used[i] = True
                return i
        return None

    def gen_known_account(self) -> bool:
        ci = self.no_ref_customer()
        i = None if ci is None else self.single_unique(ci)
        if i is None:
            return False
        c = self.customers[ci]
        name = c.name if self.rng.random() < 0.5 else variant(self.rng, c.name, c.core, c.form, "suffix")
        self.add(c, "known_account", "account", self.inv_open[i], c.currency, name,
                 self.rng.choice(c.accounts), self.rng.choice(NO_REF_TEXTS), [self.inv_row(i)])
        return True

    def gen_name_variant(self) -> bool:
        kind = self.rng.choice(NAME_KINDS)
        if kind == "alias":
            ci = self.no_ref_customer(lambda c: bool(c.aliases) and c.parent is None)
        else:
            ci = self.no_ref_customer(lambda c: c.name_safe)
        if ci is None:
            return False
        c = self.customers[ci]
        if kind == "alias":
            name = self.rng.choice(c.aliases)
        else:
            if kind.startswith("truncate") and len(fold(c.name)) <= int(kind[8:]):
                return False
            name = variant(self.rng, c.name, c.core, c.form, kind)
            if kind.startswith("truncate") and self.prefix_count(name) != 1:
                return False
        i = self.single_unique(ci)
        if i is None:
            return False
        account = "" if self.rng.random() < 0.4 else iban(self.rng, c.country)  # a new, unknown account
        self.add(c, "name_variant", kind, self.inv_open[i], c.currency, name, account,
                 self.rng.choice(NO_REF_TEXTS), [self.inv_row(i)])
        return True

    def prefix_count(self, prefix: str) -> int:
        lo = bisect.bisect_left(self.folded_names, prefix)
        hi = bisect.bisect_left(self.folded_names, prefix + "\uffff")
        return hi - lo

    def gen_multi(self, listed: bool) -> bool:
        rng = self.rng
        if listed:
            ci = self.pick_customer(lambda c: len(c.invoices) >= 3)
        else:
            ci = self.no_ref_customer(lambda c: len(c.invoices) >= 3)
        if ci is None:
            return False
        c = self.customers[ci]
        items = [i for i in self.open_items(ci) if not self.used[i]]
        k = rng.choice([2, 2, 2, 3, 3, 4])
        if len(items) < k:
            return False
        items.sort(key=lambda i: self.inv_issue[i])
        chosen = items[:k] if rng.random() < 0.6 else sorted(rng.sample(items, k), key=lambda i: self.inv_issue[i])
        total = sum(self.inv_open[i] for i in chosen)
        if not listed and not self.unique_fit(ci, total):
            return False
        for i in chosen:
            self.used[i] = True
        name, account = self.payer(c, with_account=True)
        if listed:
            # the separator may be one the numbers themselves contain: "FA26/01234/FA26/01240", "INV-..-1-INV-..-2"
            sep = rng.choice([", ", " ", " + ", "; ", "/", "/", "-", " / "])
            text = rng.choice(["Invoices ", "RE ", "Factures ", ""]) + sep.join(self.inv_number[i] for i in chosen)
            self.add(c, "multi_listed", f"{k}_invoices", total, c.currency, name, account, text,
                     [self.inv_row(i) for i in chosen])
        else:
            account = account or c.accounts[0]
            self.add(c, "multi_unlisted", f"{k}_invoices", total, c.currency, name, account,
                     rng.choice(NO_REF_TEXTS), [self.inv_row(i) for i in chosen])
        return True

    def gen_partial(self) -> bool:
        got = self.one_invoice("partial", lambda i: self.inv_open[i] >= 10_000)
        if not got:
            return False
        i, c = got
        paid = self.inv_open[i] * self.rng.randint(20, 80) // 100
        name, account = self.payer(c)
        text = self.rng.choice(["Teilzahlung {n}", "Part payment {n}", "Acompte facture {n}", "{n} partial"])
        self.add(c, "partial", "with_reference", paid, c.currency, name, account,
                 text.format(n=self.inv_number[i]), [self.inv_row(i, paid)])
        return True

    def gen_installments(self) -> bool:
        rng = self.rng
        if not hasattr(self, "_plan_ids"):
            self._plan_ids = [i for i, rows in self.plans.items() if any(r[3] < r[2] for r in rows)]
        free = [i for i in (rng.choice(self._plan_ids) for _ in range(20 if self._plan_ids else 0))
                if not self.used[i]]
        if not free:
            return False
        i = free[0]
        self.used[i] = True
        c = self.customers[self.inv_customer[i]]
        unpaid = [r for r in self.plans[i] if r[3] < r[2]]
        take = unpaid[: (2 if len(unpaid) > 1 and rng.random() < 0.25 else 1)]
        total = sum(r[2] - r[3] for r in take)
        nos = "+".join(str(r[0]) for r in take)
        text = rng.choice(["Rate {no} {n}", "Installment {no}/{of} {n}", "{n} Ratenzahlung {no}",
                           "Instalment {no} {n}"]).format(no=nos, of=len(self.plans[i]), n=self.inv_number[i])
        name, account = self.payer(c)
        truth = [(c.cid, self.inv_number[i], r[0], "installment", r[2] - r[3]) for r in take]
        self.add(c, "installments", f"{len(take)}_installments", total, c.currency, name, account, text, truth)
        return True

    def gen_bank_fee(self) -> bool:
        got = self.one_invoice("fee", lambda i: self.inv_open[i] >= 5_000)
        if not got:
            return False
        i, c = got
        fee = self.rng.choice([15, 25, 35, 50, 75, 100, self.rng.randint(1, 100)])
        name, account = self.payer(c)
        self.add(c, "bank_fee", "deducted", self.inv_open[i] - fee, c.currency, name, account,
                 self.text(c, self.inv_number[i]),
                 [self.inv_row(i, self.inv_open[i] - fee), self.inv_row(i, fee, "write_off")])
        return True

    def gen_discount(self) -> bool:
        got = self.one_invoice("discount", lambda i: self.inv_discount[i])
        if not got:
            return False
        i, c = got
        discount = (self.inv_open[i] * DISCOUNT_PERCENT + 50) // 100
        paid = self.inv_open[i] - discount
        name, account = self.payer(c)
        text = self.text(c, self.inv_number[i]) + self.rng.choice([" abzgl. 2% Skonto", " less 2% discount",
                                                                    " escompte 2%", ""])
        self.add(c, "discount", "2_percent", paid, c.currency, name, account, text,
                 [self.inv_row(i, paid), self.inv_row(i, discount, "write_off")])
        return True

    def gen_overpayment(self) -> bool:
        got = self.one_invoice("over")
        if not got:
            return False
        i, c = got
        excess = self.rng.choice([500, 1000, 2500, self.rng.randint(500, 20_000), self.inv_open[i]])
        others = [self.inv_open[j] for j in self.open_items(self.inv_customer[i]) + self.credit_notes(
            self.inv_customer[i]) if j != i]
        if len(others) > 30 or fits(others, excess, excess):  # the excess could pay other items: not decidable
            self.used[i] = False
            return False
        name, account = self.payer(c)
        self.add(c, "overpayment", "paid_twice" if excess == self.inv_open[i] else "excess",
                 self.inv_open[i] + excess, c.currency, name, account, self.text(c, self.inv_number[i]),
                 [self.inv_row(i), (c.cid, "", "", "on_account", excess)])
        return True

    def gen_parent_pays(self) -> bool:
        got = self.one_invoice("parent", lambda i: self.customers[self.inv_customer[i]].parent is not None)
        if not got:
            return False
        i, c = got
        parent = self.customers[c.parent]
        use_rf = bool(self.inv_payref[i]) and self.rng.random() < 0.4
        self.add(c, "parent_pays", "rf" if use_rf else "invoice_number", self.inv_open[i], c.currency,
                 fold(parent.name), self.rng.choice(parent.accounts),
                 "" if use_rf else self.text(c, self.inv_number[i]), [self.inv_row(i)],
                 reference=self.inv_payref[i] if use_rf else "")
        return True

    def gen_group_pays(self) -> bool:
        """A parent pays invoices of two or three members of its group (itself and its subsidiaries) in one
        payment and lists them."""
        rng = self.rng
        if not hasattr(self, "_groups"):
            groups: dict[int, list[int]] = {}
            for ci, c in enumerate(self.customers):
                if c.parent is not None:
                    groups.setdefault(c.parent, []).append(ci)
            self._groups = sorted((p, [p, *m]) for p, m in groups.items())  # its own invoices too
        if not self._groups:
            return False
        parent, members = rng.choice(self._groups)
        chosen = []
        for ci in rng.sample(members, min(len(members), rng.choice([2, 2, 3]))):
            items = [i for i in self.open_items(ci) if not self.used[i]]
            if items:
                chosen.append(rng.choice(items))
        if len(chosen) < 2:
            return False
        for i in chosen:
            self.used[i] = True
        p = self.customers[parent]
        sep = rng.choice([", ", " ", "/", "; ", " + "])
        text = rng.choice(["Group payment ", "Konzernzahlung ", "Paiement groupe ", ""]) + \
            sep.join(self.inv_number[i] for i in chosen)
        self.add(p, "group_pays", f"{len(chosen)}_subsidiaries", sum(self.inv_open[i] for i in chosen),
                 p.currency, fold(p.name), p.treasury or rng.choice(p.accounts), text,
                 [self.inv_row(i) for i in chosen])
        return True

    def gen_credit_note(self) -> bool:
        """Invoices paid less an open credit note: listed (numbers and the note), or unlisted from a known account."""
        rng = self.rng
        if not hasattr(self, "_with_notes"):
            self._with_notes = [ci for ci, c in enumerate(self.customers) if self.credit_notes(ci)
                                and c.currency == "EUR" and not c.has_plan]
        if not self._with_notes:
            return False
        ci = rng.choice(self._with_notes)
        c = self.customers[ci]
        notes = [i for i in self.credit_notes(ci) if not self.used[i]]
        if not notes:
            return False
        note = notes[0]
        items = sorted((i for i in self.open_items(ci) if not self.used[i]), key=lambda i: self.inv_issue[i])
        k = rng.choice([1, 1, 2])
        if len(items) < k:
            return False
        chosen = items[:k] if rng.random() < 0.5 else sorted(rng.sample(items, k), key=lambda i: self.inv_issue[i])
        total = sum(self.inv_open[i] for i in chosen) + self.inv_open[note]
        if total <= 0:
            return False
        listed = rng.random() < 0.6
        if not listed and not self.unique_fit(ci, total):
            return False
        for i in [*chosen, note]:
            self.used[i] = True
        name, account = self.payer(c)
        numbers = " ".join(self.inv_number[i] for i in chosen)
        if listed:
            text = rng.choice(["{n} abzgl. Gutschrift {cn}", "Invoices {n} less credit note {cn}",
                               "Factures {n} moins avoir {cn}", "{n} / {cn}"]).format(n=numbers,
                                                                                   cn=self.inv_number[note])
        else:
            text = rng.choice(NO_REF_TEXTS)
            account = account or c.accounts[0]
        self.add(c, "credit_note", "listed" if listed else "unlisted", total, c.currency, name, account, text,
                 [self.inv_row(i) for i in [*chosen, note]])
        return True

    def gen_several_payers(self) -> bool:
        """No reference, paid from another of the customer's accounts: a second account under a branch's
        name, or a group treasury account on file for several customers (the amount picks the member)."""
        rng = self.rng
        shared = rng.random() < 0.5
        if shared:
            ci = self.no_ref_customer(lambda c: bool(c.treasury))
        else:
            ci = self.no_ref_customer(lambda c: len([a for a in c.accounts if a != c.treasury]) >= 2)
        i = None if ci is None else self.single_unique(ci)
        if i is None:
            return False
        c = self.customers[ci]
        if shared:  # no other member of the group may have anything that fits
            if not hasattr(self, "_treasury"):
                self._treasury: dict[str, list[int]] = {}
                for m, o in enumerate(self.customers):
                    if o.treasury:
                        self._treasury.setdefault(o.treasury, []).append(m)
            for m in self._treasury[c.treasury]:
                if m == ci:
                    continue
                values = [self.inv_open[j] for j in self.open_items(m) + self.credit_notes(m)]
                if len(values) > 30 or fits(values, self.inv_open[i], self.inv_open[i] + FEE_TOLERANCE):
                    self.used[i] = False
                    return False
            head = self.customers[c.parent] if c.parent is not None else c
            account, name = c.treasury, fold(head.core) + " TREASURY"
        else:
            account = [a for a in c.accounts if a != c.treasury][1]
            name = rng.choice([f"{c.core} {rng.choice(COUNTRIES[c.country][5])}", rng.choice(PEOPLE)])
        self.add(c, "several_payers", "treasury" if shared else "second_account", self.inv_open[i], c.currency,
                 name, account, rng.choice(NO_REF_TEXTS), [self.inv_row(i)])
        return True

    def gen_namesake(self) -> bool:
        """Two customers of the same name; the payment names neither invoice nor a known account. It posts
        when the amount is open at exactly one of them (one item), and must not when it is open at both."""
        rng = self.rng
        ci = self.no_ref_customer(lambda c: c.twin is not None)
        if ci is None:
            return False
        c, other = self.customers[ci], self.customers[self.customers[ci].twin]
        if other.subscription or other.has_plan or other.currency != c.currency:
            return False
        both = rng.random() < 0.25
        mine = [i for i in self.open_items(ci) if not self.used[i]]
        theirs = [self.inv_open[j] for j in self.open_items(c.twin) + self.credit_notes(c.twin)]
        if len(theirs) > 30:
            return False
        if both:  # the same amount open at each of the twins: one of the other twin's invoices is made so
            theirs_free = [j for j in self.open_items(c.twin) if not self.used[j] and not self.inv_discount[j]
                           and self.inv_amount[j] == self.inv_open[j]]
            if not mine or not theirs_free:
                return False
            i, j = rng.choice(mine), rng.choice(theirs_free)
            self.inv_amount[j] = self.inv_open[j] = self.inv_open[i]
            self.used[i] = self.used[j] = True
            line = self.add(c, "namesake", "fits_both", self.inv_open[i], c.currency, fold(c.core), "",
                            rng.choice(NO_REF_TEXTS), [])
            line.should_post = False
            line.candidates = [self.inv_number[i], self.inv_number[j]]
            return True
        rng.shuffle(mine)
        for i in mine[:3]:
            amount = self.inv_open[i]
            if self.unique_fit(ci, amount) and not fits(theirs, amount, amount + FEE_TOLERANCE):
                self.used[i] = True
                self.add(c, "namesake", "fits_one", amount, c.currency, fold(c.core), "",
                         rng.choice(NO_REF_TEXTS), [self.inv_row(i)])
                return True
        return False

    def gen_same_amount(self) -> bool:
        ci = self.pick_customer(lambda c: c.subscription and c.currency == "EUR")
        if ci is None:
            return False
        c = self.customers[ci]
        free = [i for i in self.open_items(ci) if not self.used[i]]
        amounts = [self.inv_open[i] for i in free]
        repeated = [a for a in dict.fromkeys(amounts) if amounts.count(a) > 1]
        if not repeated:
            return False
        twins = [i for i in free if self.inv_open[i] == repeated[0]]
        for i in twins:  # no other line of the batch may settle one of the twins and so break the tie
            self.used[i] = True
        line = self.add(c, "same_amount", "no_reference", repeated[0], c.currency, c.name, c.accounts[0],
                        self.rng.choice(NO_REF_TEXTS + ["Monthly fee", "Abonnement"]), [])
        line.candidates = [self.inv_number[i] for i in twins]
        return True

    def gen_unknown_payer(self) -> bool:
        rng = self.rng
        amount = int(math.exp(rng.gauss(6.5, 1.0)) * 100) + rng.randrange(100)
        self.add(None, "unknown_payer", "no_reference", amount, "EUR", rng.choice(PEOPLE),
                 iban(rng, rng.choice(["DE", "FR", "GB", "ES"])),
                 rng.choice(["payment for order", "Donation", "Deposit", "", "Reservation 2026", "Invoice payment"]),
                 [])
        return True

    def gen_non_receivable(self) -> bool:
        rng = self.rng
        kind, who, text = rng.choice(NON_RECEIVABLE)
        who = who.format(bank="DEUTSCHE BANK AG", supplier=rng.choice(SUPPLIERS))
        self.add(None, "non_receivable", kind, rng.randint(500, 2_000_000), "EUR", who, "",
                 text.format(k=rng.randrange(10**6)), [], bank_code="PMNT/RCDT/ESCT" if kind != "interest"
                 else "ACMT/MDOP/INTR")
        return True

    def gen_returned(self) -> bool:
        got = self.one_invoice("returned", lambda i: self.customers[self.inv_customer[i]].currency == "EUR")
        if not got:
            return False
        i, c = got
        day = self.rng.randrange(len(DAYS) - 1)
        e2e = f"E2E{self.rng.randrange(16**10):010X}"
        name, account = self.payer(c)
        account = account or c.accounts[0]
        self.add(c, "returned", "credit", self.inv_open[i], c.currency, name, account,
                 self.text(c, self.inv_number[i]), [], channel="camt", e2e=e2e, day=day)
        self.add(c, "returned", "return_debit", -self.inv_open[i], c.currency, name, account,
                 f"RETURN {self.rng.choice(['AC04 account closed', 'AC01 wrong account', 'MS03 no reason'])}",
                 [], channel="camt", e2e=e2e, day=self.rng.randrange(day + 1, len(DAYS)),
                 bank_code="PMNT/RCDT/RRTN")
        return True

    def gen_debit(self) -> None:
        rng = self.rng
        who, text = rng.choice(DEBITS)
        self.add(None, "debit", "outgoing", -rng.randint(500, 5_000_000), "EUR",
                 who.format(supplier=rng.choice(SUPPLIERS)), iban(rng, "DE") if rng.random() < 0.5 else "",
                 text.format(k=rng.randrange(10**6)), [], bank_code="PMNT/ICDT/ESCT")

    def make_lines(self) -> None:
        rng = self.rng
        total = int(len(self.inv_number) * LINES_PER_INVOICE)
        credits = int(total * (1 - DEBIT_SHARE))
        # the advice scenarios' share is drawn as exact here and handed to them afterwards (make_advices)
        names = [s for s in SCENARIOS if s not in ADVICE_SCENARIOS]
        advice_share = sum(SCENARIOS[s][0] for s in ADVICE_SCENARIOS)
        weights = [round(SCENARIOS[s][0] + (advice_share if s == "exact" else 0), 6) for s in names]
        makers = {s: getattr(self, f"gen_{s}", None) for s in names}
        makers["multi_listed"] = lambda: self.gen_multi(True)
        makers["multi_unlisted"] = lambda: self.gen_multi(False)
        while len(self.lines) < credits:
            scenario = rng.choices(names, weights)[0]
            # a scenario whose conditions a random pick misses gets a few more tries before an exact payment
            if not any(makers[scenario]() for _ in range(8)) and not self.gen_exact():
                break  # the receivables are used up
        for _ in range(total - credits):
            self.gen_debit()
        self.make_advices(credits)

    # ---- remittance advices that arrive apart from the payment -----------------------------------------
    def make_advices(self, credits: int) -> None:
        """Each advice scenario's share of the credit lines, each line in place of an exact payment: the same
        day and statement (USD lines are OFX, EUR lines CAMT or CSV, so the payer's currency follows the
        slot), so every other line keeps its data and its source ref. Draws come from a stream of their own."""
        self.rng = rng = random.Random(self.seed * 1_000_003 + 820)
        index = {number: i for i, number in enumerate(self.inv_number)}
        slots = [k for k, x in enumerate(self.lines) if x.scenario == "exact"]
        rng.shuffle(slots)
        jobs = []
        for scenario in ADVICE_SCENARIOS:
            count = max(2, round(credits * SCENARIOS[scenario][0]))
            variants = ["within_limit", "above_limit"] if scenario == "advice_deduction" else ["before", "after"]
            jobs += [(scenario, variants[k % len(variants)]) for k in range(count)]
        for scenario, variant_ in jobs:
            for _ in range(10):  # a slot whose currency has no customer left to pay this way: the next one
                if not slots:
                    return
                slot = slots.pop()
                old = self.lines[slot]
                freed = index[old.truth[0][1]]
                self.used[freed] = False
                line = self.gen_advice(scenario, variant_, "USD" if old.channel == "ofx" else "EUR", old.channel,
                                       old.day)
                if line is not None:
                    self.lines[slot] = self.lines.pop()
                    break
                self.used[freed] = True
                slots.insert(0, slot)

    def gen_advice(self, scenario: str, variant_: str, currency: str, channel: str, day: int) -> Line | None:
        """A customer pays 2-4 open invoices in one payment and sends the list apart (a portal's CSV export):
        the bank line quotes only the advice's payment reference (advice_listed, advice_deduction) or nothing
        at all, only the payer's name (advice_name_only); one invoice of advice_deduction is paid short with a
        deduction the advice states, within the write-off approval limit or above it (queued, not posted)."""
        rng = self.rng
        k = rng.choice([2, 2, 3, 3, 4])
        deduction = 0
        if variant_ == "above_limit":
            deduction = rng.randint(ADVICE_LIMIT + 100, rng.choice([10_000, 30_000, 80_000]))
        elif variant_ == "within_limit":
            deduction = rng.randint(100, ADVICE_LIMIT - 100)

        def free(c: Customer) -> list[int]:
            return [i for i in c.invoices if not self.used[i] and not self.inv_plan[i] and self.inv_open[i] > 0]

        def fit(c: Customer) -> bool:
            items = free(c)
            return c.currency == currency and len(items) >= k and \
                (not deduction or max(self.inv_open[i] for i in items) >= 3 * deduction)

        ci = self.pick_customer(fit)
        if ci is None:
            return None
        c = self.customers[ci]
        items = sorted(free(c), key=lambda i: self.inv_issue[i])
        chosen = items[:k] if rng.random() < 0.5 else sorted(rng.sample(items, k), key=lambda i: self.inv_issue[i])
        short = None
        if deduction:
            short = max(chosen, key=lambda i: self.inv_open[i])
            if self.inv_open[short] < 3 * deduction:
                return None
        for i in chosen:
            self.used[i] = True
        reference = ""
        while not reference or reference in self.advice_refs:  # it groups an advice's rows: one payment each
            reference = rng.choice([f"{rng.randint(1000, 9999)}-{len(self.advices) + 1:06d}",
                                    f"PAY{rng.randrange(10**8):08d}", f"{rng.randrange(10**10):010d}"])
        self.advice_refs.add(reference)
        paid = {i: self.inv_open[i] - (deduction if i == short else 0) for i in chosen}
        amount = sum(paid.values())
        lag = rng.randint(1, 3)  # the advice's payment date against the booking date (deductions: either way)
        before = variant_ == "before" if variant_ in ("before", "after") else rng.random() < 0.5
        when = DAYS[day] + timedelta(days=-lag if before else lag)
        if scenario == "advice_name_only":
            name, account = self.payer(c, with_account=False)
            text = rng.choice(NO_REF_TEXTS)
        else:
            name, account = self.payer(c)
            text = rng.choice(ADVICE_TEXTS[currency]).format(r=reference)
        truth = []
        if variant_ != "above_limit":
            for i in chosen:
                truth.append(self.inv_row(i, paid[i]))
                if i == short:
                    truth.append(self.inv_row(i, deduction, "write_off"))
        line = self.add(c, scenario, variant_, amount, currency, name, account, text, truth, channel=channel,
                        day=day)
        line.should_post = variant_ != "above_limit"
        reason = rng.choice(ADVICE_REASONS)
        self.advices.append({
            "reference": reference, "date": when, "amount": amount, "currency": currency, "payer_name": c.name,
            "payer_id": c.cid,
            "rows": [(self.inv_number[i], paid[i], self.inv_amount[i] if self.inv_open[i] == self.inv_amount[i]
                      else self.inv_open[i], deduction if i == short else 0, reason if i == short else "")
                     for i in chosen],
        })
        return line


# ---- writers ------------------------------------------------------------------------------------------

def write_snapshot(world: World, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with (out / "customers.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["customer_id", "name", "aliases", "accounts"])
        for c in world.customers:
            w.writerow([c.cid, c.name, "|".join(c.aliases), "|".join(c.accounts)])
    with (out / "invoices.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        # discount_percent / discount_until: payment terms, extra columns the loader may ignore
        w.writerow(["invoice_number", "customer_id", "issue_date", "due_date", "currency", "amount", "open_amount",
                    "payment_reference", "discount_percent", "discount_until"])
        for i, number in enumerate(world.inv_number):
            c = world.customers[world.inv_customer[i]]
            issued = world.inv_issue[i]
            w.writerow([number, c.cid, issued.isoformat(), (issued + timedelta(days=30)).isoformat(), c.currency,
                        money(world.inv_amount[i]), money(world.inv_open[i]), world.inv_payref[i],
                        f"{DISCOUNT_PERCENT}.00" if world.inv_discount[i] else "",
                        (issued + timedelta(days=10)).isoformat() if world.inv_discount[i] else ""])
    with (out / "installments.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["plan_id", "invoice_number", "installment_no", "due_date", "amount", "paid_amount"])
        for i, rows in world.plans.items():
            for no, due, amount, paid in rows:
                w.writerow([f"PLAN-{world.inv_number[i]}", world.inv_number[i], no, due.isoformat(), money(amount),
                            money(paid)])


def assign_refs(world: World) -> None:
    rng = random.Random(7)
    for line in world.lines:
        line._order = rng.random()  # type: ignore[attr-defined]
    seq: dict[tuple[str, int], int] = {}
    for line in sorted(world.lines, key=lambda x: (x.day, x._order)):  # type: ignore[attr-defined]
        key = (line.channel, line.day)
        seq[key] = seq.get(key, 0) + 1
        day = DAYS[line.day]
        if line.channel == "camt":
            line.source_ref = f"2026{day:%m%d}{seq[key]:06d}DBK"
        elif line.channel == "csv":
            line.source_ref = f"ABN-{day:%Y%m%d}-{seq[key]:05d}"
        else:
            line.source_ref = f"{day:%Y%m%d}{seq[key]:07d}"


def by_day(world: World, channel: str) -> list[list[Line]]:
    days: list[list[Line]] = [[] for _ in DAYS]
    for line in world.lines:
        if line.channel == channel:
            days[line.day].append(line)
    for d in days:
        d.sort(key=lambda x: x.source_ref)
    return days


def camt_entry(line: Line) -> str:
    credit = line.amount > 0
    party = "Dbtr" if credit else "Cdtr"
    parts = []
    if line.reference:
        parts.append("<Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry><Issr>ISO</Issr></Tp>"
                     f"<Ref>{escape(line.reference)}</Ref></CdtrRefInf></Strd>")
    parts[:0] = [f"<Ustrd>{escape(t)}</Ustrd>" for t in line.remittance]
    remittance = f"<RmtInf>{''.join(parts)}</RmtInf>" if parts else ""
    account = ""
    if line.account:
        ident = f"<IBAN>{line.account}</IBAN>" if line.account[:2].isalpha() else \
            f"<Othr><Id>{line.account}</Id></Othr>"
        account = f"<{party}Acct><Id>{ident}</Id></{party}Acct>"
    domain, family, sub = line.bank_code.split("/")
    return (f"<Ntry><Amt Ccy=\"{line.currency}\">{money(abs(line.amount))}</Amt>"
            f"<CdtDbtInd>{'CRDT' if credit else 'DBIT'}</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>"
            f"<BookgDt><Dt>{DAYS[line.day]}</Dt></BookgDt><ValDt><Dt>{DAYS[line.day]}</Dt></ValDt>"
            f"<AcctSvcrRef>{line.source_ref}</AcctSvcrRef>"
            f"<BkTxCd><Domn><Cd>{domain}</Cd><Fmly><Cd>{family}</Cd><SubFmlyCd>{sub}</SubFmlyCd></Fmly></Domn></BkTxCd>"
            f"<NtryDtls><TxDtls><Refs><AcctSvcrRef>{line.source_ref}</AcctSvcrRef>"
            f"<EndToEndId>{escape(line.e2e or 'NOTPROVIDED')}</EndToEndId></Refs>"
            f"<RltdPties><{party}><Nm>{escape(line.name[:140])}</Nm></{party}>{account}</RltdPties>"
            f"{remittance}</TxDtls></NtryDtls></Ntry>\n")


def write_camt(path: Path, lines: list[Line], first: int, last: int, opening: int, msg: str) -> None:
    closing = opening + sum(x.amount for x in lines)
    start, end = DAYS[first], DAYS[last]

    def bal(code: str, amount: int, day: date) -> str:
        return (f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy=\"EUR\">{money(abs(amount))}</Amt>"
                f"<CdtDbtInd>{'CRDT' if amount >= 0 else 'DBIT'}</CdtDbtInd><Dt><Dt>{day}</Dt></Dt></Bal>")

    body = "".join(camt_entry(x) for x in lines)
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt>'
        f"<GrpHdr><MsgId>{msg}</MsgId><CreDtTm>{end}T20:00:00+01:00</CreDtTm></GrpHdr>"
        f"<Stmt><Id>{msg}-1</Id><CreDtTm>{end}T20:00:00+01:00</CreDtTm>"
        f"<FrToDt><FrDtTm>{start}T00:00:00+01:00</FrDtTm><ToDtTm>{end}T23:59:59+01:00</ToDtTm></FrToDt>"
        f"<Acct><Id><IBAN>{CAMT_ACCOUNT}</IBAN></Id><Ccy>EUR</Ccy></Acct>"
        f"{bal('OPBD', opening, start)}{bal('CLBD', closing, end)}\n{body}</Stmt></BkToCstmrStmt></Document>\n",
        encoding="utf-8")


def sgml(text: str) -> str:
    return fold(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_ofx(path: Path, lines: list[Line], first: int, last: int, closing: int) -> None:
    rows = []
    for x in lines:
        memo = " ".join(x.remittance + ([x.reference] if x.reference else []))
        rows.append(f"<STMTTRN><TRNTYPE>{'CREDIT' if x.amount > 0 else 'DEBIT'}<DTPOSTED>{DAYS[x.day]:%Y%m%d}"
                    f"<TRNAMT>{money(x.amount)}<FITID>{x.source_ref}<NAME>{sgml(x.name[:32]) or 'UNKNOWN'}"
                    + (f"<MEMO>{sgml(memo)}" if memo else "") + "</STMTTRN>")
    header = ("OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\nSECURITY:NONE\nENCODING:USASCII\nCHARSET:1252\n"
              "COMPRESSION:NONE\nOLDFILEUID:NONE\nNEWFILEUID:NONE\n\n")
    body = (f"<OFX><SIGNONMSGSRSV1><SONRS><STATUS><CODE>0<SEVERITY>INFO</STATUS>"
            f"<DTSERVER>{DAYS[last]:%Y%m%d}200000<LANGUAGE>ENG</SONRS></SIGNONMSGSRSV1>"
            "<BANKMSGSRSV1><STMTTRNRS><TRNUID>1<STATUS><CODE>0<SEVERITY>INFO</STATUS><STMTRS><CURDEF>USD"
            f"<BANKACCTFROM><BANKID>121000248<ACCTID>{OFX_ACCOUNT}<ACCTTYPE>CHECKING</BANKACCTFROM>"
            f"<BANKTRANLIST><DTSTART>{DAYS[first]:%Y%m%d}<DTEND>{DAYS[last]:%Y%m%d}\n"
            + "\n".join(rows) +
            f"\n</BANKTRANLIST><LEDGERBAL><BALAMT>{money(closing)}<DTASOF>{DAYS[last]:%Y%m%d}</LEDGERBAL>"
            "</STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>\n")
    path.write_text(header + body, encoding="ascii")


def write_csv(path: Path, lines: list[Line]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "booking_date", "value_date", "amount", "currency", "counterparty_name",
                    "counterparty_account", "remittance", "account", "reference"])
        for x in lines:
            day = DAYS[x.day].isoformat()
            w.writerow([x.source_ref, day, day, money(x.amount), x.currency, x.name, x.account,
                        " ".join(x.remittance), CSV_ACCOUNT, x.reference])


def write_statements(world: World, out: Path) -> list[Path]:
    """CAMT daily plus a re-sent file for days 2-3; CSV exports of two days each; OFX downloads of three days."""
    out.mkdir(parents=True, exist_ok=True)
    files = []
    camt = by_day(world, "camt")
    balance = 1_250_000_00
    openings = []
    for d, lines in enumerate(camt):
        openings.append(balance)
        path = out / f"camt053_{DAYS[d]}.xml"
        write_camt(path, lines, d, d, balance, f"DBK{DAYS[d]:%Y%m%d}")
        balance += sum(x.amount for x in lines)
        files.append(path)
    if len(DAYS) >= 3:
        path = out / f"camt053_resent_{DAYS[1]}_{DAYS[2]}.xml"
        write_camt(path, camt[1] + camt[2], 1, 2, openings[1], f"DBK{DAYS[1]:%Y%m%d}R")
        files.append(path)
    csv_days = by_day(world, "csv")
    for d in range(len(DAYS) - 1):
        path = out / f"abn_export_{DAYS[d]}_{DAYS[d + 1]}.csv"
        write_csv(path, csv_days[d] + csv_days[d + 1])
        files.append(path)
    ofx_days = by_day(world, "ofx")
    balance = 310_000_00
    for first, last in ((0, 2), (2, 4)):
        lines = [x for d in range(first, last + 1) for x in ofx_days[d]]
        closing = balance + sum(x.amount for d in range(last + 1) for x in ofx_days[d])
        path = out / f"us_bank_{DAYS[first]}_{DAYS[last]}.ofx"
        write_ofx(path, lines, first, last, closing)
        files.append(path)
    return files


ADVICE_HEADER = ["payment_reference", "payment_date", "payment_amount", "currency", "payer_name", "payer_id",
                 "invoice_number", "amount_paid", "invoice_amount", "discount", "deduction", "reason"]


def write_advices(world: World, out: Path) -> list[Path]:
    """The advices as a customer portal exports them (config/advice_profiles/generic-advice.toml): one row per
    invoice, the payment's reference, date and total on each; two exports, split at the third day."""
    files = []
    advices = sorted(world.advices, key=lambda a: (a["date"], a["reference"]))
    for part in ([a for a in advices if a["date"] <= DAYS[2]], [a for a in advices if a["date"] > DAYS[2]]):
        if not part:
            continue
        path = out / f"advices_{part[-1]['date']}.csv"
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(ADVICE_HEADER)
            for a in part:
                for number, paid, invoice_amount, deduction, reason in a["rows"]:
                    w.writerow([a["reference"], a["date"].isoformat(), money(a["amount"]), a["currency"],
                                a["payer_name"], a["payer_id"], number, money(paid), money(invoice_amount), "",
                                money(deduction) if deduction else "", reason])
        files.append(path)
    return files


def account_of(line: Line) -> str:
    return {"camt": CAMT_ACCOUNT, "csv": CSV_ACCOUNT, "ofx": OFX_ACCOUNT}[line.channel]


def write_truth(world: World, out: Path) -> None:
    with (out / "truth_lines.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["source_ref", "account", "booking_date", "amount", "currency", "scenario", "variant",
                    "should_post", "format", "candidates"])
        for x in world.lines:
            w.writerow([x.source_ref, account_of(x), DAYS[x.day].isoformat(), money(x.amount), x.currency,
                        x.scenario, x.variant, "true" if x.should_post else "false", x.channel,
                        "|".join(x.candidates)])
    with (out / "truth.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["source_ref", "account", "customer_id", "invoice_number", "installment_no", "kind", "amount",
                    "currency"])
        for x in world.lines:
            for cid, number, no, kind, amount in x.truth:
                w.writerow([x.source_ref, account_of(x), cid, number, no, kind, money(amount), x.currency])


def generate(out: Path, customers: int, seed: int = 1) -> dict:
    started = time.perf_counter()
    world = World(customers, seed)
    world.make_lines()
    assign_refs(world)
    write_snapshot(world, out / "ar")
    files = write_statements(world, out / "statements") + write_advices(world, out / "statements")
    write_truth(world, out)
    for x in world.lines:  # cash rows add up to the line; write_off rows close the rest of the invoice
        assert not x.truth or sum(t[4] for t in x.truth if t[3] != "write_off") == x.amount, x
    return {"customers": customers, "invoices": len(world.inv_number), "lines": len(world.lines),
            "files": len(files), "seconds": round(time.perf_counter() - started, 2)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    stats = generate(args.out, args.customers, args.seed)
    print(", ".join(f"{k}: {v}" for k, v in stats.items()))


if __name__ == "__main__":
    main()
