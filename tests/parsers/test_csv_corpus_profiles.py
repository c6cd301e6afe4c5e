"""Every corpus CSV file against the bank profiles in config/profiles: who claims it, what it parses to.

Values asserted here are the MANIFEST's (the source projects' own test expectations); where our
reading deliberately differs the test says why. Layouts the profile engine cannot read yet are
strict xfails naming the missing feature, so they turn red the day the feature lands.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconcile.core.errors import InputError
from reconcile.parsers import parse_bytes, parse_file
from reconcile.parsers.base import ParseOptions
from reconcile.parsers.registry import detect
from tests.parsers.golden import check_golden

# Which parser claims each of the 32 corpus CSV files (None: no profile claims it).
CLAIMS = {
    "csv/beancount-import/creditcard.csv": "csv:creditcard-balance",
    "csv/beancount-import/generic_statement.csv": "csv:date-description-amount",
    "csv/beancount-import/transactions.csv": "csv:venmo",
    "csv/ing-de/test_with_saldo_2.csv": "csv:ing-de",
    "csv/ing-de/test_without_saldo_1.csv": "csv:ing-de",
    "csv/ing-de/test_without_saldo_2.csv": "csv:ing-de",
    "csv/oca-adyen/settlement_detail_report_batch_380.csv": "csv:adyen-settlement",
    "csv/oca-paypal/activity_en.csv": "csv:paypal-activity",
    "csv/oca-paypal/empty_activity.csv": "csv:paypal-activity",
    "csv/oca-paypal/statement_es.csv": "csv:paypal-statement-es",
    "csv/oca-sheet/balance.csv": "csv:oca-sheet-balance",
    "csv/oca-sheet/debit_credit.csv": "csv:oca-sheet-debit-credit",
    "csv/oca-sheet/empty_lines_statement.csv": "csv:oca-sheet",
    "csv/oca-sheet/empty_statement_en.csv": "csv:oca-sheet",
    "csv/oca-sheet/error_key_statement.csv": None,  # malformed
    "csv/oca-sheet/error_value_statement.csv": "csv:oca-sheet",  # malformed: refused while parsing
    "csv/oca-sheet/meta_data_separated_credit_debit.csv": "csv:bank-debit-credit-preamble",
    "csv/oca-sheet/multi_currency.csv": "csv:oca-sheet-multi-currency",
    "csv/oca-sheet/original_currency.csv": "csv:oca-sheet",
    "csv/oca-sheet/original_currency_empty.csv": "csv:oca-sheet",
    "csv/oca-sheet/original_currency_no_header.csv": "csv:oca-sheet-no-header",
    "csv/oca-sheet/sample_statement_credit_card_inverse_sign_en.csv": "csv:oca-sheet",  # by header; see --profile
    "csv/oca-sheet/sample_statement_en.csv": "csv:oca-sheet",
    "csv/ofxstatement-dutch/Knab_transactieoverzicht_no_lines.csv": "csv:knab",
    "csv/ofxstatement-dutch/NL99INGB9999999999_25-11-2019_30-05-2020.csv": "csv:ing-nl-balance",
    "csv/ofxstatement-dutch/ing_fail.csv": "csv:ing-nl",  # malformed: refused while parsing
    "csv/ofxstatement-dutch/ing_ok_Mutatiesoort_Extra_Unquoted.csv": "csv:ing-nl-semicolon",
    "csv/ofxstatement-dutch/transactie-historie_fail.csv": "csv:asn-bank",  # malformed: refused while parsing
    "csv/revolut/2018-april.csv": "csv:revolut-legacy-eur",
    "csv/revolut/2019-september.csv": "csv:revolut-legacy-eur",
    "csv/revolut/2021-october.csv": "csv:revolut",
    "csv/sparkasse-freiburg/simple1.csv": "csv:sparkasse-camt-csv",
}

# Golden outputs for the files not already golden in test_csv_profiles.py.
GOLDEN = [
    "csv/beancount-import/creditcard.csv",
    "csv/beancount-import/transactions.csv",
    "csv/ing-de/test_with_saldo_2.csv",
    "csv/ing-de/test_without_saldo_1.csv",
    "csv/ing-de/test_without_saldo_2.csv",
    "csv/oca-adyen/settlement_detail_report_batch_380.csv",
    "csv/oca-paypal/activity_en.csv",
    "csv/oca-paypal/empty_activity.csv",
    "csv/oca-paypal/statement_es.csv",
    "csv/oca-sheet/debit_credit.csv",
    "csv/oca-sheet/empty_statement_en.csv",
    "csv/oca-sheet/meta_data_separated_credit_debit.csv",
    "csv/ofxstatement-dutch/Knab_transactieoverzicht_no_lines.csv",
    "csv/ofxstatement-dutch/ing_ok_Mutatiesoort_Extra_Unquoted.csv",
    "csv/revolut/2018-april.csv",
    "csv/revolut/2019-september.csv",
    "csv/revolut/2021-october.csv",
    "csv/ofxstatement-dutch/NL99INGB9999999999_25-11-2019_30-05-2020.csv",
]


def _chosen(profile: str) -> ParseOptions:
    return replace(ParseOptions.builtin(), profile=profile)


def test_claims_table_covers_the_whole_csv_corpus(corpus: Path) -> None:
    on_disk = {str(p.relative_to(corpus)) for p in (corpus / "csv").rglob("*") if p.is_file()}
    assert on_disk == set(CLAIMS)


@pytest.mark.parametrize("relative", sorted(CLAIMS))
def test_exactly_the_expected_profile_claims_each_file(corpus: Path, relative: str) -> None:
    path = corpus / relative
    expected = CLAIMS[relative]
    if expected is None:
        with pytest.raises(InputError) as caught:
            detect(path.read_bytes(), path)
        assert "unrecognised statement format" in caught.value.why
    else:
        # detect() refuses a file two parsers claim, so this also proves the claim is unambiguous
        assert detect(path.read_bytes(), path).name == expected


@pytest.mark.parametrize("relative", GOLDEN)
def test_corpus_file_matches_its_golden_output(corpus: Path, relative: str) -> None:
    check_golden(corpus, relative)


def _lines(corpus: Path, relative: str) -> list[tuple]:
    [statement] = parse_file(corpus / relative).statements
    return statement.lines.select("booking_date", "amount_minor", "currency").rows()


def test_ing_de_both_layouts(corpus: Path) -> None:
    [saldo] = parse_file(corpus / "csv/ing-de/test_with_saldo_2.csv").statements
    # MANIFEST: 9 rows summing to -178.60; the "155,5" Saldo cell is not read
    assert (saldo.lines.height, saldo.lines["amount_minor"].sum(), saldo.currency) == (9, -17860, "EUR")
    # the last three rows differ only in the running Saldo: three real debits, three refs
    assert saldo.lines.tail(3)["amount_minor"].to_list() == [-290, -290, -290]
    assert saldo.lines["source_ref"].n_unique() == 9
    for name in ("test_without_saldo_1.csv", "test_without_saldo_2.csv"):
        [old] = parse_file(corpus / "csv/ing-de" / name).statements
        assert (old.lines.height, old.lines["amount_minor"].sum(), old.currency) == (6, -18093, "EUR")
        first = old.lines.row(0, named=True)
        assert (first["booking_date"], first["value_date"], first["amount_minor"]) == (
            date(2018, 12, 28), date(2018, 12, 28), -549)
        assert old.lines.row(4, named=True)["remittance"] == "Überweisung Schulden"  # latin-1 decoded


def test_ing_nl_semicolon_layout(corpus: Path) -> None:
    [st_] = parse_file(corpus / "csv/ofxstatement-dutch/ing_ok_Mutatiesoort_Extra_Unquoted.csv").statements
    assert (st_.account, st_.currency) == ("NL99INGB9999999999", "EUR")
    # the 0,00 row is skipped; the two identical -0,31 rows are two real debits
    assert st_.lines["amount_minor"].to_list() == [-125, 125, 2000, -31, -31]
    assert st_.lines["source_ref"].n_unique() == 5
    # ofxstatement reports end date 2020-02-14 (last booking + 1 day); we report the last booking
    assert (st_.period_start, st_.period_end) == (date(2019, 12, 13), date(2020, 2, 13))
    assert st_.lines.row(2, named=True)["counterparty_account"] == "NL99ASNB9999999999"


def test_revolut_layouts(corpus: Path) -> None:
    rows = _lines(corpus, "csv/revolut/2021-october.csv")
    assert len(rows) == 7
    # booked on the Completed Date (line 1 started 2021-09-03, completed 2021-09-05)
    assert rows[:2] == [(date(2021, 9, 5), -25000, "EUR"), (date(2021, 9, 5), -950, "EUR")]
    [st_] = parse_file(corpus / "csv/revolut/2021-october.csv").statements
    assert st_.lines["counterparty_name"].to_list()[:2] == ["transfer", "company äöå"]
    assert _lines(corpus, "csv/revolut/2018-april.csv") == [
        (date(2018, 4, 8), -1100, "EUR"), (date(2018, 4, 6), -4976, "EUR"), (date(2018, 4, 6), -800, "EUR"),
        (date(2018, 4, 6), -1737, "EUR"), (date(2018, 4, 6), -195, "EUR"), (date(2018, 4, 5), -540, "EUR"),
        (date(2018, 4, 2), 20000, "EUR"), (date(2018, 4, 2), -1554, "EUR"), (date(2018, 4, 1), -12210, "EUR"),
    ]


def test_paypal_and_adyen(corpus: Path) -> None:
    [activity] = parse_file(corpus / "csv/oca-paypal/activity_en.csv").statements
    lines = activity.lines
    # one line per row at its gross plus a line per non-zero fee: OCA's 71 USD lines are 45 gross + 26 fee lines
    assert lines.height == 76 + 26  # only USD rows carry fees
    assert lines.group_by("currency").len().sort("currency").rows() == [("AUD", 2), ("EUR", 29), ("USD", 71)]
    assert lines.filter(pl.col("source_ref").str.ends_with("/fee")).height == 26
    assert activity.currency is None  # several currencies in one file
    assert lines.head(2).select("source_ref", "amount_minor", "booking_date", "remittance", "location").rows() == [
        ("TID1/fee", -425, date(2015, 12, 29), "PayPal fee", "line 2"),  # the fee first: the Balance is net
        ("TID1", 8400, date(2015, 12, 29), None, "line 2"),
    ]
    assert lines["source_ref"].n_unique() == lines.height
    assert parse_file(corpus / "csv/oca-paypal/empty_activity.csv").statements == []
    [es] = parse_file(corpus / "csv/oca-paypal/statement_es.csv").statements
    # OCA test_import_statement_es: 8 lines (4 payments, each with its fee)
    assert es.lines.select("source_ref", "amount_minor", "currency").rows() == [
        ("TID1/fee", -178, "EUR"), ("TID1", 4937, "EUR"), ("TID2/fee", -119, "EUR"), ("TID2", 2882, "EUR"),
        ("TID3/fee", -139, "EUR"), ("TID3", 3578, "EUR"), ("TID4/fee", -100, "EUR"), ("TID4", 2247, "EUR"),
    ]
    [adyen] = parse_file(corpus / "csv/oca-adyen/settlement_detail_report_batch_380.csv").statements
    # OCA test_04_import_adyen_csv: "YOURCOMPANY_ACCOUNT 2021/380", 229 lines (228 records at their gross plus one
    # line for the batch's commission, markup, scheme fees and interchange), summing to zero
    assert (adyen.account, adyen.currency, adyen.lines.height) == ("YOURCOMPANY_ACCOUNT", "USD", 229)
    assert adyen.lines["amount_minor"].sum() == 0
    first = adyen.lines.row(0, named=True)
    assert (first["amount_minor"], first["location"]) == (3145, "line 2")  # net 31.15 + 0.16 + 0.05 + 0.09
    # the Fee record and the merchant payout, then the batch's fee line
    assert adyen.lines["amount_minor"].to_list()[-3:-1] == [-3810, -5530807]
    fee = adyen.lines.row(-1, named=True)
    assert (fee["remittance"], fee["location"], fee["source_ref"].endswith("/fee")) == (
        "Adyen commission, markup, scheme fees and interchange", "lines 2-227", True)  # the rows with fees
    again = parse_file(corpus / "csv/oca-adyen/settlement_detail_report_batch_380.csv").statements[0].lines
    assert again["source_ref"].to_list() == adyen.lines["source_ref"].to_list()


def test_sheet_variants(corpus: Path) -> None:
    # "-1,533.50" marked C is a credit: D/C decides the sign
    assert _lines(corpus, "csv/oca-sheet/debit_credit.csv") == [
        (date(2018, 12, 15), -3350, "USD"), (date(2018, 12, 15), 153350, "USD"),
    ]
    [meta] = parse_file(corpus / "csv/oca-sheet/meta_data_separated_credit_debit.csv").statements
    # OCA asserts LABEL 1 = 50 and LABEL 4 = -1300 under its own debit/credit mapping sign convention;
    # in the bank's view (credit positive, CONTRACTS.md) the Debit column is money out
    assert meta.lines.select("source_ref", "amount_minor").rows() == [
        ("UNIQUE OP 1", -5000), ("UNIQUE OP 2", -10000), ("UNIQUE OP 3", -8068), ("UNIQUE OP 4", 130000),
    ]
    assert meta.lines["booking_date"].to_list()[0] == date(2020, 1, 4)  # %m/%d/%y as OCA's test maps it


def test_beancount_examples(corpus: Path) -> None:
    assert _lines(corpus, "csv/beancount-import/creditcard.csv") == [
        (date(2020, 1, 10), -1550, "USD"), (date(2020, 1, 15), 3000, "USD"),
    ]
    [venmo] = parse_file(corpus / "csv/beancount-import/transactions.csv").statements
    assert venmo.lines.height == 50
    first = venmo.lines.row(0, named=True)
    assert (first["source_ref"], first["amount_minor"], first["booking_date"]) == (
        "2394198259925614643", -22000, date(2017, 4, 25))
    assert venmo.lines.row(8, named=True)["amount_minor"] == 115000  # "+ $1,150.00"


def test_knab_header_only_is_an_empty_file_and_rows_parse() -> None:
    head = (b"KNAB EXPORT;;;;;;;;;;;;;;;;\r\nRekeningnummer;Transactiedatum;Valutacode;CreditDebet;Bedrag;"
            b"Tegenrekeningnummer;Tegenrekeninghouder;Valutadatum;Betaalwijze;Omschrijving;Type betaling;"
            b"Machtigingsnummer;Incassant ID;Adres;Referentie;Boekdatum;\r\n")
    # ofxstatement-dutch rejects an empty Knab statement; like the other header-only exports it is no statement here
    assert parse_bytes(head, Path("knab.csv")).statements == []
    rows = (b'"NL99KNAB9999999999";"21-06-2019";"EUR";"D";"827,75";"FR9999999999999999999999999";"Gert Janssen (FR)";'
            b'"21-06-2019";"Overboeking";"Tresorie";"";"";"";"";"XXXXXXXXXXXXXXXX";"21-06-2019";\r\n'
            b'"NL99KNAB9999999999";"22-06-2019";"EUR";"C";"1.234,56";"NL91ABNA0417164300";"Acme BV";'
            b'"22-06-2019";"Overboeking";"INV-1";"";"";"";"";"YYYY";"22-06-2019";\r\n')
    [st_] = parse_bytes(head + rows, Path("knab.csv")).statements
    assert st_.account == "NL99KNAB9999999999"
    assert st_.lines.select("booking_date", "amount_minor", "currency", "reference").rows() == [
        (date(2019, 6, 21), -82775, "EUR", "XXXXXXXXXXXXXXXX"), (date(2019, 6, 22), 123456, "EUR", "YYYY"),
    ]


@pytest.mark.parametrize(
    ("relative", "where", "why"),
    [
        # lacks the "Amount Currency" column of the sheet layout: no profile claims it
        ("csv/oca-sheet/error_key_statement.csv", None, "unrecognised statement format"),
        ("csv/oca-sheet/error_value_statement.csv", "line 3, column Date", "'12/15/2018/23' is not a date"),
        # headerless ASN export whose last row names another own account (ofxstatement-dutch test_fail:
        # ParseError); read by the asn-bank profile, which allows one account per file
        ("csv/ofxstatement-dutch/transactie-historie_fail.csv", "line 12",
         "account 'NL00ASNB9999999998' differs from the file's first account 'NL00ASNB9999999999'"),
    ],
)
def test_malformed_files_are_refused_with_a_reason(corpus: Path, relative: str, where: str | None, why: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_file(corpus / relative)
    assert caught.value.where == where
    assert why in caught.value.why


def _balances(corpus: Path, relative: str) -> tuple[int | None, int | None]:
    [statement] = parse_file(corpus / relative).statements
    return statement.opening_minor, statement.closing_minor


def _gap(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(reason=reason, strict=True)


def test_inverse_sign_sheet_needs_its_profile_chosen(corpus: Path) -> None:
    # same header as oca-sheet: inverse_sign is a property of the account, so the profile is chosen by name
    path = corpus / "csv/oca-sheet/sample_statement_credit_card_inverse_sign_en.csv"
    assert [r[1] for r in _lines(corpus, "csv/oca-sheet/sample_statement_credit_card_inverse_sign_en.csv")] == [
        3350, -152500]
    for name in ("oca-sheet-credit-card", "csv:oca-sheet-credit-card"):
        parsed = parse_file(path, _chosen(name))
        assert parsed.format == "csv:oca-sheet-credit-card"
        # OCA test_amount_inverse_sign: LABEL 1 -33.50, LABEL 2 1525.00
        assert parsed.statements[0].lines.select("remittance", "amount_minor").rows() == [
            ("LABEL 1", -3350), ("LABEL 2", 152500)]
    assert detect(path.read_bytes(), path, _chosen("oca-sheet-credit-card")).name == "csv:oca-sheet-credit-card"
    assert parse_bytes(path.read_bytes(), path, _chosen("oca-sheet")).statements[0].lines["amount_minor"].to_list() == [
        3350, -152500]


def test_chosen_profile_refusals(corpus: Path) -> None:
    path = corpus / "csv/oca-sheet/sample_statement_en.csv"
    with pytest.raises(InputError) as caught:
        parse_file(path, _chosen("no-such-bank"))
    assert "unknown CSV profile 'no-such-bank'" in caught.value.why and "oca-sheet-credit-card" in caught.value.why
    with pytest.raises(InputError) as caught:
        parse_file(path, _chosen("ing-de"))
    assert caught.value.why.startswith("not in the layout of CSV profile 'ing-de'")
    with pytest.raises(InputError) as caught:
        parse_file(corpus / "csv/oca-sheet/multi_currency.csv", _chosen("oca-sheet"))
    assert caught.value.why == "not in the layout of CSV profile 'oca-sheet': line 1: no column 'Amount Currency'"
    with pytest.raises(InputError) as caught:
        parse_file(corpus / "ofx/ofxparse/checking.ofx", _chosen("oca-sheet"))
    assert "it is not a CSV file" in caught.value.why


def test_original_currency_empty_falls_back_to_the_profile_currency(corpus: Path) -> None:
    # OCA test_original_currency_empty (USD journal): one USD line
    assert _lines(corpus, "csv/oca-sheet/original_currency_empty.csv") == [(date(2018, 12, 15), 152500, "USD")]


def test_empty_currency_without_a_default_is_refused_as_empty() -> None:
    data = (b"id,booking_date,value_date,amount,currency,counterparty_name,counterparty_account,remittance\n"
            b"1,2026-11-23,,1.00,,A,,x\n")
    with pytest.raises(InputError) as caught:
        parse_bytes(data, Path("bank.csv"))
    assert caught.value.where == "line 2, column currency"
    assert caught.value.why == "currency is empty and profile generic sets no currency_default"
    assert "None" not in str(caught.value)


def test_multi_currency_sheet_is_claimed_by_its_exact_header(corpus: Path) -> None:
    [st_] = parse_file(corpus / "csv/oca-sheet/multi_currency.csv").statements
    # OCA keeps only the USD row for its USD journal; we keep both rows, each in its own currency
    assert st_.lines.select("booking_date", "amount_minor", "currency").rows() == [
        (date(2018, 12, 15), -3350, "USD"), (date(2018, 12, 15), 152500, "EUR"),
    ]
    assert st_.currency is None


@pytest.mark.parametrize("relative", ["csv/oca-sheet/balance.csv", "csv/oca-sheet/debit_credit.csv"])
def test_sheet_balances_from_the_running_balance(corpus: Path, relative: str) -> None:
    # OCA test_balance / test_debit_credit: balance_start 10.0, balance_end_real 1510.0
    assert _balances(corpus, relative) == (1000, 151000)
    assert parse_file(corpus / relative).statements[0].warnings == (
        "no account in the file: lines stored under account 'default'; pass --account",)


def test_creditcard_balance(corpus: Path) -> None:
    # rows: -15.5 -> balance -35.5, +30 -> -5.5: opening -20.00
    assert _balances(corpus, "csv/beancount-import/creditcard.csv") == (-2000, -550)


def test_ing_de_saldo_and_account_from_the_preamble(corpus: Path) -> None:
    # newest first: closing is the top row's Saldo (150,00 as in the preamble), opening below the bottom row
    assert _balances(corpus, "csv/ing-de/test_with_saldo_2.csv") == (32860, 15000)
    for name in ("test_with_saldo_2.csv", "test_without_saldo_1.csv", "test_without_saldo_2.csv"):
        [st_] = parse_file(corpus / "csv/ing-de" / name).statements
        assert (st_.account, st_.warnings) == ("DE12345678901234567890", ())
    assert _balances(corpus, "csv/ing-de/test_without_saldo_1.csv") == (None, None)


def test_running_balance_that_does_not_add_up_is_a_warning() -> None:
    data = (b"Credit Card Number: 1234\nDate,Description,Amount,Balance\n"
            b"2020-01-10,A,-15.5,-35.5\n2020-01-15,B,30,-4.5\n2020-01-16,C,1,\n")
    [st_] = parse_bytes(data, Path("card.csv")).statements
    assert (st_.opening_minor, st_.closing_minor) == (-2000, -350)  # closing: last balance + the lines after it
    assert st_.warnings[1:] == (
        ("running balance does not add up at line 4: opening -20.00 plus the lines up to it make -5.50, "
         "the file says -4.50"),
    )
    with pytest.raises(InputError) as caught:
        parse_bytes(data.replace(b"-4.5", b"n/a"), Path("card.csv"))
    assert (caught.value.where, caught.value.why) == ("line 4, column Balance", "'n/a' is not a balance amount")


def test_original_currency_no_header(corpus: Path) -> None:
    # OCA test_original_currency_no_header: columns by position, the 8th is the reference
    assert _lines(corpus, "csv/oca-sheet/original_currency_no_header.csv") == [(date(2018, 12, 15), 152500, "EUR")]
    line = parse_file(corpus / "csv/oca-sheet/original_currency_no_header.csv").statements[0].lines.row(0, named=True)
    assert (line["remittance"], line["reference"], line["location"]) == ("Your payment", "INV0001", "line 1")


def test_ing_nl_balance_history(corpus: Path) -> None:
    path = corpus / "csv/ofxstatement-dutch/NL99INGB9999999999_25-11-2019_30-05-2020.csv"
    [st_] = parse_file(path).statements
    # ofxstatement-dutch test_balance: NL99INGB9999999999, EUR, end balance 13.20, no lines (its end date is the
    # last date + 1 and its start balance None; we report the oldest day's balance as the opening)
    assert (st_.account, st_.currency, st_.lines.height, st_.opening_minor, st_.closing_minor) == (
        "NL99INGB9999999999", "EUR", 0, 0, 1320)
    assert (st_.period_start, st_.period_end) == (date(2019, 11, 25), date(2020, 5, 30))
    assert st_.warnings == ("balance history only: balances of 2019-11-25 to 2020-05-30, no transactions",)
    # the account comes from the file name; a name without one leaves the lines' usual fallback
    [other] = parse_bytes(path.read_bytes(), Path("saldo.csv")).statements
    assert other.account == "default"
    with pytest.raises(InputError) as caught:
        parse_bytes(path.read_bytes().replace(b'"13,20","13,20"', b'"13,2x","13,20"', 1), path)
    assert (caught.value.where, caught.value.why) == ("line 2, column Boeksaldo", "'13,2x' is not a balance amount")
    assert parse_bytes(b'"Datum","Boeksaldo","Valutair saldo"\n', path).statements == []


def test_revolut_2019_dates_without_a_year(corpus: Path) -> None:
    rows = _lines(corpus, "csv/revolut/2019-september.csv")
    # ofxstatement-revolut's expected 2019-september.ofx (clock frozen in 2019); the year here is the file name's
    assert rows == [
        (date(2019, 9, 15), -2197, "EUR"), (date(2019, 9, 10), -1162, "EUR"), (date(2019, 9, 10), -844, "EUR"),
        (date(2019, 9, 9), 20000, "EUR"), (date(2019, 9, 8), -5883, "EUR"), (date(2019, 8, 30), -795, "EUR"),
        (date(2018, 8, 28), -20000, "EUR"), (date(2018, 7, 15), -14000, "EUR"), (date(2018, 6, 28), 14000, "EUR"),
    ]


def test_yearless_dates_without_a_year_in_the_file_name_take_the_import_date() -> None:
    header = b"Completed Date;Reference;Paid Out (EUR);Paid In (EUR);Exchange Out;Exchange In; Balance (EUR);Category\n"
    today = date.today()
    past = date(today.year, 1, 1)
    future = date(today.year, 12, 31)
    data = header + (f"{past:%B} 1;A;1.00;;;;1.00;x\n{future:%B} 31;B;2.00;;;;1.00;x\n").encode()
    rows = parse_bytes(data, Path("revolut.csv")).statements[0].lines["booking_date"].to_list()
    # a date after the import date is the previous year's
    assert rows == [past, future.replace(year=today.year - 1) if future > today else future]
    with pytest.raises(InputError) as caught:
        parse_bytes(header + b"Smarch 1;A;1.00;;;;1.00;x\n", Path("revolut.csv"))
    assert caught.value.where == "line 2, column Completed Date"
    assert "'Smarch 1' is not a date in the form %b %d, %Y or %Y %B %d or %B %d" in caught.value.why


def test_ing_nl_two_accounts_and_loose_quoting_are_refused(corpus: Path) -> None:
    path = corpus / "csv/ofxstatement-dutch/ing_fail.csv"
    with pytest.raises(InputError) as caught:
        parse_file(path)
    # ofxstatement-dutch test_fail: ParseError
    assert (caught.value.where, caught.value.why) == (
        "line 3, column Mededelingen", "a quoted field starts after a space (the quote would be read as text)")
    with pytest.raises(InputError) as caught:
        parse_bytes(path.read_bytes().replace(b', "Naam', b',"Naam'), path)
    assert caught.value.where == "line 3"
    assert caught.value.why == ("account 'NL99INGB9999999998' differs from the file's first account "
                                "'NL99INGB9999999999' (profile ing-nl allows one account per file)")
    fixed = path.read_bytes().replace(b', "Naam', b',"Naam').replace(b"NL99INGB9999999998", b"NL99INGB9999999999")
    [st_] = parse_bytes(fixed, path).statements
    assert st_.lines["amount_minor"].to_list() == [-125, 2000]


ING_DE = (
    "Umsatzanzeige;Datei erstellt am: 28.12.2018 16:57\n\nIBAN;DE12 3456 7890 1234 5678 90\nSaldo;150,00;EUR\n\n"
    "Buchung;Wertstellungsdatum;Auftraggeber/Empfänger;Buchungstext;Verwendungszweck;Saldo;Währung;Betrag;Währung\n"
    "28.12.2018;28.12.2018;Karl Karlsen;Gutschrift;Miete;155,5;EUR;1.050,00;EUR\n"
    "27.12.2018;27.12.2018;Überweisung GmbH;Lastschrift;Ticket;105,50;EUR;-2,90;EUR\n"
).encode("latin-1")
ING_NL = (b"Datum;Naam / Omschrijving;Rekening;Tegenrekening;Code;Af Bij;Bedrag (EUR);Mutatiesoort;Mededelingen;Extra\n"
          b"20200213;Kosten;NL99INGB9999999999;;DV;Af;1,25;Diversen;jan 2020;E\n"
          b"20191213;PAULISSEN;NL99INGB9999999999;NL99ASNB9999999999;OV;Bij;20,00;Overschrijving;Naam;r\n")


def test_seed_files_parse() -> None:
    assert parse_bytes(ING_DE, Path("ing.csv")).statements[0].lines["amount_minor"].to_list() == [105000, -290]
    assert parse_bytes(ING_NL, Path("ing.csv")).statements[0].lines["amount_minor"].to_list() == [-125, 2000]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([ING_DE, ING_NL]), st.integers(0, 400), st.integers(0, 12), st.binary(max_size=6))
def test_mutated_files_raise_only_input_errors(seed: bytes, start: int, length: int, junk: bytes) -> None:
    start = min(start, len(seed))
    try:
        parse_bytes(seed[:start] + junk + seed[start + length:], Path("fuzz.csv"))
    except InputError:
        pass
