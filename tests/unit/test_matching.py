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
from reconcile.match.partition import match_partitioned

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
        payer_accounts=frames.from_records([{"customer_id": c, "account": a} for c, a in accounts],
                                           frames.PAYER_ACCOUNTS),
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
    posted, _, _, result = run(TWO, line("98.50", "INV-2026-0102", line_id=1),
                               line("49.00", "INV-2026-0103", line_id=2))
    assert posted[1] == [("invoice", "INV-2026-0102", None, 10000), ("write_off", "INV-2026-0102", None, -150)]
    assert posted[2] == [("invoice", "INV-2026-0103", None, 5000), ("write_off", "INV-2026-0103", None, -100)]
    posted, _, _, result = run(book([("INV-77777", "C1", "500.00")]), line("490.00", "INV-77777"))
    assert posted[1] == [("invoice", "INV-77777", None, 50000), ("write_off", "INV-77777", None, -1000)]
    assert result.allocations["rule"].to_list()[0] == "reference_early_payment_discount"


def test_two_payments_of_one_invoice_in_one_run_the_second_is_a_duplicate() -> None:
    posted, queued, _, _ = run(TWO, line("100.00", "INV-2026-0102", line_id=1),
                               line("100.00", "INV-2026-0102", line_id=2))
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
    posted, _, _, _ = run(b, line("200.00", "instalments PLAN-INV", line_id=1),
                          line("100.00", "Nordlicht", name="Nordlicht GmbH", line_id=2))
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


# --- lists, credit notes, near-ties, fixpoint and determinism -------------------------------------------


@pytest.mark.parametrize("remittance", [
    "RE FA25/09550/FA25/14985",            # the list's separator is inside the numbers
    "FA25/09550, FA25/14985",
    "Rechnungen FA2509550/FA2514985",
])
def test_a_list_written_with_the_separator_its_numbers_contain_is_read_as_a_list(remittance: str) -> None:
    b = book([("FA25/09550", "C1", "100.00"), ("FA25/14985", "C1", "50.00"), ("FA25/09551", "C1", "70.00")])
    posted, queued, _, _ = run(b, line("150.00", remittance))
    assert posted == {1: [("invoice", "FA25/09550", None, 10000), ("invoice", "FA25/14985", None, 5000)]}, queued


def test_a_hex_id_or_another_series_never_names_an_invoice_by_its_digits() -> None:
    b = book([("FA26/11085", "C1", "10.00"), ("CN-2026-00296", "C2", "-5.00"), ("INV-2026-002961", "C2", "26.94")])
    posted, queued, _, _ = run(b, line("10.00", "payment", line_id=1, reference="E2E0A2611085"),
                               line("26.94", "Rechnung Nr. INV-2026-00296", line_id=2))
    assert 1 not in posted and queued[1]["reason"] == "no_candidate"
    assert posted[2] == [("invoice", "INV-2026-002961", None, 2694)]  # cut off: the amount picks it


def test_invoices_less_a_credit_note_by_reference_and_by_amount() -> None:
    accounts = [("C1", "DE89370400440532013000")]
    b = book([("INV-1001", "C1", "100.00"), ("INV-1002", "C1", "60.00"), ("CN-2001", "C1", "-25.00"),
              ("INV-1003", "C1", "500.00")], accounts=accounts)
    posted, queued, _, _ = run(b, line("135.00", "INV-1001 INV-1002 less credit note CN-2001"))
    assert posted == {1: [("invoice", "CN-2001", None, -2500), ("invoice", "INV-1001", None, 10000),
                          ("invoice", "INV-1002", None, 6000)]}, queued
    posted, queued, _, result = run(b, line("75.00", "thanks", account="DE89370400440532013000"))
    assert posted == {1: [("invoice", "CN-2001", None, -2500), ("invoice", "INV-1001", None, 10000)]}, queued
    assert result.allocations["rule"].unique().to_list() == ["amount_combination"]


def test_the_amount_search_combines_credit_notes_larger_than_the_payment() -> None:
    from reconcile.match import amounts

    items = [("A", 500), ("B", 120), ("N", -450), ("C", 80)]
    assert amounts.subsets(items, 50, max_items=10, max_size=3) == [["A", "N"]]
    assert amounts.subsets(items, 170, max_items=10, max_size=3) == [["A", "B", "N"]]
    assert amounts.subsets(items, 200, max_items=10, max_size=3, limit=5) == [["B", "C"]]


@pytest.mark.parametrize("number, typed", [("12345", "12435"), ("INV-2026-0102", "INV-2026-1002"),
                                           ("FA25/09550", "FA25/09505")])
def test_two_adjacent_digits_swapped_are_suggested_in_any_number_style(number: str, typed: str) -> None:
    b = book([(number, "C1", "40.00"), ("OTHER-1", "C2", "41.00")])
    posted, queued, _, _ = run(b, line("30.00", f"payment {typed}"), line("40.00", f"paid {typed}", line_id=2))
    assert queued[1]["suggestions"].split("|")[0] == number  # the amount disagrees: suggested, not posted
    assert posted[2] == [("invoice", number, None, 4000)]


def test_two_customers_tied_on_a_name_are_both_suggested_never_one_picked() -> None:
    b = book([("A-1", "C4", "50.00"), ("A-2", "C4", "12.00"), ("B-1", "C5", "50.00"), ("B-2", "C5", "13.00")],
             aliases=[("C5", "Meyer Bau")])
    posted, queued, _, _ = run(b, line("50.00", "payment", name="MEYER BAU"))
    assert posted == {}
    item = queued[1]
    assert item["reason"] == "ambiguous" and item["customer_id"] is None
    assert set(item["suggestions"].split("|")[:2]) == {"A-1", "B-1"}
    assert json.loads(item["evidence"])["customers"] == ["C4", "C5"]


def test_a_namesake_whose_amount_fits_only_one_customer_is_posted() -> None:
    b = book([("A-1", "C4", "50.00"), ("B-1", "C5", "51.00")], aliases=[("C5", "Meyer Bau")])
    posted, _, _, result = run(b, line("51.00", "payment", name="MEYER BAU"))
    assert posted == {1: [("invoice", "B-1", None, 5100)]}
    evidence = json.loads(result.allocations["evidence"][0])
    assert evidence["runner_up"] == "C4" and evidence["payer"]["by"] == "name_and_amount"


def test_a_shared_treasury_account_posts_to_the_one_member_the_amount_fits() -> None:
    treasury = "DE02120300000000202051"
    b = book([("A-1", "C1", "30.00"), ("B-1", "C2", "45.00")], accounts=[("C1", treasury), ("C2", treasury)])
    posted, queued, _, _ = run(b, line("45.00", "group payment", account=treasury, name="GROUP TREASURY"),
                               line("99.00", "group payment", account=treasury, name="GROUP TREASURY", line_id=2))
    assert posted == {1: [("invoice", "B-1", None, 4500)]}
    assert queued[2]["reason"] in ("ambiguous", "amount_mismatch")


def test_a_line_queued_early_is_decided_once_later_lines_took_their_invoices() -> None:
    """Line 1 (amount only) fits INV-3001 and INV-3002; line 2, booked later, names INV-3002: one run posts both."""
    accounts = [("C1", "DE89370400440532013000")]
    b = book([("INV-3001", "C1", "20.00"), ("INV-3002", "C1", "20.00")], accounts=accounts)
    first = line("20.00", "thanks", account="DE89370400440532013000", line_id=1)
    second = dict(line("20.00", "INV-3002", line_id=2), booking_date=date(2026, 11, 25))
    posted, queued, _, _ = run(b, first, second)
    assert posted == {1: [("invoice", "INV-3001", None, 2000)], 2: [("invoice", "INV-3002", None, 2000)]}, queued
    # three payments of 20.00 for two invoices: one stays queued, and deciding it again changes nothing
    third = dict(line("20.00", "thanks", account="DE89370400440532013000", line_id=3))
    posted, queued, _, _ = run(b, first, second, third)
    assert sorted(posted) == [1, 2] and queued[3]["reason"] == "no_candidate"


def _shuffled(frame: pl.DataFrame, seed: int) -> pl.DataFrame:
    return frame.sample(fraction=1.0, shuffle=True, seed=seed)


def test_the_same_input_in_any_row_order_gives_byte_identical_decisions() -> None:
    customers = [("C1", "Kowalski Sp. z o.o."), ("C2", "Nordlicht GmbH"), ("C3", "Café de Flore SARL"),
                 ("C4", "Meyer Bau GmbH"), ("C5", "Meyer Bauer GmbH"), ("C6", "Hansen Logistics A/S")]
    invoices = [(f"INV-{n:04d}", customers[n % 6][0], f"{10 + (n * 7) % 13}.00", n % 17) for n in range(120)]
    b = book(invoices, aliases=[("C4", "Meyer Bau"), ("C5", "Meyer Bau")],
             accounts=[("C1", "PL61109010140000071219812874"), ("C2", "PL61109010140000071219812874")])
    lines = [line(f"{10 + (n * 5) % 13}.00", f"INV-{n * 3:04d}" if n % 3 else None, line_id=n + 1,
                  name=customers[n % 6][1].upper() if n % 2 else "MEYER BAU",
                  account="PL61109010140000071219812874" if n % 5 == 0 else None) for n in range(80)]
    frame = frames.from_records(lines, frames.MATCH_LINES)
    reference = match_lines(frame, b, RULES)
    assert reference.allocations.height and reference.exceptions.height
    for seed in range(4):
        shuffled_book = Book(**{name: _shuffled(getattr(b, name), seed) for name in
                                ("customers", "aliases", "payer_accounts", "invoices", "installments")})
        again = match_lines(_shuffled(frame, seed), shuffled_book, RULES)
        parted = match_partitioned(_shuffled(frame, seed), shuffled_book, RULES, 3)
        for name in ("allocations", "exceptions", "skipped"):
            assert getattr(again, name).write_csv() == getattr(reference, name).write_csv(), (seed, name)
            assert getattr(parted, name).write_csv() == getattr(reference, name).write_csv(), (seed, name)


def test_evidence_is_compact_json_with_sorted_keys_naming_runner_up_and_margin() -> None:
    b = book([("A-1", "C1", "10.00"), ("A-2", "C1", "20.00")], accounts=[("C1", "DE89370400440532013000")])
    _, _, _, result = run(b, line("20.00", "thanks", account="DE89370400440532013000"))
    text = result.allocations["evidence"][0]
    data = json.loads(text)
    assert text == json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert data["rule"] == "amount_unique" and data["runner_up"] == "A-1" and data["margin"] == 1000


def test_a_line_queued_as_ambiguous_is_decided_again_after_a_later_line_took_one_of_its_items() -> None:
    """Line 1 (amount only, booked first) fits INV-40013 and INV-40057; line 2, booked later and decided
    after it, pays INV-40057 under a mistyped number. The run goes on to its fixpoint: line 1 gets INV-40013."""
    accounts = [("C1", "DE89370400440532013000")]
    b = book([("INV-40013", "C1", "20.00"), ("INV-40057", "C1", "20.00")], accounts=accounts)
    first = line("20.00", "thanks", account="DE89370400440532013000", line_id=1)
    second = dict(line("20.00", "INV-40075", line_id=2), booking_date=date(2026, 11, 25))
    posted, queued, _, result = run(b, first, second)
    assert posted == {1: [("invoice", "INV-40013", None, 2000)], 2: [("invoice", "INV-40057", None, 2000)]}, queued
    assert result.exceptions.height == 0


def test_leading_zeros_dropped_from_a_short_number_count_beside_its_own_letters() -> None:
    b = book([("FA26/00072", "C1", "79.93"), ("CN-26-00072", "C2", "-5.00"), ("FA26/00073", "C1", "12.00")])
    posted, _, _, result = run(b, line("79.93", "Règlement facture FA26/72"), line("12.00", "26/73", line_id=2))
    assert posted[1] == [("invoice", "FA26/00072", None, 7993)]
    assert result.allocations["rule"][0] == "fuzzy_reference"
    assert 2 not in posted  # four digits without the series' letters name nothing
