"""The identity of a bank line in the database, per format: a reference the bank repeats for another
transaction keeps both lines, a re-import adds nothing, overlapping statements deduplicate; and a
statement that does not continue the previous one's closing balance is reported (SQLite and PostgreSQL).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.engine import make_url

from reconcile.parsers.base import ParseOptions
from reconcile.services.daily import ingest_file, read_file, store_file
from reconcile.statements.ingest import store_parsed
from reconcile.store import db, tables

REPEATED = "reference repeated in the file for different transactions"


def stored(engine: Engine) -> list[tuple[str, int]]:
    with engine.connect() as conn:
        rows = conn.execute(select(tables.BankLine.source_ref, tables.BankLine.amount_minor)
                            .order_by(tables.BankLine.id)).all()
    return [(ref, amount) for ref, amount in rows]


def ingest(engine: Engine, tmp_path: Path, name: str, data: bytes):  # type: ignore[no-untyped-def]
    path = tmp_path / name
    path.write_bytes(data)
    return ingest_file(engine, path, ParseOptions.builtin())


# --- one file per format: (first file, a later overlapping file with one more transaction) ------------

def ofx(server: str, extra: str = "") -> bytes:
    txn = "<STMTTRN><TRNTYPE>{kind}<DTPOSTED>{day}<TRNAMT>{amount}<FITID>{fitid}<NAME>{name}</STMTTRN>\n"
    body = (txn.format(kind="DEBIT", day="20260302", amount="-120.00", fitid="7781", name="HOTEL LISBOA")
            + txn.format(kind="FEE", day="20260302", amount="-3.60", fitid="7781", name="FOREIGN TRANSACTION FEE")
            + txn.format(kind="CREDIT", day="20260302", amount="1.20", fitid="7781", name="REWARD 1%") + extra)
    return (f"OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\n\n<OFX><SIGNONMSGSRSV1><SONRS><STATUS><CODE>0<SEVERITY>INFO"
            f"</STATUS><DTSERVER>{server}</SONRS></SIGNONMSGSRSV1><CREDITCARDMSGSRSV1><CCSTMTTRNRS><CCSTMTRS>"
            f"<CURDEF>EUR<CCACCTFROM><ACCTID>4111000011112222</CCACCTFROM><BANKTRANLIST>\n{body}</BANKTRANLIST>"
            "</CCSTMTRS></CCSTMTTRNRS></CREDITCARDMSGSRSV1></OFX>\n").encode()


def camt(message: str, extra: str = "") -> bytes:
    entry = ('<Ntry><Amt Ccy="EUR">{amount}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>'
             "<BookgDt><Dt>2026-03-02</Dt></BookgDt><AcctSvcrRef>{ref}</AcctSvcrRef>"
             "<AddtlNtryInf>{text}</AddtlNtryInf></Ntry>")
    entries = (entry.format(amount="250.00", ref="2026030200017", text="INV-1001")
               + entry.format(amount="75.50", ref="2026030200017", text="INV-1002") + extra)
    return ('<?xml version="1.0" encoding="UTF-8"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">'
            f"<BkToCstmrStmt><GrpHdr><MsgId>{message}</MsgId><CreDtTm>2026-03-03T06:00:00</CreDtTm></GrpHdr>"
            f"<Stmt><Id>{message}</Id><Acct><Id><IBAN>NL91ABNA0417164300</IBAN></Id><Ccy>EUR</Ccy></Acct>{entries}"
            "</Stmt></BkToCstmrStmt></Document>").encode()


def mt940(reference: str, extra: str = "") -> bytes:
    return (f":20:{reference}\n:25:NL91ABNA0417164300\n:28C:1/1\n:60F:C260301EUR0,00\n"
            ":61:2603020302C250,00NTRFNONREF//B0302A\n:86:INV-1001 ACME\n"
            ":61:2603020302C75,50NTRFNONREF//B0302A\n:86:INV-1002 ACME\n" + extra + "-\n").encode()


def bai2(file_id: str, extra: list[tuple[str, int]] | None = None) -> bytes:
    details = [("16,195,25000,,BREF1,,INV-1001/", 25000), ("16,195,7550,,BREF1,,INV-1002/", 7550), *(extra or [])]
    total = sum(amount for _, amount in details)
    records = ["03,12345,USD/", *(d for d, _ in details)]
    lines = [f"01,BANK,ME,260303,0600,{file_id},,,2/", "02,ME,BANK,1,260302,,USD,2/", *records,
             f"49,{total},{len(records) + 1}/", f"98,{total},1,{len(records) + 3}/",
             f"99,{total},1,{len(records) + 5}/"]
    return "\n".join(lines).encode()


def csv(extra: str = "") -> bytes:
    return ("id,booking_date,value_date,amount,currency,counterparty_name,counterparty_account,remittance\n"
            "TX-9,2026-03-02,,250.00,EUR,ACME,,INV-1001\nTX-9,2026-03-02,,75.50,EUR,ACME,,INV-1002\n" + extra).encode()


CASES = {
    "ofx": ("card.ofx", ofx("20260303"), ofx("20260304", "<STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20260303<TRNAMT>-9.99"
                                                          "<FITID>7790<NAME>BOOKS</STMTTRN>\n"), "7781"),
    "camt": ("camt.xml", camt("M1"), camt("M2", '<Ntry><Amt Ccy="EUR">9.99</Amt><CdtDbtInd>CRDT</CdtDbtInd>'
                                                 "<Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>2026-03-03</Dt></BookgDt>"
                                                 "<AcctSvcrRef>2026030300001</AcctSvcrRef></Ntry>"),
             "2026030200017"),
    "mt940": ("day.sta", mt940("S1"), mt940("S2", ":61:2603030303C9,99NTRFNONREF//B0303A\n:86:INV-1003\n"),
              "B0302A"),
    "bai2": ("day.bai", bai2("1"), bai2("2", [("16,195,999,,BREF2,,INV-1003/", 999)]), "BREF1"),
    "csv": ("day.csv", csv(), csv("TX-10,2026-03-03,,9.99,EUR,ACME,,INV-1003\n"), "TX-9"),
}


@pytest.mark.parametrize(("name", "first", "overlapping", "reference"), list(CASES.values()), ids=list(CASES))
def test_a_reference_repeated_for_other_transactions_keeps_every_line_and_deduplicates(
        engine: Engine, tmp_path: Path, name: str, first: bytes, overlapping: bytes, reference: str) -> None:
    result = ingest(engine, tmp_path, name, first)
    lines = stored(engine)
    assert result.new_lines == result.lines == len(lines) >= 2
    assert lines[0][0] == reference and all(ref.startswith(reference + "#") for ref, _ in lines[1:])
    assert len({ref for ref, _ in lines}) == len(lines)
    assert any(REPEATED in w and reference in w for w in result.warnings)

    again = ingest(engine, tmp_path, "again-" + name, first)      # the same file, under another name
    assert (again.already_imported, again.new_lines) == (True, 0)
    later = ingest(engine, tmp_path, "later-" + name, overlapping)  # other bytes: parsed and stored again
    assert (later.already_imported, later.new_lines) == (False, 1)
    assert stored(engine)[:len(lines)] == lines and len(stored(engine)) == len(lines) + 1


def test_identical_lines_of_one_statement_are_two_payments_and_a_resent_statement_adds_nothing(
        engine: Engine, tmp_path: Path) -> None:
    twice = ":61:2603020302C10,00NTRFNONREF//SAME\n:86:COFFEE\n" * 2
    result = ingest(engine, tmp_path, "a.sta", mt940("S1", twice))
    assert result.new_lines == 4
    assert [ref for ref, _ in stored(engine)][2:] == ["SAME", "SAME#2"]
    resent = mt940("S1", twice).replace(b":20:S1", b":20:S1-RESENT")
    assert ingest(engine, tmp_path, "b.sta", resent).new_lines == 0


# --- a statement that does not continue the previous closing balance ------------------------------------

def mt940_day(day: int, opening: str, closing: str) -> bytes:
    amount = f"{(float(closing.replace(',', '.')) - float(opening.replace(',', '.'))):.2f}".replace(".", ",")
    mark = "C" if not amount.startswith("-") else "D"
    return (f":20:D{day}\n:25:NL91ABNA0417164300\n:28C:{day}/1\n:60F:C2603{day:02d}EUR{opening}\n"
            f":61:2603{day:02d}{mark}{amount.lstrip('-')}NTRFNONREF//X{day}\n:86:DAY {day}\n"
            f":62F:C2603{day:02d}EUR{closing}\n-\n").encode()


def camt_day(day: int, opening: str, closing: str) -> bytes:
    balance = ('<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">{amount}</Amt>'
               "<CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2026-03-{day:02d}</Dt></Dt></Bal>")
    return ('<?xml version="1.0" encoding="UTF-8"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">'
            f"<BkToCstmrStmt><GrpHdr><MsgId>M{day}</MsgId><CreDtTm>2026-03-{day:02d}T20:00:00</CreDtTm></GrpHdr>"
            f"<Stmt><Id>S{day}</Id><FrToDt><FrDtTm>2026-03-{day:02d}T00:00:00</FrDtTm>"
            f"<ToDtTm>2026-03-{day:02d}T23:59:59</ToDtTm></FrToDt>"
            "<Acct><Id><IBAN>DE89370400440532013000</IBAN></Id><Ccy>EUR</Ccy></Acct>"
            + balance.format(code="OPBD", amount=opening, day=day)
            + balance.format(code="CLBD", amount=closing, day=day)
            + "</Stmt></BkToCstmrStmt></Document>").encode()


@pytest.mark.parametrize(("write", "account", "opening", "closing"), [
    (mt940_day, "NL91ABNA0417164300", "100,00", "90,00"), (camt_day, "DE89370400440532013000", "100.00", "90.00"),
], ids=["mt940", "camt"])
def test_an_opening_balance_that_does_not_continue_the_previous_closing_is_a_warning(
        engine: Engine, tmp_path: Path, write, account: str, opening: str, closing: str) -> None:  # type: ignore[no-untyped-def]
    first = ingest(engine, tmp_path, "d1", write(1, opening, closing))
    assert not [w for w in first.warnings if "differs from the closing" in w]
    continued = ingest(engine, tmp_path, "d2", write(2, closing, closing))  # opens with the closing of day 1
    assert not [w for w in continued.warnings if "differs from the closing" in w]
    gap = ingest(engine, tmp_path, "d4", write(4, opening, opening))       # day 3 is missing
    assert f"{account}: opening 100.00 differs from the closing 90.00 of the statement of 2026-03-02: a missing day?" \
        in gap.warnings
    assert (gap.statements, gap.new_lines) == (1, gap.lines)  # reported, nothing refused
    # a statement that arrives late is compared with the one before it by period, not by arrival
    late = ingest(engine, tmp_path, "d3", write(3, closing, opening))
    assert not [w for w in late.warnings if "differs from the closing" in w]


# --- a large file: PostgreSQL stores it through COPY and one INSERT ... ON CONFLICT DO NOTHING ------------

AWKWARD = ['He said "paid", twice', "a,b;c", "\\N", "NULL", "Müller & Søn ÆØÅ", "tab\there", "back\\slash"]


def many_lines(start: int, stop: int) -> bytes:
    rows = ["id,booking_date,value_date,amount,currency,counterparty_name,counterparty_account,remittance"]
    for i in range(start, stop):
        text = AWKWARD[i % len(AWKWARD)].replace('"', '""')
        ref = "TX-REPEATED" if i % 100 == 7 else f"TX-{i:05d}"  # the bank reuses one reference now and then
        rows.append(f'{ref},2026-03-02,,{i}.{i % 100:02d},EUR,"Payer {i}",,"INV-{i} {text}"')
    return ("\n".join(rows) + "\n").encode()


def test_a_large_file_is_stored_in_file_order_with_every_text_intact_and_reimports_add_only_new_lines(
        engine: Engine, tmp_path: Path) -> None:
    first = ingest(engine, tmp_path, "big.csv", many_lines(0, 1200))  # above repo.COPY_FROM: the bulk path
    assert first.new_lines == first.lines == 1200
    with engine.connect() as conn:
        rows = conn.execute(select(tables.BankLine.source_ref, tables.BankLine.amount_minor,
                                   tables.BankLine.counterparty_name, tables.BankLine.remittance)
                            .order_by(tables.BankLine.id)).all()
    assert [amount for _, amount, _, _ in rows] == [i * 100 + i % 100 for i in range(1200)]  # ids follow the file
    assert [name for _, _, name, _ in rows] == [f"Payer {i}" for i in range(1200)]
    assert [text for _, _, _, text in rows] == [f"INV-{i} {AWKWARD[i % len(AWKWARD)]}" for i in range(1200)]
    refs = [ref for ref, _, _, _ in rows]
    assert refs[7] == "TX-REPEATED" and refs[107].startswith("TX-REPEATED#") and len(set(refs)) == 1200

    overlapping = ingest(engine, tmp_path, "next.csv", many_lines(600, 1800))
    assert (overlapping.lines, overlapping.new_lines) == (1200, 600)
    assert len(stored(engine)) == 1800 and stored(engine)[:1200] == [(r, a) for r, a, _, _ in rows]


def test_two_imports_at_once_of_overlapping_files_count_each_line_once(pg_url: str, tmp_path: Path) -> None:
    """The second import waits on the first's uncommitted lines and skips them: its count is what it stored
    (counting the account's lines before and after took in the first import's 600 and reported 900)."""
    engine = db.make_engine(pg_url)
    db.upgrade(engine)
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_bytes(many_lines(0, 600))
    second.write_bytes(many_lines(300, 900))
    options = ParseOptions.builtin()
    read_first, read_second = read_file(first, options), read_file(second, options)
    outcome: dict[str, int] = {}
    with db.transaction(engine) as session:  # the first import, its transaction still open
        outcome["first"] = store_parsed(session, first, read_first.digest, read_first.parsed,  # type: ignore[arg-type]
                                        datetime.now(UTC)).new_lines
        later = threading.Thread(target=lambda: outcome.update(second=store_file(engine, read_second).new_lines))
        later.start()
        later.join(timeout=2)
        assert later.is_alive()  # waiting on the first import's lines 300-599
    later.join(timeout=30)
    assert outcome == {"first": 600, "second": 300}
    assert len(stored(engine)) == 900 == outcome["first"] + outcome["second"]
    engine.dispose()


@pytest.mark.pg
def test_a_database_without_the_temporary_privilege_still_imports_and_counts_exactly(tmp_path: Path) -> None:
    """Some hardened servers revoke PostgreSQL's default TEMPORARY privilege: imports then insert row by row."""
    from tests.conftest import PG_URL

    if not PG_URL:
        pytest.skip("no PostgreSQL")
    name = f"notemp_{uuid4().hex[:10]}"
    admin = create_engine(db.resolve_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE ROLE "{name}" LOGIN'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        conn.execute(text(f'REVOKE TEMPORARY ON DATABASE "{name}" FROM PUBLIC'))
        conn.execute(text(f'GRANT CONNECT ON DATABASE "{name}" TO "{name}"'))
    owner = create_engine(make_url(db.resolve_url(PG_URL)).set(database=name), isolation_level="AUTOCOMMIT")
    with owner.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}" AUTHORIZATION "{name}"'))
    owner.dispose()
    url = make_url(db.resolve_url(PG_URL)).set(username=name, password=None, database=name)
    engine = db.make_engine(url.render_as_string(hide_password=False))
    try:
        db.upgrade(engine)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT has_database_privilege(current_database(), 'TEMPORARY')")).scalar() \
                is False
        assert ingest(engine, tmp_path, "big.csv", many_lines(0, 600)).new_lines == 600
        assert ingest(engine, tmp_path, "next.csv", many_lines(300, 900)).new_lines == 300
        assert [amount for _, amount in stored(engine)] == [i * 100 + i % 100 for i in range(900)]
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'DROP ROLE IF EXISTS "{name}"'))
        admin.dispose()
