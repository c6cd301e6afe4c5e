"""CSV statements through bank profiles: corpus files, the generic layout, bad cells named by line and column."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconcile.core.errors import ConfigError, InputError
from reconcile.parsers import parse_bytes, parse_file
from reconcile.parsers.csv_profiles import Profile, _profile, builtin_profiles
from reconcile.parsers.csvprofile import CsvProfileParser
from tests.parsers.golden import check_golden

READABLE = [
    "csv/beancount-import/generic_statement.csv",
    "csv/oca-sheet/empty_lines_statement.csv",
    "csv/oca-sheet/original_currency.csv",
    "csv/oca-sheet/sample_statement_en.csv",
    "csv/sparkasse-freiburg/simple1.csv",
]
GENERIC_HEADER = b"id,booking_date,value_date,amount,currency,counterparty_name,counterparty_account,remittance\n"


@pytest.mark.parametrize("relative", READABLE)
def test_corpus_file_matches_its_golden_output(corpus: Path, relative: str) -> None:
    check_golden(corpus, relative)


def test_identical_rows_are_two_real_payments_with_stable_refs(corpus: Path) -> None:
    path = corpus / "csv/beancount-import/generic_statement.csv"
    [statement] = parse_file(path).statements
    lines = statement.lines
    # beancount-import asserts six transactions: both identical 2020-01-02 +1 rows are kept
    assert sorted(lines.select("booking_date", "amount_minor").rows()) == [
        (date(2020, 1, 1), -100), (date(2020, 1, 1), -100), (date(2020, 1, 2), 100), (date(2020, 1, 2), 100),
        (date(2020, 1, 2), 50000), (date(2020, 1, 5), 30000),
    ]
    assert lines["source_ref"].n_unique() == 6
    assert parse_file(path).statements[0].lines["source_ref"].to_list() == lines["source_ref"].to_list()


def test_oca_sheet_values(corpus: Path) -> None:
    [st_] = parse_file(corpus / "csv/oca-sheet/sample_statement_en.csv").statements
    assert st_.lines.select("amount_minor", "currency", "counterparty_name").rows() == [
        (-3350, "USD", "John Doe"), (152500, "EUR", "Azure Interior"),
    ]
    [blank_rows] = parse_file(corpus / "csv/oca-sheet/empty_lines_statement.csv").statements
    assert blank_rows.lines.height == 3 and blank_rows.lines["amount_minor"].sum() == 229150
    assert parse_file(corpus / "csv/oca-sheet/empty_statement_en.csv").statements == []


def test_sparkasse_reads_cp1252_and_leaves_pending_rows_out(corpus: Path) -> None:
    parsed = parse_file(corpus / "csv/sparkasse-freiburg/simple1.csv")
    [st_] = parsed.statements
    line = st_.lines.row(0, named=True)
    # ofxstatement-sparkasse-freiburg also lists the pending -1234.56 row; we import booked rows only
    assert (st_.account, line["amount_minor"], line["currency"]) == ("12341234", 12300, "EUR")
    assert line["remittance"] == "GUTSCHRIFT Geschenk Hans Meyer abzügl. Schulden"
    assert line["value_date"] == date(2018, 3, 28)


def test_bad_date_is_named_by_line_and_column(corpus: Path) -> None:
    with pytest.raises(InputError) as caught:
        parse_file(corpus / "csv/oca-sheet/error_value_statement.csv")
    assert caught.value.where == "line 3, column Date"
    assert "'12/15/2018/23' is not a date" in caught.value.why


def test_generic_layout_with_optional_account_and_reference() -> None:
    data = (b"id,booking_date,value_date,amount,currency,counterparty_name,counterparty_account,remittance,"
            b"account,reference\n"
            b"A1,2026-11-23,2026-11-24,1234.50,EUR,Acme,DE89370400440532013000,INV-1,NL91ABNA0417164300,RF18539007547034\n"
            b"A2,2026-11-23,,-5,JPY,,,fee,NL91ABNA0417164300,\n")
    [st_] = parse_bytes(data, Path("bank.csv")).statements
    assert st_.account == "NL91ABNA0417164300"
    assert st_.lines.select("source_ref", "amount_minor", "currency", "reference", "value_date").rows() == [
        ("A1", 123450, "EUR", "RF18539007547034", date(2026, 11, 24)), ("A2", -5, "JPY", None, None),
    ]


@pytest.mark.parametrize(
    ("row", "where", "why"),
    [
        (b"1,2026-11-23,,12.345,EUR,A,,x\n", "line 2, column amount", "'12.345' is not an amount"),
        (b"1,23/11/2026,,1.00,EUR,A,,x\n", "line 2, column booking_date", "is not a date"),
        (b"1,2026-11-23,,1.00,EURO,A,,x\n", "line 2, column currency", "'EURO' is not a currency code"),
    ],
)
def test_generic_bad_rows(row: bytes, where: str, why: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_bytes(GENERIC_HEADER + row, Path("bank.csv"))
    assert (caught.value.where, caught.value.path) == (where, "bank.csv")
    assert why in caught.value.why


@pytest.mark.parametrize(
    ("rows", "where"),
    [
        # the amount is named first, then the booking date, then the value date, wherever the rows are
        (b"1,23/11/2026,,1.00,EUR,A,,x\n2,2026-11-23,,12.345,EUR,B,,y\n", "line 3, column amount"),
        (b"1,2026-11-23,31/12/2026,1.00,EUR,A,,x\n2,23/11/2026,,1.00,EUR,B,,y\n", "line 3, column booking_date"),
    ],
)
def test_a_file_with_several_faults_names_the_same_one_every_time(rows: bytes, where: str) -> None:
    for _ in range(5):  # the columns are read on two threads: the fault named must not depend on which ends first
        with pytest.raises(InputError) as caught:
            parse_bytes(GENERIC_HEADER + rows, Path("bank.csv"))
        assert caught.value.where == where


def test_an_id_the_export_repeats_keeps_both_transactions() -> None:
    parsed = parse_bytes(GENERIC_HEADER + b"1,2026-11-23,,1.00,EUR,A,,x\n1,2026-11-24,,2.00,EUR,B,,y\n",
                         Path("bank.csv"))
    statement = parsed.statements[0]
    refs = statement.lines["source_ref"].to_list()
    assert refs[0] == "1" and refs[1].startswith("1#") and len(set(refs)) == 2
    assert any("reference repeated in the file" in w for w in statement.warnings)


VALID = GENERIC_HEADER + (b"1,2026-11-23,2026-11-23,100.00,EUR,Acme BV,NL91ABNA0417164300,INV-1\n"
                          b"2,2026-11-24,,-3.5,EUR,,,fee\n")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(VALID) - 1), st.integers(0, 12), st.binary(max_size=6))
def test_mutated_files_raise_only_input_errors(start: int, length: int, junk: bytes) -> None:
    try:
        parse_bytes(VALID[:start] + junk + VALID[start + length:], Path("fuzz.csv"))
    except InputError:
        pass


def _inline(**keys: object) -> Profile:
    raw = {"signature": ["Date", "Amount"], "currency": "EUR", "columns": {"booking_date": "Date", "amount": "Amount"}}
    return _profile(Path("inline.toml"), {**raw, **keys})


def test_header_exact_and_header_absent() -> None:
    head = b"Date,Amount,Balance\n2026-11-23,1.00,5.00\n"
    assert CsvProfileParser(_inline()).mismatch(head, Path("a.csv")) is None
    assert CsvProfileParser(_inline(header_exact=True)).mismatch(head, Path("a.csv")) == (
        "line 1: column 'Balance' is not part of its exact header")
    assert CsvProfileParser(_inline(header_absent=["D/C", "Balance"])).mismatch(head, Path("a.csv")) == (
        "line 1: column 'Balance' rules the layout out")
    # empty padding names (PayPal pads its header) do not break an exact header
    assert CsvProfileParser(_inline(header_exact=True)).mismatch(b"Date,Amount,,\n2026-11-23,1.00,,\n",
                                                                 Path("a.csv")) is None


def test_subset_headers_are_claimed_by_one_profile_each(corpus: Path) -> None:
    for relative, claimer in (("csv/oca-sheet/balance.csv", "csv:oca-sheet-balance"),
                              ("csv/oca-sheet/debit_credit.csv", "csv:oca-sheet-debit-credit"),
                              ("csv/oca-sheet/multi_currency.csv", "csv:oca-sheet-multi-currency"),
                              ("csv/oca-sheet/sample_statement_en.csv", "csv:oca-sheet")):
        path = corpus / relative
        assert parse_file(path).format == claimer


def test_headerless_profile_claims_by_row_shape() -> None:
    profile = _inline(has_header=False, column_names=["Date", "Text", "Amount"], signature=[],
                      account_from_preamble=r"^Account: (.+)$", skip_lines=1)
    parser = CsvProfileParser(profile)
    data = b"Account: NL91 ABNA 0417 1643 00\n2026-11-23,rent,\"1.00\"\n2026-11-24,fee,-0.5\n"
    assert parser.mismatch(data, Path("a.csv")) is None
    assert parser.mismatch(b"Account: x\nDate,Text,Amount\n", Path("a.csv")) == (
        "line 2: its first row's Date 'Date' is not a date")
    assert parser.mismatch(b"Account: x\n2026-11-23,rent\n", Path("a.csv")) == (
        "line 2: its first row has 2 columns, not 3")
    assert parser.mismatch(b"Account: x\n2026-11-23,rent,lots\n", Path("a.csv")) == (
        "line 2: its first row's Amount 'lots' is not an amount")
    data = b"Account: NL91 ABNA 0417 1643 00\n2026-11-23,rent,100\n2026-11-24,fee,-0.5\n"
    [st_] = parser.parse(data, Path("a.csv")).statements
    assert st_.account == "NL91ABNA0417164300"
    assert st_.lines.select("location", "amount_minor").rows() == [("line 2", 10000), ("line 3", -50)]
    with pytest.raises(InputError) as caught:
        parser.parse(data + b"2026-11-25,x,oops\n", Path("a.csv"))
    assert (caught.value.where, caught.value.why) == ("line 4, column Amount", "'oops' is not an amount")


@pytest.mark.parametrize(
    ("keys", "why"),
    [
        ({"has_header": False}, "has_header = false needs column_names"),
        ({"column_names": ["Date", "Amount"]}, "column_names is only for has_header = false"),
        ({"currency_default": "usd"}, "currency_default must be an ISO 4217 code"),
        ({"account_from_preamble": "IBAN;("}, "account_from_preamble is not a valid regular expression"),
        ({"account_from_preamble": "IBAN;.*"}, "account_from_preamble needs a group"),
        ({"year_from_file_name": "[0-9]{4}"}, "year_from_file_name needs a group"),
        ({"account_from_file_name": "(NL"}, "account_from_file_name is not a valid regular expression"),
        ({"yearless_date_formats": ["%Y %B %d"]},
         "yearless_date_formats must be a list of date formats without a year"),
        ({"balance_only": True}, "balance_only = true needs balance_column"),
        ({"fee": {"sign": -1}}, "fee.column must name the fee column"),
        ({"fee": {"column": "Fee", "sign": 2}}, "fee.sign must be 1 or -1"),
        ({"fee": {"column": "Fee", "per": "day"}}, 'fee.per must be "row" or "file"'),
        ({"fee": {"column": "Fee", "suffix": "/f"}}, "unknown [fee] key(s) ['suffix']"),
    ],
)
def test_profile_keys_are_checked(keys: dict, why: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _inline(**keys)
    assert why in str(caught.value)


def test_every_shipped_profile_loads_and_has_distinct_auto_detected_claims() -> None:
    profiles = {p.name: p for p in builtin_profiles()}
    assert not profiles["oca-sheet-credit-card"].auto_detect
    assert profiles["oca-sheet-credit-card"].inverse_sign
    assert profiles["oca-sheet"].currency_default == "USD"
    assert profiles["paypal-activity"].fee is not None and profiles["paypal-activity"].fee.columns == ("Fee",)
    assert profiles["ing-nl"].one_account_per_file and profiles["ing-nl"].strict_quoting
    assert profiles["ing-nl-balance"].balance_only


def test_fee_lines_per_row_and_per_file() -> None:
    per_row = _inline(fee={"column": "Fee", "remittance": "bank fee"}, signature=["Date", "Text", "Amount", "Fee"],
                      columns={"booking_date": "Date", "amount": "Amount", "remittance": "Text"}, currency="EUR")
    data = b"Date,Text,Amount,Fee\n2026-11-23,A,10.00,-0.30\n2026-11-23,B,5.00,\n2026-11-23,A,10.00,-0.30\n"
    [st_] = CsvProfileParser(per_row).parse(data, Path("a.csv")).statements
    rows = st_.lines.select("amount_minor", "remittance", "location").rows()
    assert rows == [(-30, "bank fee", "line 2"), (1000, "A", "line 2"), (500, "B", "line 3"),
                    (-30, "bank fee", "line 4"), (1000, "A", "line 4")]
    refs = st_.lines["source_ref"].to_list()
    # identical rows stay two payments, each with its own fee line named after its row
    assert refs[0] == refs[1] + "/fee" and refs[3] == refs[4] + "/fee" and len(set(refs)) == 5
    with pytest.raises(InputError) as caught:
        CsvProfileParser(per_row).parse(data.replace(b"-0.30\n2026-11-23,B", b"abc\n2026-11-23,B"), Path("a.csv"))
    assert (caught.value.where, caught.value.why) == ("line 2, column Fee", "'abc' is not a fee amount")
    per_file = _inline(fee={"columns": ["Fee", "Markup"], "sign": -1, "per": "file", "amount_is_net": True},
                       signature=["Date", "Amount", "Fee"], columns={"booking_date": "Date", "amount": "Amount"},
                       currency="EUR")
    data = b"Date,Amount,Fee,Markup\n2026-11-23,9.70,0.20,0.10\n2026-11-24,-5.00,,\n2026-11-24,4.90,0.10,\n"
    [st_] = CsvProfileParser(per_file).parse(data, Path("a.csv")).statements
    assert st_.lines.select("amount_minor", "remittance", "location").rows() == [
        (1000, None, "line 2"), (-500, None, "line 3"), (500, None, "line 4"), (-40, "fee", "lines 2-4")]
    assert st_.lines["amount_minor"].sum() == 970 - 500 + 490  # the net total is kept
    with pytest.raises(InputError) as caught:
        CsvProfileParser(per_file).parse(data.replace(b"Markup", b"Other"), Path("a.csv"))
    assert (caught.value.where, caught.value.why) == ("header", "fee column 'Markup' not found")


SEEDS = [
    b"Credit Card Number: 1234\nDate,Description,Amount,Balance\n2020-01-10,A,-15.5,-35.5\n2020-01-15,B,30,-5.5\n",
    b'"12/15/2018","Your payment","EUR","1,525.00","-1,000.00","Azure Interior","","INV0001"\n',
    b'"Date","Label","Amount","Balance","Partner Name","Bank Account"\n"12/15/2018","A","-33.50","-23.50","J",""\n',
    # PayPal fee lines, Revolut dates without a year, ING NL balance history, ING NL strict quoting
    (b'"Fecha","Hora","Zona horaria","Descripci\xc3\xb3n","Divisa","Bruto","Comisi\xc3\xb3n","Neto","Saldo",'
    b'"Id. de transacci\xc3\xb3n"\n"2/1/2020","11:05:56","CET","P","EUR","49,37","-1,78","47,59","4.626,81","TID1"\n'),
    (b"Completed Date;Reference;Paid Out (EUR);Paid In (EUR);Exchange Out;Exchange In; Balance (EUR);Category\n"
    b"September 15;Shop A;21.97;;GBP 19.35;;139.78;groceries\n2018 June 28;In;;140.00;;;140.00;general\n"),
    b'"Datum","Boeksaldo","Valutair saldo"\n"2020-05-30","13,20","13,20"\n"2020-05-29","0,00","0,00"\n',
    (b'"Datum","Naam / Omschrijving","Rekening","Tegenrekening","Code","Af Bij","Bedrag (EUR)","Mededelingen"\n'
    b'"20200213","K","NL99INGB9999999999","","DV","Af","1,25", "x"\n'),
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SEEDS), st.integers(0, 120), st.integers(0, 12), st.binary(max_size=6))
def test_mutated_balance_and_headerless_files_raise_only_input_errors(seed: bytes, start: int, length: int,
                                                                      junk: bytes) -> None:
    start = min(start, len(seed))
    try:
        parse_bytes(seed[:start] + junk + seed[start + length:], Path("fuzz.csv"))
    except InputError:
        pass
