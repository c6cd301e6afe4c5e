"""MT940/MT942: every corpus file (golden output + MANIFEST.md values, or its clear refusal), dialects
of the :61:/:86: fields, source_ref rules, and a fuzz test that only InputError ever escapes.

Decisions taken here (and why the values differ from WoLpH/mt940's YAML where they do):
- A fragment with no :20:/:25: (betterplace amount_formats, empty_entry_date, missing_crlf_at_end,
  cmxl statement_details, sparkassen) is refused: its lines would have no account. Their MANIFEST
  amounts are still asserted, on the field layer (_fields/_transaction/_balance).
- test-wrong-file.940 (":9401:") is refused as OCA does; sepa_snippet_broken (the details tagged :25:)
  is refused rather than taking "166?00GUTSCHRIFT..." as the account; wrapped_timestamp (value date
  2016-02-30) is refused naming the line: a date is never moved.
- The account drops a trailing currency equal to the statement's ("1526.89.184EUR" -> "1526.89.184").
- raphaelm's last :62F: has no currency: WoLpH reads "950" as one and 0.00 as the amount; we read 95000.00
  in the statement's DEM (opening 145000.00 - 50000.00 adds up).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconcile.core.errors import InputError
from reconcile.parsers import detect, parse_bytes, parse_file
from reconcile.parsers.base import ParsedFile
from reconcile.parsers.mt940 import Mt940Parser, _balance, _decode, _fields, _transaction
from tests.parsers.golden import check_golden

READABLE = [
    "mt940/oca/mt940_base/test-sns-utf8.940",
    "mt940/oca/mt940_base/test-sns.940",
    "mt940/oca/nl_ing/test-ing-old.940",
    "mt940/oca/nl_rabo/test-rabo.swi",
    "mt940/tryton/MT940.txt",
    "mt940/wolph-mt940/ASNB/0708271685_09022020_164516.940.txt",
    "mt940/wolph-mt940/betterplace/sepa_snippet.sta",
    "mt940/wolph-mt940/betterplace/with_binary_character.sta",
    "mt940/wolph-mt940/cmxl/mt940.sta",
    "mt940/wolph-mt940/jejik/ing.sta",
    "mt940/wolph-mt940/jejik/knab.sta",
    "mt940/wolph-mt940/jejik/postfinance.sta",
    "mt940/wolph-mt940/jejik/rabobank.sta",
    "mt940/wolph-mt940/jejik/sns.sta",
    "mt940/wolph-mt940/jejik/triodos.sta",
    "mt940/wolph-mt940/mBank/mt942.sta",
    "mt940/wolph-mt940/mBank/with_newline_in_tnr.sta",
    "mt940/wolph-mt940/self-provided/gv_codes.sta",
    "mt940/wolph-mt940/self-provided/long_statement_number.sta",
    "mt940/wolph-mt940/self-provided/malformed_details.sta",
    "mt940/wolph-mt940/self-provided/mt942.sta",
    "mt940/wolph-mt940/self-provided/overly_long_details.sta",
    "mt940/wolph-mt940/self-provided/raiffeisen-cmi.sta",
    "mt940/wolph-mt940/self-provided/raphaelm.sta",
    "mt940/wolph-mt940/self-provided/whitespace.sta",
]

FRAGMENT = "outside a statement: a statement starts with :20:"
# (file, where, part of the reason)
REFUSED = [
    ("mt940/oca/mt940_base/test-wrong-file.940", "line 1", "unknown tag ':9401:'"),
    ("mt940/wolph-mt940/betterplace/sepa_snippet_broken.sta", "line 6",
     "a second :25: account in the statement that starts at line 1: '166?00GUTSCHRIFT"),
    ("mt940/wolph-mt940/self-provided/wrapped_timestamp.sta", "line 5", ":61: value date '160230' is not a real date"),
    ("mt940/wolph-mt940/betterplace/amount_formats.sta", "line 1", f":60F: {FRAGMENT}"),
    ("mt940/wolph-mt940/betterplace/empty_entry_date.sta", "line 1", f":61: {FRAGMENT}"),
    ("mt940/wolph-mt940/betterplace/missing_crlf_at_end.sta", "line 1", f":62F: {FRAGMENT}"),
    ("mt940/wolph-mt940/cmxl/statement_details.sta", "line 1", f":61: {FRAGMENT}"),
    ("mt940/wolph-mt940/self-provided/sparkassen.sta", "line 1", f":61: {FRAGMENT}"),
]
UNCLAIMED = ["mt940/wolph-mt940/self-provided/invalid_statement.sta"]  # "1\n2\n3...": not a statement


def test_every_mt940_corpus_file_is_covered(corpus: Path) -> None:
    on_disk = {str(p.relative_to(corpus)) for p in (corpus / "mt940").rglob("*") if p.is_file()}
    assert len(on_disk) == 34
    assert on_disk == set(READABLE) | {r[0] for r in REFUSED} | set(UNCLAIMED)


@pytest.mark.parametrize("relative", READABLE)
def test_corpus_file_matches_its_golden_output(corpus: Path, relative: str) -> None:
    assert detect((corpus / relative).read_bytes(), corpus / relative).name == "mt940"
    check_golden(corpus, relative)


@pytest.mark.parametrize(("relative", "where", "why"), REFUSED)
def test_corpus_file_is_refused_with_a_clear_reason(corpus: Path, relative: str, where: str, why: str) -> None:
    assert detect((corpus / relative).read_bytes(), corpus / relative).name == "mt940"
    with pytest.raises(InputError) as caught:
        parse_file(corpus / relative)
    assert (caught.value.path, caught.value.where) == (str(corpus / relative), where)
    assert why in caught.value.why


def test_a_file_that_is_no_statement_is_claimed_by_no_parser(corpus: Path) -> None:
    with pytest.raises(InputError, match="unrecognised statement format"):
        parse_file(corpus / UNCLAIMED[0])


def cents(parsed: ParsedFile) -> list[int]:
    return [amount for s in parsed.statements for amount in s.lines["amount_minor"].to_list()]


# MANIFEST.md golden values: (account, opening, closing) of the LAST statement block (WoLpH keeps those),
# every transaction amount in file order, number of statements. Amounts in minor units.
MANIFEST = {
    "mt940/wolph-mt940/jejik/ing.sta": ("0001234567", 0, 347, [-2503, -303, -111, -2000, -110, 368, 100], 1),
    "mt940/wolph-mt940/jejik/rabobank.sta": ("1526.89.184", 419612, 410182, [-121328, -4495, -23656, -8810, -620], 4),
    "mt940/wolph-mt940/jejik/knab.sta": ("123456789", 305898, 79898, [50000, -726000, 50000], 2),
    "mt940/wolph-mt940/jejik/postfinance.sta": ("123456789", 22920, 15960, [7970, 14950, -7990, 1010], 2),
    "mt940/wolph-mt940/jejik/sns.sta": ("0123456789", 120956, 120956, [-2000, -500], 2),
    "mt940/wolph-mt940/jejik/triodos.sta": ("TRIODOSBANK/0390123456", 497509, 437079, [-1570, -70000], 1),
    "mt940/wolph-mt940/mBank/mt942.sta": ("PL29114010810000267002001002", None, None, [1, 1, 1], 1),
    "mt940/wolph-mt940/mBank/with_newline_in_tnr.sta": ("PL29114010810000267002001002", 46, 86017, [4500, 4400], 1),
    "mt940/wolph-mt940/betterplace/sepa_snippet.sta": (
        "50880050/0194791600888", -197043187, -447204909,
        [5099005, 15455193, 15455193, -150000, -8, 33533, 1500000, 1500005, 12500488, 91531155, -357256903], 2),
    "mt940/wolph-mt940/betterplace/with_binary_character.sta": (
        "51230800/0000007304", 13007319, 13119319, [2700, 1306830, -19328205, 112000], 2),
    "mt940/wolph-mt940/cmxl/mt940.sta": (
        "BPHKPLPK/320000546101", 4000000, 5004000,
        [-680000, -62030, 1850000, -1422000, -150700, 420000, -1990000, -40000, 365674, 2304000, -586214,
         -80000, 300000, 2000000, -1000000, 4000], 3),
    "mt940/wolph-mt940/self-provided/raiffeisen-cmi.sta": (
        "UBRTHUHB/123456789150ABCDEF002", 2517063710, 2528168760,
        [206663700, -1479000, -305180000, -389277, -78924, -157849, -600000], 1),
    "mt940/wolph-mt940/self-provided/raphaelm.sta": (
        "3346780111", 14500000, 9500000, [500000, *[2000000] * 7, -5000000], 3),
    "mt940/wolph-mt940/self-provided/malformed_details.sta": ("12345678/1020304050", 1234512, 1234598, [-23315], 1),
    "mt940/wolph-mt940/self-provided/overly_long_details.sta": ("12345678/1020304050", 1234512, 1234598, [-23315], 1),
    "mt940/wolph-mt940/self-provided/whitespace.sta": ("12345678/1020304050", 1234512, 1234598, [-23315], 1),
    "mt940/wolph-mt940/self-provided/long_statement_number.sta": ("0067-00763/93984487", 0, 0, [], 1),
    "mt940/wolph-mt940/self-provided/mt942.sta": ("GJB0291077111", None, None, [-42], 1),
    "mt940/wolph-mt940/self-provided/gv_codes.sta": ("12345678/1020304050", 1234512, None, [-23315, -2430], 1),
    "mt940/tryton/MT940.txt": ("1234567890", 0, 10000, [10000], 1),
    "mt940/oca/nl_rabo/test-rabo.swi": ("NL34RABO0142623393", 479891, 479891, [40000, -3461], 4),
    "mt940/oca/nl_ing/test-ing-old.940": ("NL77INGB0574908765", 66223, 56435,
                                           [156, -157, 157, -114, 145, -1275, 3200, -11900], 1),
    "mt940/wolph-mt940/ASNB/0708271685_09022020_164516.940.txt": (
        "NL81ASNB9999999999", 40481, 50123, [-6500, 100000, -80155, -165, 82872, -100000, 100018, -90376], 31),
    "mt940/oca/mt940_base/test-sns.940": (
        "NL05SNSB0908244436", 225357, None, [-71313, -1018, -1352, -2561, -1095, 0, -90729, -3500], 3),
}


@pytest.mark.parametrize("relative", sorted(MANIFEST))
def test_manifest_values(corpus: Path, relative: str) -> None:
    account, opening, closing, amounts, count = MANIFEST[relative]
    parsed = parse_file(corpus / relative)
    last = parsed.statements[-1]
    assert (last.account, last.opening_minor, last.closing_minor) == (account, opening, closing)
    assert cents(parsed) == amounts
    assert len(parsed.statements) == count


def test_manifest_currencies_dates_and_first_balances(corpus: Path) -> None:
    rabo = parse_file(corpus / "mt940/oca/nl_rabo/test-rabo.swi").statements
    # OCA: start_balance 4433.52, end_balance 4798.91, statement dated by the last 62F (2014-01-07)
    assert (rabo[0].opening_minor, rabo[-1].closing_minor, rabo[-1].period_end) == (443352, 479891, date(2014, 1, 7))
    line = rabo[0].lines.row(0, named=True)  # remote_account NL66RABO0160878799, 400.00, 2014-01-02, NONREF
    assert (line["counterparty_account"], line["amount_minor"], line["value_date"]) == (
        "NL66RABO0160878799", 40000, date(2014, 1, 2))
    assert line["source_ref"].startswith("h:")  # NONREF: no bank reference
    [tryton] = parse_file(corpus / "mt940/tryton/MT940.txt").statements
    row = tryton.lines.row(0, named=True)  # origin number FFPC, description, mt940_reference 913000381
    assert (row["bank_code"], row["remittance"], row["booking_date"]) == ("FFPC", "98.76.54.321 John Doe",
                                                                          date(2019, 7, 31))
    assert tryton.warnings == ()  # 0.00 + 100.00 = 100.00
    postfinance = parse_file(corpus / "mt940/wolph-mt940/jejik/postfinance.sta").statements
    assert [s.currency for s in postfinance] == ["CHF", "CHF"]
    assert (postfinance[0].opening_minor, postfinance[0].closing_minor) == (0, 22920)  # 60F "0,", 62M
    assert [s.currency for s in parse_file(corpus / "mt940/wolph-mt940/self-provided/raphaelm.sta").statements] == [
        "DEM"] * 3
    [mt942] = parse_file(corpus / "mt940/wolph-mt940/mBank/mt942.sta").statements
    assert mt942.currency == "PLN"  # from :34F:PLN0, MT942 has no balances
    assert parse_file(corpus / "mt940/wolph-mt940/self-provided/raiffeisen-cmi.sta").statements[0].currency == "HUF"
    assert parse_file(
        corpus / "mt940/wolph-mt940/self-provided/long_statement_number.sta").statements[0].currency == "TRY"


def fragment(corpus: Path, relative: str) -> list:
    return _fields(_decode((corpus / relative).read_bytes()), Path(relative))


@pytest.mark.parametrize(("relative", "amount"), [
    ("mt940/wolph-mt940/betterplace/empty_entry_date.sta", 5000),
    ("mt940/wolph-mt940/self-provided/sparkassen.sta", 3000),   # newline before the amount, ":" + "86:" split
    ("mt940/wolph-mt940/cmxl/statement_details.sta", -162),
])
def test_manifest_amounts_of_refused_fragments(corpus: Path, relative: str, amount: int) -> None:
    fields = fragment(corpus, relative)
    assert [f.tag for f in fields] == ["61", "86"] or [f.tag for f in fields] == ["61"]
    line = _transaction(fields[0], fields[1:], "EUR", Path(relative))
    assert line.record["amount_minor"] == amount


def test_manifest_balances_of_refused_fragments(corpus: Path) -> None:
    fields = fragment(corpus, "mt940/wolph-mt940/betterplace/amount_formats.sta")
    balances = [_balance(f, None, Path("x")).minor for f in fields]
    assert balances == [38011512, 38011510, 38011500, 12, 12, 112]  # the last one is WoLpH's C 1.12
    [closing] = fragment(corpus, "mt940/wolph-mt940/betterplace/missing_crlf_at_end.sta")
    assert _balance(closing, None, Path("x")).minor == 4257004


def test_german_subfields_and_sepa_keywords(corpus: Path) -> None:
    first = parse_file(corpus / "mt940/wolph-mt940/betterplace/sepa_snippet.sta").statements[0]
    line = first.lines.row(0, named=True)
    assert (line["counterparty_name"], line["counterparty_account"], line["bank_code"]) == (
        "KARL KAUFMANN", "DE14508800500194785000", "166")
    assert (line["remittance"], line["end_to_end_id"]) == ("Verw CTSc-01 BC-PPP TFNr 22 004",
                                                          "EndToEndId TFNR 22 004 00001")
    assert (line["booking_date"], line["value_date"]) == (date(2007, 9, 4), date(2007, 9, 7))
    assert line["source_ref"] == "0724710333343453"  # the bank reference after //
    [details] = parse_file(corpus / "mt940/wolph-mt940/self-provided/malformed_details.sta").statements
    row = details.lines.row(0, named=True)
    assert row["counterparty_name"] == "Finanzamt Muenchen Abteilung Erhebung"  # ?32 + ?33, cut mid-word
    assert row["remittance"].startswith("STEUERNR 123/123/12345 KOERPST 3VJ.17 233,15EUR")
    [triodos] = parse_file(corpus / "mt940/wolph-mt940/jejik/triodos.sta").statements
    assert triodos.lines["remittance"].to_list() == [
        "ALGEMENE TUSSENREKENING KOSTEN VAN 01-10-2010 TOT EN MET 31-12-2010", "HUUR KANTOOR - FEB 2010"]


def test_dutch_codewords(corpus: Path) -> None:
    [ing] = parse_file(corpus / "mt940/oca/nl_ing/test-ing-old.940").statements
    rows = ing.lines.rows(named=True)
    assert (rows[0]["counterparty_name"], rows[0]["counterparty_account"], rows[0]["end_to_end_id"]) == (
        "ING BANK NV INZAKE WEB", "NL32INGB0000012345", "EV12341REP1231456T1234")
    assert rows[0]["remittance"] == "EV10001REP1000000T1000"
    assert rows[5]["remittance"] == "CONTRIBUTIE FEB 2014"  # wrapped "/REM\nI/USTD//CO\nNTRIBUTIE"
    assert (rows[6]["reference"], rows[6]["amount_minor"]) == ("9001123412341234", 3200)  # /REMI/STRD/CUR/
    rabo = parse_file(corpus / "mt940/oca/nl_rabo/test-rabo.swi").statements
    assert rabo[2].lines.row(0, named=True)["remittance"] == "Periode 01-10-2013 t/m 31-12-2013"
    sns = parse_file(corpus / "mt940/oca/mt940_base/test-sns.940").statements[0].lines.row(0, named=True)
    assert (sns["counterparty_name"], sns["counterparty_account"], sns["remittance"]) == (
        "gerrits glas en schilderwerk", "NL49RABO0166416932", "Factuur 17227/248/20")
    knab = parse_file(corpus / "mt940/wolph-mt940/jejik/knab.sta").statements[1].lines.row(0, named=True)
    assert (knab["counterparty_name"], knab["counterparty_account"]) == ("PICQER", "NL65INGB0123456789")


def test_polish_mbank_details(corpus: Path) -> None:
    [mt942] = parse_file(corpus / "mt940/wolph-mt940/mBank/mt942.sta").statements
    row = mt942.lines.row(0, named=True)
    assert (row["counterparty_account"], row["remittance"], row["source_ref"]) == (
        "56114010810000267002001001", "PRZELEW SRODKOW", "MB170119012058")


def test_identical_lines_stay_separate_across_statements_of_one_account(corpus: Path) -> None:
    parsed = parse_file(corpus / "mt940/wolph-mt940/self-provided/raphaelm.sta")
    refs = [r for s in parsed.statements for r in s.lines["source_ref"].to_list()]
    assert len(set(refs)) == len(refs) == 9
    assert refs[-2].endswith("/6")  # the 6th "20000,00 S051" of account 1222333444, counted over two blocks
    assert refs == [r for s in parse_file(corpus / "mt940/wolph-mt940/self-provided/raphaelm.sta").statements
                    for r in s.lines["source_ref"].to_list()]


def test_a_bank_reference_repeated_for_another_transaction_is_told_apart_with_a_warning(corpus: Path) -> None:
    second = parse_file(corpus / "mt940/wolph-mt940/cmxl/mt940.sta").statements[1]
    rent, salary = second.lines.rows(named=True)  # "NONREF//55555" on both: Miete November, Gehalt Oktober
    assert (rent["source_ref"], rent["amount_minor"]) == ("55555", -80000)
    assert salary["source_ref"].startswith("55555#") and salary["amount_minor"] == 300000
    assert second.warnings == (("reference repeated in the file for different transactions: 55555; each later "
                               "one is stored under the reference with a '#' suffix"),)


def test_balances_that_do_not_add_up_are_a_warning(corpus: Path) -> None:
    [ing] = parse_file(corpus / "mt940/wolph-mt940/jejik/ing.sta").statements
    assert ing.warnings == (("balances do not add up: opening 0.00 + lines -45.59 = -45.59, but the closing "
                            "balance (line 26) is 3.47"),)


def mt940(body: str, *, head: str = ":20:REF\n:25:NL91ABNA0417164300\n:28C:1/1\n:60F:C240101EUR100,00\n",
          tail: str = "") -> bytes:
    return (head + body + tail).encode()


def lines_of(data: bytes) -> list[dict]:
    return [r for s in parse_bytes(data, Path("t.sta")).statements for r in s.lines.rows(named=True)]


def test_swift_envelope_with_control_bytes_and_two_messages() -> None:
    message = ("{1:F01ABNANL2AXXXX0000000000}{2:O940ABNANL2AXXXXN}{3:}{4:\r\n:20:A\r\n:25:NL91ABNA0417164300\r\n"
               ":28C:{n}/1\r\n:60F:C240101EUR0,\r\n:61:2401010101C1,5NTRFNONREF//B{n}\r\n:86:X\r\n"
               ":62F:C240101EUR1,50\r\n-}}{{5:{{CHK:1}}}}\r\n")
    data = b"\x01" + message.replace("{n}", "1").replace("}}", "}").replace("{{", "{").encode() + b"\x03"
    data += message.replace("{n}", "2").replace("}}", "}").replace("{{", "{").encode()
    assert detect(data, Path("x.txt")).name == "mt940"
    parsed = parse_bytes(data, Path("x.txt"))
    assert [(s.account, s.statement_id, s.warnings) for s in parsed.statements] == [
        ("NL91ABNA0417164300", "A 1/1", ()), ("NL91ABNA0417164300", "A 2/1", ())]
    assert [r["source_ref"] for s in parsed.statements for r in s.lines.rows(named=True)] == ["B1", "B2"]


@pytest.mark.parametrize(("mark", "amount", "reversal"), [
    ("C", 250, False), ("D", -250, False), ("RC", -250, True), ("RD", 250, True), ("CR", 250, False),
])
def test_debit_credit_marks_and_reversals(mark: str, amount: int, reversal: bool) -> None:
    [line] = lines_of(mt940(f":61:2401020102{mark}2,50NTRFNONREF\n:86:text\n"))
    assert (line["amount_minor"], line["is_reversal"], line["bank_code"]) == (amount, reversal, "NTRF")


def test_a_space_between_amount_and_transaction_type_is_read() -> None:
    # Commerzbank writes ":61:2006080608D12,35 NRTIKREF+//2016021783252833"
    [line] = lines_of(mt940(":61:2006080608D12,35 NRTIKREF+//2016021783252833\n:86:text\n"))
    assert (line["amount_minor"], line["bank_code"], line["source_ref"]) == (-1235, "NRTI", "2016021783252833")


def test_entry_date_across_the_year_end_and_no_entry_date() -> None:
    rows = lines_of(mt940(":61:2312311229D1,00NTRFNONREF\n:61:2401011231D1,00NMSC\n:61:240103C7NCHG\n"))
    assert [(r["value_date"], r["booking_date"]) for r in rows] == [
        (date(2023, 12, 31), date(2023, 12, 29)), (date(2024, 1, 1), date(2023, 12, 31)),
        (date(2024, 1, 3), date(2024, 1, 3))]
    assert [r["amount_minor"] for r in rows] == [-100, -100, 700]


@pytest.mark.parametrize(("body", "where", "why"), [
    (":61:2402300230C1,00NTRF\n", "line 5", ":61: value date '240230' is not a real date"),
    (":61:2402280230C1,00NTRF\n", "line 5", ":61: entry date '0230' is not a real date"),
    (":61:240228C1.00NTRF\n", "line 5", "is not a statement line"),
    (":61:240228C1,001NTRF\n", "line 5", "more decimals than EUR allows"),
    (":62F:C240230EUR1,00\n", "line 5", ":62F: date '240230' is not a real date"),
    (":25:OTHER\n", "line 5", "a second :25: account"),
    (":60F:C240101EUR1,00\n", "line 5", "a second opening balance"),
    (":62F:C240101USD1,00\n", "line 5", ":62F: balance is in USD, the statement in EUR"),
    ("garbage\n", "line 4", ":60F: balance 'C240101EUR100,00garbage' is not"),  # a continuation of :60F:
    (":99:x\n", "line 5", "unknown tag ':99:'"),
])
def test_bad_fields_are_refused_naming_the_line(body: str, where: str, why: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_bytes(mt940(body), Path("t.sta"))
    assert caught.value.where == where
    assert why in caught.value.why


def test_mt942_without_balances_takes_the_currency_from_the_floor_limit() -> None:
    data = b":20:X\n:25:DE1\n:28C:1/1\n:34F:JPYD0\n:13D:2401021200+0100\n:61:240102C1500,NTRF\n:90C:1JPY1500,\n"
    [statement] = parse_bytes(data, Path("t.sta")).statements
    assert (statement.currency, statement.opening_minor, statement.lines["amount_minor"].to_list()) == (
        "JPY", None, [1500])
    with pytest.raises(InputError, match="names no currency"):
        parse_bytes(b":20:X\n:25:DE1\n:61:240102C1500,NTRF\n", Path("t.sta"))


def test_wrapped_text_that_looks_like_a_tag_stays_in_the_details() -> None:
    body = ":61:1602290301DR6,00N024NONREF\n:86:106?20EREF+VZ1?24/PL 12-09-2014T16\n:26:37 Fol?25genr. 007\n"
    [line] = lines_of(mt940(body, tail=":62F:C160301EUR94,00\n-\n"))
    assert line["remittance"] == "EREF+VZ1 /PL 12-09-2014T16:26:37 Folgenr. 007"
    assert line["end_to_end_id"] == "VZ1"


def test_dash_inside_details_is_text_but_ends_a_message_before_a_tag() -> None:
    body = ":61:240102C1,00NTRFNONREF\n:86:/MARF/MND\n-\nEV01//REMI/USTD//INV 7/\n-\n"
    [line] = lines_of(mt940(body, tail=":20:NEXT\n:25:X\n:60F:C240102EUR101,00\n"))
    assert line["remittance"] == "INV 7"


def test_sniff_claims_only_mt940_text() -> None:
    parser = Mt940Parser()
    assert parser.sniff(b"\x01\r\n:20:X\r\n:25:Y\r\n", Path("a"))
    assert parser.sniff(b"{1:F01X}{2:O940X}{4:\n:20:X\n:61:240101C1,NTRF\n", Path("a"))
    assert parser.sniff(b":61:240101C1,NTRF\n", Path("a"))  # a fragment: claimed, then refused
    assert not parser.sniff(b"<?xml version='1.0'?><Document>\n:20:X\n:25:Y\n", Path("a"))
    assert not parser.sniff(b"01,SENDR,RECVR,240101,0100,1,80,1,2/\n:20:X\n:25:Y\n", Path("a"))
    assert not parser.sniff(b"date,amount,text\n2024-01-01,1.00,see :20: and :25:\n", Path("a"))


VALID = mt940(":61:2401020102C2,50NTRFNONREF//B1\n:86:166?00GUTSCHRIFT?20EREF+E1?21SVWZ+INV-1?32ACME\n"
              ":61:2401020102RD1,00NMSCREF//B2\nSUPPL\n:86:/EREF/X//CNTP/NL91ABNA0417164300/ABNANL2A/ACME//"
              "/REMI/USTD//INV-2/\n", tail=":62F:C240102EUR103,50\n-\n")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(VALID)), st.integers(0, 30), st.binary(max_size=12), st.booleans())
def test_mutated_or_truncated_files_raise_only_input_errors(start: int, length: int, junk: bytes,
                                                              truncate: bool) -> None:
    data = VALID[:start] if truncate else VALID[:start] + junk + VALID[start + length:]
    try:
        parsed = Mt940Parser().parse(data, Path("fuzz.sta"))
    except InputError as exc:
        assert exc.path == "fuzz.sta" and exc.why
    else:
        for statement in parsed.statements:
            assert statement.lines["source_ref"].is_not_null().all()
            assert statement.lines["source_ref"].is_unique().all()


def test_bank_header_lines_before_each_message_are_skipped() -> None:
    # ABN AMRO exports put "ABNANL2A" / "940" / "ABNANL2A" before every :20:, also after a "-"
    message = ("ABNANL2A\n940\nABNANL2A\n:20:ABN AMRO BANK NV\n:25:517852257\n:28:19321/{n}\n:60F:C110522EUR10,00\n"
               ":61:1105240524D9,N192NONREF\n:86:GIRO   428428 KPN\n:62F:C110524EUR1,00\n-\n")
    parsed = parse_bytes((message.format(n=1) + message.format(n=2)).encode(), Path("abn.sta"))
    assert [(s.account, s.statement_id, s.warnings) for s in parsed.statements] == [
        ("517852257", "ABN AMRO BANK NV 19321/1", ()), ("517852257", "ABN AMRO BANK NV 19321/2", ())]
    for header in ("DEUTDEFFXXX", "MT940", "942", "0000 01INGBNL2AXXXX00001"):
        [statement] = parse_bytes(f"{header}\n{message.format(n=1)}".encode(), Path("h.sta")).statements
        assert statement.lines["amount_minor"].to_list() == [-900]


def test_a_bic_looking_word_after_a_dash_inside_details_stays_in_the_details() -> None:
    [line] = lines_of(mt940(":61:2401020102D1,00NTRFNONREF\n:86:BETALING\n-\nTRANSFER\nMORE TEXT\n",
                            tail=":62F:C240102EUR99,00\n-\n"))
    assert line["remittance"] == "BETALING - TRANSFER MORE TEXT"


@pytest.mark.parametrize(("line61", "booking", "code", "customer_account", "bank_ref"), [
    (":61:240312    DD2,39NMSCNONREF//\n/ABC/DEF/MISCELLANEOUS", date(2024, 3, 12), "NMSC", None, None),  # Citi
    (":61:240312    D65,00NOVBNL47INGB9999999999\nhr gjlm", date(2024, 3, 12), "NOVB", "NL47INGB9999999999", None),
    (":61:2403120312DF2402,00S   X", date(2024, 3, 12), "S", None, None),          # blank message type (Sberbank)
    (":61:2403120313C5,00NTRF          CUST1//B1", date(2024, 3, 13), "NTRF", None, "B1"),  # padding before ref
    (":61:2403120312C5,00NTRFCUST1     //B2", date(2024, 3, 12), "NTRF", None, "B2"),      # padding before //
    (":61:2403120312C5,00NMSC                  W.P. Jansen", date(2024, 3, 12), "NMSC", None, None),
])
def test_statement_line_padding_and_blank_fields(line61: str, booking: date, code: str,
                                                 customer_account: str | None, bank_ref: str | None) -> None:
    [line] = lines_of(mt940(line61 + "\n"))
    assert (line["booking_date"], line["bank_code"], line["counterparty_account"]) == (booking, code, customer_account)
    assert line["source_ref"] == bank_ref if bank_ref else line["source_ref"].startswith("h:")
    if "W.P. Jansen" in line61:
        assert line["counterparty_name"] == "W.P. Jansen"  # a fixed-width reference that is all padding


def test_swedish_national_character_envelope() -> None:
    # Handelsbanken writes "{4:" and "-}" in ISO 646-SE, where "{" is "ä" and "}" is "å"
    message = (":20:5566778899100112\n:25:10020030/1234567\n:28C:188/1\n:60F:C130928SEK0,\n"
               ":61:1309290929C5,NTRFNONREF//A1\n:62F:C130930SEK5,\n")
    data = f"ä4:\n{message}-å\nä4:\n{message.replace('A1', 'A2')}-å".encode("latin-1")
    parsed = parse_bytes(data, Path("shb.sta"))
    assert [r for s in parsed.statements for r in s.lines["source_ref"].to_list()] == ["A1", "A2"]


def test_a_dos_central_european_file_keeps_its_letters() -> None:
    # cp852 (Hungarian Raiffeisen): "ü" is 0x81, a byte Windows-1252 leaves undefined; latin-1 would make
    # C1 control characters of the letters, which no text field may hold
    text = "Bankon belüli átutalás, napi összevont utánvét"
    data = mt940(f":61:2401020102D1,00NTRFNONREF\n:86:{text}\n").decode().encode("cp852")
    [line] = lines_of(data)
    assert line["remittance"] == text
