"""OFX/QFX: every corpus file (golden output + MANIFEST.md values, or its clear refusal), inline quirks,
ofxparse as an independent cross-check, and a fuzz test that only InputError ever escapes."""

from __future__ import annotations

import io
import re
import warnings
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconcile.core.errors import InputError
from reconcile.parsers import detect, parse_bytes, parse_file
from reconcile.parsers.base import ParsedFile
from reconcile.parsers.ofx import OfxParser, parse_amount
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

# (file, where, part of the reason)
REFUSED = [
    ("ofx/ofxparse/account_listing_aggregation.ofx", "line 23", "account listing, no statements"),
    ("ofx/ofxparse/error_message.ofx", "line 20 (STMTTRNRS/STATUS)", "error 2000: General Server Error"),
    ("ofx/ofxparse/signon_fail.ofx", "line 11 (SONRS/STATUS)",
     "sign-on failed: error 15500: Your request could not be processed because you supplied an invalid"),
    ("ofx/ofxparse/fidelity.ofx", "line 11", "investment statements are not bank statements"),
    ("ofx/ofxparse/fidelity-savings.ofx", "line 36", "investment statements are not bank statements"),
    ("ofx/ofxparse/fail_nice/date_missing.ofx", "line 33", "transaction 184997056: DTPOSTED is missing (and 2 more"),
    ("ofx/ofxparse/fail_nice/decimal_error.ofx", "line 34", "TRNAMT '$120' is not an amount"),
    # CURDEF, BANKACCTFROM and one DTPOSTED/TRNAMT/FITID are commented out: OCA rejects it, so do we
    ("ofx/oca/test_ofx_wrong.ofx", "line 21", "<STMTRS> has no BANKACCTFROM/ACCTID"),
]


def test_every_ofx_corpus_file_is_covered(corpus: Path) -> None:
    on_disk = {str(p.relative_to(corpus)) for p in (corpus / "ofx").rglob("*") if p.is_file()}
    assert on_disk == set(READABLE) | {r[0] for r in REFUSED}


@pytest.mark.parametrize("relative", READABLE)
def test_corpus_file_matches_its_golden_output(corpus: Path, relative: str) -> None:
    assert detect((corpus / relative).read_bytes(), corpus / relative).name == "ofx"
    check_golden(corpus, relative)


@pytest.mark.parametrize(("relative", "where", "why"), REFUSED)
def test_corpus_file_is_refused_with_a_clear_reason(corpus: Path, relative: str, where: str, why: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_file(corpus / relative)
    assert (caught.value.path, caught.value.where) == (str(corpus / relative), where)
    assert why in caught.value.why


def summary(parsed: ParsedFile) -> list[tuple]:
    """(account, currency, line count, sum of amounts, closing balance) per statement, in minor units."""
    return [(s.account, s.currency, s.lines.height, s.lines["amount_minor"].sum(), s.closing_minor)
            for s in parsed.statements]


# MANIFEST.md "observed" column: account, currency, STMTTRN count, sum, LEDGERBAL (minor units)
MANIFEST = {
    "ofx/ofxparse/anzcc.ofx": [("1234123412341234", "AUD", 1, -550, -12345)],
    "ofx/ofxparse/checking.ofx": [("1452687~7", "USD", 3, -5950, 10099)],
    "ofx/ofxparse/multiple_accounts2.ofx": [("9100", "USD", 0, 0, 11100), ("9200", "USD", 0, 0, 22200)],
    "ofx/ofxparse/ofx-v102-empty-tags.ofx": [("12345678", "AUD", 1, 1234, None)],
    "ofx/ofxparse/bank_small.ofx": [],
    "ofx/ofxtools/br_nubank_cc.ofx": [("11111111-UUID-UUID-UUID-111111111111", "BRL", 6, -128091, -128091)],
    "ofx/ofxtools/stmtrs.ofx": [("999988", "USD", 2, -50000, 20029)],
    "ofx/oca/test_ofx_iban.ofx": [("12345678901", "USD", 4, -36000, 215656), ("123412341234", "USD", 0, 0, -56200)],
    "ofx/beangulp/2013-12-03.bofa.ofx": [("379700001111222", "USD", 27, -98926, -209301)],
    "ofx/beangulp/example.qbo": [("011016298027", "CAD", 10, -12048, 36862), ("122384459041", "CAD", 4, -43782, 246887),
                                 ("2542393734236684", "CAD", 9, -13351, 0)],
    "ofx/tryton/OFX.txt": [("01234567890", "EUR", 1, 10000, 50000)],
    "ofx/beancount-import/checking-emptyledgerbal.ofx": [("1452687~7", "USD", 3, -5950, None)],
}


@pytest.mark.parametrize("relative", sorted(MANIFEST))
def test_manifest_statement_values(corpus: Path, relative: str) -> None:
    assert summary(parse_file(corpus / relative)) == MANIFEST[relative]


def test_manifest_line_values(corpus: Path) -> None:
    [tryton] = parse_file(corpus / "ofx/tryton/OFX.txt").statements
    line = tryton.lines.row(0, named=True)
    assert (line["source_ref"], line["booking_date"], line["amount_minor"]) == ("0001", date(2018, 2, 21), 10000)
    assert (line["remittance"], line["counterparty_name"], line["bank_code"]) == (
        "COMMUNICATION", "MICHAEL SCOTT PAPER COMPANY", "CREDIT")
    [ledger] = parse_file(corpus / "ofx/beancount-import/checking-emptyledgerbal.ofx").statements
    assert ledger.lines.select("booking_date", "amount_minor", "source_ref", "reference").rows() == [
        (date(2011, 3, 31), 1, "0000486", None), (date(2011, 4, 5), -3451, "0000487", None),
        (date(2011, 4, 7), -2500, "0000488", "319")]
    [empty_tags] = parse_file(corpus / "ofx/ofxparse/ofx-v102-empty-tags.ofx").statements
    assert empty_tags.warnings == ("CURDEF is empty: the currency is taken from each transaction",)
    assert empty_tags.lines["source_ref"][0].startswith("h:")  # empty FITID: content hash
    [amex] = parse_file(corpus / "ofx/beangulp/2013-12-03.bofa.ofx").statements
    assert "BARNES & NOBLE 2675 NEW YORK" in amex.lines["counterparty_name"].to_list()  # &amp; decoded
    [nubank] = parse_file(corpus / "ofx/ofxtools/br_nubank_cc.ofx").statements
    assert (nubank.period_start, nubank.period_end) == (date(2024, 2, 24), date(2024, 3, 26))


@pytest.mark.parametrize("relative", ["ofx/ofxparse/checking.ofx", "ofx/ofxtools/stmtrs.ofx",
                                      "ofx/beangulp/2013-12-03.bofa.ofx", "ofx/beangulp/example.qbo",
                                      "ofx/oca/test_ofx_iban.ofx", "ofx/ofxtools/br_nubank_cc.ofx"])
def test_agrees_with_ofxparse_where_ofxparse_reads_the_file(corpus: Path, relative: str) -> None:
    import ofxparse

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = ofxparse.OfxParser.parse(io.BytesIO((corpus / relative).read_bytes()))
    expected = sorted((a.account_id, t.id, Decimal(t.amount)) for a in reference.accounts
                      for t in a.statement.transactions)
    got = sorted((s.account, r["source_ref"], Decimal(r["amount_minor"]).scaleb(-2))
                 for s in parse_file(corpus / relative).statements for r in s.lines.rows(named=True))
    assert got == expected


SGML_HEADER = b"OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\nENCODING:USASCII\nCHARSET:1252\n\n"
XML_HEADER = b'<?xml version="1.0" encoding="UTF-8"?>\n<?OFX OFXHEADER="200" VERSION="211"?>\n'


def bank(transactions: str, account: str = "NL91ABNA0417164300", currency: str = "EUR",
         balance: str = "<BALAMT>10.00") -> str:
    return (f"<STMTTRNRS><STATUS><CODE>0<SEVERITY>INFO</STATUS><STMTRS><CURDEF>{currency}\n<BANKACCTFROM>"
            f"<BANKID>1<ACCTID>{account}</BANKACCTFROM>\n<BANKTRANLIST><DTSTART>20261101<DTEND>20261130\n"
            f"{transactions}</BANKTRANLIST>\n<LEDGERBAL>{balance}<DTASOF>20261130</LEDGERBAL></STMTRS></STMTTRNRS>")


def ofx(body: str, header: bytes = SGML_HEADER, encoding: str = "cp1252", trailer: str = "") -> bytes:
    return header + f"<OFX><BANKMSGSRSV1>{body}</BANKMSGSRSV1></OFX>{trailer}".encode(encoding)


def txn(amount: str = "10.00", fitid: str = "F1", posted: str = "20261123", extra: str = "") -> str:
    return f"<STMTTRN>\n<TRNTYPE>credit<DTPOSTED>{posted}<TRNAMT>{amount}<FITID>{fitid}{extra}\n</STMTTRN>\n"


def one_line(data: bytes) -> dict:
    [statement] = parse_bytes(data, Path("t.ofx")).statements
    return statement.lines.row(0, named=True)


def test_cp1252_body_with_text_after_the_document() -> None:
    data = ofx(bank(txn(extra="<NAME>Café Müller – Söhne<MEMO>INV-1")), trailer="\n\x00garbage after </OFX>")
    line = one_line(data)
    assert (line["counterparty_name"], line["remittance"], line["bank_code"]) == (
        "Café Müller – Söhne", "INV-1", "CREDIT")


def test_utf8_xml_with_non_ascii_payee_and_unusual_encoding_header() -> None:
    body = bank("<STMTTRN><TRNTYPE>DEBIT</TRNTYPE><DTPOSTED>20261123</DTPOSTED><TRNAMT>-5.00</TRNAMT>"
                "<FITID>X1</FITID><PAYEE><NAME>Łódź Spółka</NAME><CITY>Łódź</CITY></PAYEE><MEMO></MEMO></STMTTRN>")
    header = XML_HEADER.replace(b"UTF-8", b"x-mac-roman-ish")
    line = one_line(ofx(body, header, "utf-8"))
    assert (line["counterparty_name"], line["amount_minor"], line["remittance"]) == ("Łódź Spółka", -500, None)


def test_headerless_file_with_bom_and_leading_blank_lines() -> None:
    data = b"\xef\xbb\xbf\r\n\r\n" + ofx(bank(txn()), header=b"")
    assert detect(data, Path("x.txt")).name == "ofx"
    assert one_line(data)["amount_minor"] == 1000


def test_unclosed_leaf_tags_in_a_file_with_an_xml_header() -> None:
    body = bank("<STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20261123<TRNAMT>-7.25</TRNAMT><FITID>X1<NAME>ACME</STMTTRN>")
    line = one_line(ofx(body, XML_HEADER, "utf-8"))
    assert (line["source_ref"], line["amount_minor"], line["counterparty_name"]) == ("X1", -725, "ACME")


def test_empty_and_self_closing_tags() -> None:
    data = ofx(bank(txn(extra="<NAME></NAME><MEMO/><REFNUM>R-9"), balance="<BALAMT/>"))
    [statement] = parse_bytes(data, Path("t.ofx")).statements
    line = statement.lines.row(0, named=True)
    assert statement.closing_minor is None and statement.opening_minor is None
    assert (line["counterparty_name"], line["remittance"], line["reference"]) == (None, None, "R-9")


def test_dates_keep_the_banks_local_day() -> None:
    data = ofx(bank(txn(posted="20120720000000.000[-4:EDT]", extra="<DTAVAIL>20120721235959[+12:NZST]")))
    line = one_line(data)
    assert (line["booking_date"], line["value_date"]) == (date(2012, 7, 20), date(2012, 7, 21))


def test_several_statements_and_a_credit_card_in_one_file() -> None:
    card = ("<CREDITCARDMSGSRSV1><CCSTMTTRNRS><STATUS><CODE>0<SEVERITY>INFO</STATUS><CCSTMTRS><CURDEF>usd"
            "<CCACCTFROM><ACCTID>4111111111111111</CCACCTFROM><BANKTRANLIST><DTSTART>20261101<DTEND>20261130"
            + txn("-19.99", "C1") + "<LEDGERBAL><BALAMT>-19.99<DTASOF>20261130</LEDGERBAL></CCSTMTRS>"
            "</CCSTMTTRNRS></CREDITCARDMSGSRSV1>")
    body = (bank(txn("1.00", "A1") + txn("2.00", "A2"), account="111")
            + bank(txn("3", "B1"), account="222", currency="JPY"))
    data = SGML_HEADER + f"<OFX><BANKMSGSRSV1>{body}</BANKMSGSRSV1>{card}</OFX>".encode()
    parsed = parse_bytes(data, Path("t.qfx"))
    assert summary(parsed) == [("111", "EUR", 2, 300, 1000), ("222", "JPY", 1, 3, 10),
                               ("4111111111111111", "USD", 1, -1999, -1999)]
    assert [s.location for s in parsed.statements] == ["line 7", "line 17", "line 24"]


def test_omitted_end_tags_are_implied_like_sgml() -> None:
    # no </BANKTRANLIST> and no </STMTTRN>: LEDGERBAL still belongs to the statement, both lines are read
    body = ("<STMTTRNRS><STMTRS><CURDEF>EUR<BANKACCTFROM><ACCTID>1</BANKACCTFROM><BANKTRANLIST>"
            "<STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20261101<TRNAMT>-1<FITID>a"
            "<STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20261102<TRNAMT>-2<FITID>b"
            "<LEDGERBAL><BALAMT>7<DTASOF>20261130</LEDGERBAL></STMTRS></STMTTRNRS>")
    assert summary(parse_bytes(ofx(body), Path("t.ofx"))) == [("1", "EUR", 2, -300, 700)]


@pytest.mark.parametrize(("text", "minor"), [
    ("-5.50", -550), ("+12", 1200), (".5", 50), ("-,5", -50), ("12,34", 1234), ("1,234.56", 123456),
    ("1.234,56", 123456), ("-1,234,567.8", -123456780), (" 7. ", 700), ("-00000000001500.0000", -150000),
])
def test_amounts_are_exact(text: str, minor: int) -> None:
    assert parse_amount(text, "USD") == minor


@pytest.mark.parametrize(("text", "why"), [
    ("$120", "is not an amount"), ("1,234", "more decimals than USD allows"), ("1 234.00", "is not an amount"),
    ("12.3.4", "is not an amount"), ("1e5", "is not an amount"), ("", "TRNAMT is missing"),
    ("+00000000000115.8331", "more decimals than USD allows"), ("9" * 30, "beyond what the ledger holds"),
])
def test_bad_amounts_are_refused(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why.replace("$", r"\$")):
        parse_amount(text, "USD")


def test_bad_amount_names_the_transaction_line() -> None:
    data = ofx(bank(txn() + txn("$120", "F2")))
    with pytest.raises(InputError) as caught:
        parse_bytes(data, Path("bad.ofx"))
    assert caught.value.where == "line 13"
    assert caught.value.why == "transaction F2: TRNAMT '$120' is not an amount"


def test_bad_dates_are_refused_naming_the_line() -> None:
    data = ofx(bank(txn(posted="2026-11-23") + txn(posted="20261131", fitid="F2")))
    with pytest.raises(InputError) as caught:
        parse_bytes(data, Path("bad.ofx"))
    assert caught.value.where == "line 10"
    assert "DTPOSTED '2026-11-23' is not a date" in caught.value.why
    assert "1 more problem(s), next at line 13: transaction F2: DTPOSTED '20261131' is not a date" in caught.value.why


def test_transaction_currency_and_original_currency() -> None:
    own = txn("-10.00", "F1", extra="<CURRENCY><CURRATE>1.1<CURSYM>usd</CURRENCY>")
    converted = txn("-9.00", "F2", extra="<ORIGCURRENCY><CURRATE>0.9<CURSYM>GBP</ORIGCURRENCY>")
    [statement] = parse_bytes(ofx(bank(own + converted)), Path("t.ofx")).statements
    assert statement.lines.select("currency", "amount_minor", "instructed_currency", "exchange_rate").rows() == [
        ("USD", -1000, None, "1.1"), ("EUR", -900, "GBP", "0.9")]


def test_empty_fitids_get_content_refs_that_count_repeats() -> None:
    same = txn(fitid="", extra="<NAME>Coffee")
    [statement] = parse_bytes(ofx(bank(same + same)), Path("t.ofx")).statements
    refs = statement.lines["source_ref"].to_list()
    assert refs[0].endswith("/1") and refs[1].endswith("/2") and refs[0][:-2] == refs[1][:-2]
    again = parse_bytes(ofx(bank(same + same)), Path("t.ofx")).statements[0].lines["source_ref"].to_list()
    assert again == refs


def test_a_fitid_reused_for_another_transaction_is_told_apart_and_reported() -> None:
    [statement] = parse_bytes(ofx(bank(txn("1", "DUP") + txn("2", "DUP"))), Path("t.ofx")).statements
    first, second = statement.lines["source_ref"].to_list()
    assert first == "DUP" and re.fullmatch(r"DUP#[0-9a-f]{12}", second)
    assert statement.warnings == (("reference repeated in the file for different transactions: DUP; each later "
                                   "one is stored under the reference with a '#' suffix"),)


def test_xml_comments_and_entities() -> None:
    body = bank("<!-- <STMTTRN><TRNAMT>-99</TRNAMT></STMTTRN>\n --><STMTTRN><TRNTYPE>DEBIT</TRNTYPE>"
                "<!-- <TRNAMT>-98</TRNAMT> --><DTPOSTED>20261123</DTPOSTED><TRNAMT>-1.00</TRNAMT><FITID>X</FITID>"
                "<NAME>AT&amp;T &lt;US&gt; &#233;</NAME></STMTTRN>")
    line = one_line(ofx(body, XML_HEADER, "utf-8"))
    assert (line["amount_minor"], line["counterparty_name"], line["location"]) == (-100, "AT&T <US> é", "line 7")


def test_truncated_file_is_refused() -> None:
    data = ofx(bank(txn()))
    cut = data[: data.index(b"</STMTTRN>")]
    with pytest.raises(InputError, match="<STMTTRN> is never closed: the file looks truncated"):
        parse_bytes(cut, Path("cut.ofx"))


def test_investment_statement_beside_a_bank_statement_is_skipped_with_a_warning() -> None:
    investment = ("<INVSTMTMSGSRSV1><INVSTMTTRNRS><INVSTMTRS><CURDEF>USD<INVACCTFROM><ACCTID>X1</INVACCTFROM>"
                  "</INVSTMTRS></INVSTMTTRNRS></INVSTMTMSGSRSV1>")
    data = SGML_HEADER + f"<OFX><BANKMSGSRSV1>{bank(txn())}</BANKMSGSRSV1>{investment}</OFX>".encode()
    [statement] = parse_bytes(data, Path("t.ofx")).statements
    assert statement.warnings == ("investment statements in this file were skipped (INVSTMTRS)",)


@pytest.mark.parametrize(("head", "claimed"), [
    (b"OFXHEADER:100\nDATA:OFXSGML", True),
    (b"\xef\xbb\xbf  \r\n<OFX>\n<SIGNONMSGSRSV1>", True),
    (XML_HEADER + b"<OFX>", True),
    (b"<?xml version='1.0'?>\n<Document xmlns='urn:iso:std:iso:20022:tech:xsd:camt.053.001.02'>", False),
    (b"id,booking_date,amount\n1,2026-11-23,<OFX>", False),
    (b":20:STARTUMSE\n:25:1234", False),
])
def test_sniff(head: bytes, claimed: bool) -> None:
    assert OfxParser().sniff(head, Path("f")) is claimed


def test_sniff_claims_exactly_the_ofx_files_of_the_corpus(corpus: Path) -> None:
    files = [p for p in corpus.rglob("*") if p.is_file() and p.parent != corpus]
    claimed = {p for p in files if OfxParser().sniff(p.read_bytes()[:65536], p)}
    assert claimed == {p for p in files if p.relative_to(corpus).parts[0] == "ofx"}


VALID = ofx(bank(txn(extra="<NAME>Café<MEMO>x") + txn("-2,50", "F2")), XML_HEADER, "cp1252")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(VALID)), st.integers(0, 40), st.binary(max_size=12), st.booleans())
def test_mutated_or_truncated_files_raise_only_input_errors(start: int, length: int, junk: bytes,
                                                              truncate: bool) -> None:
    data = VALID[:start] if truncate else VALID[:start] + junk + VALID[start + length:]
    try:
        parsed = parse_bytes(data, Path("fuzz.ofx"))
    except InputError as exc:
        assert exc.path == "fuzz.ofx" and exc.why
    else:
        assert all(s.lines["amount_minor"].is_not_null().all() for s in parsed.statements)
