"""OFX/QFX against the corpus (MANIFEST.md values), ofxparse as a cross-check, and inline quirks."""

from __future__ import annotations

import io
import warnings
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconcile.errors import InputError
from reconcile.parsers import parse_bytes, parse_file
from tests.parsers.golden import check_golden

READABLE = [
    "ofx/beancount-import/checking-emptyledgerbal.ofx",
    "ofx/beangulp/2013-12-03.bofa.ofx",
    "ofx/beangulp/example.qbo",
    "ofx/oca/test_ofx_iban.ofx",
    "ofx/ofxparse/anzcc.ofx",
    "ofx/ofxparse/bank_small.ofx",
    "ofx/ofxparse/checking.ofx",
    "ofx/ofxparse/multiple_accounts2.ofx",
    "ofx/ofxparse/ofx-v102-empty-tags.ofx",
    "ofx/ofxtools/br_nubank_cc.ofx",
    "ofx/ofxtools/stmtrs.ofx",
    "ofx/tryton/OFX.txt",
]


@pytest.mark.parametrize("relative", READABLE)
def test_corpus_file_matches_its_golden_output(corpus: Path, relative: str) -> None:
    check_golden(corpus, relative)


@pytest.mark.parametrize(
    ("relative", "why"),
    [
        ("ofx/ofxparse/account_listing_aggregation.ofx", "an account listing with no statements"),
        ("ofx/ofxparse/error_message.ofx", "error 2000: General Server Error"),
        ("ofx/ofxparse/signon_fail.ofx", "error 15500: Your request could not be processed"),
        ("ofx/ofxparse/fidelity.ofx", "an investment statement"),
        ("ofx/ofxparse/fidelity-savings.ofx", "an investment statement"),
        ("ofx/ofxparse/fail_nice/date_missing.ofx", "DTPOSTED"),
        ("ofx/ofxparse/fail_nice/decimal_error.ofx", "is not a date"),
    ],
)
def test_corpus_file_is_refused_with_a_clear_reason(corpus: Path, relative: str, why: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_file(corpus / relative)
    assert why in caught.value.why


def test_manifest_values(corpus: Path) -> None:
    [anz] = parse_file(corpus / "ofx/ofxparse/anzcc.ofx").statements
    assert (anz.account, anz.currency, anz.lines.height, anz.closing_minor) == ("1234123412341234", "AUD", 1, -12345)
    assert anz.lines["amount_minor"].sum() == -550
    [checking] = parse_file(corpus / "ofx/ofxparse/checking.ofx").statements
    assert (checking.account, checking.currency, checking.closing_minor) == ("1452687~7", "USD", 10099)
    assert checking.lines["amount_minor"].sum() == -5950
    accounts = parse_file(corpus / "ofx/ofxparse/multiple_accounts2.ofx").statements
    assert [(s.account, s.closing_minor, s.lines.height) for s in accounts] == [("9100", 11100, 0), ("9200", 22200, 0)]
    [empty_tags] = parse_file(corpus / "ofx/ofxparse/ofx-v102-empty-tags.ofx").statements
    assert empty_tags.account == "12345678" and empty_tags.closing_minor is None
    assert empty_tags.warnings == ("CURDEF is empty: the currency is taken from each transaction",)
    assert parse_file(corpus / "ofx/ofxparse/bank_small.ofx").statements == []
    [ledger] = parse_file(corpus / "ofx/beancount-import/checking-emptyledgerbal.ofx").statements
    assert ledger.closing_minor is None and ledger.lines.height == 3


@pytest.mark.parametrize("relative", ["ofx/ofxparse/checking.ofx", "ofx/ofxtools/stmtrs.ofx", "ofx/beangulp/2013-12-03.bofa.ofx"])
def test_agrees_with_ofxparse_where_ofxparse_reads_the_file(corpus: Path, relative: str) -> None:
    import ofxparse

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = ofxparse.OfxParser.parse(io.BytesIO((corpus / relative).read_bytes()))
    ours = parse_file(corpus / relative).statements
    expected = sorted((t.id, Decimal(t.amount)) for a in reference.accounts for t in a.statement.transactions)
    got = sorted((r["source_ref"], Decimal(r["amount_minor"]).scaleb(-2)) for s in ours for r in s.lines.rows(named=True))
    assert got == expected


def _ofx(transactions: str, header: bytes = b"OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\nCHARSET:1252\n\n",
         encoding: str = "cp1252") -> bytes:
    body = (
        "<OFX><BANKMSGSRSV1><STMTTRNRS><STMTRS><CURDEF>EUR<BANKACCTFROM><BANKID>1<ACCTID>NL91ABNA0417164300"
        "</BANKACCTFROM><BANKTRANLIST><DTSTART>20261101<DTEND>20261130" + transactions +
        "</BANKTRANLIST><LEDGERBAL><BALAMT/><DTASOF>20261130</LEDGERBAL></STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>"
    )
    return header + body.encode(encoding)


def test_sgml_quirks_cp1252_local_day_and_empty_balance() -> None:
    txn = ("<STMTTRN><TRNTYPE>credit<DTPOSTED>20261123000000.000[-5:EST]<TRNAMT>1234,50<FITID>F1"
           "<NAME>Café Müller<MEMO>INV-1</STMTTRN>")
    [st_] = parse_bytes(_ofx(txn) + b"\ntrailing text after the document", Path("bank.ofx")).statements
    line = st_.lines.row(0, named=True)
    assert (line["booking_date"], line["amount_minor"], line["counterparty_name"]) == (date(2026, 11, 23), 123450, "Café Müller")
    assert (line["bank_code"], st_.closing_minor, st_.currency) == ("CREDIT", None, "EUR")


def test_xml_utf8_body_and_headerless() -> None:
    txn = "<STMTTRN><TRNTYPE>DEBIT</TRNTYPE><DTPOSTED>20261123</DTPOSTED><TRNAMT>-5.00</TRNAMT><FITID>X1</FITID><NAME>Łódź Ltd</NAME></STMTTRN>"
    xml = _ofx(txn, b'<?xml version="1.0" encoding="UTF-8"?><?OFX OFXHEADER="200" VERSION="211"?>', "utf-8")
    [st_] = parse_bytes(xml, Path("a.ofx")).statements
    assert st_.lines.row(0, named=True)["amount_minor"] == -500
    assert st_.lines.row(0, named=True)["counterparty_name"] == "Łódź Ltd"
    headerless = _ofx(txn.replace("Łódź", "Lodz"), b"")
    assert parse_bytes(headerless, Path("b.ofx")).statements[0].lines.height == 1


def test_bad_amount_names_the_line() -> None:
    txn = "<STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20261123<TRNAMT>$120<FITID>X1</STMTTRN>"
    with pytest.raises(InputError) as caught:
        parse_bytes(_ofx(txn), Path("bad.ofx"))
    assert caught.value.where == "line 6" and "TRNAMT '$120' is not an amount" in caught.value.why


VALID = _ofx("<STMTTRN><TRNTYPE>CREDIT<DTPOSTED>20261123<TRNAMT>10.00<FITID>A</STMTTRN>")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(VALID) - 1), st.integers(0, 30), st.binary(max_size=8))
def test_mutated_files_raise_only_input_errors(start: int, length: int, junk: bytes) -> None:
    try:
        parse_bytes(VALID[:start] + junk + VALID[start + length:], Path("fuzz.ofx"))
    except InputError:
        pass
