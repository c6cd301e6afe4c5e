"""The matcher's rules on small cases a person can check by hand, including those where it must abstain."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from reconcile.config import load_config
from reconcile.core import frames
from reconcile.core.money import to_minor
from reconcile.match import Book, match_lines
from reconcile.match.normalise import rf_valid

RULES = load_config(Path(__file__).resolve().parents[2] / "config").matching

CUSTOMERS = [
    ("C1", "Kowalski Sp. z o.o."), ("C2", "Nordlicht GmbH"), ("C3", "Café de Flore SARL"),
    ("C4", "Meyer Bau GmbH"), ("C5", "Meyer Bauer GmbH"), ("C6", "Hansen Logistics A/S"),
]


def book(invoices: list[tuple], installments: list[tuple] = (), aliases: list[tuple] = (),
         accounts: list[tuple] = ()) -> Book:
    """invoices: (number, customer, open, [due offset days], [currency], [payment_reference])."""
    rows = []
    for n, inv in enumerate(invoices):
        number, customer, open_amount, *rest = inv
        offset = rest[0] if rest else n
        currency = rest[1] if len(rest) > 1 else "EUR"
        minor = to_minor(Decimal(open_amount), currency)
        rows.append({
            "invoice_number": number, "customer_id": customer, "issue_date": date(2026, 9, 1),
            "due_date": date(2026, 10, 1) + timedelta(days=offset), "currency": currency,
            "amount_minor": minor, "open_minor": minor, "payment_reference": rest[2] if len(rest) > 2 else None,
        })
    plan_rows = [
        {"installment_id": i, "plan_id": "P1", "invoice_number": number, "installment_no": no,
         "due_date": date(2026, 10, 1) + timedelta(days=30 * no), "amount_minor": to_minor(Decimal(a), "EUR"),
         "open_minor": to_minor(Decimal(a), "EUR")}
        for i, (number, no, a) in enumerate(installments, start=1)
    ]
    return Book(
        customers=frames.from_records([{"customer_id": c, "name": n} for c, n in CUSTOMERS], frames.CUSTOMERS),
        aliases=frames.from_records([{"customer_id": c, "alias": a} for c, a in aliases], frames.ALIASES),
        payer_accounts=frames.from_records([{"customer_id": c, "account": a} for c, a in accounts], frames.PAYER_ACCOUNTS),
        invoices=frames.from_records(rows, frames.INVOICES),
        installments=frames.from_records(plan_rows, frames.INSTALLMENTS),
    )


def line(amount: str, remittance: str | None = None, name: str | None = None, account: str | None = None,
         currency: str = "EUR", line_id: int = 1, reference: str | None = None) -> dict:
    return {
        "bank_line_id": line_id, "account": "NL91ABNA0417164300", "source_ref": f"L{line_id}",
        "booking_date": date(2026, 11, 24), "amount_minor": to_minor(Decimal(amount), currency), "currency": currency,
        "counterparty_name": name, "counterparty_account": account, "remittance": remittance, "reference": reference,
    }


def run(b: Book, *lines: dict):  # type: ignore[no-untyped-def]
    result = match_lines(frames.from_records(list(lines), frames.MATCH_LINES), b, RULES)
    posted = {
        line_id: sorted((r["kind"], r["invoice_number"], r["installment_no"], r["amount_minor"]) for r in rows)
        for line_id, rows in result.allocations.rows_by_key("bank_line_id", named=True).items()
    }
    queued = {r["bank_line_id"]: r for r in result.exceptions.iter_rows(named=True)}
    skipped = dict(result.skipped.iter_rows())
    return posted, queued, skipped, result


TWO = book([("INV-2026-0102", "C1", "100.00"), ("INV-2026-0103", "C1", "50.00"), ("INV-2026-0201", "C2", "70.00")])


@pytest.mark.parametrize("remittance", [
    "Invoice INV-2026-0102",
    "inv 2026/0102 thanks",            # separators and case
    "INV-2O26-O1O2",                  # OCR: letter O for zero
    "rechnung 20260102",              # prefix dropped
    "INV-2026-01 02",                 # wrapped across two remittance lines
])
def test_a_named_invoice_is_paid_however_it_is_written(remittance: str) -> None:
    posted, queued, _, result = run(TWO, line("100.00", remittance))
    assert posted == {1: [("invoice", "INV-2026-0102", None, 10000)]}, queued
    assert result.allocations["rule"].to_list() == ["reference"]


def test_a_transposed_number_counts_only_when_the_amount_agrees() -> None:
    posted, queued, _, _ = run(TWO, line("100.00", "INV 20260120"), line("99.00", "INV 20260120", line_id=2))
    assert posted == {1: [("invoice", "INV-2026-0102", None, 10000)]}
    assert queued[2]["reason"] == "no_candidate" and queued[2]["suggestions"] == "INV-2026-0102"


def test_a_truncated_number_with_the_right_amount_is_posted() -> None:
    b = book([("INV-2026-000417", "C1", "42.00"), ("INV-2026-000518", "C2", "10.00")])
    posted, _, _, result = run(b, line("42.00", "INV 2026-0004"))
    assert posted == {1: [("invoice", "INV-2026-000417", None, 4200)]}
    assert result.allocations["rule"].to_list() == ["fuzzy_reference"]


def test_a_creditor_reference_printed_in_groups_of_four() -> None:
    reference = "RF18539007547034"
    assert rf_valid(reference)
    b = book([("INV-9", "C1", "12.00", 0, "EUR", reference)])
    posted, _, _, _ = run(b, line("12.00", "RF18 5390 0754 7034"))
    assert posted == {1: [("invoice", "INV-9", None, 1200)]}


def test_several_named_invoices_partial_and_over_payments() -> None:
    posted, _, _, _ = run(
        TWO,
        line("150.00", "INV-2026-0102 INV-2026-0103", line_id=1),
        line("30.00", "INV-2026-0201 part", line_id=2),
    )
    assert posted[1] == [("invoice", "INV-2026-0102", None, 10000), ("invoice", "INV-2026-0103", None, 5000)]
    assert posted[2] == [("invoice", "INV-2026-0201", None, 3000)]
    posted, _, _, _ = run(TWO, line("80.00", "INV-2026-0201 and 10.00 advance"))
    assert posted[1] == [("invoice", "INV-2026-0201", None, 7000), ("on_account", None, None, 1000)]


def test_a_bank_fee_within_tolerance_and_an_early_payment_discount_are_written_off() -> None:
    posted, _, _, result = run(TWO, line("98.50", "INV-2026-0102", line_id=1), line("49.00", "INV-2026-0103", line_id=2))
    assert posted[1] == [("invoice", "INV-2026-0102", None, 10000), ("write_off", "INV-2026-0102", None, -150)]
    assert posted[2] == [("invoice", "INV-2026-0103", None, 5000), ("write_off", "INV-2026-0103", None, -100)]
    posted, _, _, result = run(book([("INV-77777", "C1", "500.00")]), line("490.00", "INV-77777"))
    assert posted[1] == [("invoice", "INV-77777", None, 50000), ("write_off", "INV-77777", None, -1000)]
    assert result.allocations["rule"].to_list()[0] == "reference_early_payment_discount"


def test_two_payments_of_one_invoice_in_one_run_the_second_is_a_duplicate() -> None:
    posted, queued, _, _ = run(TWO, line("100.00", "INV-2026-0102", line_id=1), line("100.00", "INV-2026-0102", line_id=2))
    assert list(posted) == [1]
    assert queued[2]["reason"] == "duplicate_suspect"


def test_a_parent_company_paying_its_subsidiary_invoice_by_reference() -> None:
    posted, _, _, _ = run(TWO, line("70.00", "INV-2026-0201", name="Some Holding Plc"))
    assert posted == {1: [("invoice", "INV-2026-0201", None, 7000)]}


def test_a_known_payer_account_and_a_unique_amount() -> None:
    b = book([("A-1", "C1", "10.00"), ("A-2", "C1", "20.00")], accounts=[("C1", "DE89370400440532013000")])
    posted, _, _, result = run(b, line("20.00", "thanks", account="DE89 3704 0044 0532 0130 00"))
    assert posted == {1: [("invoice", "A-2", None, 2000)]}
    assert json.loads(result.allocations["evidence"][0])["payer"]["by"] == "account"


def test_same_amount_invoices_without_a_reference_are_left_to_a_person() -> None:
    b = book([("A-1", "C1", "20.00"), ("A-2", "C1", "20.00")], accounts=[("C1", "DE89370400440532013000")])
    posted, queued, _, _ = run(b, line("20.00", "thanks", account="DE89370400440532013000"))
    assert posted == {}
    assert queued[1]["reason"] == "ambiguous" and queued[1]["suggestions"] == "A-1|A-2"


@pytest.mark.parametrize("payer", ["KOWALSKI SP Z OO", "Kowalski Sp. z o. o.", "KOWALSKY SP. Z O.O."])
def test_a_payer_name_variant_identifies_the_customer(payer: str) -> None:
    b = book([("A-1", "C1", "33.00"), ("B-1", "C2", "33.00")])
    posted, queued, _, _ = run(b, line("33.00", "payment", name=payer))
    assert posted == {1: [("invoice", "A-1", None, 3300)]}, queued


def test_a_truncated_payer_name_identifies_the_customer() -> None:
    b = book([("A-1", "C6", "12.00")])
    posted, _, _, _ = run(b, line("12.00", "payment", name="HANSEN LOGISTICS A/S COPENHAGEN DEPT"[:32]))
    assert posted == {1: [("invoice", "A-1", None, 1200)]}


def test_two_customers_with_close_names_make_the_matcher_abstain() -> None:
    b = book([("A-1", "C4", "50.00"), ("B-1", "C5", "50.00")])
    posted, queued, _, _ = run(b, line("50.00", "payment", name="MEYER BAUE GMBH"))
    assert posted == {}
    assert queued[1]["reason"] in ("ambiguous", "low_confidence")


def test_a_learned_alias_identifies_the_payer() -> None:
    b = book([("A-1", "C3", "80.00")], aliases=[("C3", "Les Deux Magots Gestion")])
    posted, _, _, _ = run(b, line("80.00", "facture", name="LES DEUX MAGOTS GESTION"))
    assert posted == {1: [("invoice", "A-1", None, 8000)]}


def test_one_combination_of_open_items_is_posted_two_are_not() -> None:
    b = book([("A-1", "C1", "10.00"), ("A-2", "C1", "25.00"), ("A-3", "C1", "40.00")],
             accounts=[("C1", "PL61109010140000071219812874")])
    posted, _, _, result = run(b, line("50.00", None, account="PL61109010140000071219812874"))
    assert posted == {1: [("invoice", "A-1", None, 1000), ("invoice", "A-3", None, 4000)]}
    assert result.allocations["rule"].unique().to_list() == ["amount_combination"]
    b = book([("A-1", "C1", "10.00"), ("A-2", "C1", "30.00"), ("A-3", "C1", "15.00"), ("A-4", "C1", "25.00")],
             accounts=[("C1", "PL61109010140000071219812874")])
    posted, queued, _, _ = run(b, line("40.00", None, account="PL61109010140000071219812874"))
    assert posted == {} and queued[1]["reason"] == "ambiguous"
    assert len(json.loads(queued[1]["evidence"])["competing"]) == 2


def test_payment_plan_installments_are_paid_in_due_order() -> None:
    b = book([("PLAN-INV", "C2", "300.00")], installments=[("PLAN-INV", 1, "100.00"), ("PLAN-INV", 2, "100.00"),
                                                            ("PLAN-INV", 3, "100.00")])
    posted, _, _, _ = run(b, line("200.00", "instalments PLAN-INV", line_id=1), line("100.00", "Nordlicht", name="Nordlicht GmbH", line_id=2))
    assert posted[1] == [("installment", "PLAN-INV", 1, 10000), ("installment", "PLAN-INV", 2, 10000)]
    assert posted[2] == [("installment", "PLAN-INV", 3, 10000)]


def test_debits_interest_and_foreign_currency_are_never_posted() -> None:
    posted, queued, skipped, _ = run(
        TWO,
        line("-5.00", "fee", line_id=1),
        line("3.21", "CREDIT INTEREST Q3", line_id=2),
        line("100.00", "INV-2026-0102", currency="USD", line_id=3),
        line("100.00", "payment", name="Nordlicht GmbH", currency="CHF", line_id=4),
    )
    assert posted == {}
    assert skipped == {1: "debit", 2: "non_receivable:interest"}
    assert queued[3]["reason"] == "unknown_currency" and queued[4]["reason"] == "unknown_currency"


def test_nothing_known_is_no_candidate() -> None:
    posted, queued, _, _ = run(TWO, line("12.34", "order 5521", name="J. Smith"))
    assert posted == {} and queued[1]["reason"] == "no_candidate"


def test_every_line_allocations_add_up_to_its_amount() -> None:
    lines = [line(a, r, line_id=i) for i, (a, r) in enumerate(
        [("150.00", "INV-2026-0102 INV-2026-0103"), ("75.00", "INV-2026-0201"), ("1.00", "INV-2026-0103"),
         ("69.10", "INV-2026-0201")], start=1)]
    _, _, _, result = run(TWO, *lines)
    sums = result.allocations.group_by("bank_line_id").agg(pl.col("amount_minor").sum()).sort("bank_line_id")
    assert sums.rows() == [(1, 15000), (2, 7500)]
    # the short payment first: 69.10 settles the 70.00 invoice with a write-off; 75.00 then finds it paid
    lines = [line("69.10", "INV-2026-0201", line_id=2), line("75.00", "INV-2026-0201", line_id=4),
             line("150.00", "INV-2026-0102 INV-2026-0103", line_id=1)]
    _, _, _, result = run(TWO, *lines)
    sums = result.allocations.group_by("bank_line_id").agg(pl.col("amount_minor").sum()).sort("bank_line_id")
    assert sums.rows() == [(1, 15000), (2, 6910)]
    assert result.exceptions["reason"].to_list() == ["duplicate_suspect"]
