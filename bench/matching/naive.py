"""The baseline: a plain cash-application script of the kind teams write first.

Run: python bench/matching/naive.py OUT [-o OUT/naive]

Exact invoice numbers and payment references, a little repair (case, separators, OCR letters in
numbers), payer by known account or by a lightly fuzzy name with one open item of exactly the amount.
No combinations, no payment plans, no tolerances, no returns, no remittance advices (the advice files in
OUT/statements are left alone). Reads OUT/ar and OUT/statements (through reconcile.parsers) and writes
allocations.csv and exceptions.csv in the CONTRACTS §4 formats.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import unicodedata
from pathlib import Path

from rapidfuzz import fuzz, process

from reconcile.core.money import from_minor, to_minor
from reconcile.parsers import parse_file
from reconcile.parsers.advice import sniff_advice

TOKEN = re.compile(r"[A-Z0-9][A-Z0-9\-/\.]{2,}[A-Z0-9]")
RF_SPACED = re.compile(r"RF\d\d(?: ?[A-Z0-9]{1,4}){1,7}")
OCR = str.maketrans({"O": "0", "I": "1", "S": "5", "B": "8"})
LEGAL = {"GMBH", "AG", "KG", "CO", "SA", "SARL", "SAS", "BV", "NV", "SPA", "SRL", "SL", "SP", "Z", "OO", "AB",
         "AS", "APS", "OY", "LTD", "LIMITED", "PLC", "INC", "LLC", "CORP", "KK", "SRO", "LDA", "EK"}
ALLOC_COLUMNS = ["source_ref", "account", "booking_date", "customer_id", "invoice_number", "installment_no",
                 "kind", "amount", "currency", "rule", "confidence", "run_id"]
EXC_COLUMNS = ["source_ref", "account", "booking_date", "amount", "currency", "reason", "suggestions", "status"]


def norm(text: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", text.upper())


def fold_name(name: str) -> str:
    text = unicodedata.normalize("NFKD", name)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).upper()
    words = re.sub(r"[^A-Z0-9 ]", " ", text.replace(".", "")).split()
    return " ".join(w for w in words if w not in LEGAL)


class Book:
    def __init__(self, ar: Path) -> None:
        self.invoices: dict[str, dict] = {}
        self.by_key: dict[str, str] = {}
        self.by_customer: dict[str, list[str]] = {}
        with (ar / "invoices.csv").open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                row["open"] = to_minor(row["open_amount"], row["currency"])
                self.invoices[row["invoice_number"]] = row
                self.by_key[norm(row["invoice_number"])] = row["invoice_number"]
                if row.get("payment_reference"):
                    self.by_key[norm(row["payment_reference"])] = row["invoice_number"]
                self.by_customer.setdefault(row["customer_id"], []).append(row["invoice_number"])
        self.by_account: dict[str, str] = {}
        self.by_name: dict[str, str] = {}
        with (ar / "customers.csv").open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                for account in filter(None, (row.get("accounts") or "").split("|")):
                    self.by_account[norm(account)] = row["customer_id"]
                for name in [row["name"], *filter(None, (row.get("aliases") or "").split("|"))]:
                    self.by_name.setdefault(fold_name(name), row["customer_id"])
        self.blocks: dict[str, list[str]] = {}
        for name in self.by_name:
            if name:
                self.blocks.setdefault(name.split()[0], []).append(name)

    def references(self, text: str) -> list[str]:
        """Open invoices named in the text: exact, then case/separator and OCR repair."""
        text = text.upper()
        tokens = TOKEN.findall(text) + [m.replace(" ", "") for m in RF_SPACED.findall(text)]
        found = []
        for token in tokens:
            key = norm(token)
            number = self.by_key.get(key)
            if number is None and key.startswith("INV"):
                number = self.by_key.get("INV" + key[3:].translate(OCR))
            if number is not None and number not in found:
                found.append(number)
        return found

    def customer(self, account: str | None, name: str | None) -> str | None:
        if account and norm(account) in self.by_account:
            return self.by_account[norm(account)]
        if not name:
            return None
        folded = fold_name(name)
        if folded in self.by_name:
            return self.by_name[folded]
        block = self.blocks.get(folded.split()[0], []) if folded else []
        best = process.extractOne(folded, block, scorer=fuzz.ratio, score_cutoff=90)
        return self.by_name[best[0]] if best else None


def read_lines(statements: Path) -> list[dict]:
    seen: dict[tuple[str, str], dict] = {}
    for path in sorted(statements.iterdir()):
        with path.open("rb") as fh:
            if sniff_advice(fh.read(65536)):  # a remittance advice, not a statement
                continue
        for statement in parse_file(path).statements:
            for row in statement.lines.iter_rows(named=True):
                seen.setdefault((statement.account, row["source_ref"]), {**row, "account": statement.account})
    return sorted(seen.values(), key=lambda r: (r["booking_date"], r["account"], r["source_ref"]))


def match(book: Book, lines: list[dict]) -> tuple[list[dict], list[dict]]:
    allocations: list[dict] = []
    exceptions: list[dict] = []
    for line in lines:
        amount, currency = line["amount_minor"], line["currency"]
        if amount <= 0:
            continue
        base = {"source_ref": line["source_ref"], "account": line["account"], "booking_date": line["booking_date"],
                "currency": currency, "run_id": "naive"}
        text = " ".join(filter(None, (line["reference"], line["remittance"], line["end_to_end_id"])))
        found = [n for n in book.references(text) if book.invoices[n]["open"] > 0
                 and book.invoices[n]["currency"] == currency]
        customers = {book.invoices[n]["customer_id"] for n in found}
        rows = []
        if len(customers) == 1:
            left = amount
            for number in sorted(found, key=lambda n: book.invoices[n]["due_date"]):
                take = min(left, book.invoices[number]["open"])
                if take > 0:
                    rows.append({"invoice_number": number, "kind": "invoice", "amount": take, "rule": "reference"})
                    left -= take
            if left > 0:
                rows.append({"invoice_number": "", "kind": "on_account", "amount": left, "rule": "overpayment"})
            customer = customers.pop()
        elif not customers:
            customer = book.customer(line["counterparty_account"], line["counterparty_name"])
            same = [n for n in book.by_customer.get(customer or "", [])
                    if book.invoices[n]["open"] == amount and book.invoices[n]["currency"] == currency]
            if len(same) == 1:
                rows.append({"invoice_number": same[0], "kind": "invoice", "amount": amount, "rule": "payer_amount"})
        if not rows:
            reason = "ambiguous" if len(customers) > 1 else "no_candidate"
            exceptions.append({**base, "amount": from_minor(amount, currency), "reason": reason,
                               "suggestions": "|".join(found), "status": "open"})
            continue
        for row in rows:
            if row["kind"] == "invoice":
                book.invoices[row["invoice_number"]]["open"] -= row["amount"]
            allocations.append({**base, **row, "customer_id": customer, "installment_no": "",
                                "amount": from_minor(row["amount"], currency), "confidence": 1.0})
    return allocations, exceptions


def write(path: Path, columns: list[str], rows: list[dict]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="benchmark folder made by generate.py")
    parser.add_argument("-o", "--output", type=Path, help="folder for allocations.csv / exceptions.csv")
    args = parser.parse_args(argv)
    target = args.output or args.out / "naive"
    target.mkdir(parents=True, exist_ok=True)
    allocations, exceptions = match(Book(args.out / "ar"), read_lines(args.out / "statements"))
    write(target / "allocations.csv", ALLOC_COLUMNS, allocations)
    write(target / "exceptions.csv", EXC_COLUMNS, exceptions)
    print(f"naive: {len(allocations)} allocation rows, {len(exceptions)} exceptions", file=sys.stderr)


if __name__ == "__main__":
    main()
