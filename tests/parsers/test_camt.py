"""CAMT.053/054 against the real corpus (MANIFEST.md golden values) and small inline cases."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconcile.core.errors import InputError
from reconcile.parsers import parse_bytes, parse_file
from reconcile.parsers.base import ParseOptions
from tests.parsers.golden import check_golden

READABLE = [
    "camt053/actual/camt.053.xml",
    "camt053/genkgo/camt053.v2.all-balance-types.xml",
    "camt053/genkgo/camt053.v2.minimal.ultimate.xml",
    "camt053/genkgo/camt053.v2.minimal.xml",
    "camt053/genkgo/camt053.v2.multi.statement.xml",
    "camt053/genkgo/camt053.v2.with-party-ids.xml",
    "camt053/genkgo/camt053.v3.xml",
    "camt053/genkgo/camt053.v8.xml",
    "camt053/genkgo/camt53.only-Dt-with-DtTm.xml",
    "camt053/kedder-iso20022/davider80.xml",
    "camt053/kedder-iso20022/gcamp6.xml",
    "camt053/oca/camt053",
    "camt053/oca/test-camt053-more-than-one-xml",
    "camt053/oca/test-camt053-multi-currency",
    "camt053/oca/test-camt053-no-ntry",
    "camt053/oca/test-camt053-txdtls",
    "camt053/sebastienrousseau/statement_ac04.xml",
    "camt053/subite/LT625883379695428516/2024-03-07.xml",
    "camt053/subite/Other/account_statement-3.xml",
    "camt054/genkgo/camt054.v2.xml",
    "camt054/genkgo/camt054.v4.xml",
    "camt054/genkgo/camt054.v8-with-UETR.xml",
    "camt054/sebastienrousseau/business_sample_camt.054.001.04.xml",
    "camt054/subite/LT809872649478701594/2024-03-07.xml",
]


@pytest.mark.parametrize("relative", READABLE)
def test_corpus_file_matches_its_golden_output(corpus: Path, relative: str) -> None:
    check_golden(corpus, relative)


@pytest.mark.parametrize(
    ("relative", "where", "why"),
    [
        ("camt053/genkgo/camt052.v6.Amt-zero.xml", "BkToCstmrAcctRpt",
         "camt.052 intraday account reports are not statements"),
        ("camt053/kedder-iso20022/camt052.xml", "BkToCstmrAcctRpt", "camt.052"),
        ("camt053/kedder-iso20022/unsupported.xml", "Document", "unknown namespace 'urn:weird-namespace'"),
        ("camt053/genkgo/camt053.v2.wrong.xml", "BkToCstmrStmt", "holds no Stmt element"),
        ("camt053/oca/test-camt053-wrong-amount", "Stmt[1]/Ntry[2]/Amt", "amount missing"),
        ("camt053/oca/test-camt053.zip", None, "ZIP archive"),
    ],
)
def test_corpus_file_is_refused_with_a_clear_reason(corpus: Path, relative: str, where: str | None, why: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_file(corpus / relative)
    assert caught.value.where == where
    assert why in caught.value.why
    assert relative.split("/")[-1] in str(caught.value)


def _one(corpus: Path, relative: str):  # type: ignore[no-untyped-def]
    parsed = parse_file(corpus / relative)
    return parsed, parsed.statements


def test_oca_txdtls_batch_is_split_into_its_details(corpus: Path) -> None:
    _, [st_] = _one(corpus, "camt053/oca/test-camt053-txdtls")
    assert (st_.account, st_.currency, st_.opening_minor, st_.closing_minor) == (
        "CH1111000000123456789", "CHF", 7596015, 7944315)
    first, second = st_.lines.rows(named=True)
    assert first["amount_minor"] == 218700 and second["amount_minor"] == 129600
    assert first["reference"] == "302388292000011111111111111"
    assert first["counterparty_name"] == "Banque Cantonale Vaudoise"
    assert first["counterparty_account"] == "CH2222000000123456789"
    # both details carry the same AcctSvcrRef: the second is told apart, not dropped on storage
    assert first["source_ref"] == "123456CHCAFEBABE" and second["source_ref"].startswith("123456CHCAFEBABE#")
    assert st_.warnings == (("reference repeated in the file for different transactions: 123456CHCAFEBABE; each "
                             "later one is stored under the reference with a '#' suffix"),)


def test_genkgo_minimal_values(corpus: Path) -> None:
    for version in ("v2.minimal", "v3", "v8"):
        _, [st_] = _one(corpus, f"camt053/genkgo/camt053.{version}.xml")
        [line] = st_.lines.rows(named=True)
        assert st_.account == "NL26VAYB8060476890" and st_.statement_id == "253EURNL26VAYB8060476890"
        assert (line["amount_minor"], line["currency"]) == (885, "EUR")
        assert (line["booking_date"], line["value_date"]) == (date(2014, 12, 31), date(2015, 1, 2))
        assert line["reference"] == "4654654654654654"
        # the file's closing balance is in SEK: it says nothing about this EUR account
        assert (st_.opening_minor, st_.closing_minor) == (1815, None)


def test_balance_types_pick_opening_and_closing(corpus: Path) -> None:
    _, [st_] = _one(corpus, "camt053/genkgo/camt053.v2.all-balance-types.xml")
    assert (st_.opening_minor, st_.closing_minor) == (101, 404)
    assert "does not add up" in st_.warnings[0]


def test_multi_statement_and_multi_document_files(corpus: Path) -> None:
    _, statements = _one(corpus, "camt053/genkgo/camt053.v2.multi.statement.xml")
    assert [(s.opening_minor, s.closing_minor, s.lines.height) for s in statements] == [
        (1815, 2700, 1), (2700, 2000, 1)]
    assert all(not s.warnings for s in statements)
    _, docs = _one(corpus, "camt053/oca/test-camt053-more-than-one-xml")
    assert [s.lines.height for s in docs] == [4, 4]
    line = docs[0].lines.filter(docs[0].lines["amount_minor"] == -75425).row(0, named=True)
    assert line["booking_date"] == date(2014, 1, 5) and line["counterparty_account"] == "NL46ABNA0499998748"
    # the same statement twice: identical source_refs, so storing it twice adds nothing
    assert docs[0].lines["source_ref"].to_list() == docs[1].lines["source_ref"].to_list()


def test_kedder_files(corpus: Path) -> None:
    _, [st_] = _one(corpus, "camt053/kedder-iso20022/davider80.xml")
    assert (st_.account, st_.currency, st_.opening_minor, st_.closing_minor) == (
        "CHxxxxxxxxxxxxxxxxxxx", "CHF", 943331, 575346)
    assert st_.lines.height == 16 and st_.warnings == ()
    first = st_.lines.row(0, named=True)
    assert (first["amount_minor"], first["booking_date"]) == (-90530, date(2017, 4, 1))
    assert first["remittance"].startswith("Sistema di addebitamento diretto")
    _, [gc] = _one(corpus, "camt053/kedder-iso20022/gcamp6.xml")
    assert gc.lines.height == 5 and gc.lines.row(0, named=True)["amount_minor"] == 1000000
    assert gc.warnings, "gcamp6's balances do not reconcile and that must be reported"


def test_foreign_currency_entry_books_the_account_amount(corpus: Path) -> None:
    _, [st_] = _one(corpus, "camt053/oca/test-camt053-multi-currency")
    first = st_.lines.row(0, named=True)
    assert (first["amount_minor"], first["currency"]) == (-57921, "CHF")
    assert (first["instructed_amount_minor"], first["instructed_currency"]) == (52239, "EUR")
    assert (st_.opening_minor, st_.closing_minor) == (35077785, 35033264) and st_.warnings == ()


def test_notifications(corpus: Path) -> None:
    for name in ("camt054.v2.xml", "camt054.v4.xml"):
        parsed, [note] = _one(corpus, f"camt054/genkgo/{name}")
        assert parsed.format == "camt054"
        # details in another currency cannot be split: the entry is booked as one line
        assert note.lines.rows(named=True)[0]["amount_minor"] == -20000000 and note.lines.height == 1
    _, [batch] = _one(corpus, "camt054/subite/LT809872649478701594/2024-03-07.xml")
    assert batch.lines.height == 31 and batch.lines["amount_minor"].sum() == 632900
    assert batch.lines["source_ref"].n_unique() == 31


def test_empty_statement_and_datetime_dates(corpus: Path) -> None:
    _, [empty] = _one(corpus, "camt053/oca/test-camt053-no-ntry")
    assert empty.lines.height == 0 and empty.opening_minor == empty.closing_minor == 152076
    _, [ron] = _one(corpus, "camt053/genkgo/camt53.only-Dt-with-DtTm.xml")
    assert (ron.currency, ron.opening_minor, ron.lines.height) == ("RON", 544209, 0)


def _camt(entries: str, balances: str = "") -> bytes:
    return f"""<?xml version="1.0"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.13"><BkToCstmrStmt>
<GrpHdr><MsgId>M</MsgId><CreDtTm>2026-11-23T18:00:00Z</CreDtTm></GrpHdr>
<Stmt><Id>S1</Id><Acct><Id><IBAN>BE68539007547034</IBAN></Id><Ccy>EUR</Ccy></Acct>{balances}{entries}</Stmt>
</BkToCstmrStmt></Document>""".encode()


def _entry(amount: str, indicator: str = "CRDT", details: str = "", extra: str = "",
           booking: str = "<Dt>2026-11-23</Dt>") -> str:
    return (f'<Ntry><Amt Ccy="EUR">{amount}</Amt><CdtDbtInd>{indicator}</CdtDbtInd>{extra}<Sts><Cd>BOOK</Cd></Sts>'
            f"<BookgDt>{booking}</BookgDt><AcctSvcrRef>E1</AcctSvcrRef><NtryDtls>{details}</NtryDtls></Ntry>")


def test_mixed_sign_batch_gives_one_line_per_detail() -> None:
    details = (
        '<TxDtls><Amt Ccy="EUR">100.00</Amt><CdtDbtInd>CRDT</CdtDbtInd></TxDtls>'
        '<TxDtls><Amt Ccy="EUR">30.00</Amt><CdtDbtInd>DBIT</CdtDbtInd></TxDtls>'
    )
    [st_] = parse_bytes(_camt(_entry("70.00", details=details)), Path("x.xml")).statements
    assert st_.lines.select("source_ref", "amount_minor").rows() == [("E1/1", 10000), ("E1/2", -3000)]
    bad = details.replace("30.00", "31.00")
    with pytest.raises(InputError, match="details add up to 6900 but the entry amount is 7000"):
        parse_bytes(_camt(_entry("70.00", details=bad)), Path("x.xml"))


def test_parties_remittance_and_reversal() -> None:
    details = (
        "<TxDtls><Refs><EndToEndId>E2E-1</EndToEndId></Refs>"
        "<RltdPties><Dbtr><Pty><Nm>New Shape GmbH</Nm></Pty></Dbtr>"
        "<DbtrAcct><Id><IBAN>DE89370400440532013000</IBAN></Id></DbtrAcct></RltdPties>"
        "<RmtInf><Ustrd>INV-1 and</Ustrd><Ustrd>INV-2</Ustrd><Strd><RfrdDocInf><Nb>INV-3</Nb></RfrdDocInf>"
        "<CdtrRefInf><Ref>RF18539007547034</Ref></CdtrRefInf></Strd></RmtInf></TxDtls>"
    )
    [st_] = parse_bytes(_camt(_entry("5.00", "DBIT", details, "<RvslInd>true</RvslInd>")), Path("x.xml")).statements
    line = st_.lines.row(0, named=True)
    assert line["counterparty_name"] is None  # a debit's counterparty is the creditor, absent here
    [st2] = parse_bytes(_camt(_entry("5.00", "CRDT", details)), Path("x.xml")).statements
    credit = st2.lines.row(0, named=True)
    assert (credit["counterparty_name"], credit["counterparty_account"]) == ("New Shape GmbH", "DE89370400440532013000")
    assert credit["remittance"] == "INV-1 and INV-2 INV-3"
    assert (credit["reference"], credit["end_to_end_id"]) == ("RF18539007547034", "E2E-1")
    assert line["is_reversal"] and line["amount_minor"] == -500


def test_datetime_booking_keeps_the_banks_calendar_day() -> None:
    entry = _entry("1.00", booking="<DtTm>2026-11-23T23:30:00+01:00</DtTm>")
    [st_] = parse_bytes(_camt(entry), Path("x.xml")).statements
    assert st_.lines.row(0, named=True)["booking_date"] == date(2026, 11, 23)


def test_bad_amount_names_the_element() -> None:
    with pytest.raises(InputError) as caught:
        parse_bytes(_camt(_entry("12,5")), Path("bank.xml"))
    assert str(caught.value).startswith("bank.xml: Stmt[1]/Ntry[1]/Amt: '12,5' is not a valid EUR amount")


VALID = _camt(_entry("10.00", details='<TxDtls><RmtInf><Ustrd>INV-1</Ustrd></RmtInf></TxDtls>'),
              '<Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">1.00</Amt>'
              "<CdtDbtInd>CRDT</CdtDbtInd></Bal>")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(VALID) - 1), st.integers(1, 40), st.binary(max_size=8))
def test_mutated_files_raise_only_input_errors(start: int, length: int, junk: bytes) -> None:
    mutated = VALID[:start] + junk + VALID[start + length:]
    try:
        parse_bytes(mutated, Path("fuzz.xml"))
    except InputError:
        pass


LATE_UTC = b"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt>
<GrpHdr><MsgId>TZ</MsgId><CreDtTm>2026-11-24T06:00:00Z</CreDtTm></GrpHdr>
<Stmt><Id>TZ-1</Id><Acct><Id><IBAN>NL91ABNA0417164300</IBAN></Id><Ccy>EUR</Ccy></Acct>
<Ntry><Amt Ccy="EUR">10.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>
<BookgDt><DtTm>2026-11-23T23:30:00Z</DtTm></BookgDt><ValDt><DtTm>2026-11-23T23:30:00+00:00</DtTm></ValDt>
<AcctSvcrRef>TZ-REF-1</AcctSvcrRef></Ntry>
<Ntry><Amt Ccy="EUR">11.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>
<BookgDt><Dt>2026-11-23</Dt></BookgDt><AcctSvcrRef>TZ-REF-2</AcctSvcrRef></Ntry>
</Stmt></BkToCstmrStmt></Document>"""


@pytest.mark.parametrize(("zones", "expected"), [
    (None, [date(2026, 11, 24), date(2026, 11, 23)]),  # no zone configured: the NL IBAN's Europe/Amsterdam
    ({"NL91ABNA0417164300": "Europe/Amsterdam"}, [date(2026, 11, 24), date(2026, 11, 23)]),  # 00:30 in Amsterdam
    ({"*": "America/New_York"}, [date(2026, 11, 23), date(2026, 11, 23)]),
])
def test_a_utc_booking_time_is_booked_on_the_accounts_calendar_day(zones, expected) -> None:  # type: ignore[no-untyped-def]
    parsed = parse_bytes(LATE_UTC, Path("late.xml"), ParseOptions(timezones=zones or {}))
    lines = parsed.statements[0].lines
    assert lines["booking_date"].to_list() == expected
    assert lines["value_date"].to_list()[0] == expected[0]


def test_an_unknown_time_zone_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="unknown time zone 'Mars/Olympus'"):
        parse_bytes(LATE_UTC, Path("late.xml"), ParseOptions(timezones={"*": "Mars/Olympus"}))
