"""The rules every format shares (parsers/base.py, applied by registry.parse_bytes): control characters
and out-of-range amounts refused with file, position and reason; one distinct source_ref per
transaction; the calendar a date-time booking belongs to. Also CAMT's amount grammar in both paths."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from reconcile.core import frames
from reconcile.core.errors import InputError
from reconcile.parsers import camt_fast, parse_bytes, parse_file
from reconcile.parsers.base import (
    IBAN_COUNTRY_ZONES,
    ParsedFile,
    ParseOptions,
    Statement,
    booking_zone,
    check_parsed,
    decimal_minor,
    distinct_source_refs,
    lines_frame,
)

GENERIC_HEADER = "id,booking_date,value_date,amount,currency,counterparty_name,counterparty_account,remittance\n"


def refusal(data: bytes, name: str) -> tuple[str | None, str | None, str]:
    with pytest.raises(InputError) as caught:
        parse_bytes(data, Path(name), ParseOptions.builtin())
    return caught.value.path, caught.value.where, caught.value.why


def mt940(line61: str, details: str = ":86:text\n") -> bytes:
    return (":20:REF\n:25:NL91ABNA0417164300\n:28C:1/1\n:60F:C260301EUR0,00\n" + line61 + "\n" + details
            + "-\n").encode("utf-8")


def ofx(name: str = "ACME", amount: str = "-1.00") -> bytes:
    return ("OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\n\n<OFX><BANKMSGSRSV1><STMTTRNRS><STMTRS><CURDEF>USD"
            "<BANKACCTFROM><BANKID>1<ACCTID>9<ACCTTYPE>CHECKING</BANKACCTFROM><BANKTRANLIST>"
            f"<STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20260301<TRNAMT>{amount}<FITID>F1<NAME>{name}</STMTTRN>"
            "</BANKTRANLIST></STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>\n").encode()


def bai2(detail: str, amount: int) -> bytes:
    return (f"01,S,R,260301,0000,1,,,2/\n02,R,S,1,260301,,USD,2/\n03,1,USD/\n{detail}\n49,{amount},3/\n"
            f"98,{amount},1,5/\n99,{amount},1,7/\n").encode()


def camt(entry: str, balance: str = '<Amt Ccy="EUR">100.00</Amt><CdtDbtInd>CRDT</CdtDbtInd>') -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">'
            "<BkToCstmrStmt><GrpHdr><MsgId>M</MsgId><CreDtTm>2026-03-02T06:00:00</CreDtTm></GrpHdr><Stmt><Id>S</Id>"
            "<Acct><Id><IBAN>NL91ABNA0417164300</IBAN></Id><Ccy>EUR</Ccy></Acct>"
            f"<Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp>{balance}<Dt><Dt>2026-03-01</Dt></Dt></Bal>"
            f"{entry}</Stmt></BkToCstmrStmt></Document>").encode()


def entry(amount: str = "10.00", indicator: str = "DBIT", ref: str = "A1") -> str:
    return (f'<Ntry><Amt Ccy="EUR">{amount}</Amt><CdtDbtInd>{indicator}</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>'
            f"<BookgDt><Dt>2026-03-01</Dt></BookgDt><AcctSvcrRef>{ref}</AcctSvcrRef></Ntry>")


# --- control characters -----------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "name", "where", "why"), [
    (mt940(":61:2603010301D1,00NTRFNONREF", ":86:paid\u009b twice\n"), "x.sta", "line 5",
     "remittance: control character U+009B"),
    (ofx(name="AC\x00ME"), "x.ofx", "line 5", "counterparty name: control character U+0000"),
    (bai2("16,475,100,,REF,,PAYEE\x1bX/", 100), "x.bai", "line 4", "remittance: control character U+001B"),
    (camt(entry().replace("</Ntry>", "<AddtlNtryInf>fee \u009b</AddtlNtryInf></Ntry>")), "x.xml",
     "Stmt[1]/Ntry[1]", "remittance: control character U+009B"),
    ((GENERIC_HEADER + "1,2026-03-01,,10.00,EUR,ACME\x07,,inv 1\n").encode(), "x.csv", "line 2",
     "counterparty name: control character U+0007"),
])
def test_control_characters_in_text_are_refused_naming_file_line_and_field(
        data: bytes, name: str, where: str, why: str) -> None:
    path, found_where, found_why = refusal(data, name)
    assert (path, found_where) == (name, where)
    assert found_why.startswith(why)


def test_tab_cr_and_lf_are_no_control_characters_to_refuse() -> None:
    [statement] = parse_bytes(ofx(name="AC\tME"), Path("x.ofx")).statements
    assert statement.lines["counterparty_name"][0] == "AC\tME"


# --- amounts the ledger cannot hold -----------------------------------------------------------------

@pytest.mark.parametrize(("data", "name", "where"), [
    (mt940(":61:2603010301C1000000000000000,00NTRFNONREF"), "x.sta", "line 5"),
    (mt940(":61:2603010301C" + "9" * 40 + ",NTRFNONREF"), "x.sta", "line 5"),  # beyond Int64, too
    (ofx(amount="-1000000000000000.00"), "x.ofx", "line 5"),
    (bai2("16,175,100000000000000000,,REF,,X/", 100000000000000000), "x.bai", "line 4"),
    ((GENERIC_HEADER + "1,2026-03-01,,-1000000000000000,EUR,ACME,,inv 1\n").encode(), "x.csv", "line 2"),
])
def test_amounts_of_ten_to_the_fifteen_or_more_are_refused(data: bytes, name: str, where: str) -> None:
    path, found_where, why = refusal(data, name)
    assert (path, found_where) == (name, where)
    assert "is beyond what the ledger holds (amounts below 10^15" in why


def test_the_largest_amount_the_ledger_holds_is_taken() -> None:
    [line] = parse_bytes(mt940(":61:2603010301C999999999999999,99NTRFNONREF"), Path("x.sta")).statements[0].lines.rows(
        named=True)
    assert line["amount_minor"] == 10 ** 17 - 1


def test_a_balance_beyond_the_ledger_is_refused_at_its_statement() -> None:
    huge = 10 ** 17  # minor units: 10^15 USD
    data = bai2("16,175,1,,REF,,X/", huge + 1).replace(b"03,1,USD/", f"03,1,USD,010,{huge},,/".encode())
    assert refusal(data, "x.bai")[1:] == ("line 3", ("opening balance: 1000000000000000.00 USD is beyond what the "
                                                     "ledger holds (amounts below 10^15 USD)"))
    with pytest.raises(InputError, match="closing balance: -1000000000000000.000 KWD is beyond"):
        check_parsed(ParsedFile("x", [Statement("A", "KWD", frames.empty(frames.BANK_LINES), closing_minor=-10 ** 18,
                                                location="line 9")]), Path("x"))


@pytest.mark.parametrize(("text", "currency", "minor"), [
    ("12.5", "EUR", 1250), ("-0.10", "EUR", -10), (".5", "EUR", 50), ("7.", "JPY", 7), ("+3", "KWD", 3000),
    ("000999999999999999.990", "EUR", 10 ** 17 - 1),
])
def test_decimal_minor_converts_exactly(text: str, currency: str, minor: int) -> None:
    assert decimal_minor(text, currency) == minor


@pytest.mark.parametrize(("text", "why"), [
    ("1e3", "is not a plain decimal number"), (".", "is not a plain decimal number"), ("", "is not a plain"),
    ("1.001", "has more decimals than EUR allows"), ("1000000000000000", "is beyond what the ledger holds"),
    ("9" * 5000, "...(5000 characters) EUR is beyond what the ledger holds"),
])
def test_decimal_minor_refuses_with_the_reason(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=re.escape(why)):
        decimal_minor(text, "EUR")


# --- CAMT amounts: schema grammar, sign, size; the same in the fast and the slow path -------------------

def both_paths(data: bytes, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str | None, str]]:
    outcomes = []
    for fast in (True, False):
        with monkeypatch.context() as patch:
            if not fast:
                patch.setattr(camt_fast, "cut", lambda data: None)
            with pytest.raises(InputError) as caught:
                parse_bytes(data, Path("x.xml"))
            outcomes.append((caught.value.where, caught.value.why))
    return outcomes


@pytest.mark.parametrize(("amount", "why"), [
    ("-10.00", "amount '-10.00' is negative: CAMT amounts are unsigned and CdtDbtInd gives the direction"),
    ("123456789012345678901.00", "is not a valid EUR amount (more than 18 digits)"),
    ("1" * 400, "is not a valid EUR amount (more than 18 digits)"),
    ("1e309", "'1e309' is not a valid EUR amount (a plain decimal number)"),
    ("Infinity", "'Infinity' is not a valid EUR amount (a plain decimal number)"),
    ("NaN", "'NaN' is not a valid EUR amount (a plain decimal number)"),
    ("1000000000000000.00", "1000000000000000.00 EUR is beyond what the ledger holds"),
])
def test_bad_camt_amounts_are_refused_naming_the_element_in_both_paths(
        amount: str, why: str, monkeypatch: pytest.MonkeyPatch) -> None:
    data = camt(entry("1.00", ref="OK1") + entry(amount) + entry("2.00", ref="OK2"))
    fast, slow = both_paths(data, monkeypatch)
    assert fast == slow
    assert fast[0] == "Stmt[1]/Ntry[2]/Amt"
    assert why in fast[1]


def test_a_negative_detail_amount_is_refused_too(monkeypatch: pytest.MonkeyPatch) -> None:
    detail = ('<NtryDtls><TxDtls><Refs><AcctSvcrRef>D1</AcctSvcrRef></Refs><Amt Ccy="EUR">-4.00</Amt></TxDtls>'
              '<TxDtls><Refs><AcctSvcrRef>D2</AcctSvcrRef></Refs><Amt Ccy="EUR">14.00</Amt></TxDtls></NtryDtls>')
    data = camt(entry("10.00").replace("</Ntry>", detail + "</Ntry>"))
    fast, slow = both_paths(data, monkeypatch)
    assert fast == slow and fast[0] == "Stmt[1]/Ntry[1]/NtryDtls/TxDtls[1]/Amt"


def test_a_negative_balance_is_refused_with_an_indicator_and_read_as_a_debit_without_one() -> None:
    with_indicator = camt(entry(), balance='<Amt Ccy="EUR">-100.00</Amt><CdtDbtInd>CRDT</CdtDbtInd>')
    assert refusal(with_indicator, "x.xml")[1] == "Stmt[1]/Bal[1]/Amt"
    [statement] = parse_bytes(camt(entry(), balance='<Amt Ccy="EUR">-100.00</Amt>'), Path("x.xml")).statements
    assert statement.opening_minor == -10000


# --- the calendar of a date-time booking ------------------------------------------------------------

def test_every_zone_of_the_country_table_exists() -> None:
    assert {name: ZoneInfo(name).key for name in IBAN_COUNTRY_ZONES.values()}
    assert {"NL", "DE", "FR", "BE", "AT", "CH", "GB", "IT", "ES", "PT", "IE", "FI", "SE", "NO", "DK", "PL"} \
        <= IBAN_COUNTRY_ZONES.keys()


@pytest.mark.parametrize(("zones", "account", "expected"), [
    ({}, "NL91ABNA0417164300", "Europe/Amsterdam"),
    ({}, "nl91 abna 0417 1643 00", "Europe/Amsterdam"),   # written in groups
    ({}, "DE89370400440532013000", "Europe/Berlin"),
    ({}, "123456789", None),                             # not an IBAN: the day as written
    ({}, "ZZ12345678901234", None),                      # an unknown country: the day as written
    ({"*": "UTC"}, "NL91ABNA0417164300", "UTC"),          # a configured zone wins
    ({"NL91ABNA0417164300": "America/New_York"}, "NL91ABNA0417164300", "America/New_York"),
])
def test_booking_zone(zones: dict[str, str], account: str, expected: str | None) -> None:
    assert booking_zone(ParseOptions(timezones=zones), account) == expected


def test_a_utc_booking_just_before_midnight_falls_on_the_accounts_day_inside_its_period() -> None:
    late = entry().replace("<BookgDt><Dt>2026-03-01</Dt></BookgDt>",
                           "<BookgDt><DtTm>2026-03-01T23:40:00Z</DtTm></BookgDt>")
    data = camt(late).replace(b"<Acct>", b"<FrToDt><FrDtTm>2026-03-02T00:00:00+01:00</FrDtTm>"
                                         b"<ToDtTm>2026-03-02T23:59:59+01:00</ToDtTm></FrToDt><Acct>")
    [statement] = parse_bytes(data, Path("x.xml")).statements
    booked = statement.lines["booking_date"][0]
    assert booked == date(2026, 3, 2)
    assert statement.period_start <= booked <= statement.period_end
    [utc] = parse_bytes(data, Path("x.xml"), ParseOptions(timezones={"*": "UTC"})).statements
    assert utc.lines["booking_date"][0] == date(2026, 3, 1)


def test_whole_day_period_bounds_written_with_a_z_name_the_days_written() -> None:
    data = camt(entry()).replace(b"<Acct>", b"<FrToDt><FrDtTm>2026-03-01T00:00:00.000Z</FrDtTm>"
                                            b"<ToDtTm>2026-03-01T23:59:59.999Z</ToDtTm></FrToDt><Acct>")
    [statement] = parse_bytes(data, Path("x.xml")).statements
    assert (statement.period_start, statement.period_end) == (date(2026, 3, 1), date(2026, 3, 1))


# --- one distinct source_ref per transaction --------------------------------------------------------

def line(ref: str, amount: int, text: str = "x") -> dict:
    return {"source_ref": ref, "booking_date": date(2026, 3, 1), "amount_minor": amount, "currency": "EUR",
            "remittance": text, "is_reversal": False, "location": f"line {amount}"}


def parsed(*statements: list[dict], account: str = "A") -> ParsedFile:
    return ParsedFile("test", [Statement(account, "EUR", lines_frame(rows), location=f"statement {n}")
                               for n, rows in enumerate(statements)])


def refs(parsed_file: ParsedFile) -> list[list[str]]:
    return [s.lines["source_ref"].to_list() for s in parsed_file.statements]


def test_the_first_keeps_the_reference_and_a_different_transaction_gets_a_content_suffix() -> None:
    purchase, fee = line("F1", -5000, "PURCHASE"), line("F1", -150, "FOREIGN TRANSACTION FEE")
    [[first, second]] = refs(distinct_source_refs(parsed([purchase, fee])))
    assert first == "F1" and re.fullmatch(r"F1#[0-9a-f]{12}", second)
    # the suffix depends on the content only: the fee gets it wherever it sits after the purchase
    [[_, _, later]] = refs(distinct_source_refs(parsed([purchase, line("F2", 1), fee])))
    assert later == second


def test_identical_lines_are_counted_in_a_statement_and_the_same_across_statements() -> None:
    coffee = line("C1", -300)
    told_apart = distinct_source_refs(parsed([coffee, coffee, coffee], [coffee]))
    assert refs(told_apart) == [["C1", "C1#2", "C1#3"], ["C1"]]  # a statement sent twice adds nothing
    assert told_apart.statements[0].warnings == (
        ("reference repeated in the file for different transactions: C1; each later one is stored under the "
         "reference with a '#' suffix"),)
    assert told_apart.statements[1].warnings == ()


def test_other_accounts_and_unique_references_are_left_alone() -> None:
    file = ParsedFile("test", [Statement("A", "EUR", lines_frame([line("R", 1)])),
                               Statement("B", "EUR", lines_frame([line("R", 2)]))])
    assert distinct_source_refs(file) is file


def test_told_apart_references_fit_the_stored_column() -> None:
    long = "L" * 255
    [[first, second]] = refs(distinct_source_refs(parsed([line(long, 1), line(long, 2)])))
    assert first == long and len(second) == 255 and second.startswith("L" * 200) and "#" in second


def test_the_rule_runs_for_every_format_in_the_registry() -> None:
    data = ofx().replace(b"</BANKTRANLIST>", b"<STMTTRN><TRNTYPE>FEE<DTPOSTED>20260301<TRNAMT>-0.03<FITID>F1"
                                            b"<NAME>FOREIGN FEE</STMTTRN></BANKTRANLIST>")
    [statement] = parse_bytes(data, Path("x.ofx")).statements
    assert statement.lines["source_ref"].to_list()[0] == "F1"
    assert statement.lines["source_ref"].to_list()[1].startswith("F1#")


def test_empty_frames_pass() -> None:
    empty = ParsedFile("test", [replace(Statement("A", "EUR", frames.empty(frames.BANK_LINES)))])
    assert distinct_source_refs(empty) is empty


@pytest.mark.parametrize("content", [b"", b"\n", b" \t\r\n\x0b\x0c  \n"])
def test_a_file_of_nothing_but_whitespace_is_refused_as_empty(tmp_path: Path, content: bytes) -> None:
    blank = tmp_path / "blank.csv"
    blank.write_bytes(content)
    with pytest.raises(InputError) as caught:
        parse_file(blank)
    assert caught.value.why == "file is empty"


def test_a_file_with_one_visible_byte_is_read_not_refused_as_empty(tmp_path: Path) -> None:
    almost = tmp_path / "almost.csv"
    almost.write_bytes(b"\n\n x\n")
    with pytest.raises(InputError) as caught:  # read, then refused for what it is: no format claims it
        parse_file(almost)
    assert caught.value.why != "file is empty"
