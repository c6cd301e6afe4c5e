"""A CSV bank profile inferred from one export: bytes in, profile TOML and an explanation out.

Pure: no files, no configuration. It reads the layout (encoding, delimiter, quote, preamble, header,
date and number formats, how amounts are signed, currency, account, id and balance columns, row
order) from the file, writes a profile with what it is unsure of marked as comments, and proves the
profile on the file with the real parser. Saving and showing it are reconcile.cli.profiles'.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from reconcile.core.errors import ConfigError, InputError
from reconcile.core.money import _EXPONENTS, format_minor
from reconcile.parsers.csv_profiles import profile_from_text
from reconcile.parsers.csvprofile import (
    INDICATOR_NAMES,
    INDICATOR_VALUES,
    CsvProfileParser,
    parse_csv,
)

SAMPLE_BYTES = 256 * 1024
SAMPLE_ROWS = 400
DELIMITERS = (",", ";", "\t", "|")
DATE_FORMATS = (
    "%Y-%m-%d",
    "%d.%m.%Y",
    "%d-%m-%Y",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%Y%m%d",
    "%Y/%m/%d",
    "%d.%m.%y",
    "%d/%m/%y",
    "%m/%d/%y",
    "%d-%m-%y",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d %b %Y",
    "%d %B %Y",
    "%b %d, %Y",
    "%d-%b-%Y",
    "%d %b %y",
)
DEBIT_MARKERS = {"D", "DR", "DB", "DBIT", "DEBIT", "AF", "S", "SOLL", "DEBET", "DÉBIT", "-"}
CREDIT_MARKERS = {"C", "CR", "CRDT", "CREDIT", "BIJ", "H", "HABEN", "CREDIET", "CRÉDIT", "+"}
KNOWN_CODES = set(_EXPONENTS) | {
    "EUR",
    "USD",
    "GBP",
    "CHF",
    "SEK",
    "NOK",
    "DKK",
    "PLN",
    "CZK",
    "HUF",
    "CAD",
    "AUD",
    "NZD",
    "SGD",
    "HKD",
    "CNY",
    "INR",
    "BRL",
    "MXN",
    "ZAR",
    "TRY",
    "RON",
}
# ISO 4217 codes, with withdrawn ones still found in old exports (LTL, RUR, HRK...): a column of three
# capitals is a currency column when its cells are these, not when they are type codes (DEB, BGC, FPI)
_ISO_CODES = """
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD CAD
CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ
GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR
LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN
PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB
TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XOF XPF YER ZAR ZMW ZWL
LTL LVL EEK HRK RUR SIT SKK CYP MTL BGL
"""
ISO_4217 = frozenset(_ISO_CODES.split())
SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "CHF": "CHF"}

# Header words for each role, lower case; the first list that a name contains decides (order
# matters).
ROLE_WORDS: dict[str, tuple[str, ...]] = {
    "value_date": (
        "value date",
        "valuta",
        "wertstellung",
        "valeur",
        "fecha valor",
        "rentedatum",
        "effective",
    ),
    "booking_date": (
        "booking date",
        "posting date",
        "post date",
        "buchungstag",
        "buchung",
        "boekdatum",
        "boekingsdatum",
        "transaction date",
        "trans date",
        "transactiedatum",
        "datum",
        "date",
        "fecha",
        "data",
        "dato",
        "completed",
    ),
    "balance": ("balance", "saldo", "solde", "running bal", "kontostand"),
    "debit": (
        "debit",
        "withdrawal",
        "paid out",
        "money out",
        "soll",
        "belastung",
        "lastschrift",
        "uitgaven",
        "ausgang",
        "charge",
        "out",
        "cargo",      # es
        "addebit",    # it: addebiti
        "uscite",
        "obciazen",   # pl: obciążenia
        "vydaj",      # cs: výdaj
        "uttag",      # sv
        "расход",     # ru
        "списание",
    ),
    "credit": (
        "credit",
        "deposit",
        "paid in",
        "money in",
        "haben",
        "gutschrift",
        "inkomsten",
        "eingang",
        "in",
        "abono",      # es
        "accredit",   # it: accrediti
        "entrate",
        "uznani",     # pl: uznania
        "prijem",     # cs: příjem
        "insattning", # sv: insättning
        "приход",     # ru
        "поступлени",
    ),
    "fee": ("fee", "commission", "gebühr", "kosten", "comisión"),
    "amount": (
        "amount",
        "betrag",
        "bedrag",
        "importe",
        "montant",
        "importo",
        "value",
        "sum",
        "gross",
        "total",
    ),
    "currency": ("currency", "währung", "waehrung", "valuta", "munt", "divisa", "devise", "ccy", "валюта", "valiuta"),
    "id": (
        "transaction id",
        "transaction number",
        "trans id",
        "id",
        "transaktions",
        "volgnummer",
        "volgnr",
        "ref no",
        "reference number",
        "fitid",
    ),
    "counterparty_account": (
        "counterparty account",
        "tegenrekening",
        "iban",
        "kontonummer",
        "counter account",
        "beneficiary account",
        "payee account",
    ),
    "account": (
        "own account",
        "account name",
        "account",
        "rekening",
        "konto",
        "auftragskonto",
        "cuenta",
        "compte",
        "iban",
        "номер счета",
    ),
    "counterparty_name": (
        "counterparty",
        "контрагент",
        "kontrahent",
        "payee",
        "payer",
        "beneficiary",
        "empfänger",
        "empfaenger",
        "begünstigter",
        "beguenstigter",
        "zahlungspflichtiger",
        "naam",
        "name",
        "partner",
        "merchant",
        "nombre",
    ),
    "reference": (
        "end to end",
        "payment reference",
        "betalingskenmerk",
        "kundenreferenz",
        "referentie",
        "reference",
        "check number",
        "check or slip",
        "invoice",
    ),
    "remittance": (
        "remittance",
        "description",
        "memo",
        "details",
        "omschrijving",
        "mededelingen",
        "verwendungszweck",
        "label",
        "narrative",
        "purpose",
        "text",
        "buchungstext",
        "concepto",
        "libellé",
        "note",
        "subject",
        "descripción",
        "causale",    # it
        "opis",       # pl
        "popis",      # cs
        "meddelande", # sv
        "описание",   # ru
        "назначение",
    ),
}


@dataclass
class Inference:
    """What `profiles new` shows: the profile text, what was read from the file, what is unsure."""

    name: str
    text: str = ""
    notes: list[str] = field(default_factory=list)  # what was inferred, for the person
    unsure: list[str] = field(default_factory=list)  # choices to check (also comments in the text)
    error: str | None = None  # the profile does not read the file (why)

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "profile": self.text,
            "notes": self.notes,
            "unsure": self.unsure,
            "error": self.error,
        }


@dataclass
class _Column:
    index: int
    name: str
    cells: list[str]
    kind: str = "text"  # date, amount, currency, marker, empty, text
    date_formats: list[str] = field(default_factory=list)
    role: str | None = None


def suggest_name(file_name: str) -> str:
    """A profile name from a file name: lower-case words joined by '-' (no digits, no dates)."""
    stem = Path(file_name).stem.lower()
    words = [w for w in re.split(r"[^a-z]+", stem) if len(w) > 1]
    return "-".join(words[:4]) or "my-bank"


def infer_profile(data: bytes, file_name: str = "export.csv", name: str | None = None) -> Inference:
    """Infer a profile for the export `data` (named file_name), prove it on the file, say why."""
    result = Inference(name=name or suggest_name(file_name))
    if not data.strip():
        result.error = "the file is empty"
        return result
    encoding, text = _decode(data, result)
    lines = text[:SAMPLE_BYTES].splitlines()
    if len(text) > SAMPLE_BYTES and lines:
        lines = lines[:-1]  # the last line may be cut
    delimiter, quote = _dialect(lines, result)
    rows = _rows(lines, delimiter, quote)
    table = _table(rows)
    if table is None:
        dated = any(_date_formats([c.strip()]) for _, r in rows for c in r if c.strip())
        result.error = (
            "no table found: no column of dates runs down the rows"
            if dated
            else "no rows with dates to learn from (a header alone, or dates in a form not known)"
        )
        return result
    header_at, first, last, width, trailing = table
    has_header = header_at is not None
    data_rows = [r for _, r in rows[first : last + 1][:SAMPLE_ROWS]]
    names = [c.strip() for c in rows[header_at][1]] if header_at is not None else []
    footer = len(rows) - 1 - last if len(text) <= SAMPLE_BYTES else 0
    count = width - (1 if trailing else 0)
    columns = [
        _Column(
            i,
            names[i] if i < len(names) else "",
            [r[i].strip() if i < len(r) else "" for r in data_rows],
        )
        for i in range(count)
    ]
    decimal, thousands = _number_format(columns, result)
    for column in columns:
        _classify(column, decimal, thousands)
    above = lines[: rows[header_at if header_at is not None else first][0]]
    keys = _assign(columns, has_header, decimal, thousands, result, above)
    if result.error:
        return result
    keys.update(
        {
            "encoding": encoding,
            "delimiter": delimiter,
            "quote": quote,
            "decimal": decimal,
            "thousands": thousands,
        }
    )
    skip = rows[header_at if header_at is not None else first][0]
    keys["skip_lines"] = skip
    if footer:
        keys["skip_footer"] = footer
        result.notes.append(f"{footer} line(s) after the rows (totals, balances) are left out")
    if not has_header:
        keys["has_header"] = False
        keys["column_names"] = [c.name for c in columns]
    else:
        keys["signature"] = [c.name for c in columns if c.role and c.name]
    _account_from_preamble(lines[:skip], keys, result)
    result.notes.insert(
        0,
        f"{encoding}, delimiter {delimiter!r}, quote {quote!r}, "
        f"{skip} line(s) above the {'header' if has_header else 'rows'}, "
        f"{'a header row' if has_header else 'no header row (columns by position)'}"
        + (", a trailing delimiter on every row" if trailing else ""),
    )
    _settle(data, file_name, keys, result)
    return result


def _decode(data: bytes, result: Inference) -> tuple[str, str]:
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig", data[3:].decode("utf-8", errors="replace")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16", data.decode("utf-16", errors="replace")
    try:
        return "utf-8", data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if re.search(rb"[\x80-\x9f]", data):
        result.unsure.append("encoding: not UTF-8; bytes 0x80-0x9F read as Windows-1252 (cp1252)")
        return "cp1252", data.decode("cp1252", errors="replace")
    result.unsure.append(
        "encoding: not UTF-8; read as latin-1 (check accented letters in the preview)"
    )
    return "latin-1", data.decode("latin-1")


def _rows(lines: list[str], delimiter: str, quote: str) -> list[tuple[int, list[str]]]:
    """(line index, cells) of each non-empty line (bank exports rarely quote a field over lines)."""
    out = []
    for index, line in enumerate(lines):
        if line.strip():
            cells = next(csv.reader([line], delimiter=delimiter, quotechar=quote))
            if any(c.strip() for c in cells):  # ",,,,," rows are layout (the parser drops them too)
                out.append((index, cells))
    return out


def _dialect(lines: list[str], result: Inference) -> tuple[str, str]:
    """The delimiter that splits most lines into the same number (>1) of cells, and the quote."""
    sample = [line for line in lines if line.strip()][:200]
    joined = "\n".join(sample)
    # fields wrapped in single quotes; a lone leading one is Excel's text mark (Lloyds: "'99-88-74")
    singles = joined.count("'") > 2 * joined.count('"') and re.search(
        r"(^|[,;\t|])'[^'\n]*'($|[,;\t|])", joined, re.MULTILINE
    )
    quote = "'" if singles else '"'
    best, best_score = ",", -1.0
    for delimiter in DELIMITERS:
        counts = Counter(
            len(next(csv.reader([line], delimiter=delimiter, quotechar=quote))) for line in sample
        )
        width, hits = counts.most_common(1)[0] if counts else (1, 0)
        if width < 2:
            continue
        score = hits + width / 100
        if score > best_score:
            best, best_score = delimiter, score
    if best_score < 0:
        result.unsure.append("delimiter: no delimiter splits the lines; ',' assumed")
    return best, quote


def _table(rows: list[tuple[int, list[str]]]) -> tuple[int | None, int, int, int, bool] | None:
    """(header position or None, first and last data row positions, width, trailing delimiter).

    The data starts at the first row that has a date in a column where the next rows have dates too;
    the row above it is the header when it is words of the same width. Rows after the last dated row
    (a closing balance line) are a footer.

    """
    for position, (_, cells) in enumerate(rows):
        dated = [i for i, c in enumerate(cells) if c.strip() and _date_formats([c.strip()])]
        following = rows[position + 1 : position + 4]
        for column in dated:
            if all(
                len(r) == len(cells) and _date_formats([r[column].strip()]) for _, r in following
            ):
                width = len(cells)
                last = position
                while (
                    last + 1 < len(rows)
                    and len(rows[last + 1][1]) == width
                    and _date_formats([rows[last + 1][1][column].strip()])
                ):
                    last += 1
                header = None
                if (
                    position
                    and _is_header(rows[position - 1][1])
                    and (len(rows[position - 1][1]) in (width, width - 1)
                         # a header ending in a delimiter over rows that do not (Lloyds: "...,Balance,")
                         or (len(rows[position - 1][1]) == width + 1 and not rows[position - 1][1][-1].strip()))
                ):
                    header = position - 1
                body = [r for _, r in rows[position : last + 1]]
                if header is not None:
                    # a line above the rows that leaves several filled columns unnamed is metadata
                    # ("Account Number : 0808,Account Name : Owner,: EUR,,,"), not their header
                    names = rows[header][1]
                    unnamed = [i for i in range(width) if not (names[i].strip() if i < len(names) else "")
                               and any(i < len(r) and r[i].strip() for r in body)]
                    if len(unnamed) > 1:
                        header = None
                trailing = (
                    header is not None
                    and len(rows[header][1]) == width - 1
                    and all(not r[-1].strip() for r in body)
                )
                return header, position, last, width, trailing
    return None


def _parse_date(text: str, fmt: str) -> datetime | None:
    try:
        parsed = datetime.strptime(text, fmt)
    except ValueError:
        return None
    return (
        parsed if 1900 <= parsed.year <= 2199 else None
    )  # "24" read by %Y is the year 24: not a date here


def _date_formats(cells: list[str]) -> list[str]:
    values = [c for c in cells if c]
    if not values:
        return []
    return [f for f in DATE_FORMATS if all(_parse_date(v, f) for v in values[:200])]


IBAN = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{10,30}")
AMOUNT = re.compile(r"^[+-]?\s?[$€£]?\s?[+-]?\d[\d.,' \u00a0]*(?:\s?[A-Z]{3})?-?$")


def _is_header(cells: list[str]) -> bool:
    """A row is a header when its cells are words: no dates, few numbers, most cells named."""
    if any(_date_formats([c.strip()]) for c in cells if c.strip()):
        return False
    named = [c for c in cells if c.strip()]
    numeric = [c for c in named if AMOUNT.match(c.strip().replace(" ", ""))]
    return len(numeric) <= len(cells) // 4 and len(named) >= max(2, len(cells) // 2)


def _number_format(columns: list[_Column], result: Inference) -> tuple[str, str]:
    """Decimal mark and thousands separator from every numeric-looking cell of the file."""
    votes: Counter[str] = Counter()
    for column in columns:
        for cell in column.cells:
            text = re.sub(r"[\s\u00a0$€£]|[A-Z]{3}$", "", cell).strip("+-")
            if not re.fullmatch(r"\d[\d.,']*", text) or _date_formats([cell]):
                continue
            if re.fullmatch(r"\d{1,3}(\.\d{3})+,\d+", text):
                votes["comma/dot"] += 3
            elif re.fullmatch(r"\d{1,3}(,\d{3})+\.\d+", text):
                votes["dot/comma"] += 3
            elif re.fullmatch(r"\d+,\d{1,2}", text):
                votes["comma/"] += 1
            elif re.fullmatch(r"\d+\.\d{1,2}", text):
                votes["dot/"] += 1
            elif re.fullmatch(r"\d{1,3}('\d{3})+(\.\d+)?", text):
                votes["dot/apostrophe"] += 3
    if not votes:
        result.unsure.append("decimal mark: no amount with decimals in the sample; '.' assumed")
        return ".", ""
    comma = votes["comma/dot"] + votes["comma/"]
    dot = votes["dot/comma"] + votes["dot/"] + votes["dot/apostrophe"]
    # a thousands separator only where the file shows one: "1.5" must not become 15
    if comma > dot:
        return ",", "." if votes["comma/dot"] else ""
    if votes["dot/apostrophe"]:
        return ".", "'"
    return ".", "," if votes["dot/comma"] else ""


def _amount_value(cell: str, decimal: str, thousands: str) -> float | None:
    """The cell as a number (for inference only: signs and sizes, never booked)."""
    text = re.sub(r"[\s\u00a0$€£]", "", cell)
    text = re.sub(r"[A-Z]{3}$|^[A-Z]{3}", "", text)
    if thousands:
        text = text.replace(thousands, "")
    text = text.replace(decimal, ".")
    if text.endswith("-"):
        text = "-" + text[:-1]
    if not re.fullmatch(r"[+-]?\d+(\.\d+)?", text):
        return None
    return float(text)


def _classify(column: _Column, decimal: str, thousands: str) -> None:
    values = [c for c in column.cells if c]
    if not values:
        column.kind = "empty"
        return
    column.date_formats = _date_formats(values)
    upper = {v.upper() for v in values}
    if column.date_formats:
        column.kind = "date"
    elif all(re.fullmatch(r"[A-Z]{3}", v) for v in values) and upper & (
        set(_EXPONENTS) | {"EUR", "USD", "GBP", "CHF"}
    ):
        column.kind = "currency"
    elif upper <= INDICATOR_VALUES and (upper - {"+", "-"} or upper == {"+", "-"}):
        column.kind = "marker"
    elif all(_amount_value(v, decimal, thousands) is not None for v in values) and any(
        decimal in v for v in values
    ):
        column.kind = "amount"
    elif all(_amount_value(v, decimal, thousands) is not None for v in values):
        column.kind = "integer"


def _folded(text: str) -> str:
    """Lower case without accents: "Débit", "Crédit" (fr), "Débito" (pt), "Výdaj" (cs) read as plain words."""
    return "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c))


def _role_of(name: str, candidates: tuple[str, ...]) -> int | None:
    """How well a header name fits a role: the index of the first word list entry it contains."""
    norm = " " + re.sub(r"[\s_\-./()#:]+", " ", _folded(name)).strip() + " "
    for rank, word in enumerate(_folded(w) for w in candidates):
        if f" {word} " in norm or (len(word) > 4 and word in norm):
            return rank
    return None


def _pick(columns: list[_Column], role: str, kinds: tuple[str, ...]) -> _Column | None:
    scored = [
        (rank, c.index, c)
        for c in columns
        if c.role is None
        and c.kind in kinds
        and c.name
        and (rank := _role_of(c.name, ROLE_WORDS[role])) is not None
    ]
    if not scored:
        return None
    column = min(scored, key=lambda t: (t[0], t[1]))[2]
    column.role = role
    return column


def _assign(
    columns: list[_Column],
    has_header: bool,
    decimal: str,
    thousands: str,
    result: Inference,
    preamble: list[str],
) -> dict[str, object]:
    """Roles for the columns and the profile keys that follow from them."""
    keys: dict[str, Any] = {}
    cols: dict[str, Any] = {}
    numbers = ("amount", "integer")
    if not has_header:
        for column in columns:
            column.name = f"Column {column.index + 1}"
    # dates: the booking date is the first date column (by name when there is a header)
    dates = [c for c in columns if c.kind == "date"]
    if not dates:
        result.error = "no column of dates found"
        return keys
    value = _pick(columns, "value_date", ("date",)) if has_header else None
    booking = _pick(columns, "booking_date", ("date",)) if has_header else None
    booking = booking or next(c for c in dates if c.role is None)
    booking.role = "booking_date"
    cols["booking_date"] = booking
    if value is not None:
        cols["value_date"] = value
    elif not has_header and len(dates) > 1:
        extra = next((c for c in dates if c.role is None), None)
        if extra is not None:
            extra.role = "value_date"
            cols["value_date"] = extra
            result.unsure.append(f"{extra.name}: a second date column, read as the value date")
    formats = booking.date_formats
    fmt = _choose_date_format(formats, decimal, result)
    keys["date_formats"] = [fmt]
    if value is not None and fmt not in value.date_formats:
        other = _choose_date_format(value.date_formats, decimal, result)
        keys["date_formats"] = [fmt, other]
    # balance and fee before amounts, so that neither is taken for the amount
    balance = _pick(columns, "balance", numbers) if has_header else None
    fee = _pick(columns, "fee", numbers) if has_header else None
    if fee is not None:
        fee.role = None  # not booked; noted
        result.unsure.append(
            f"{fee.name}: looks like a fee column; not booked (add a [fee] table to book it)"
        )
    markers = [
        c for c in columns if c.kind == "marker" or (c.name and _norm(c.name) in INDICATOR_NAMES)
    ]
    debit, credit = _debit_credit_pair(columns, numbers) if has_header else (None, None)
    amount = None
    if debit is None:
        amount = _pick(columns, "amount", numbers) if has_header else None
        if amount is None or balance is None:
            pair = _balance_pair(
                [c for c in columns if c.role is None or c is amount], decimal, thousands
            )
            if pair is not None:
                if amount is not None and amount is not pair[0]:
                    amount.role = None
                amount, balance = pair
                amount.role, balance.role = "amount", "balance"
                result.notes.append(
                    f"{balance.name}: a running balance of {amount.name} (the rows add up to it)"
                )
        if amount is None:
            spare = [
                c
                for c in columns
                if c.role is None
                and c.kind == "amount"
                and _role_of(c.name, ROLE_WORDS["balance"]) is None
            ]
            if not spare:
                if balance is not None:
                    keys["balance_only"] = True
                    keys["balance_column"] = balance.name
                    keys["columns"] = {"booking_date": booking.name}
                    keys["currency"] = _fixed_currency(columns, decimal, result, preamble)
                    result.notes.append(
                        f"{balance.name}: balances only, no amounts (a balance history)"
                    )
                    return keys
                result.error = "no column of amounts found"
                return keys
            debit, credit = _complementary_pair(spare, decimal, thousands)
            if debit is not None and credit is not None:
                result.unsure.append(
                    f"{debit.name}, {credit.name}: never both filled on a row, read as money out and money in"
                )
            else:
                amount = spare[0]
                amount.role = "amount"
                if len(spare) > 1:
                    result.unsure.append(
                        f"{amount.name}: the first of {len(spare)} number columns, read as the amount"
                    )
        if amount is not None:
            cols["amount"] = amount
            _direction(amount, markers, cols, keys, decimal, thousands, result)
    if amount is None:
        cols["debit"], cols["credit"] = debit, credit
        assert debit is not None and credit is not None  # the pair was found, or the amount column was
        _debit_credit_rule(debit, credit, keys, decimal, thousands, result)
    if balance is not None:
        keys["balance_column"] = balance.name
        balance.role = "balance"
    money = [c for c in columns if c.role in ("amount", "debit", "credit", "balance")]
    symbols = sorted(
        {m.group() for c in money for v in c.cells for m in re.finditer(r"[$€£]|[A-Z]{3}", v)}
    )
    if symbols:
        keys["strip_symbols"] = symbols
    # the currency: a column of codes, else a symbol or code in amounts, header or preamble
    codes = [
        c
        for c in columns
        if c.role is None
        # the currency of a card payment's original amount is not the account's (neon: "Original currency")
        and _role_of(c.name, ("original", "foreign", "local", "orig")) is None
        and (
            c.kind == "currency"
            or (  # codes outside the known list (RUR, LTL): ISO codes, or under a header that says
                # currency; not any column of three capitals (Lloyds' "Transaction Type": DEB, BGC)
                c.kind == "text"
                and all(re.fullmatch(r"[A-Z]{3}", v) for v in c.cells if v)
                and any(c.cells)
                and (_role_of(c.name, ROLE_WORDS["currency"]) is not None or set(c.cells) - {""} <= ISO_4217)
            )
        )
    ]
    codes.sort(
        key=lambda c: (
            sum(1 for v in c.cells if not v),
            _role_of(c.name, ("net", "currency")) is None,
        )
    )
    currency = codes[0] if codes and not any(not v for v in codes[0].cells) else None
    if currency is None and codes:
        currency = codes[0]
        result.unsure.append(
            f"{currency.name}: the currency column has empty cells; set currency_default"
        )
    if currency is not None:
        currency.role = "currency"
        cols["currency"] = currency
    else:
        keys["currency"] = _fixed_currency(columns, decimal, result, preamble)
    # text fields by header name
    if has_header:
        for role in ("id", "counterparty_account", "account", "counterparty_name", "reference"):
            picked = _pick(columns, role, ("text", "integer"))
            if picked is None:
                continue
            if role == "id" and (
                len(set(picked.cells)) < len(picked.cells) or not all(picked.cells)
            ):
                picked.role = None  # not unique: a content hash is the line's id instead
                result.notes.append(
                    f"{picked.name}: not unique in the file, so not used as the line id"
                )
                continue
            if role == "account" and len(set(picked.cells)) > max(3, len(picked.cells) // 2):
                picked.role = None
                continue
            cols[role] = picked
        remittance = [
            c
            for c in columns
            if c.role is None
            and c.kind == "text"
            and _role_of(c.name, ROLE_WORDS["remittance"]) is not None
        ]
        for c in remittance:
            c.role = "remittance"
        if remittance:
            cols["remittance"] = remittance
    else:
        ibans = [
            c
            for c in columns
            if c.role is None
            and c.kind == "text"
            and any(c.cells)
            and all(IBAN.fullmatch(v.replace(" ", "")) for v in c.cells if v)
        ]
        same = next((c for c in ibans if len(set(c.cells)) == 1), None)
        if same is not None:
            same.role = "account"
            cols["account"] = same
            result.unsure.append(f"{same.name}: the same IBAN on every row, read as the account")
        counterpart = next((c for c in ibans if c.role is None), None)
        if counterpart is not None:
            counterpart.role = "counterparty_account"
            cols["counterparty_account"] = counterpart
        texts = [c for c in columns if c.role is None and c.kind == "text"]
        if texts:
            longest = max(texts, key=lambda c: sum(len(v) for v in c.cells))
            longest.role = "remittance"
            cols["remittance"] = [longest]
            result.unsure.append(f"{longest.name}: the longest text column, read as the remittance")
    ignored = [
        c
        for c in columns
        if c.role is None and c.name and c.kind != "marker" and _norm(c.name) in INDICATOR_NAMES
    ]
    if ignored:
        keys["ignore_type_columns"] = [c.name for c in ignored]
        result.unsure.append(
            f"{', '.join(c.name for c in ignored)}: transaction type column(s) with other "
            "values than debit/credit; the amounts are read with their own sign"
        )
    keys["columns"] = {
        role: (
            [c.name for c in v]
            if isinstance(v, list) and len(v) > 1
            else (v[0].name if isinstance(v, list) else v.name)
        )  # type: ignore[union-attr]
        for role, v in cols.items()
    }
    return keys


def _debit_credit_pair(
    columns: list[_Column], kinds: tuple[str, ...]
) -> tuple[_Column | None, _Column | None]:
    """The debit and credit columns: of the columns named so, the pair leaving fewest rows empty."""

    def named(role: str) -> list[_Column]:
        return [
            c
            for c in columns
            if c.role is None
            and c.kind in kinds + ("empty",)
            and c.name
            and _role_of(c.name, ROLE_WORDS[role]) is not None
        ]

    pairs = [(d, c) for d in named("debit") for c in named("credit") if d is not c]
    if not pairs:
        return None, None

    def covered(pair: tuple[_Column, _Column]) -> int:
        d, c = pair
        return sum(1 for x, y in zip(d.cells, c.cells, strict=True) if x or y)

    debit, credit = max(pairs, key=lambda pair: (covered(pair), -pair[0].index))
    if debit.kind == "empty" and credit.kind == "empty":
        return None, None
    debit.role, credit.role = "debit", "credit"
    return debit, credit


def _complementary_pair(
    spare: list[_Column], decimal: str, thousands: str
) -> tuple[_Column | None, _Column | None]:
    """Two unnamed number columns that split the rows between them (one filled per row): money out and
    money in. The one written negative is the debit; with no signs to tell, the left one (Debit before
    Credit, Soll before Haben, as banks write them)."""
    for n, left in enumerate(spare):
        for right in spare[n + 1 :]:
            cells = list(zip(left.cells, right.cells, strict=True))
            if all(bool(a) != bool(b) for a, b in cells) and any(a for a, _ in cells) and any(b for _, b in cells):
                negative = [_signs(c, decimal, thousands)[0] > 0 for c in (left, right)]
                debit, credit = (right, left) if negative == [False, True] else (left, right)
                debit.role, credit.role = "debit", "credit"
                return debit, credit
    return None, None


def _balance_pair(
    columns: list[_Column], decimal: str, thousands: str
) -> tuple[_Column, _Column] | None:
    """(amount, balance) when one number column is the running balance of another (any order)."""
    numbers = [c for c in columns if c.kind in ("amount", "integer")]
    values = {
        c.index: [_amount_value(v, decimal, thousands) if v else None for v in c.cells]
        for c in numbers
    }
    best, best_score = None, 0.0
    for amount in numbers:
        for balance in numbers:
            if amount is balance:
                continue
            a, b = values[amount.index], values[balance.index]
            steps = [
                (a[i], a[i + 1], b[i], b[i + 1])
                for i in range(len(a) - 1)
                if None not in (a[i], a[i + 1], b[i], b[i + 1])
            ]
            if len(steps) < 2:
                continue
            # balance after each row (oldest, newest first), before each row (oldest, newest first)
            rules = (
                lambda x0, x1, y0, y1: y1 - y0 - x1,
                lambda x0, x1, y0, y1: y0 - y1 - x0,
                lambda x0, x1, y0, y1: y1 - y0 - x0,
                lambda x0, x1, y0, y1: y0 - y1 - x1,
            )
            for rule in rules:
                score = sum(1 for s in steps if abs(rule(*s)) < 0.005) / len(steps)
                if score > best_score:
                    best, best_score = (amount, balance), score
    return best if best_score >= 0.8 else None


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", name.strip().lower())


def _choose_date_format(formats: list[str], decimal: str, result: Inference) -> str:
    if not formats:
        return "%Y-%m-%d"
    if len(formats) == 1:
        return formats[0]
    day_first = [f for f in formats if f.startswith("%d")]
    month_first = [f for f in formats if f.startswith("%m")]
    if day_first and month_first:
        choice = day_first[0] if decimal == "," else month_first[0]
        result.unsure.append(
            f"date format: every date fits both {day_first[0]} and {month_first[0]} (no day "
            f"above 12); {choice} chosen from the "
            f"{'decimal comma' if decimal == ',' else 'decimal point'}"
        )
        return choice
    return formats[0]


def _signs(column: _Column, decimal: str, thousands: str) -> tuple[int, int]:
    values = [_amount_value(v, decimal, thousands) for v in column.cells if v]
    return sum(1 for v in values if v is not None and v < 0), sum(
        1 for v in values if v is not None and v > 0
    )


def _direction(
    amount: _Column,
    markers: list[_Column],
    cols: dict[str, Any],
    keys: dict[str, Any],
    decimal: str,
    thousands: str,
    result: Inference,
) -> None:
    """An indicator column next to the amount: it signs unsigned amounts or must agree with them."""
    negative, _ = _signs(amount, decimal, thousands)
    marker = next((m for m in markers if m.role is None and m.kind == "marker"), None)
    if marker is None:
        named = [m for m in markers if m.role is None]
        if named and not negative:
            result.unsure.append(
                f"{named[0].name}: a type column whose values are not debit/credit markers, "
                "and the amounts are never negative: check the signs in the preview"
            )
        if not negative:
            result.unsure.append(
                f"{amount.name}: no amount is negative; if money out is written positive, "
                "set inverse_sign or map a debit/credit column"
            )
        return
    marker.role = "direction"
    cols["direction"] = marker
    values = {v.upper(): v for v in marker.cells if v}
    debits = sorted(v for u, v in values.items() if u in DEBIT_MARKERS)
    credits = sorted(v for u, v in values.items() if u in CREDIT_MARKERS)
    keys["debit_values"] = debits or ["D"]
    keys["credit_values"] = credits or ["C"]
    if not debits or not credits:
        result.unsure.append(
            f"{marker.name}: only {', '.join(debits or credits)} seen; the other marker is a guess"
        )
    if negative:
        keys["direction_mode"] = "check"
        result.notes.append(f"{amount.name}: signed, and {marker.name} must agree with the sign")
    else:
        result.notes.append(
            f"{amount.name}: unsigned, signed by {marker.name} "
            f"({'/'.join(keys['debit_values'])} out, {'/'.join(keys['credit_values'])} in)"
        )


def _debit_credit_rule(
    debit: _Column,
    credit: _Column,
    keys: dict[str, Any],
    decimal: str,
    thousands: str,
    result: Inference,
) -> None:
    d_neg, d_pos = _signs(debit, decimal, thousands)
    c_neg, c_pos = _signs(credit, decimal, thousands)
    if d_neg and d_pos or c_neg and c_pos:
        keys["debit_credit_rule"] = "reversal"
        result.unsure.append(
            f"{debit.name}/{credit.name}: a column holds both signs; read as reversals "
            "(a negative debit is money in): check against the balance"
        )
    elif d_neg and not c_neg:
        keys["debit_credit_rule"] = "signed"
        result.notes.append(f"{debit.name} written negative, {credit.name} positive")
    else:
        result.notes.append(f"{debit.name} is money out, {credit.name} money in")


def _fixed_currency(
    columns: list[_Column], decimal: str, result: Inference, preamble: list[str]
) -> str:
    for column in columns:
        for symbol, code in SYMBOLS.items():
            if column.role in ("amount", "debit", "credit", "balance") and any(
                symbol in v for v in column.cells
            ):
                result.notes.append(f"currency {code} from the {symbol!r} in {column.name}")
                return code
        match = re.search(r"\b([A-Z]{3})\b", column.name)
        if match and match.group(1) in KNOWN_CODES:
            result.notes.append(f"currency {match.group(1)} from the header {column.name!r}")
            return match.group(1)
    for line in preamble:
        match = re.search(r"\b([A-Z]{3})\b", line)
        if match and match.group(1) in KNOWN_CODES:
            result.notes.append(f"currency {match.group(1)} from the lines above the table")
            return match.group(1)
    guess = "EUR" if decimal == "," else "USD"
    result.unsure.append(
        f"currency: the file names none; {guess} assumed: set the account's currency"
    )
    return guess


def _account_from_preamble(lines: list[str], keys: dict[str, Any], result: Inference) -> None:
    cols = keys.get("columns", {})
    if not isinstance(cols, dict) or "account" in cols:
        return
    for line in lines:
        match = re.search(r"\b([A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){2,7}(?:\s?[A-Z0-9]{1,3})?)\b", line)
        if match:
            before = re.escape(line[: match.start()])
            keys["account_from_preamble"] = f"^{before}([A-Z]{{2}}[0-9]{{2}}[A-Z0-9 ]+)"
            result.notes.append(
                f"account: the IBAN above the header ({match.group(1).replace(' ', '')})"
            )
            return
    result.unsure.append(
        'account: the file names none; pass --account to ingest, or set account = "..."'
    )


def _settle(data: bytes, file_name: str, keys: dict[str, Any], result: Inference) -> None:
    """Choose the row order (and balance before/after) the balances prove; prove the profile.

    The trials read the sample (whole lines) a large file starts with; the caller reads the file.
    """
    path = Path(file_name)
    if len(data) > SAMPLE_BYTES and b"\n" in data[:SAMPLE_BYTES]:
        data = data[:SAMPLE_BYTES].rsplit(b"\n", 1)[0] + b"\n"
    variants = [(False, False)]
    if "balance_column" in keys and not keys.get("balance_only"):
        variants = [(False, False), (True, False), (False, True), (True, True)]
    last_error = None
    for newest_first, before in variants:
        trial = dict(keys)
        if keys.get("direction_mode") == "check" and _disagrees(data, file_name, trial, result):
            # amounts and marker disagree ("-1,533.50" marked C): the marker is the explicit word,
            # it decides
            trial["direction_mode"] = keys["direction_mode"] = "sign"
            result.unsure.append(
                "the marker and the amount's own sign disagree on some rows: the marker decides"
            )
        if "balance_column" in keys:
            trial["newest_first"] = newest_first
            trial["balance_before"] = before
        text = _toml(result.name, trial, result)
        try:
            profile = profile_from_text(text, path.with_suffix(".toml"), "inferred")
            problem = CsvProfileParser(profile).mismatch(data[: 64 * 1024], path)
            if problem is not None:
                raise InputError(path, None, f"the profile does not claim the file: {problem}")
            parsed = parse_csv(data, path, profile)
        except (ConfigError, InputError) as exc:
            last_error = str(exc)
            continue
        warnings = [
            w
            for s in parsed.statements
            for w in s.warnings
            if "does not add up" in w or "the running balance shows" in w
        ]
        if warnings and (newest_first, before) != variants[-1]:
            continue
        if "balance_column" in keys:
            if warnings:
                result.unsure.append(
                    f"{keys['balance_column']}: the balances do not add up in any row order; "
                    "read as the balance after each row"
                )
                trial["newest_first"], trial["balance_before"] = False, False
                text = _toml(result.name, trial, result)
            else:
                order = "newest first" if newest_first else "oldest first"
                result.notes.append(
                    f"{keys['balance_column']}: the balance {'before' if before else 'after'} "
                    f"each row, rows {order} (the balances add up that way)"
                )
        result.text = text
        result.error = None
        return
    result.text = _toml(result.name, keys, result)
    result.error = last_error or "the inferred profile does not read the file"


def _disagrees(data: bytes, file_name: str, keys: dict[str, Any], result: Inference) -> bool:
    try:
        profile = profile_from_text(
            _toml(result.name, keys, result), Path(file_name).with_suffix(".toml"), "x"
        )
        parse_csv(data, Path(file_name), profile)
    except InputError as exc:
        return "disagrees with its" in exc.why
    except ConfigError:
        return False
    return False


def _toml(name: str, keys: dict[str, Any], result: Inference) -> str:
    """The profile as TOML, with the unsure choices as comments at the top."""
    lines = [
        f'name = "{name}"',
        "description = " + _value("inferred from a sample by reconcile profiles new: check it"),
    ]
    if result.unsure:
        lines.append("# UNSURE (check these against the preview, then delete this comment):")
        lines += [f"#   - {u}" for u in result.unsure]
    order = (
        "encoding",
        "delimiter",
        "quote",
        "decimal",
        "thousands",
        "date_formats",
        "skip_lines",
        "skip_footer",
        "has_header",
        "column_names",
        "signature",
        "currency",
        "strip_symbols",
        "balance_only",
        "account_from_preamble",
        "balance_column",
        "balance_before",
        "newest_first",
        "debit_values",
        "credit_values",
        "direction_mode",
        "debit_credit_rule",
        "ignore_type_columns",
    )
    for key in order:
        if key not in keys:
            continue
        value = keys[key]
        if key == "skip_lines" and value == 0:
            continue
        lines.append(f"{key} = {_value(value)}")
    lines.append("")
    lines.append("[columns]")
    for field_name, column in dict(keys.get("columns", {})).items():  # type: ignore[call-overload]
        lines.append(f"{field_name} = {_value(column)}")
    return "\n".join(lines) + "\n"


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    text = str(value)
    if "'" not in text and ("\\" in text or '"' in text):
        return f"'{text}'"  # a literal string: regular expressions and quotes stay as written
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t") + '"'


def preview_rows(data: bytes, file_name: str, text: str, limit: int = 8) -> list[dict[str, object]]:
    """The first lines of the file as the profile reads them (what `profiles new` shows)."""
    path = Path(file_name)
    profile = profile_from_text(text, path.with_suffix(".toml"), "inferred")
    parsed = parse_csv(data, path, profile)
    out: list[dict[str, object]] = []
    for statement in parsed.statements:
        for row in statement.lines.head(limit).iter_rows(named=True):
            out.append(
                {
                    "location": row["location"],
                    "account": statement.account,
                    "booking_date": str(row["booking_date"]),
                    "amount_minor": row["amount_minor"],
                    "amount": format_minor(row["amount_minor"], row["currency"]),
                    "currency": row["currency"],
                    "counterparty": row["counterparty_name"],
                    "remittance": row["remittance"],
                }
            )
    out.sort(key=lambda r: int(str(r["location"]).split()[-1].split("-")[0]))
    return out[:limit]
