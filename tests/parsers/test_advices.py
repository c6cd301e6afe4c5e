"""Remittance advices: X12 820 (several delimiter sets, groups, transactions, adjustments),
ISO 20022 remt.001 and CSV advices through advice profiles, read into the documented advice model.

The 820 fixtures in tests/parsers/advices are written by hand in the shape trading partners send
(a retailer's 4010 CTX remittance with store ENT loops and deductions, a 5010 file with `|`
elements, newline terminators and `^` components); the amounts in the assertions were worked
out from the segments by hand. Malformed variants are derived from them segment by segment so
each refusal names the file, the segment number and the element.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconcile.core.errors import ConfigError, InputError
from reconcile.parsers import detect
from reconcile.parsers.advice import ADVICE_LINES, ADVICES, ParsedAdvice, parse_advice, sniff_advice
from reconcile.parsers.advice_csv import (
    builtin_advice_profiles,
    claiming_profiles,
    load_advice_profile_dir,
)

HERE = Path(__file__).parent / "advices"
RETAIL = HERE / "retail_4010.820"  # "*" elements, "~" + newline, ">" components
NORTHWIND = HERE / "northwind_5010_pipes.820"  # "|" elements, newline segments, "^" components
REMT = HERE / "remt_001_001_04.xml"


# ---------------------------------------------------------------- X12 helpers


def read_segments(path: Path, element: str, terminator: str) -> list[list[str]]:
    text = path.read_text()
    return [s.strip("\r\n").split(element) for s in text.split(terminator) if s.strip("\r\n")]


def render(
    segments: list[list[str]],
    element: str = "*",
    component: str = ">",
    terminator: str = "~",
    after: str = "\n",
    old_component: str | None = None,
) -> bytes:
    """An interchange from element lists: ISA kept fixed width, ISA16 set to `component`, components
    written with `old_component` re-joined with the new one."""
    out = []
    for segment in segments:
        fields = list(segment)
        if fields[0] == "ISA":
            fields[16] = component
            if fields[11] in (element, component, terminator):
                fields[11] = "U"
        elif old_component:
            fields = [f.replace(old_component, component) for f in fields]
        out.append(element.join(fields) + terminator + after)
    return "".join(out).encode("utf-8")


def parse(data: bytes, name: str = "advice.820") -> ParsedAdvice:
    return parse_advice(data, Path(name))


def retail() -> list[list[str]]:
    return read_segments(RETAIL, "*", "~")


def northwind() -> list[list[str]]:
    return read_segments(NORTHWIND, "|", "\n")


def find(segments: list[list[str]], seg_id: str, nth: int = 1) -> int:
    """Index of the nth segment with this id (segment number = index + 1)."""
    hits = [i for i, s in enumerate(segments) if s[0] == seg_id]
    return hits[nth - 1]


def line(parsed: ParsedAdvice, ref: str, number: int) -> dict:
    return parsed.lines.filter((pl.col("advice_ref") == ref) & (pl.col("line_no") == number)).row(
        0, named=True
    )


def advice(parsed: ParsedAdvice, ref: str) -> dict:
    return parsed.advices.filter(pl.col("advice_ref") == ref).row(0, named=True)


def check_contract(parsed: ParsedAdvice) -> None:
    """The schema and the balance invariant every reader promises."""
    assert parsed.advices.schema == pl.Schema(ADVICES)
    assert parsed.lines.schema == pl.Schema(ADVICE_LINES)
    assert parsed.advices["advice_ref"].is_unique().all()
    sums = parsed.lines.group_by("advice_ref").agg(
        pl.col("amount_paid_minor").sum().alias("s"), pl.len().alias("n")
    )
    joined = parsed.advices.join(sums, on="advice_ref", how="left")
    for row in joined.iter_rows(named=True):
        assert (row["n"] or 0) == row["line_count"]
        assert row["balanced"] == ((row["s"] or 0) == row["payment_amount_minor"])
        numbers = parsed.lines.filter(pl.col("advice_ref") == row["advice_ref"])[
            "line_no"
        ].to_list()
        assert numbers == list(range(1, len(numbers) + 1))


# ---------------------------------------------------------------- X12 820: content


def test_retail_4010_two_groups_three_transactions() -> None:
    parsed = parse_advice(RETAIL.read_bytes(), RETAIL)
    check_contract(parsed)
    assert parsed.format == "x12_820"
    assert parsed.warnings == ()
    assert parsed.advices["advice_ref"].to_list() == [
        "820:1512345678:0008341275",
        "820:1512345678:CHK004471",
        "820:1512345678:FW240319-0077",
    ]

    ach = advice(parsed, "820:1512345678:0008341275")
    assert ach["payment_amount_minor"] == 1107550 and ach["currency"] == "USD"
    assert ach["payment_date"] == date(2024, 3, 18)  # BPR16, not the DTM*097 creation date
    assert (ach["payer_name"], ach["payer_id"]) == ("BIG BOX RETAIL INC", "0042")
    assert (ach["payee_name"], ach["payee_id"]) == ("ACME SUPPLY CO", "V10077")
    assert (ach["payment_method"], ach["credit_debit"], ach["handling_code"]) == ("ACH", "C", "C")
    assert ach["trace_number"] == "0008341275" and ach["line_count"] == 5 and ach["balanced"]
    assert ach["location"] == "segment 3 (ST)"

    first = line(parsed, ach["advice_ref"], 1)
    assert (first["reference_qualifier"], first["invoice_number"], first["payment_action"]) == (
        "IV",
        "INV-24-0101",
        "PI",
    )
    assert (first["amount_paid_minor"], first["invoice_total_minor"], first["discount_minor"]) == (
        490000,
        500000,
        10000,
    )
    assert first["document_date"] == date(2024, 2, 15) and first["entity"] == "STORE-0114"
    assert first["adjustment_minor"] is None and first["adjustment_reasons"] == []
    # two ADX in the RMR loop: -180 (06) and -70 (04) reduce the payment by 250 in all
    short = line(parsed, ach["advice_ref"], 3)
    assert (
        short["amount_paid_minor"],
        short["invoice_total_minor"],
        short["adjustment_minor"],
    ) == (175000, 200000, 25000)
    assert short["adjustment_reasons"] == ["06", "04"] and short["location"] == "segment 18 (RMR)"
    # an ADX in the ENT loop before any RMR is a deduction of its own, explained by the NTE after it
    chargeback = line(parsed, ach["advice_ref"], 4)
    assert chargeback["line_kind"] == "adjustment" and chargeback["entity"] == "STORE-0220"
    assert (chargeback["amount_paid_minor"], chargeback["adjustment_minor"]) == (-25000, 25000)
    assert (chargeback["reference_qualifier"], chargeback["invoice_number"]) == ("CM", "DM-5531")
    assert (
        chargeback["adjustment_reasons"] == ["72"]
        and chargeback["description"] == "CO-OP ADVERTISING Q1"
    )

    check = advice(parsed, "820:1512345678:CHK004471")
    assert (check["payment_method"], check["handling_code"], check["payment_amount_minor"]) == (
        "CHK",
        "I",
        231000,
    )
    credit = line(parsed, check["advice_ref"], 2)
    assert (credit["reference_qualifier"], credit["amount_paid_minor"]) == ("CR", -19000)

    wire = advice(parsed, "820:1512345678:FW240319-0077")
    assert (wire["currency"], wire["payment_amount_minor"], wire["payer_id"]) == (
        "CAD",
        520000,
        "0042-CA",
    )
    # a positive ADX01 increases the payment: adjustment_minor (reduces) is negative
    assert line(parsed, wire["advice_ref"], 1)["adjustment_minor"] == -600


def test_pipes_newlines_and_caret_components_5010() -> None:
    parsed = parse_advice(NORTHWIND.read_bytes(), NORTHWIND)
    check_contract(parsed)
    assert parsed.warnings == ()
    ach, prenote = parsed.advices.iter_rows(named=True)
    assert ach["advice_ref"] == "820:1041234567:ACH0402-88"
    assert (ach["payment_amount_minor"], ach["payment_date"]) == (
        842137,
        date(2024, 4, 3),
    )  # no BPR16: DTM*234
    assert ach["payer_name"] == "Northwind Foods, LLC"
    first = line(parsed, ach["advice_ref"], 1)
    assert (
        first["invoice_number"],
        first["amount_paid_minor"],
        first["discount_minor"],
        first["adjustment_minor"],
        first["adjustment_reasons"],
    ) == ("100234", 312000, 6400, 1600, ["CS"])
    # a prenote without TRN: no money, no detail, a content-hash ref
    assert prenote["handling_code"] == "P" and prenote["payment_amount_minor"] == 0
    assert (
        prenote["advice_ref"].startswith("820:h:")
        and prenote["line_count"] == 0
        and prenote["balanced"]
    )


def test_reparsing_the_same_bytes_gives_the_same_refs_and_frames() -> None:
    for path in (RETAIL, NORTHWIND, REMT, HERE / "zahlungsavis_de.csv"):
        one, two = parse_advice(path.read_bytes(), path), parse_advice(path.read_bytes(), path)
        assert one.advices["advice_ref"].to_list() == two.advices["advice_ref"].to_list()
        assert one.advices.equals(two.advices) and one.lines.equals(two.lines)


def test_content_hash_ref_ignores_delimiters_and_control_numbers() -> None:
    base = parse_advice(NORTHWIND.read_bytes(), NORTHWIND).advices["advice_ref"][1]
    segments = northwind()
    for index in (find(segments, "ST", 2), find(segments, "SE", 2)):
        segments[index][2] = "7777"
    resent = render(segments, "*", ":", "~", "\r\n", old_component="^")
    assert parse(resent).advices["advice_ref"][1] == base


def test_release_3030_writes_reductions_positive() -> None:
    """ADX01 changed sign in release 003050; a 3030 file writing the same deductions as positive
    amounts reads the same."""
    segments = retail()
    for i, segment in enumerate(segments):
        if segment[0] == "GS":
            segment[8] = "003030"
        if segment[0] == "ADX":
            segments[i][1] = segment[1][1:] if segment[1].startswith("-") else "-" + segment[1]
    old = parse(render(segments))
    new = parse_advice(RETAIL.read_bytes(), RETAIL)
    assert old.lines.equals(new.lines) and old.warnings == ()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.permutations(list("*|~^!+:{}\x1d\x1e\x1f")), st.sampled_from(["", "\n", "\r\n"]))
def test_any_delimiters_read_the_same(pool: list[str], after: str) -> None:
    element, component, terminator = pool[:3]
    base = parse_advice(RETAIL.read_bytes(), RETAIL)
    data = render(retail(), element, component, terminator, after, old_component=">")
    again = parse(data)
    assert again.advices.equals(base.advices) and again.lines.equals(base.lines)


def test_newline_terminated_file_without_final_newline() -> None:
    data = NORTHWIND.read_bytes().rstrip(b"\n")
    assert parse(data).advices.height == 2


# ---------------------------------------------------------------- X12 820: balance warnings


def test_unbalanced_transaction_is_read_with_a_warning() -> None:
    segments = retail()
    segments[find(segments, "BPR")][2] = "11000"
    parsed = parse(render(segments))
    first = parsed.advices.row(0, named=True)
    assert first["balanced"] is False and first["payment_amount_minor"] == 1100000
    assert parsed.warnings == (
        (
            "advice 820:1512345678:0008341275 (segment 3 (ST)): its lines add up to "
            "11075.50, the payment is 11000.00 USD"
        ),
    )


def test_warning_says_when_rmr04_looks_written_before_its_adjustments() -> None:
    segments = northwind()
    segments[find(segments, "RMR")][4] = "3136.00"  # 3200 - 64, the ADX of -16 not taken off
    parsed = parse(render(segments, "|", "^", "\n", ""))
    assert len(parsed.warnings) == 1
    assert "it would balance if RMR04 were written before the ADX adjustments" in parsed.warnings[0]


def test_payment_without_remittance_detail_warns() -> None:
    segments = [s for s in retail() if s[0] not in ("RMR", "ADX", "DTM", "ENT", "NTE")]
    for index, segment in enumerate(segments):  # recount SE01 for the shortened transactions
        if segment[0] == "SE":
            start = max(i for i in range(index) if segments[i][0] == "ST")
            segment[1] = str(index - start + 1)
    parsed = parse(render(segments))
    assert parsed.advices["balanced"].to_list() == [False, False, False]
    assert all("has no RMR detail" in w for w in parsed.warnings)


# ---------------------------------------------------------------- X12 820: refusals


def _set(seg_id: str, position: int, value: str, nth: int = 1):
    def change(segments: list[list[str]]) -> None:
        segments[find(segments, seg_id, nth)][position] = value

    return change


def _drop(seg_id: str, nth: int = 1):
    def change(segments: list[list[str]]) -> None:
        del segments[find(segments, seg_id, nth)]

    return change


def _insert_before(seg_id: str, new: list[str], nth: int = 1):
    def change(segments: list[list[str]]) -> None:
        segments.insert(find(segments, seg_id, nth), new)

    return change


def _truncate_after(seg_id: str):
    def change(segments: list[list[str]]) -> None:
        del segments[find(segments, seg_id) + 1 :]

    return change


MALFORMED = [
    (
        "se-count",
        _set("SE", 1, "23"),
        "segment 26 (SE), element SE01",
        "control count says 23 segments (ST to SE), the file has 24",
    ),
    ("se-control", _set("SE", 2, "0009"), "segment 26 (SE), element SE02", "does not match '0001'"),
    (
        "ge-count",
        _set("GE", 1, "3"),
        "segment 35 (GE), element GE01",
        "says 3 transaction sets, the file has 2",
    ),
    (
        "ge-control",
        _set("GE", 2, "999", 2),
        "segment 46 (GE), element GE02",
        "does not match '102'",
    ),
    (
        "iea-count",
        _set("IEA", 1, "1"),
        "segment 47 (IEA), element IEA01",
        "says 1 functional groups",
    ),
    ("iea-control", _set("IEA", 2, "000000999"), "segment 47 (IEA), element IEA02", "ISA13"),
    ("no-iea", _truncate_after("GE"), "segment 35 (GE)", "ends without an IEA"),
    (
        "bpr-amount",
        _set("BPR", 2, "11.075,50"),
        "segment 4 (BPR), element BPR02",
        "not an X12 decimal amount",
    ),
    (
        "rmr-amount",
        _set("RMR", 4, "4.9E3"),
        "segment 14 (RMR), element RMR04",
        "not an X12 decimal amount",
    ),
    (
        "too-precise",
        _set("RMR", 5, "5000.001"),
        "segment 14 (RMR), element RMR05",
        "more decimals than USD",
    ),
    ("bpr-date", _set("BPR", 16, "20240231"), "segment 4 (BPR), element BPR16", "not a date"),
    (
        "credit-flag",
        _set("BPR", 3, "X"),
        "segment 4 (BPR), element BPR03",
        "not a credit/debit flag",
    ),
    ("not-820", _set("ST", 1, "835", 2), "segment 27 (ST), element ST01", "transaction set 835"),
    (
        "segment-id",
        _set("TRN", 0, "T@N"),
        "segment 5",
        "malformed segment: 'T@N' is not a segment id",
    ),
    ("no-bpr", _set("BPR", 0, "NTE"), "segment 4 (NTE)", "must begin with a BPR segment"),
    ("adx-amount", _set("ADX", 1, ""), "segment 20 (ADX), element ADX01", "amount is missing"),
    ("rmr-reference", _set("RMR", 2, ""), "segment 14 (RMR), element RMR02", "RMR02"),
    (
        "currency",
        _set("CUR", 2, "US"),
        "segment 6 (CUR), element CUR02",
        "not an ISO 4217 currency",
    ),
    (
        "outside-st",
        _insert_before("GE", ["RMR", "IV", "X", "", "1"]),
        "segment 35 (RMR)",
        "outside a transaction set",
    ),
    (
        "st-in-st",
        _drop("SE"),
        "segment 26 (ST)",
        "an ST before the SE of the transaction at segment 3",
    ),
    ("no-gs", _drop("GS"), "segment 2 (ST)", "outside a functional group"),
    ("same-trace", _set("TRN", 2, "0008341275", 2), "segment 27 (ST)", "appears twice in the file"),
]


@pytest.mark.parametrize(
    "change,where,why", [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_820_is_refused_naming_segment_and_element(change, where: str, why: str) -> None:
    segments = retail()
    change(segments)
    path = Path("incoming/bigbox_0315.820")
    with pytest.raises(InputError) as info:
        parse_advice(render(segments), path)
    assert info.value.path == str(path)
    assert info.value.where == where
    assert why in info.value.why


def test_isa_problems_are_refused() -> None:
    with pytest.raises(InputError, match="fewer than 16 elements"):
        parse(b"ISA*00*          *00*~GS*RA~")
    with pytest.raises(InputError, match="separators must differ"):
        parse(render(retail(), "*", "*", "~"))
    with pytest.raises(InputError, match="no 820 transaction"):
        parse(
            render(
                [s for s in retail() if s[0] in ("ISA", "IEA")][:1] + [["IEA", "0", "000000101"]]
            )
        )


def test_isa_with_wrong_padding_is_read_with_a_warning() -> None:
    segments = retail()
    segments[0][6] = segments[0][6].rstrip()  # sender id not padded to 15
    parsed = parse(render(segments))
    assert parsed.advices.height == 3
    assert parsed.warnings == (
        "segment 1 (ISA): not 106 characters wide; its separators were found by counting elements",
    )


# ---------------------------------------------------------------- remt.001


def test_remt_001_two_advices_with_discount_adjustment_and_credit_note() -> None:
    parsed = parse_advice(REMT.read_bytes(), REMT)
    check_contract(parsed)
    assert parsed.format == "remt001" and parsed.warnings == ()
    first, second = parsed.advices.iter_rows(named=True)
    assert first["advice_ref"] == "remt:RA-20240510-0042/RMT-88231"
    assert (first["payment_amount_minor"], first["currency"], first["payment_date"]) == (
        330000,
        "EUR",
        date(2024, 5, 13),
    )
    assert (first["payer_name"], first["payer_id"], first["payee_name"]) == (
        "Fabrikam Handels GmbH",
        "DE812345678",
        "Woodgrove Werkzeuge AG",
    )
    assert (first["end_to_end_id"], first["payment_method"], first["trace_number"]) == (
        "E2E-FAB-20240510-01",
        "SEPA",
        "RMT-88231",
    )
    assert first["location"] == "/Document/RmtAdvc/RmtInf[1]"
    discounted = line(parsed, first["advice_ref"], 1)
    assert (
        discounted["reference_qualifier"],
        discounted["invoice_number"],
        discounted["document_date"],
    ) == ("CINV", "RE-2024-1187", date(2024, 4, 12))
    assert (
        discounted["invoice_total_minor"],
        discounted["discount_minor"],
        discounted["amount_paid_minor"],
    ) == (119000, 2380, 116620)
    damaged = line(parsed, first["advice_ref"], 2)
    assert (damaged["adjustment_minor"], damaged["adjustment_reasons"], damaged["description"]) == (
        15000,
        ["DAMG"],
        "2 Kartons beschaedigt geliefert",
    )
    credit = line(parsed, first["advice_ref"], 3)
    assert (credit["reference_qualifier"], credit["amount_paid_minor"]) == ("CREN", -9620)
    # a creditor reference and no amounts: the one document takes the whole payment
    assert second["end_to_end_id"] is None  # NOTPROVIDED
    assert second["remittance"] == "Zahlung gemaess Mahnung vom 02.05.2024"
    only = line(parsed, second["advice_ref"], 1)
    assert (only["reference_qualifier"], only["invoice_number"], only["amount_paid_minor"]) == (
        "SCOR",
        "RF18539007547034",
        41550,
    )


OLD_REMT = """<?xml version="1.0"?>
<r:Document xmlns:r="urn:iso:std:iso:20022:tech:xsd:remt.001.001.01">
 <r:RmtAdvc>
  <r:GrpHdr><r:MsgId>M1</r:MsgId></r:GrpHdr>
  <r:RmtInf>
   <r:Strd>
    <r:RfrdDocInf><r:Tp><r:CdOrPrtry><r:Cd>CINV</r:Cd></r:CdOrPrtry></r:Tp><r:Nb>A-1</r:Nb></r:RfrdDocInf>
    <r:RfrdDocInf><r:Nb>A-2</r:Nb></r:RfrdDocInf>
    <r:RfrdDocAmt><r:RmtdAmt Ccy="JPY">{paid}</r:RmtdAmt></r:RfrdDocAmt>
   </r:Strd>
   <r:RltdPmtInf>
    <r:EndToEndId>E1</r:EndToEndId>
    <r:Amt Ccy="JPY">15000</r:Amt>
    <r:ReqdExctnDt>2024-01-31</r:ReqdExctnDt>
    <r:Dbtr><r:Pty><r:Nm>Old Payer KK</r:Nm></r:Pty></r:Dbtr>
   </r:RltdPmtInf>
  </r:RmtInf>
 </r:RmtAdvc>
</r:Document>
"""


def test_remt_older_shape_prefixed_namespace_and_several_documents_in_one_strd() -> None:
    parsed = parse(OLD_REMT.format(paid="15000").encode(), "old.xml")
    check_contract(parsed)
    row = parsed.advices.row(0, named=True)
    assert (row["advice_ref"], row["payment_amount_minor"], row["currency"]) == (
        "remt:M1/#1",
        15000,
        "JPY",
    )
    assert (row["payer_name"], row["end_to_end_id"], row["payment_date"]) == (
        "Old Payer KK",
        "E1",
        date(2024, 1, 31),
    )
    assert line(parsed, "remt:M1/#1", 1)["description"] == "also refers to A-2"
    assert parsed.warnings == (
        (
            "advice remt:M1/#1: /Document/RmtAdvc/RmtInf/Strd refers to 2 documents with "
            "one amount; the line names the first"
        ),
    )


@pytest.mark.parametrize(
    "old,new,where,why",
    [
        (
            '<RmtdAmt Ccy="EUR">1166.20<',
            '<RmtdAmt Ccy="EUR">1166,20<',
            "/Document/RmtAdvc/RmtInf[1]/Strd[1]/RfrdDocAmt/RmtdAmt",
            "'1166,20' is not a decimal amount",
        ),
        (
            '<RmtdAmt Ccy="EUR">2230.00<',
            '<RmtdAmt Ccy="USD">2230.00<',
            "/Document/RmtAdvc/RmtInf[1]/Strd[2]/RfrdDocAmt/RmtdAmt",
            "amount in USD, the payment is in EUR",
        ),
        (
            '<InstdAmt Ccy="EUR">415.50<',
            '<InstdAmt Ccy="EUR">415.505<',
            "/Document/RmtAdvc/RmtInf[2]/OrgnlPmtInf/Amt/InstdAmt",
            "more decimals than EUR",
        ),
        (
            "<MsgId>RA-20240510-0042</MsgId>",
            "",
            "/Document/RmtAdvc/GrpHdr",
            "GrpHdr/MsgId is missing",
        ),
        (
            "<Dt>2024-05-13</Dt>",
            "<Dt>2024-13-05</Dt>",
            "/Document/RmtAdvc/RmtInf[1]/OrgnlPmtInf/ReqdExctnDt",
            "not a date",
        ),
        (
            "<RmtId>RMT-88232</RmtId>",
            "<RmtId>RMT-88231</RmtId>",
            "/Document/RmtAdvc/RmtInf[2]",
            "appears twice in the file",
        ),
        (
            '<Amt><InstdAmt Ccy="EUR">3300.00</InstdAmt></Amt>',
            "",
            "/Document/RmtAdvc/RmtInf[1]/OrgnlPmtInf",
            "amount (Amt/InstdAmt) is missing",
        ),
    ],
)
def test_malformed_remt_is_refused_naming_the_element(
    old: str, new: str, where: str, why: str
) -> None:
    text = REMT.read_text()
    assert old in text
    path = Path("mail/remt_0510.xml")
    with pytest.raises(InputError) as info:
        parse_advice(text.replace(old, new, 1).encode(), path)
    assert (info.value.path, info.value.where) == (str(path), where)
    assert why in info.value.why


def test_remt_that_does_not_add_up_warns() -> None:
    parsed = parse(OLD_REMT.format(paid="14000").encode(), "old.xml")
    assert parsed.advices["balanced"].to_list() == [False]
    assert "its lines add up to 14000, the payment is 15000 JPY" in parsed.warnings[-1]


def test_remt_002_and_entities_are_refused() -> None:
    location = (
        b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:remt.002.001.02">'
        b"<RmtLctnAdvc/></Document>"
    )
    with pytest.raises(InputError, match="remt.002 remittance location advice"):
        parse(location, "loc.xml")
    hostile = b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x "y">]><Document><RmtAdvc/></Document>'
    with pytest.raises(InputError, match="entity declarations"):
        parse(hostile, "evil.xml")


# ---------------------------------------------------------------- CSV advices


def test_ap_portal_export_groups_rows_by_payment() -> None:
    path = HERE / "ap_portal_payment_details.csv"
    parsed = parse_advice(path.read_bytes(), path)
    check_contract(parsed)
    assert parsed.format == "csv-advice:ap-portal-payment-details" and parsed.warnings == ()
    ach, check = parsed.advices.iter_rows(named=True)
    assert (
        ach["advice_ref"],
        ach["payment_amount_minor"],
        ach["payment_date"],
        ach["line_count"],
    ) == ("csv:ap-portal-payment-details:PMT-2024-004417", 1238460, date(2024, 3, 28), 3)
    assert (ach["payer_name"], ach["payer_id"], ach["payment_method"]) == (
        "Tailspin Toys Distribution",
        "SUP-30917",
        "ACH",
    )
    short = line(parsed, ach["advice_ref"], 2)
    assert (
        short["invoice_total_minor"],
        short["discount_minor"],
        short["adjustment_minor"],
        short["amount_paid_minor"],
    ) == (625000, 12500, 34040, 578460)
    assert (short["adjustment_reasons"], short["description"], short["location"]) == (
        ["SHRT"],
        "Short shipment PO 4471-02",
        "line 3",
    )
    allowance = line(parsed, check["advice_ref"], 2)  # a deduction row without an invoice
    assert (
        allowance["line_kind"],
        allowance["amount_paid_minor"],
        allowance["adjustment_minor"],
    ) == ("adjustment", -13800, 13800)


def test_zahlungsavis_negative_skonto_and_abzug() -> None:
    path = HERE / "zahlungsavis_de.csv"
    parsed = parse_advice(path.read_bytes(), path)
    check_contract(parsed)
    assert parsed.advices["payment_amount_minor"].to_list() == [471638, 119000]
    broken = line(parsed, "csv:zahlungsavis-de:2000418872", 2)
    assert (
        broken["reference_qualifier"],
        broken["invoice_total_minor"],
        broken["discount_minor"],
        broken["adjustment_minor"],
        broken["amount_paid_minor"],
        broken["adjustment_reasons"],
    ) == ("RE", 226100, 4522, 6504, 215074, ["BRUCH"])


def test_generic_advice_with_optional_columns_left_out(tmp_path: Path) -> None:
    path = tmp_path / "advice.csv"
    path.write_text(
        "payment_reference,payment_date,invoice_number,amount_paid\n"
        "CHK-1,2024-06-01,INV-1,100.00\nCHK-1,2024-06-01,INV-2,25.50\nCHK-2,2024-06-02,INV-3,9\n"
    )
    parsed = parse_advice(path.read_bytes(), path)
    check_contract(parsed)
    # no payment_amount column: the payment is what its rows pay; no currency column: the default
    assert parsed.advices.select("advice_ref", "payment_amount_minor", "currency").rows() == [
        ("csv:generic-advice:CHK-1", 12550, "USD"),
        ("csv:generic-advice:CHK-2", 900, "USD"),
    ]


@pytest.mark.parametrize(
    "old,new,where,why",
    [
        (
            '"$4,900.00"',
            '"$4,9OO.00"',
            "line 2, column Net Amount Paid",
            "'$4,9OO.00' is not an amount",
        ),
        (
            '03/28/2024,ACH,"$12,384.60",USD,Tailspin Toys Distribution,SUP-30917,TT-88135',
            '03/29/2024,ACH,"$12,384.60",USD,Tailspin Toys Distribution,SUP-30917,TT-88135',
            "line 4, column Payment Date",
            "payment 'PMT-2024-004417' has datetime.date(2024, 3, 29) here",
        ),
        (
            "PMT-2024-004452,04/04/2024,Check,$812.00",
            ",04/04/2024,Check,$812.00",
            "line 5, column Payment Number",
            "payment reference is empty",
        ),
        (
            "04/04/2024,Check,$812.00,USD,Tailspin Toys Distribution,SUP-30917,TT-88140",
            "2024-04-31,Check,$812.00,USD,Tailspin Toys Distribution,SUP-30917,TT-88140",
            "line 5, column Payment Date",
            "not a date",
        ),
        (",USD,", ",US Dollar,", "line 2, column Currency", "'US Dollar' is not a currency code"),
    ],
)
def test_malformed_csv_advice_is_refused_naming_line_and_column(
    old: str, new: str, where: str, why: str
) -> None:
    text = (HERE / "ap_portal_payment_details.csv").read_text()
    assert old in text
    path = Path("downloads/payments.csv")
    with pytest.raises(InputError) as info:
        parse_advice(text.replace(old, new, 1).encode(), path)
    assert (info.value.path, info.value.where) == (str(path), where)
    assert why in info.value.why


def test_team_profiles_load_validate_and_take_part(tmp_path: Path) -> None:
    (tmp_path / "good.toml").write_text(
        'name = "payer-x"\nsignature = ["Remit ID", "Doc"]\ncurrency = "GBP"\n'
        'date_formats = ["%d/%m/%Y"]\n[columns]\npayment_reference = "Remit ID"\n'
        'payment_date = "Paid On"\n'
        'invoice_number = "Doc"\namount_paid = "Paid"\n'
    )
    team = load_advice_profile_dir(tmp_path, "team")
    data = b"Remit ID,Paid On,Doc,Paid\nR9,31/01/2024,D-1,10.00\n"
    parsed = parse_advice(data, Path("x.csv"), team)
    assert parsed.advices.select("advice_ref", "currency", "payment_date").rows() == [
        ("csv:payer-x:R9", "GBP", date(2024, 1, 31))
    ]
    with pytest.raises(InputError, match="not a remittance advice"):
        parse_advice(data, Path("x.csv"), ())  # CSV advices only through a profile that takes part
    (tmp_path / "bad.toml").write_text(
        'signature = ["A"]\ncurrency = "EUR"\n[columns]\ninvoice_number = "A"\n'
    )
    with pytest.raises(ConfigError, match="bad.toml: columns.payment_reference is required"):
        load_advice_profile_dir(tmp_path, "team")


def test_two_profiles_claiming_one_file_is_ambiguous(tmp_path: Path) -> None:
    path = HERE / "generic_advice.csv"
    generic = next(p for p in builtin_advice_profiles() if p.name == "generic-advice")
    from dataclasses import replace

    twin = replace(generic, name="twin")
    with pytest.raises(
        InputError,
        match="ambiguous advice format: claimed by csv-advice:generic-advice, csv-advice:twin",
    ):
        parse_advice(path.read_bytes(), path, (generic, twin))


# ---------------------------------------------------------------- detection


def test_every_advice_is_claimed_by_exactly_one_reader_and_by_no_statement_parser() -> None:
    for path in sorted(HERE.iterdir()):
        head = path.read_bytes()[:65536]
        assert sniff_advice(head), path.name
        readers = [
            path.suffix == ".820",
            path.suffix == ".xml",
            len(claiming_profiles(head, builtin_advice_profiles())),
        ]
        assert sum(readers) == 1, path.name
        with pytest.raises(InputError, match="unrecognised statement format"):
            detect(path.read_bytes(), path)


def test_no_statement_in_the_corpus_looks_like_an_advice(corpus: Path) -> None:
    files = [p for p in corpus.rglob("*") if p.is_file() and p.suffix not in (".md", ".json")]
    assert files
    claimed = [p for p in files if sniff_advice(p.read_bytes()[:65536])]
    assert claimed == []


def test_rmr_without_amount_paid_is_derived_from_total_discount_and_adjustments() -> None:
    segments = retail()
    index = find(segments, "RMR", 3)  # INV-24-0107: total 2000, ADX -180 and -70
    segments[index] = ["RMR", "IV", "INV-24-0107", "PP", "", "2000"]
    parsed = parse(render(segments))
    assert line(parsed, "820:1512345678:0008341275", 3)["amount_paid_minor"] == 175000
    assert parsed.warnings == ()


def test_a_csv_whose_first_column_is_called_isa_is_not_x12() -> None:
    assert not sniff_advice(b"ISA,Date,Amount\n1,2024-01-01,5\n")
    assert sniff_advice(RETAIL.read_bytes()[:200])
