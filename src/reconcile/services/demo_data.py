"""Sample data for `reconcile demo`: a small receivables snapshot and two days of statements.

Deterministic (seeded): the same files every time. Day one is a CAMT.053
file, day two a generic CSV; together they show exact references, RF
creditor references, a payment covering two invoices, an instalment, a
partial payment, an overpayment, a bank fee and lines that need a person.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

ACCOUNT = "NL91ABNA0417164300"
CURRENCY = "EUR"
COMPANIES = [
    ("Acme Trading BV", "Acme"), ("Bakker & Zonen", "Bakker Zonen"), ("Nordlicht GmbH", "Nordlicht"),
    ("Café de Flore SARL", "Cafe de Flore"), ("Hansen Logistics A/S", "Hansen Log"), ("Rossi Costruzioni SpA", ""),
    ("Oak & Pine Ltd", "Oak and Pine"), ("Vermeulen Installatie", ""), ("Kowalski Sp. z o.o.", "Kowalski"),
    ("Lindqvist AB", ""), ("García Hermanos SL", "Garcia Hnos"), ("Dupont Électricité", "Dupont Elec"),
    ("Murphy Brothers Ltd", ""), ("Svoboda s.r.o.", ""), ("Papadopoulos OE", ""), ("Blue Harbor Inc", "Blue Harbour"),
    ("Meyer Bau GmbH", "Meyer Bau"), ("De Vries Groep", "De Vries"), ("Nakamura Trading KK", ""), ("Olsen & Co", ""),
]


def rf_reference(base: str) -> str:
    """ISO 11649 creditor reference for `base` (alphanumeric), with its check digits."""
    digits = "".join(str(int(ch, 36)) for ch in (base + "RF00").upper())
    check = 98 - int(digits) % 97
    return f"RF{check:02d}{base}"


@dataclass
class DemoFiles:
    snapshot_dir: Path
    statements: list[Path]
    as_of: date


def _money(cents: int) -> str:
    return str(Decimal(cents).scaleb(-2).quantize(Decimal("0.01")))


def write_demo_data(directory: Path, today: date = date(2026, 11, 24)) -> DemoFiles:
    rng = random.Random(20261124)
    snapshot = directory / "snapshot"
    snapshot.mkdir(parents=True, exist_ok=True)
    customers: list[dict[str, Any]] = []
    invoices: list[dict[str, Any]] = []
    installments: list[dict[str, Any]] = []
    for index, (name, alias) in enumerate(COMPANIES, start=1):
        cid = f"C{index:04d}"
        iban = f"DE{10 + index:02d}5001051700{index:08d}"
        customers.append({"customer_id": cid, "name": name, "aliases": alias, "accounts": iban})
        for k in range(rng.randint(3, 6)):
            number = f"INV-2026-{index:02d}{k:02d}"
            issued = today - timedelta(days=rng.randint(5, 150))
            amount = rng.randint(150_00, 9_500_00)
            paid_before = 0 if rng.random() < 0.85 else amount // 2
            invoices.append({
                "invoice_number": number, "customer_id": cid, "issue_date": issued.isoformat(),
                "due_date": (issued + timedelta(days=30)).isoformat(), "currency": CURRENCY,
                "amount": _money(amount), "open_amount": _money(amount - paid_before),
                "payment_reference": rf_reference(f"{index:02d}{k:02d}2026") if k % 2 == 0 else "",
            })
    # a payment plan on the largest invoice of the third customer
    plan_invoice = max((i for i in invoices if i["customer_id"] == "C0003"), key=lambda i: Decimal(i["amount"]))
    plan_invoice["open_amount"] = plan_invoice["amount"]
    total = int(Decimal(plan_invoice["amount"]) * 100)
    parts = [total // 4] * 3 + [total - 3 * (total // 4)]
    due = date.fromisoformat(plan_invoice["due_date"])
    for n, part in enumerate(parts, start=1):
        installments.append({
            "plan_id": "PLAN-C0003-1", "invoice_number": plan_invoice["invoice_number"], "installment_no": n,
            "due_date": (due + timedelta(days=30 * (n - 1))).isoformat(), "amount": _money(part), "paid_amount": "0",
        })
    for stem, rows in (("customers", customers), ("invoices", invoices), ("installments", installments)):
        with (snapshot / f"{stem}.csv").open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    by_customer: dict[str, list[dict]] = {}
    for inv in invoices:
        by_customer.setdefault(inv["customer_id"], []).append(inv)
    name_of = {c["customer_id"]: c for c in customers}
    cents = lambda inv: int(Decimal(inv["open_amount"]) * 100)

    day1: list[dict] = []
    day2: list[dict] = []
    for index, cid in enumerate(sorted(by_customer), start=1):
        items = sorted(by_customer[cid], key=lambda i: i["due_date"])
        customer = name_of[cid]
        payer = {"name": customer["name"].upper(), "account": customer["accounts"]}
        target = day1 if index % 2 else day2
        first = items[0]
        if cid == "C0003":
            target.append({**payer, "amount": int(Decimal(installments[0]["amount"]) * 100),
                           "text": f"Instalment 1 {plan_invoice['invoice_number']}"})
        elif index % 5 == 1 and len(items) > 1:
            both = items[:2]
            target.append({**payer, "amount": sum(cents(i) for i in both),
                           "text": "Invoices " + " + ".join(i["invoice_number"] for i in both)})
        elif index % 7 == 0:
            target.append({**payer, "amount": cents(first) // 2, "text": f"Part payment {first['invoice_number']}"})
        elif index % 4 == 0:
            target.append({**payer, "amount": cents(first) + 25_00, "text": f"{first['invoice_number']} incl. advance"})
        elif index % 3 == 0 and first["payment_reference"]:
            target.append({**payer, "amount": cents(first), "text": "", "ref": first["payment_reference"]})
        else:
            target.append({**payer, "amount": cents(first), "text": f"Payment {first['invoice_number']} thank you"})
    # lines a person has to look at
    day1.append({"name": "J. SMITH", "account": "GB29NWBK60161331926819", "amount": 480_00,
                 "text": "payment for order"})
    day2.append({"name": "UNKNOWN PAYER LTD", "account": "FR7630006000011234567890189", "amount": 1234_56,
                 "text": "Invoice 2026-77"})
    day1.append({"name": "BANK", "account": "", "amount": -12_50, "text": "Account maintenance fee"})
    day2.append({"name": "TAX OFFICE", "account": "", "amount": -450_00, "text": "VAT return"})

    camt = directory / "statements" / f"camt053-{today - timedelta(days=1)}.xml"
    csv_file = directory / "statements" / f"bank-export-{today}.csv"
    camt.parent.mkdir(parents=True, exist_ok=True)
    camt.write_text(_camt053(day1, today - timedelta(days=1)), encoding="utf-8")
    _generic_csv(csv_file, day2, today)
    return DemoFiles(snapshot, [camt, csv_file], today)


def _camt053(lines: list[dict], day: date) -> str:
    opening = 25_000_00
    closing = opening + sum(line["amount"] for line in lines)
    entries = []
    for n, line in enumerate(lines, start=1):
        credit = line["amount"] > 0
        party = "Dbtr" if credit else "Cdtr"
        ref = line.get("ref")
        remittance = (
            f"<Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry><Issr>ISO</Issr></Tp><Ref>{ref}</Ref></CdtrRefInf></Strd>"
            if ref else f"<Ustrd>{escape(line['text'])}</Ustrd>"
        )
        account = f"<{party}Acct><Id><IBAN>{line['account']}</IBAN></Id></{party}Acct>" if line["account"] else ""
        entries.append(f"""
      <Ntry>
        <Amt Ccy="{CURRENCY}">{_money(abs(line['amount']))}</Amt>
        <CdtDbtInd>{'CRDT' if credit else 'DBIT'}</CdtDbtInd>
        <Sts><Cd>BOOK</Cd></Sts>
        <BookgDt><Dt>{day}</Dt></BookgDt>
        <ValDt><Dt>{day}</Dt></ValDt>
        <AcctSvcrRef>DEMO{day:%Y%m%d}{n:05d}</AcctSvcrRef>
        <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>{'RCDT' if credit else 'ICDT'}</Cd><SubFmlyCd>ESCT</SubFmlyCd>\
</Fmly></Domn></BkTxCd>
        <NtryDtls><TxDtls>
          <Refs><EndToEndId>NOTPROVIDED</EndToEndId></Refs>
          <RltdPties><{party}><Nm>{escape(line['name'])}</Nm></{party}>{account}</RltdPties>
          <RmtInf>{remittance}</RmtInf>
        </TxDtls></NtryDtls>
      </Ntry>""")
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">
  <BkToCstmrStmt>
    <GrpHdr><MsgId>DEMO-{day:%Y%m%d}</MsgId><CreDtTm>{day}T18:00:00+01:00</CreDtTm></GrpHdr>
    <Stmt>
      <Id>DEMO-STMT-{day:%Y%m%d}</Id>
      <CreDtTm>{day}T18:00:00+01:00</CreDtTm>
      <FrToDt><FrDtTm>{day}T00:00:00+01:00</FrDtTm><ToDtTm>{day}T23:59:59+01:00</ToDtTm></FrToDt>
      <Acct><Id><IBAN>{ACCOUNT}</IBAN></Id><Ccy>{CURRENCY}</Ccy></Acct>
      <Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp><Amt Ccy="{CURRENCY}">{_money(opening)}</Amt>\
<CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>{day}</Dt></Dt></Bal>
      <Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy="{CURRENCY}">{_money(closing)}</Amt>\
<CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>{day}</Dt></Dt></Bal>{''.join(entries)}
    </Stmt>
  </BkToCstmrStmt>
</Document>
"""


def _generic_csv(path: Path, lines: list[dict], day: date) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "booking_date", "value_date", "amount", "currency", "counterparty_name",
                         "counterparty_account", "remittance", "account", "reference"])
        for n, line in enumerate(lines, start=1):
            writer.writerow([f"CSV-{day:%Y%m%d}-{n:04d}", day.isoformat(), day.isoformat(), _money(line["amount"]),
                             CURRENCY, line["name"], line["account"], line["text"], ACCOUNT, line.get("ref", "")])
