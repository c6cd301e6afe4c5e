"""Generated variants of each statement dialect round-trip to the lines they were written from.

hypothesis draws transactions, writes them the ways real banks do (header lines before a message,
envelopes, padding, empty fields, records cut into continuations, references repeated for other
transactions) and checks the parsed lines against the drawn ones: amounts and signs, dates, codes,
texts, and one distinct source_ref per transaction, the first line of a reference keeping it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconcile.parsers import camt_fast, parse_bytes
from reconcile.parsers.base import ParsedFile

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
WORDS = st.lists(st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=7), min_size=1, max_size=5)
REFS = st.sampled_from(["R1", "R2", "R3", "REF4", "B55555"])  # a small pool, so references repeat


def check_identity(parsed: ParsedFile, expected_refs: list[str | None]) -> None:
    """Lines of one statement have distinct source_refs. Per account, the first line with a bank
    reference keeps it; a later one carries it with a '#' suffix, unless it is the same line again in
    another statement (overlapping statements: the same transaction). Lines without a reference get
    a content hash. Every reference told apart is named in a warning of its statement."""
    rows = [(n, s.account, ref) for n, s in enumerate(parsed.statements) for ref in s.lines["source_ref"].to_list()]
    assert len(rows) == len(expected_refs)
    for n, s in enumerate(parsed.statements):
        assert s.lines["source_ref"].is_unique().all()
    first: dict[tuple[str, str], int] = {}
    for (statement, account, ref), bank in zip(rows, expected_refs):
        if bank is None:
            assert ref.startswith("h:")
        elif (account, bank) not in first:
            assert ref == bank
            first[(account, bank)] = statement
        elif ref != bank:
            assert ref.startswith(bank + "#")
            assert bank in " ".join(parsed.statements[statement].warnings)
        else:
            assert statement != first[(account, bank)]
    hashed = [ref for _, _, ref in rows if ref.startswith("h:")]
    assert len(set(hashed)) == len(hashed)


# --- MT940 --------------------------------------------------------------------------------------------

@dataclass
class Mt940Line:
    day: date
    entry_offset: int | None       # entry (booking) date = value date + offset; None: no entry date
    mark: str
    cents: int
    type_code: str
    customer: str
    bank: str | None
    words: list[str]

    @property
    def signed(self) -> int:
        return -self.cents if self.mark in ("D", "RC") else self.cents


mt940_lines = st.builds(
    Mt940Line,
    day=st.dates(date(2001, 1, 1), date(2030, 12, 25)),
    entry_offset=st.one_of(st.none(), st.integers(0, 3)),
    mark=st.sampled_from(["C", "D", "RC", "RD"]),
    cents=st.integers(0, 10 ** 14),
    type_code=st.sampled_from(["NTRF", "NMSC", "N426", "FCHG", "S103"]),
    customer=st.sampled_from(["NONREF", "CUST1", "INV 77", "PO-4711"]),
    bank=st.one_of(st.none(), REFS),
    words=WORDS,
)
HEADERS = ["", "ABNANL2A\n940\nABNANL2A\n", "0000 01INGBNL2AXXXX00001\n", "940\n", "MT940\n", "DEUTDEFFXXX\n",
           ":940:\n"]


def mt940_amount(cents: int, style: int) -> str:
    whole, fraction = divmod(cents, 100)
    if style == 1 and fraction == 0:
        return f"{whole},"
    if style == 2 and fraction % 10 == 0:
        return f"{whole},{fraction // 10}"
    return f"{whole},{fraction:02d}"


def mt940_statement_line(line: Mt940Line, draw: st.DrawFn) -> str:
    value = line.day.strftime("%y%m%d")
    if line.entry_offset is None:
        entry = draw(st.sampled_from(["", "    "]))  # Citi and ASN write four spaces for no entry date
    else:
        entry = (line.day + timedelta(days=line.entry_offset)).strftime("%m%d")
    padding = " " * draw(st.integers(0, 6))          # between the type code and the customer reference
    bank = f"{' ' * draw(st.integers(0, 3))}//{line.bank}" if line.bank else ""
    amount = mt940_amount(line.cents, draw(st.integers(0, 2)))
    return f":61:{value}{entry}{line.mark}{amount}{line.type_code}{padding}{line.customer}{bank}"


@st.composite
def mt940_files(draw: st.DrawFn) -> tuple[bytes, list[Mt940Line], int]:
    statements = draw(st.lists(st.lists(mt940_lines, max_size=5), min_size=1, max_size=3))
    envelope = draw(st.sampled_from(["none", "swift", "swedish"]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    parts, balance = [], 0
    for number, lines in enumerate(statements, start=1):
        closing = balance + sum(line.signed for line in lines)
        body = [f":20:STMT{number}", ":25:NL91ABNA0417164300", f":28C:{number}/1",
                f":60F:{'C' if balance >= 0 else 'D'}260301EUR{mt940_amount(abs(balance), 0)}"]
        for line in lines:
            body.append(mt940_statement_line(line, draw))
            body.append(":86:" + " ".join(line.words))
        body.append(f":62F:{'C' if closing >= 0 else 'D'}260301EUR{mt940_amount(abs(closing), 0)}")
        text = "\n".join(body)
        if envelope == "swift":
            text = "{1:F01ABNANL2AXXXX0000000000}{2:O940ABNANL2AXXXXN}{4:\n" + text + "\n-}{5:}"
        elif envelope == "swedish":
            text = "ä4:\n" + text + "\n-å"
        else:
            text = draw(st.sampled_from(HEADERS)) + text + "\n-"
        parts.append(text)
        balance = closing
    text = "\n".join(parts) + "\n"
    return text.replace("\n", newline).encode("latin-1"), [line for lines in statements for line in lines], \
        len(statements)


@SETTINGS
@given(mt940_files())
def test_mt940_variants_round_trip(case: tuple[bytes, list[Mt940Line], int]) -> None:
    data, lines, statements = case
    parsed = parse_bytes(data, Path("gen.sta"))
    assert parsed.format == "mt940" and len(parsed.statements) == statements
    assert all(not w.startswith("balances do not add up") for s in parsed.statements for w in s.warnings)
    rows = [r for s in parsed.statements for r in s.lines.rows(named=True)]
    assert [(r["amount_minor"], r["is_reversal"], r["bank_code"], r["value_date"], r["remittance"]) for r in rows] == [
        (line.signed, line.mark.startswith("R"), line.type_code, line.day, " ".join(line.words)) for line in lines]
    assert [r["booking_date"] for r in rows] == [
        line.day + timedelta(days=line.entry_offset or 0) for line in lines]
    check_identity(parsed, [line.bank for line in lines])


# --- BAI2 ---------------------------------------------------------------------------------------------

@dataclass
class Bai2Detail:
    type_code: int
    amount: int
    funds: str
    bank: str | None
    customer: str
    words: list[str]


bai2_details = st.builds(
    Bai2Detail,
    type_code=st.sampled_from([115, 142, 195, 399, 451, 475, 495, 699]),
    amount=st.integers(0, 10 ** 12),
    funds=st.sampled_from(["", "Z", "0", "1", "V,260302,", "S,1,2,3", "D,1,1,5"]),
    bank=st.one_of(st.none(), REFS),
    customer=st.sampled_from(["", "CUST9", "PO 1"]),
    words=st.one_of(st.just([]), WORDS),
)


def bai2_fields_record(code: str, fields: list[str], cuts: list[int], group: int = 0) -> list[str]:
    """A record written as a first physical record plus 88 continuations, each cut at a field boundary
    ending in "/" (the 88 goes on with the next field). With `group` (an 03's summaries of 4 fields), a
    cut between two summaries ends in ",/" as many banks (SVB) end a record."""
    pieces, start = [], 0
    for cut in sorted({c for c in cuts if 0 < c < len(fields)}):
        pieces.append(fields[start:cut])
        start = cut
    pieces.append(fields[start:])
    records, done = [], 0
    for n, piece in enumerate(pieces):
        done += len(piece)
        marker = "," if group and n < len(pieces) - 1 and done % group == 0 else ""
        records.append(f"{code if n == 0 else '88'},{','.join(piece)}{marker}/")
    return records


def bai2_detail_records(detail: Bai2Detail, draw: st.DrawFn) -> list[str]:
    head = [str(detail.type_code), str(detail.amount), *(detail.funds.split(",") if detail.funds else [""]),
            detail.bank or "", detail.customer]
    if not detail.words:   # no text: the record ends with "," and "/" (an empty text field)
        return bai2_fields_record("16", [*head, ""], [draw(st.integers(0, len(head)))])
    records = bai2_fields_record("16", head, [draw(st.integers(0, len(head) - 1))])
    # the text runs to the end of the physical record; it continues, word by word, in 88s
    split = draw(st.integers(1, len(detail.words)))
    last = records.pop()
    records.append(last[:-1] + "," + " ".join(detail.words[:split]))
    records.extend("88," + word for word in detail.words[split:])
    return records


@st.composite
def bai2_files(draw: st.DrawFn) -> tuple[bytes, list[Bai2Detail]]:
    accounts = draw(st.lists(st.lists(bai2_details, max_size=4), min_size=1, max_size=3))
    group: list[str] = []
    group_total = 0
    for number, details in enumerate(accounts, start=1):
        opening, closing = draw(st.integers(0, 10 ** 9)), draw(st.integers(0, 10 ** 9))
        summary = ["010", str(opening), "", "", "015", str(closing), "", ""]
        records = bai2_fields_record(f"03,{number}00,USD", summary, [draw(st.integers(0, 8))],
                                     draw(st.sampled_from([0, 4])))
        if draw(st.booleans()):                          # SVB: ",/" after the last summary too
            records[-1] = records[-1][:-1] + ",/"
        for detail in details:
            records.extend(bai2_detail_records(detail, draw))
        total = opening + closing + sum(d.amount for d in details)
        records.append(f"49,{total},{len(records) + 1}/")
        group.extend(records)
        group_total += total
    group = ["02,RCV,ORIG,1,260301,0000,USD,2/", *group, f"98,{group_total},{len(accounts)},{len(group) + 2}/"]
    lines = ["01,SENDER,RCV,260302,0100,1,,,2/", *group, f"99,{group_total},1,{len(group) + 2}/"]
    return "\n".join(lines).encode(), [d for details in accounts for d in details]


@SETTINGS
@given(bai2_files())
def test_bai2_variants_round_trip(case: tuple[bytes, list[Bai2Detail]]) -> None:
    data, details = case
    parsed = parse_bytes(data, Path("gen.bai"))   # trailers are checked: every count and total must agree
    rows = [r for s in parsed.statements for r in s.lines.rows(named=True)]
    assert [(r["amount_minor"], r["bank_code"], r["reference"], r["remittance"], r["value_date"]) for r in rows] == [
        (d.amount if d.type_code < 400 else -d.amount, str(d.type_code), d.customer or None,
         " ".join(d.words) or None, date(2026, 3, 2) if d.funds.startswith("V") else None) for d in details]
    check_identity(parsed, [d.bank for d in details])
    assert [s.opening_minor is not None for s in parsed.statements] == [True] * len(parsed.statements)


def test_svb_summary_ending_with_an_empty_field_continues_with_the_next_type_code() -> None:
    # SVB writes ",/" after the last summary of a line; the 88 then starts with the next type code
    records = ["03,1234567890,USD,010,100,,,015,200,,,/", "88,040,300,,,045,400,,,/", "88,100,25,1,,400,000,0,/",
               "16,142,25,,172629,/", "88,SOME PAYMENT ACH OFFSET", "16,195,1000,,,,/", "88,WIRE IN"]
    total = 100 + 200 + 300 + 400 + 25 + 0 + 25 + 1000
    data = "\n".join(["01,121140399,121140399,230214,0754,1,,,2/", "02,121140399,121140399,1,220201,,USD,2/",
                      *records, f"49,{total},8/", f"98,{total},1,10/", f"99,{total},1,12/"]).encode()
    [statement] = parse_bytes(data, Path("svb.bai")).statements
    assert (statement.opening_minor, statement.closing_minor) == (100, 200)
    assert statement.lines.select("amount_minor", "source_ref", "reference", "remittance").rows()[0] == (
        25, "172629", None, "SOME PAYMENT ACH OFFSET")
    assert statement.lines["remittance"][1] == "WIRE IN"


# --- OFX ----------------------------------------------------------------------------------------------

@dataclass
class OfxTxn:
    day: date
    cents: int
    fitid: str
    name: str


ofx_txns = st.builds(OfxTxn, day=st.dates(date(2001, 1, 1), date(2030, 12, 31)),
                     cents=st.integers(-10 ** 9, 10 ** 9), fitid=st.sampled_from(["", "F1", "F2", "2024010100001"]),
                     name=st.text("ABCDEFGH XYZ", min_size=1, max_size=12).map(str.strip).filter(bool))


def ofx_amount(cents: int) -> str:
    whole, fraction = divmod(abs(cents), 100)
    return f"{'-' if cents < 0 else ''}{whole}.{fraction:02d}"


@st.composite
def ofx_files(draw: st.DrawFn) -> tuple[bytes, list[OfxTxn]]:
    txns = draw(st.lists(ofx_txns, min_size=1, max_size=6))
    xml = draw(st.booleans())
    indent = draw(st.sampled_from(["", "\t", "  "]))
    close = (lambda tag: f"</{tag}>") if xml else (lambda tag: "")
    body = "".join(
        f"{indent}<STMTTRN>\n{indent}<TRNTYPE>{'CREDIT' if t.cents >= 0 else 'DEBIT'}{close('TRNTYPE')}\n"
        f"{indent}<DTPOSTED>{t.day:%Y%m%d}{draw(st.sampled_from(['', '120000', '120000.000[-5:EST]']))}"
        f"{close('DTPOSTED')}\n{indent}<TRNAMT>{ofx_amount(t.cents)}{close('TRNAMT')}\n"
        f"{indent}<FITID>{t.fitid}{close('FITID')}\n{indent}<NAME>{t.name}{close('NAME')}\n{indent}</STMTTRN>\n"
        for t in txns)
    head = ('<?xml version="1.0"?>\n<?OFX OFXHEADER="200" VERSION="211" SECURITY="NONE"?>\n' if xml else
            "OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\nSECURITY:NONE\nENCODING:USASCII\n\n")
    text = (f"{head}<OFX><CREDITCARDMSGSRSV1><CCSTMTTRNRS><CCSTMTRS><CURDEF>USD{close('CURDEF')}\n"
            f"<CCACCTFROM><ACCTID>4111{close('ACCTID')}</CCACCTFROM>\n<BANKTRANLIST>\n{body}</BANKTRANLIST>\n"
            "</CCSTMTRS></CCSTMTTRNRS></CREDITCARDMSGSRSV1></OFX>\n")
    return text.encode(), txns


@SETTINGS
@given(ofx_files())
def test_ofx_variants_round_trip(case: tuple[bytes, list[OfxTxn]]) -> None:
    data, txns = case
    [statement] = parse_bytes(data, Path("gen.ofx")).statements
    assert statement.lines.select("booking_date", "amount_minor", "counterparty_name").rows() == [
        (t.day, t.cents, t.name) for t in txns]
    check_identity(ParsedFile("ofx", [statement]), [t.fitid or None for t in txns])


# --- CAMT ---------------------------------------------------------------------------------------------

@dataclass
class CamtEntry:
    day: date
    cents: int
    credit: bool
    ref: str | None
    text: str
    late_utc: bool                  # booked as a UTC date-time at 23:30 of the day before


camt_entries = st.builds(CamtEntry, day=st.dates(date(2001, 1, 2), date(2030, 12, 31)),
                         cents=st.integers(0, 10 ** 15 - 1), credit=st.booleans(),
                         ref=st.one_of(st.none(), REFS), text=st.text("abcdef XYZ", min_size=1, max_size=20)
                         .map(lambda t: " ".join(t.split())).filter(bool), late_utc=st.booleans())


@st.composite
def camt_files(draw: st.DrawFn) -> tuple[bytes, list[CamtEntry]]:
    entries = draw(st.lists(camt_entries, min_size=1, max_size=6))
    pad = draw(st.sampled_from(["", "\n", "\n    "]))
    body = []
    for e in entries:
        booked = (f"<DtTm>{e.day - timedelta(days=1)}T23:30:00Z</DtTm>" if e.late_utc else f"<Dt>{e.day}</Dt>")
        ref = f"{pad}<AcctSvcrRef>{e.ref}</AcctSvcrRef>" if e.ref else ""
        amount = f"{e.cents // 100}.{e.cents % 100:02d}"
        body.append(f"{pad}<Ntry>{pad}<Amt Ccy=\"EUR\">{amount}</Amt>{pad}<CdtDbtInd>{'CRDT' if e.credit else 'DBIT'}"
                    f"</CdtDbtInd>{pad}<Sts><Cd>BOOK</Cd></Sts>{pad}<BookgDt>{booked}</BookgDt>{ref}"
                    f"{pad}<AddtlNtryInf>{e.text}</AddtlNtryInf>{pad}</Ntry>")
    text = ('<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">'
            "<BkToCstmrStmt><GrpHdr><MsgId>M</MsgId><CreDtTm>2031-01-01T06:00:00</CreDtTm></GrpHdr><Stmt><Id>S</Id>"
            f"<Acct><Id><IBAN>DE89370400440532013000</IBAN></Id><Ccy>EUR</Ccy></Acct>{''.join(body)}{pad}</Stmt>"
            "</BkToCstmrStmt></Document>")
    return text.encode(), entries


@SETTINGS
@given(camt_files())
def test_camt_variants_round_trip_the_same_in_both_paths(case: tuple[bytes, list[CamtEntry]]) -> None:
    data, entries = case
    fast = parse_bytes(data, Path("gen.xml"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(camt_fast, "cut", lambda data: None)
        slow = parse_bytes(data, Path("gen.xml"))
    [statement] = fast.statements
    assert statement.lines.rows() == slow.statements[0].lines.rows()
    # a UTC booking at 23:30 is the next morning in Berlin: the account's (German IBAN) calendar day
    assert statement.lines.select("booking_date", "amount_minor", "remittance").rows() == [
        (e.day, e.cents if e.credit else -e.cents, e.text) for e in entries]
    check_identity(fast, [e.ref for e in entries])
