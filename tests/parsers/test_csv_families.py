"""CSV families that were refused or misread before: each file is written here in its bank's
real layout and must parse to exactly the amounts, dates and signs it holds, or be refused."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconcile.core.errors import InputError
from reconcile.parsers import parse_bytes
from reconcile.parsers.base import ParseOptions
from reconcile.parsers.csv_profiles import _profile, builtin_profiles
from reconcile.parsers.csvprofile import CsvProfileParser
from reconcile.parsers.registry import detect
from reconcile.statements.infer import infer_profile
from reconcile.statements.profiles import check_file


def _rows(data: bytes, name: str = "export.csv") -> list[tuple]:
    [statement] = parse_bytes(data, Path(name)).statements
    return statement.lines.select("booking_date", "amount_minor", "currency").rows()


def _claimer(data: bytes) -> str:
    return detect(data, Path("export.csv")).name


# Chase checking: newest first, a comma after every data row (not after the header), signed Amount,
# Details DEBIT/CREDIT/CHECK/DSLIP, Type the kind of transaction, Balance after each row.
CHASE = (
    b"Details,Posting Date,Description,Amount,Type,Balance,Check or Slip #\n"
    b'DEBIT,03/15/2024,"AMAZON MKTPL*AB12CD34 Amzn.com/bill WA      03/14",-45.99,DEBIT_CARD,2204.01,,\n'
    b'CREDIT,03/14/2024,"ACME CORP       PAYROLL                    PPD ID: 1234567890",2500.00,ACH_CREDIT,2250.00,,\n'
    b'CHECK,03/12/2024,"CHECK 1042 ",-300.00,CHECK_PAID,-250.00,1042,\n'
    b'DSLIP,3/11/2024,"REMOTE ONLINE DEPOSIT #          1",150.00,CHECK_DEPOSIT,50.00,,\n'
    b'DEBIT,03/10/2024,"Zelle payment to John Smith JPM99abc1234",-1100.00,QUICKPAY_DEBIT,-100.00,,\n'
)


def test_chase_checking_with_a_trailing_comma_on_every_row() -> None:
    assert _claimer(CHASE) == "csv:chase-checking"
    [st_] = parse_bytes(CHASE, Path("Chase1234_Activity_20240316.CSV")).statements
    assert st_.lines.select("booking_date", "amount_minor", "reference").rows() == [
        (date(2024, 3, 15), -4599, None),
        (date(2024, 3, 14), 250000, None),
        (date(2024, 3, 12), -30000, "1042"),
        (date(2024, 3, 11), 15000, None),
        (date(2024, 3, 10), -110000, None),
    ]
    assert st_.currency == "USD"
    # newest first: the oldest row's balance less its amount is the opening, the top row's balance
    # the closing
    assert (st_.opening_minor, st_.closing_minor) == (100000, 220401)
    assert st_.warnings == (
        "no account in the file: lines stored under account 'default'; pass --account",
    )


def test_chase_details_must_agree_with_the_sign() -> None:
    with pytest.raises(InputError) as caught:
        parse_bytes(CHASE.replace(b"CREDIT,03/14/2024", b"DEBIT,03/14/2024"), Path("chase.csv"))
    assert (caught.value.where, caught.value.why) == (
        "line 3, column Details",
        "the amount's own sign disagrees with its 'DEBIT' marker",
    )
    with pytest.raises(InputError) as caught:
        parse_bytes(
            CHASE.replace(b"-45.99,DEBIT_CARD,2204.01,,", b"-45.99,DEBIT_CARD,2204.01,x,oops"),
            Path("c.csv"),
        )
    assert (caught.value.where, caught.value.why) == ("line 2", "8 cells where the header has 7")


def test_chase_cell_after_the_last_column_is_refused() -> None:
    data = CHASE.replace(b"1042,\n", b"1042,stray\n")
    with pytest.raises(InputError) as caught:
        parse_bytes(data, Path("chase.csv"))
    assert caught.value.why == "a cell after the header's last column ('stray')"
    assert caught.value.where is not None and caught.value.where.startswith("line 4")


# Mint: unsigned Amount, Transaction Type debit/credit, several accounts in one file.
MINT = (
    b'"Date","Description","Original Description","Amount","Transaction Type","Category","Account Name",'
    b'"Labels","Notes"\n'
    b'"3/15/2024","Amazon","AMAZON MKTPLACE PMTS AMZN.COM/BILL","45.99","debit","Shopping","Freedom Card","",""\n'
    b'"3/14/2024","Acme Corp","ACME CORP PAYROLL PPD ID 99","2,500.00","credit","Paycheck","Checking","",""\n'
    b'"3/12/2024","Chase Card","CHASE CREDIT CRD AUTOPAY","1200.00","debit","Credit Card Payment","Checking","",""\n'
    b'"3/12/2024","Payment","AUTOMATIC PAYMENT - THANK","1200.00","credit","Credit Card Payment","Freedom Card",'
    b'"",""\n'
    b'"3/02/2024","Refund","AMAZON.COM REFUND","12.00","credit","Shopping","Freedom Card","Returns","gift"\n'
)


def test_mint_unsigned_amounts_signed_by_transaction_type_one_statement_per_account() -> None:
    assert _claimer(MINT) == "csv:mint"
    statements = {s.account: s for s in parse_bytes(MINT, Path("transactions.csv")).statements}
    assert set(statements) == {"Freedom Card", "Checking"}
    card = (
        statements["Freedom Card"]
        .lines.select("booking_date", "amount_minor", "counterparty_name")
        .rows()
    )
    assert card == [
        (date(2024, 3, 15), -4599, "Amazon"),
        (date(2024, 3, 12), 120000, "Payment"),
        (date(2024, 3, 2), 1200, "Refund"),
    ]
    assert statements["Checking"].lines["amount_minor"].to_list() == [250000, -120000]
    assert all(s.currency == "USD" and not s.warnings for s in statements.values())


def test_mint_marker_that_is_neither_is_refused() -> None:
    with pytest.raises(InputError) as caught:
        parse_bytes(
            MINT.replace(b'"credit","Paycheck"', b'"pending","Paycheck"'), Path("transactions.csv")
        )
    assert (caught.value.where, caught.value.why) == (
        "line 3, column Transaction Type",
        "'pending' is neither a debit nor a credit marker (debit/credit)",
    )


GENERIC_WITH_TYPE = (
    b"id,booking_date,value_date,amount,currency,counterparty_name,counterparty_account,remittance,type\n"
    b"T1,2026-03-02,,120.00,EUR,Acme BV,NL91ABNA0417164300,INV-1,credit\n"
    b"T2,2026-03-03,,45.00,EUR,Office Shop,,paper,debit\n"
)


def test_a_sign_column_the_profile_does_not_read_stops_its_claim() -> None:
    # generic would book T2 as +45.00: no profile claims the file; check says why generic does not
    with pytest.raises(InputError) as caught:
        detect(GENERIC_WITH_TYPE, Path("bank.csv"))
    assert "unrecognised statement format" in caught.value.why
    parser = CsvProfileParser(next(p for p in builtin_profiles() if p.name == "generic"))
    assert parser.mismatch(GENERIC_WITH_TYPE, Path("bank.csv")) == (
        "line 1: column 'type' looks like a debit/credit indicator (its name says debit/credit or transaction "
        "type (credit, debit)) that the profile does not read: it would ignore the sign (map it as "
        "columns.direction, or list it in ignore_type_columns when the amounts carry their own sign)"
    )
    # a column named otherwise is caught by its cells: the three-column profile refuses it too
    plain = b"Date,Description,Amount,Kind\n2026-03-02,Acme,120.00,CR\n2026-03-03,Shop,45.00,DR\n"
    with pytest.raises(InputError):
        detect(plain, Path("bank.csv"))
    assert "its cells are debit/credit markers (CR, DR)" in CsvProfileParser(
        next(p for p in builtin_profiles() if p.name == "date-description-amount")
    ).mismatch(plain, Path("b.csv"))
    # without the column the same rows are claimed as before
    assert (
        _claimer(b"Date,Description,Amount\n2026-03-02,Acme,120.00\n")
        == "csv:date-description-amount"
    )


def test_profiles_check_explains_the_refusal(tmp_path: Path) -> None:
    path = tmp_path / "bank.csv"
    path.write_bytes(GENERIC_WITH_TYPE)
    report = check_file(path, builtin_profiles())
    assert report["claimed_by"] is None
    generic = next(r for r in report["profiles"] if r["name"] == "generic")
    assert "column 'type' looks like a debit/credit indicator" in generic["reason"]


# PayPal activity, a later layout than the shipped sample: "Time Zone", shipping and item columns,
# no Balance column here, and Balance Impact (Credit, Debit, Memo).
PAYPAL = (
    '"Date","Time","Time Zone","Name","Type","Status","Currency","Gross","Fee","Net","From Email Address",'
    '"To Email Address","Transaction ID","Shipping Address","Address Status","Item Title","Item ID",'
    '"Shipping and Handling Amount","Insurance Amount","Sales Tax","Reference Txn ID","Invoice Number",'
    '"Custom Number","Quantity","Receipt ID","Subject","Note","Country Code","Balance Impact"\n'
    '"02/03/2024","09:12:01","CET","Müller GmbH","Express Checkout Payment","Completed","EUR","1,250.00",'
    '"-37.75","1,212.25","ap@mueller.example","sales@us.example","5AB12345CD678901E","","Confirmed","","","0.00",'
    '"","0.00","","INV-2024-0042","","1","","Order 42","","DE","Credit"\n'
    '"03/03/2024","10:00:00","CET","Shop","General Authorization","Pending","EUR","-20.00","0.00","-20.00",'
    '"sales@us.example","","0KL98765MN432109P","","","","","0.00","","0.00","","","","","","","","","Memo"\n'
    '"04/03/2024","11:30:45","CET","","General Withdrawal","Completed","EUR","-1,000.00","0.00","-1,000.00",'
    '"sales@us.example","","9XY11111AA222222B","","","","","0.00","","0.00","","","","","","","","","Debit"\n'
).encode()


def test_paypal_activity_header_variant_with_balance_impact() -> None:
    assert _claimer(PAYPAL) == "csv:paypal-activity"
    [st_] = parse_bytes(PAYPAL, Path("Download.CSV")).statements
    # the Memo row (an authorisation) moves no money; the fee is its own line before its payment
    assert st_.lines.select("source_ref", "booking_date", "amount_minor", "reference").rows() == [
        ("5AB12345CD678901E/fee", date(2024, 3, 2), -3775, None),
        ("5AB12345CD678901E", date(2024, 3, 2), 125000, "INV-2024-0042"),
        ("9XY11111AA222222B", date(2024, 3, 4), -100000, None),
    ]
    with pytest.raises(InputError) as caught:
        parse_bytes(
            PAYPAL.replace(b'"-1,000.00","0.00","-1,000.00"', b'"1,000.00","0.00","1,000.00"'),
            Path("p.csv"),
        )
    assert (caught.value.where, caught.value.why) == (
        "line 4, column Balance Impact",
        "the amount's own sign disagrees with its 'Debit' marker",
    )


# An older Adyen settlement detail report: it ends at Batch Number (no Booking Date) and has no
# Scheme Fees/Interchange columns.
ADYEN = (
    b"Company Account,Merchant Account,Psp Reference,Merchant Reference,Payment Method,Creation Date,TimeZone,"
    b"Type,Modification Reference,Gross Currency,Gross Debit (GC),Gross Credit (GC),Exchange Rate,Net Currency,"
    b"Net Debit (NC),Net Credit (NC),Commission (NC),Markup (NC),Batch Number\n"
    b"Co,ShopEU,8815000000000001,ORDER-1,visa,2024-03-02 10:22:31,CET,Settled,,EUR,,45.99,1,EUR,,45.30,0.20,0.49,118\n"
    b"Co,ShopEU,8815000000000002,ORDER-2,mc,2024-03-02 11:00:00,CET,Refunded,8815000000000099,EUR,10.00,,1,EUR,"
    b"10.12,,0.12,,118\n"
    b"Co,ShopEU,,,,2024-03-03 02:00:00,CET,MerchantPayout,,EUR,,,,EUR,35.18,,,,118\n"
)


def test_adyen_older_report_books_on_the_creation_date() -> None:
    assert _claimer(ADYEN) == "csv:adyen-settlement"
    [st_] = parse_bytes(ADYEN, Path("settlement_detail_report_batch_118.csv")).statements
    assert st_.account == "ShopEU"
    assert st_.lines.select("booking_date", "amount_minor", "reference").rows() == [
        (date(2024, 3, 2), 4599, "8815000000000001"),  # net 45.30 + commission 0.20 + markup 0.49
        (date(2024, 3, 2), -1000, "8815000000000002"),  # net -10.12 + commission 0.12
        (date(2024, 3, 3), -3518, None),
        (date(2024, 3, 2), -81, None),  # the batch's fees, on the last charged record's day
    ]
    assert st_.lines["amount_minor"].sum() == 0


# ASN Bank: no header, 19 positions, texts in single quotes, balance before each row.
ASN = (
    b"02-04-2024,NL12ASNB0123456789,NL91ABNA0417164300,Acme BV,,,,EUR,1000.00,EUR,250.00,02-04-2024,"
    b"02-04-2024,8810,OVB,01234567,,'Factuur 2024-17',41\n"
    b"03-04-2024,NL12ASNB0123456789,,,,,,EUR,1250.00,EUR,-2.20,03-04-2024,03-04-2024,7241,MSC,01234568,,"
    b"'Kosten gebruik betaalrekening',41\n"
    b"03-04-2024,NL12ASNB0123456789,,,,,,EUR,1247.80,EUR,0.00,03-04-2024,03-04-2024,7241,MSC,01234569,,"
    b"'Kosten, inclusief 1 betaalpas',41\n"
    b"05-04-2024,NL12ASNB0123456789,NL20INGB0001234567,J. de Vries,,,,EUR,1247.80,EUR,-1100.00,05-04-2024,"
    b"04-04-2024,8809,IDB,01234570,RF18539007547034,'Huur april',42\n"
)


def test_asn_bank_headerless_positions() -> None:
    assert _claimer(ASN) == "csv:asn-bank"
    [st_] = parse_bytes(ASN, Path("transactie-historie_NL12ASNB0123456789_20240405.csv")).statements
    assert st_.account == "NL12ASNB0123456789"
    rows = st_.lines.select(
        "booking_date", "value_date", "amount_minor", "counterparty_account", "remittance"
    ).rows()
    assert rows == [  # the 0.00 cost notice moves no money
        (date(2024, 4, 2), date(2024, 4, 2), 25000, "NL91ABNA0417164300", "Factuur 2024-17"),
        (date(2024, 4, 3), date(2024, 4, 3), -220, None, "Kosten gebruik betaalrekening"),
        (date(2024, 4, 5), date(2024, 4, 4), -110000, "NL20INGB0001234567", "Huur april"),
    ]
    assert (st_.opening_minor, st_.closing_minor, st_.warnings) == (100000, 14780, ())


def test_asn_corpus_file_reads_once_its_second_account_is_fixed(corpus: Path) -> None:
    data = (corpus / "csv/ofxstatement-dutch/transactie-historie_fail.csv").read_bytes()
    [st_] = parse_bytes(
        data.replace(b"NL00ASNB9999999998", b"NL00ASNB9999999999"), Path("asn.csv")
    ).statements
    assert st_.lines.height == 11  # 12 rows less the 0.00 one
    assert st_.lines["amount_minor"].to_list()[:3] == [22377, -20000, -220]
    assert (st_.opening_minor, st_.warnings) == (13044, ())


# US credit-union export: account lines above the header, Amount Debit written negative.
CREDIT_UNION = (
    b"Account Name : SHARE DRAFT\r\nAccount Number : 0001234567\r\nDate Range : 03/01/2024-03/31/2024\r\n"
    b"Transaction Number,Date,Description,Memo,Amount Debit,Amount Credit,Balance,Check Number,Fees  \r\n"
    b'"20240301 1 1 100","03/01/2024","Deposit","ACME PAYROLL",,"2,500.00","3,500.00",,\r\n'
    b'"20240305 1 1 200","03/05/2024","Withdrawal","POS AMAZON",-45.99,,"3,454.01",,\r\n'
    b'"20240310 1 1 300","03/10/2024","Check","",-300.00,,"3,154.01",1042,\r\n'
)


def test_credit_union_signed_debit_column() -> None:
    assert _claimer(CREDIT_UNION) == "csv:credit-union-debit-credit"
    [st_] = parse_bytes(CREDIT_UNION, Path("ExportedTransactions.csv")).statements
    assert st_.account == "0001234567"
    assert st_.lines.select("source_ref", "amount_minor", "reference").rows() == [
        ("20240301 1 1 100", 250000, None),
        ("20240305 1 1 200", -4599, None),
        ("20240310 1 1 300", -30000, "1042"),
    ]
    assert (st_.opening_minor, st_.closing_minor, st_.warnings) == (100000, 315401, ())
    with pytest.raises(InputError) as caught:
        parse_bytes(CREDIT_UNION.replace(b",-45.99,", b",45.99,"), Path("x.csv"))
    assert caught.value.where == "line 6, column Amount Debit"
    assert caught.value.why.startswith("'45.99' is a positive debit")


def _sheet(**keys: object):
    raw = {
        "signature": ["Date", "Text", "Debit", "Credit"],
        "currency": "EUR",
        "columns": {
            "booking_date": "Date",
            "debit": "Debit",
            "credit": "Credit",
            "remittance": "Text",
        },
    }
    return CsvProfileParser(_profile(Path("sheet.toml"), {**raw, **keys}))


SHEET = (
    b"Date,Text,Debit,Credit\n2026-03-01,card,12.00,\n2026-03-02,refund,-5.00,\n"
    b"2026-03-03,salary,,100.00\n"
)


def test_negative_values_inside_debit_and_credit_columns() -> None:
    # a debit column with both signs: a negative cell may be a refund (money in) or a layout writing
    # debits negative; "magnitude" (the default) cannot tell, so it refuses
    with pytest.raises(InputError) as caught:
        _sheet().parse(SHEET, Path("sheet.csv"))
    assert caught.value.where == "line 3, column Debit"
    assert "column Debit holds both positive and negative amounts" in caught.value.why
    # "reversal": a negative debit is money in
    rows = _sheet(debit_credit_rule="reversal").parse(SHEET, Path("s.csv")).statements[0].lines
    assert rows["amount_minor"].to_list() == [-1200, 500, 10000]
    # one sign per column: "magnitude" reads debits as money out whichever sign the layout writes
    for debit in (b"-12.00", b"12.00"):
        data = SHEET.replace(b"12.00", debit).replace(b"-5.00", debit)
        assert _sheet().parse(data, Path("s.csv")).statements[0].lines[
            "amount_minor"
        ].to_list() == [-1200, -1200, 10000]


def test_chosen_profile_still_refuses_an_ignored_sign_column() -> None:
    options = replace(ParseOptions.builtin(), profile="generic")
    with pytest.raises(InputError) as caught:
        parse_bytes(GENERIC_WITH_TYPE, Path("bank.csv"), options)
    assert "column 'type' looks like a debit/credit indicator" in caught.value.why


@pytest.mark.parametrize(
    ("keys", "why"),
    [
        ({"direction_mode": "trust"}, "direction_mode must be one of ['sign', 'check']"),
        (
            {"debit_credit_rule": "abs"},
            "debit_credit_rule must be one of ['magnitude', 'reversal', 'signed']",
        ),
        (
            {"debit_values": ["D", "x"], "credit_values": ["X"]},
            "'X' is both a debit and a credit value",
        ),
        (
            {"ignore_type_columns": "Type"},
            "ignore_type_columns must be a list of non-empty strings",
        ),
        (
            {"aliases": {"Date": "Datum"}},
            "aliases must be a table of header name = [other spellings]",
        ),
        ({"direction_mod": "check"}, "unknown key 'direction_mod'; did you mean 'direction_mode'?"),
        (
            {"columns": {"booking_date": "Date", "debit": "D", "credit": "C", "direction": "DC"}},
            "columns.direction needs columns.amount",
        ),
    ],
)
def test_new_profile_keys_are_checked(keys: dict, why: str) -> None:
    from reconcile.core.errors import ConfigError

    raw = {
        "signature": ["Date", "Amount"],
        "currency": "EUR",
        "columns": {"booking_date": "Date", "amount": "Amount"},
    }
    with pytest.raises(ConfigError) as caught:
        _profile(Path("inline.toml"), {**raw, **keys})
    assert why in str(caught.value)


def test_aliases_read_a_renamed_column_and_balance_order_is_proven() -> None:
    parser = _sheet(
        aliases={"Date": ["Datum"]},
        signature=["Date", "Text", "Debit", "Credit"],
        balance_column="Balance",
    )
    data = b"Datum,Text,Debit,Credit,Balance\n2026-03-03,salary,,100.00,88.00\n2026-03-01,card,12.00,,-12.00\n"
    [st_] = parser.parse(data, Path("s.csv")).statements
    assert st_.lines["booking_date"].to_list() == [date(2026, 3, 3), date(2026, 3, 1)]
    # the profile says oldest first, the balances newest first: read so, and said so
    assert (st_.opening_minor, st_.closing_minor) == (0, 8800)
    assert st_.warnings[-1] == (
        "the running balance shows the rows run newest first, not as profile sheet says: "
        "balances read that way"
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([CHASE, MINT, ASN, CREDIT_UNION, PAYPAL, ADYEN]), st.integers(0, 400),
       st.integers(0, 12), st.binary(max_size=6))
def test_mutated_family_files_raise_only_input_errors(seed: bytes, start: int, length: int,
                                                      junk: bytes) -> None:
    start = min(start, len(seed))
    data = seed[:start] + junk + seed[start + length:]
    try:
        parse_bytes(data, Path("fuzz.csv"))
    except InputError:
        pass
    # inference never raises: what it cannot read it says in .error
    inference = infer_profile(data, "fuzz.csv")
    assert inference.error is not None or inference.text.startswith('name = "fuzz"')
