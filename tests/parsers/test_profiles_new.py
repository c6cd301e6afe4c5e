"""`reconcile profiles new|check|list`: profiles inferred for layouts no shipped profile knows
(files written here from scratch in real banks' layouts), saved to a team folder, used by ingest."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reconcile.cli import app
from reconcile.parsers.csv_profiles import profile_from_text
from reconcile.parsers.csvprofile import parse_csv
from reconcile.statements.infer import infer_profile

runner = CliRunner()

# German savings-bank style: semicolons, decimal comma, Soll written negative, Haben positive,
# newest first.
SOLL_HABEN = (
    b"Buchungsdatum;Valuta;Empfaenger;Verwendungszweck;Soll;Haben;Saldo\n"
    b"03.04.2024;03.04.2024;Acme GmbH;RE 2024-17;;1.250,00;2.250,00\n"
    b"02.04.2024;02.04.2024;Vermieter;Miete April;-1.000,00;;1.000,00\n"
    b"01.04.2024;01.04.2024;Bank;Kontofuehrung;-5,00;;2.000,00\n"
)

# Monzo: id, DD/MM/YYYY, Type (card payment...), signed Amount and Currency, Money Out/Money In as
# well.
MONZO = (
    b"Transaction ID,Date,Time,Type,Name,Emoji,Category,Amount,Currency,Local amount,Local currency,"
    b"Notes and #tags,Address,Receipt,Description,Category split,Money Out,Money In\n"
    b"tx_0000AbCdEf1,14/03/2024,08:15:02,Card payment,Pret A Manger,,Eating out,-4.50,GBP,-4.50,GBP,,"
    b"1 High St,,PRET A MANGER LONDON GBR,,-4.50,\n"
    b"tx_0000AbCdEf2,15/03/2024,12:00:00,Faster payment,Acme Ltd,,Income,1500.00,GBP,1500.00,GBP,March salary,"
    b",,ACME LTD,,,1500.00\n"
    b"tx_0000AbCdEf3,28/03/2024,09:30:45,Direct Debit,Vodafone,,Bills,-49.99,GBP,-49.99,GBP,,,,VODAFONE LTD,,"
    b"-49.99,\n"
)

# Rabobank (NL): own IBAN per row, Munt, Volgnr, signed Bedrag with decimal comma, Saldo na trn.
RABO_HEADER = (
    '"IBAN/BBAN","Munt","BIC","Volgnr","Datum","Rentedatum","Bedrag","Saldo na trn","Tegenrekening IBAN/BBAN",'
    '"Naam tegenpartij","Naam uiteindelijke partij","Naam initiërende partij","BIC tegenpartij","Code",'
    '"Batch ID","Transactiereferentie","Machtigingskenmerk","Incassant ID","Betalingskenmerk","Omschrijving-1",'
    '"Omschrijving-2","Omschrijving-3","Reden retour","Oorspr bedrag","Oorspr munt","Koers"\n'
)
RABO = (
    RABO_HEADER
    + (
        '"NL11RABO0104955555","EUR","RABONL2U","000000000000007213","2024-04-02","2024-04-02","+1250,00","+2250,00",'
        '"NL91ABNA0417164300","Acme BV","","","ABNANL2A","cb","","","","","","Factuur 2024-17","","","","","",""\n'
        '"NL11RABO0104955555","EUR","RABONL2U","000000000000007214","2024-04-03","2024-04-03","-1000,00","+1250,00",'
        '"NL20INGB0001234567","J. de Vries","","","INGBNL2A","cb","","","","","","Huur april","","","","","",""\n'
        '"NL11RABO0104955555","EUR","RABONL2U","000000000000007215","2024-04-04","2024-04-04","-2,50","+1247,50",'
        '"","","","","","db","","","","","","Kosten","","","","","",""\n'
        '"NL11RABO0104955555","EUR","RABONL2U","000000000000007216","2024-04-05","2024-04-05","-20,00","+1227,50",'
        '"","","","","","bc","","","","","","Betaalautomaat","","","","","",""\n'
    )
).encode()

# Headerless fixed positions (old Dutch "mut.txt" style): unsigned amounts signed by a C/D column.
HEADERLESS = (
    b'"NL11RABO0104955555","EUR",20240402,"C",1250.00,"NL91ABNA0417164300","ACME BV",20240402,"cb","",'
    b'"FACTUUR 2024-17 ORDER 5531","","",""\n'
    b'"NL11RABO0104955555","EUR",20240403,"D",1000.00,"NL20INGB0001234567","J. DE VRIES",20240403,"cb","",'
    b'"HUUR APRIL 2024 APPARTEMENT","","",""\n'
    b'"NL11RABO0104955555","EUR",20240404,"D",2.50,"","",20240404,"db","","KOSTEN BETAALPAKKET","","",""\n'
)

# Swiss bank: latin-1, tabs, account and currency in lines above the table, DD.MM.YY, apostrophe
# thousands.
SWISS = (
    "Kontoauszug\t\t\t\t\t\nIBAN:\tCH93 0076 2011 6238 5295 7\t\t\t\t\nWährung:\tCHF\t\t\t\t\n\t\t\t\t\t\n"
    "Datum\tBuchungstext\tBelastung\tGutschrift\tValuta\tSaldo\n"
    "28.03.24\tZahlung Müller AG Rechnung 17\t\t1'250.00\t28.03.24\t11'250.00\n"
    "29.03.24\tDauerauftrag Miete\t2'000.00\t\t29.03.24\t9'250.00\n"
    "30.03.24\tKontoführung\t5.00\t\t30.03.24\t9'245.00\n"
).encode("latin-1")

# file name, bytes, rows (booking date, minor units, currency, account), (opening, closing)
LAYOUTS = {
    "soll-haben": (
        "Umsaetze_Girokonto.csv",
        SOLL_HABEN,
        [
            (date(2024, 4, 3), 125000, "EUR", "default"),
            (date(2024, 4, 2), -100000, "EUR", "default"),
            (date(2024, 4, 1), -500, "EUR", "default"),
        ],
        (200500, 225000),
    ),
    "monzo": (
        "MonzoDataExport_March.csv",
        MONZO,
        [
            (date(2024, 3, 14), -450, "GBP", "default"),
            (date(2024, 3, 15), 150000, "GBP", "default"),
            (date(2024, 3, 28), -4999, "GBP", "default"),
        ],
        (None, None),
    ),
    "rabobank": (
        "CSV_A_20240405_120000.csv",
        RABO,
        [
            (date(2024, 4, 2), 125000, "EUR", "NL11RABO0104955555"),
            (date(2024, 4, 3), -100000, "EUR", "NL11RABO0104955555"),
            (date(2024, 4, 4), -250, "EUR", "NL11RABO0104955555"),
            (date(2024, 4, 5), -2000, "EUR", "NL11RABO0104955555"),
        ],
        (100000, 122750),
    ),
    "headerless": (
        "mut.txt",
        HEADERLESS,
        [
            (date(2024, 4, 2), 125000, "EUR", "NL11RABO0104955555"),
            (date(2024, 4, 3), -100000, "EUR", "NL11RABO0104955555"),
            (date(2024, 4, 4), -250, "EUR", "NL11RABO0104955555"),
        ],
        (None, None),
    ),
    "swiss": (
        "kontoauszug.csv",
        SWISS,
        [
            (date(2024, 3, 28), 125000, "CHF", "CH9300762011623852957"),
            (date(2024, 3, 29), -200000, "CHF", "CH9300762011623852957"),
            (date(2024, 3, 30), -500, "CHF", "CH9300762011623852957"),
        ],
        (1000000, 924500),
    ),
}


def _read(text: str, data: bytes, name: str) -> tuple[list[tuple], tuple]:
    parsed = parse_csv(data, Path(name), profile_from_text(text, Path("inferred.toml"), "test"))
    rows = [
        (r["booking_date"], r["amount_minor"], r["currency"], s.account)
        for s in parsed.statements
        for r in s.lines.iter_rows(named=True)
    ]
    [statement] = parsed.statements
    return rows, (statement.opening_minor, statement.closing_minor)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_inferred_profile_reads_the_layout_exactly(layout: str) -> None:
    name, data, rows, balances = LAYOUTS[layout]
    inference = infer_profile(data, name)
    assert inference.error is None, inference.to_dict()
    assert _read(inference.text, data, name) == (rows, balances), inference.text


def test_what_the_inference_is_unsure_of_is_said_in_the_profile() -> None:
    inference = infer_profile(SOLL_HABEN, "Umsaetze_Girokonto.csv")
    assert any(u.startswith("currency: the file names none; EUR assumed") for u in inference.unsure)
    assert "# UNSURE" in inference.text and "#   - currency: the file names none" in inference.text
    assert (
        "newest_first = true" in inference.text and 'debit_credit_rule = "signed"' in inference.text
    )
    # day and month both at most 12: the choice is said, not hidden
    ambiguous = SOLL_HABEN.replace(b"03.04.2024", b"03.04.2024").replace(b"Buchungsdatum", b"Datum")
    short = infer_profile(ambiguous.replace(b".", b"/").replace(b"1/250,00", b"1250,00"), "x.csv")
    assert any(u.startswith("date format: every date fits both") for u in short.unsure)
    swiss = infer_profile(SWISS, "kontoauszug.csv")
    assert any("latin-1" in u for u in swiss.unsure) and 'thousands = "\'"' in swiss.text


def test_a_file_without_rows_to_learn_from_is_said_so() -> None:
    inference = infer_profile(b"Date,Description,Amount\n", "empty.csv")
    assert inference.error is not None and inference.error.startswith(
        "no rows with dates to learn from"
    )


def _team(tmp_path: Path) -> Path:
    folder = tmp_path / "team"
    folder.mkdir()
    (folder / "reconcile.toml").write_text("", encoding="utf-8")
    return folder


def _cli(*args: str) -> tuple[int, str]:
    done = runner.invoke(app, list(args), env={"COLUMNS": "250"})
    return done.exit_code, done.output


@pytest.mark.parametrize("layout", sorted(set(LAYOUTS) - {"rabobank"}))  # rabobank: a built-in (below)
def test_new_write_then_check_and_ingest_through_the_team_folder(
    tmp_path: Path, layout: str
) -> None:
    name, data, rows, _ = LAYOUTS[layout]
    team = _team(tmp_path)
    path = tmp_path / name
    path.write_bytes(data)
    code, out = _cli("profiles", "check", str(path), "--config", str(team))
    assert code == 1 and "no profile claims the file" in out
    code, out = _cli(
        "profiles", "new", str(path), "--name", f"bank-{layout}", "--write", "--config", str(team)
    )
    written = team / "profiles" / f"bank-{layout}.toml"
    assert code == 0 and written.is_file(), out
    assert f"written to {written}" in out and "line" in out
    code, out = _cli("profiles", "check", str(path), "--config", str(team), "--json")
    report = json.loads(out)
    assert code == 0 and report["claimed_by"] == f"bank-{layout}"
    assert report["parsed"]["lines"] == len(rows)
    db = ["--db", f"sqlite:///{tmp_path / 'r.db'}"]
    assert _cli("init", *db)[0] == 0
    code, out = _cli("ingest", str(path), "--config", str(team), "--json", *db)
    result = json.loads(out)
    assert code == 0, out
    [outcome] = result["files"]
    assert (outcome["status"], outcome["format"], outcome["lines"]) == (
        "stored",
        f"csv:bank-{layout}",
        len(rows),
    )
    # the built-in profiles are still there next to the team's
    generic = tmp_path / "generic.csv"
    generic.write_text(
        "id,booking_date,value_date,amount,currency,counterparty_name,counterparty_account,"
        "remittance\nG1,2026-03-02,,12.00,EUR,Acme,,INV-1\n",
        encoding="utf-8",
    )
    code, out = _cli(
        "ingest",
        str(generic),
        "--config",
        str(team),
        "--account",
        "NL91ABNA0417164300",
        "--json",
        *db,
    )
    assert code == 0 and json.loads(out)["files"][0]["format"] == "csv:generic"
    # a second --write never overwrites
    code, out = _cli(
        "profiles", "new", str(path), "--name", f"bank-{layout}", "--write", "--config", str(team)
    )
    assert code == 2 and "exists: not overwritten" in out


def test_new_json_shape_and_refusals(tmp_path: Path) -> None:
    team = _team(tmp_path)
    path = tmp_path / "CSV_A_20240405.csv"
    path.write_bytes(RABO)
    code, out = _cli("profiles", "new", str(path), "--json", "--config", str(team))
    report = json.loads(out)
    assert code == 0 and report["written"] is None and report["error"] is None
    assert set(report) == {
        "name",
        "profile",
        "notes",
        "unsure",
        "error",
        "claimed_by",
        "preview",
        "written",
    }
    # the draft is shown, and so is the built-in profile that already reads the file
    assert report["name"] == "csv" and report["claimed_by"] == ["rabobank"]
    first = report["preview"][0]
    assert (
        first["location"],
        first["account"],
        first["booking_date"],
        first["amount"],
        first["currency"],
    ) == ("line 2", "NL11RABO0104955555", "2024-04-02", "1250.00", "EUR")
    assert not (team / "profiles").exists()
    # a name that a built-in has is refused; so is writing into the shipped configuration
    code, out = _cli(
        "profiles", "new", str(path), "--name", "generic", "--write", "--config", str(team)
    )
    assert code == 2 and "a profile called 'generic' exists (built-in)" in out
    code, out = _cli("profiles", "new", str(path), "--name", "Bad Name", "--config", str(team))
    assert code == 2 and "use lower-case letters" in out
    # a layout a profile already reads is not written a second time
    chase = tmp_path / "chase.csv"
    chase.write_text(
        "Details,Posting Date,Description,Amount,Type,Balance,Check or Slip #\n"
        "DEBIT,03/15/2024,SHOP,-45.99,DEBIT_CARD,100.00,,\n",
        encoding="utf-8",
    )
    code, out = _cli(
        "profiles", "new", str(chase), "--name", "mine", "--write", "--config", str(team)
    )
    assert code == 2 and "already claimed by chase-checking" in out


def test_list_shows_where_each_profile_comes_from(tmp_path: Path) -> None:
    team = _team(tmp_path)
    (team / "profiles").mkdir()
    (team / "profiles" / "ours.toml").write_text(
        infer_profile(RABO, "x.csv", "ours").text, encoding="utf-8"
    )
    code, out = _cli("profiles", "list", "--json", "--config", str(team))
    rows = {r["name"]: r for r in json.loads(out)}
    assert code == 0 and rows["ours"]["origin"] == str(team / "profiles")
    assert rows["generic"]["origin"] == "built-in" and rows["mint"]["origin"] == "built-in"
    assert rows["ours"]["signature"][:2] == ["IBAN/BBAN", "Munt"]
    code, out = _cli("profiles", "list", "--config", str(team))
    assert code == 0 and f"team: {team / 'profiles'}" in out and "built-in" in out


def test_check_exit_codes_and_json(tmp_path: Path) -> None:
    path = tmp_path / "mint.csv"
    path.write_bytes(
        b'"Date","Description","Original Description","Amount","Transaction Type","Category",'
        b'"Account Name","Labels","Notes"\n"3/15/2024","Amazon","AMAZON","45.99","debit","Shopping",'
        b'"Card","",""\n'
    )
    code, out = _cli("profiles", "check", str(path), "--json")
    report = json.loads(out)
    assert code == 0 and report["claimed_by"] == "mint" and report["parsed"]["accounts"] == ["Card"]
    assert set(report) == {"file", "claimed_by", "ambiguous", "profiles", "parsed", "error"}
    assert {"name", "origin", "claims", "reason"} == set(report["profiles"][0])
    path.write_bytes(path.read_bytes().replace(b'"45.99"', b'"lots"'))
    code, out = _cli("profiles", "check", str(path))
    assert code == 2 and "csv:mint claims it but cannot parse it" in out
    unknown = tmp_path / "unknown.csv"
    unknown.write_bytes(b"When,What,How much\n2026-01-02,x,1.00\n")
    code, out = _cli("profiles", "check", str(unknown))
    assert code == 1 and "generic [built-in]: no (line 1: no column 'id')" in out
    assert f"reconcile profiles new {unknown}" in out


# Debit and credit in two columns, as three real exports write them: Lloyds (a header ending in a comma
# over rows that do not, the sort code marked as text with Excel's leading apostrophe), Crédit Mutuel
# (French, accented headers, decimal comma) and Alfa-Bank (Russian headers, a trailing ';').
LLOYDS = (
    b"Transaction Date,Transaction Type,Sort Code,Account Number,Transaction Description,Debit Amount,"
    b"Credit Amount,Balance,\n"
    b"15/01/2024,DEB,'99-88-74,1515152252,Ebay*xxxx CD xxxx    14JAN24 ,8.99,,2040.59\n"
    b"12/01/2024,DEB,'99-88-74,1515152252,NON-GBP TRANS FEE  2.75% CD 1417 ,4.79,,2049.58\n"
    b"01/12/2023,BGC,'99-88-74,1515152252,ACME LTD RP010110001110 INV-2023-118 ,,2000.00,2054.37\n"
)
CREDIT_MUTUEL = (
    "Date;Date de valeur;Débit;Crédit;Libellé;Solde\n"
    "03/11/2025;03/11/2025;-26,99;;PRLV SEPA ACME TELECOM;8350,59\n"
    "05/11/2025;05/11/2025;;2950,00;VIR SEPA CLIENT FACTURE 2025-0042;11300,59\n"
    "06/11/2025;06/11/2025;-543,21;;CARTE 0111 FOURNISSEUR;10757,38\n"
).encode()
ALFA = (
    "Тип счёта;Номер счета;Валюта;Дата операции;Референс проводки;Описание операции;Приход;Расход;\n"
    "Мой счет;40702810900000012345;RUR;31.05.17;ABCDEF11111111111;Оплата по счету 118;33123,56;0;\n"
    "Мой счет;40702810900000012345;RUR;03.05.17;ABCDEF22222222222;Комиссия за переводы;0;50;\n"
).encode()


@pytest.mark.parametrize(("name", "data", "amounts", "remittance", "first_text"), [
    ("sample-statement.csv", LLOYDS, [-899, -479, 200000], "Transaction Description", "Ebay*xxxx CD xxxx"),
    ("export.csv", CREDIT_MUTUEL, [-2699, 295000, -54321], "Libellé", "PRLV SEPA ACME TELECOM"),
    ("alfabank.csv", ALFA, [3312356, -5000], "Описание операции", "Оплата по счету 118"),
])
def test_debit_and_credit_columns_are_found_in_any_language(name: str, data: bytes, amounts: list[int],
                                                            remittance: str, first_text: str) -> None:
    inference = infer_profile(data, name)
    assert inference.error is None, inference.to_dict()
    profile = profile_from_text(inference.text, Path("inferred.toml"), "test")
    [statement] = parse_csv(data, Path(name), profile).statements
    assert statement.lines["amount_minor"].to_list() == amounts
    assert f'remittance = "{remittance}"' in inference.text
    assert statement.lines["remittance"][0].startswith(first_text)


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
def test_a_rabobank_export_is_read_by_the_built_in_profile_in_either_encoding(tmp_path: Path,
                                                                             encoding: str) -> None:
    """Rabobank's exports have come as UTF-8 and as Windows-1252: the header's "initiërende" and a payer's
    "Crème" read the same either way."""
    path = tmp_path / "CSV_A_20240405_120000.csv"
    path.write_bytes(RABO.decode().replace("Acme BV", "Crème Brûlée BV").encode(encoding))
    code, out = _cli("parse", str(path), "--json")
    assert code == 0, out
    report = json.loads(out)
    [statement] = report["statements"]
    assert report["format"] == "csv:rabobank"
    assert (statement["account"], statement["currency"], statement["opening_balance"],
            statement["closing_balance"], statement["warnings"]) == (
        "NL11RABO0104955555", "EUR", "1000.00", "1227.50", [])
    assert [(x["source_ref"], x["amount"], x["counterparty_name"], x["remittance"]) for x in statement["lines"]] == [
        ("000000000000007213", "1250.00", "Crème Brûlée BV", "Factuur 2024-17"),
        ("000000000000007214", "-1000.00", "J. de Vries", "Huur april"),
        ("000000000000007215", "-2.50", None, "Kosten"),
        ("000000000000007216", "-20.00", None, "Betaalautomaat"),
    ]


def test_a_row_missing_its_opening_quote_is_named(tmp_path: Path) -> None:
    lines = RABO.decode().splitlines(keepends=True)
    lines[2] = lines[2][1:]  # '"NL11RABO...' -> 'NL11RABO...' (a real Rabobank export had this)
    path = tmp_path / "CSV_A_broken.csv"
    path.write_text("".join(lines), encoding="utf-8")
    code, out = _cli("parse", str(path))
    assert code == 2 and "line 3: a stray \" in the cell 'NL11RABO0104955555\"'" in out, out


def test_two_unnamed_number_columns_that_split_the_rows_are_money_out_and_in() -> None:
    """No header: a column of negatives and a column of positives, never both filled on a row."""
    data = (
        b"Account Number : 08088804068,Account Name : Account Owner,: EUR,,,\n"
        b",,,,,\n"
        b"15/04/24,OP 1,LABEL 1,\"-50,00\",,DETAILS 1\n"
        b"15/04/24,OP 2,LABEL 2,,\"1300,00\",CLIENT X INV 2024-118\n"
        b"16/04/24,OP 3,LABEL 3,\"-80,68\",,DETAILS 2\n"
    )
    inference = infer_profile(data, "export.csv")
    assert inference.error is None, inference.to_dict()
    assert any("never both filled on a row" in u for u in inference.unsure)
    [statement] = parse_csv(data, Path("export.csv"),
                            profile_from_text(inference.text, Path("inferred.toml"), "test")).statements
    assert statement.lines["amount_minor"].to_list() == [-5000, 130000, -8068]
    assert statement.currency == "EUR"
