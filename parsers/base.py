"""The one contract every statement format fulfils, and the rules every format shares.

A parser says whether it claims a file from its content (`sniff`) and turns
the file's bytes into ParsedFile: statement metadata plus a bank-lines frame
in the frames.BANK_LINES schema. Parsers read bytes they are given; they do
not open files, touch the database or know about matching. What holds for
every format (no control characters in text, amounts the ledger can hold, one
distinct source_ref per transaction, a booking zone per account) is defined
here once and applied by the registry to every ParsedFile.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from reconcile.core import frames
from reconcile.core.errors import InputError
from reconcile.core.money import _EXPONENTS, exponent, format_minor


@dataclass(frozen=True)
class Statement:
    """One account's statement (or notification) inside a file."""

    account: str
    currency: str | None
    lines: pl.DataFrame                   # frames.BANK_LINES
    opening_minor: int | None = None
    closing_minor: int | None = None
    period_start: date | None = None
    period_end: date | None = None
    statement_id: str | None = None
    location: str | None = None           # where the statement starts in the file
    warnings: tuple[str, ...] = ()         # e.g. a balance that does not add up


@dataclass(frozen=True)
class ParsedFile:
    format: str                           # "camt053", "camt054", "ofx", "csv:<profile>", "mt940", "bai2"
    statements: list[Statement] = field(default_factory=list)

    @property
    def line_count(self) -> int:
        return sum(s.lines.height for s in self.statements)


class Parser(Protocol):
    """What the registry needs of a format."""

    name: str

    def sniff(self, head: bytes, path: Path) -> bool:
        """True when this parser recognises the file from its first bytes."""
        ...

    def parse(self, data: bytes, path: Path) -> ParsedFile:
        """Parse the whole file; raise errors.InputError naming path, position and reason."""
        ...


@dataclass(frozen=True)
class ParseOptions:
    """What parsing needs from configuration, built once by the caller and passed in (never read here).

    csv_profiles: the CSV profiles that take part (built-in and the team's, merged).
    timezones: account -> IANA zone ("*" for every account): a booking the bank gives as a date-time with an
    offset (CAMT DtTm, often UTC) is booked on its calendar day in the account's zone.
    profile: a CSV profile chosen by name (ingest --profile): detection is skipped.
    """

    csv_profiles: tuple[Any, ...] = ()
    timezones: Mapping[str, str] = field(default_factory=dict)
    profile: str | None = None
    # CSV remittance-advice profiles (parsers/advice_csv.py); None: the shipped ones
    advice_profiles: tuple[Any, ...] | None = None

    def zone_for(self, account: str | None) -> str | None:
        """The configured zone of `account`, else the default for every account, else None."""
        return self.timezones.get(account or "") or self.timezones.get("*") or None

    @classmethod
    def builtin(cls) -> ParseOptions:
        """The shipped CSV profiles and no time zones: for tools and tests that have no configuration."""
        from reconcile.parsers.csv_profiles import builtin_profiles

        return cls(csv_profiles=builtin_profiles())


def lines_frame(records: list[dict[str, Any]]) -> pl.DataFrame:
    """Bank-lines frame from per-line dicts (row-wise parsers: CAMT, OFX, MT940, BAI2)."""
    return frames.from_records(records, frames.BANK_LINES)


# --- rules every format shares (applied by registry.parse_bytes) ------------------------------------

# C0 controls but tab, LF and CR; DEL; C1 controls. A NUL or an escape in a name or remittance text is
# damage (a binary file, a broken export), never something to store and match on.
CONTROL_CHARACTERS = "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"
_CONTROL = re.compile(CONTROL_CHARACTERS)
LEDGER_LIMIT_MAJOR = 10 ** 15          # amounts the ledger holds stay below this, in major units
INT64_MAX = (1 << 63) - 1
AMOUNT_COLUMNS = (("amount_minor", "currency"), ("instructed_amount_minor", "instructed_currency"),
                  ("charges_minor", "currency"))


def amount_limit(currency: str | None) -> int:
    """The smallest |minor units| the ledger cannot hold in `currency` (10**15 major units, within Int64)."""
    return min(LEDGER_LIMIT_MAJOR * int(10 ** exponent(currency or "XXX")), INT64_MAX)


def amount_problem(minor: int, currency: str | None) -> str | None:
    """Why `minor` cannot be stored as an amount of `currency`, or None when it can (check_parsed asks
    this of every balance and line; amount text never gets this far: decimal_minor refuses it first,
    as a value beyond Int64 could not even be put into a frame)."""
    if abs(minor) >= amount_limit(currency):
        code = currency or "XXX"
        shown = format_minor(minor, code)
        shown = shown if len(shown) <= 30 else f"{shown[:12]}...({len(shown)} characters)"
        return f"{shown} {code} is beyond what the ledger holds (amounts below 10^15 {code})"
    return None


LEDGER_DIGITS = len(str(LEDGER_LIMIT_MAJOR)) - 1   # major-unit digits of the largest amount held
_PLAIN_DECIMAL = re.compile(r"([+-]?)(\d*)(?:\.(\d*))?")


def decimal_minor(text: str, currency: str) -> int:
    """Exact minor units of a plain decimal numeral ("-1234.50", "1234.", ".5", "+7") in `currency`: the
    one conversion of amount text for the parsers. Raises ValueError naming the reason: not such a
    numeral, more decimals than the currency has, or beyond what the ledger holds. Works on digits,
    not on a Decimal context, so input of any length is exact and fast."""
    raw = text.strip()
    shown = raw if len(raw) <= 30 else f"{raw[:12]}...({len(raw)} characters)"
    match = _PLAIN_DECIMAL.fullmatch(raw)
    if match is None or not (match[2] or match[3]):
        raise ValueError(f"'{shown}' is not a plain decimal number")
    sign, whole, fraction = match[1], match[2].lstrip("0"), (match[3] or "").rstrip("0")
    places = exponent(currency)
    if len(fraction) > places:
        raise ValueError(f"{shown} has more decimals than {currency} allows")
    if len(whole) > LEDGER_DIGITS:
        raise ValueError(f"{shown} {currency} is beyond what the ledger holds (amounts below 10^15 {currency})")
    minor = int(whole or "0") * int(10 ** places) + int(fraction.ljust(places, "0") or "0")
    return -minor if sign == "-" else minor


def _control_problem(text: str) -> str:
    char = _CONTROL.search(text)
    assert char is not None
    return f"control character U+{ord(char.group()):04X} in the text"


def check_parsed(parsed: ParsedFile, path: Path) -> None:
    """Refuse control characters in any text field and amounts beyond the ledger, naming file,
    position (the line's location, else the statement's) and reason. One rule for every format."""
    for statement in parsed.statements:
        for what, value in (("account", statement.account), ("currency", statement.currency),
                            ("statement id", statement.statement_id)):
            if value and _CONTROL.search(value):
                raise InputError(path, statement.location, f"{what} {value[:40]!r}: {_control_problem(value)}")
        for what, minor in (("opening balance", statement.opening_minor),
                            ("closing balance", statement.closing_minor)):
            problem = amount_problem(minor, statement.currency) if minor is not None else None
            if problem:
                raise InputError(path, statement.location, f"{what}: {problem}")
        lines = statement.lines
        if not lines.height:
            continue
        texts = [name for name, dtype in lines.schema.items() if dtype == pl.String]
        checks = [pl.col(name).str.contains(CONTROL_CHARACTERS).fill_null(False).alias(name) for name in texts]
        limits = {code: amount_limit(code) for code in _EXPONENTS}
        for amount, currency in AMOUNT_COLUMNS:
            if amount in lines.columns:
                limit = pl.col(currency).replace_strict(limits, default=amount_limit(None), return_dtype=pl.Int64)
                checks.append(((pl.col(amount) >= limit) | (pl.col(amount) <= -limit)).fill_null(False)
                              .alias(amount))
        flags = lines.select(checks)
        bad = flags.select(pl.any_horizontal(pl.all()).arg_true().first()).item()
        if bad is None:
            continue
        row = lines.row(bad, named=True)
        column = next(name for name in flags.columns if flags[name][bad])
        where = row.get("location") or statement.location
        if column in texts:
            raise InputError(path, where, f"{column.replace('_', ' ')}: {_control_problem(row[column])}")
        currency = row["instructed_currency" if column == "instructed_amount_minor" else "currency"]
        raise InputError(path, where, f"{column.removesuffix('_minor').replace('_', ' ')}: "
                                      f"{amount_problem(row[column], currency)}")


SOURCE_REF_LENGTH = 255  # bank_lines.source_ref
# Columns that make two lines the same transaction (all but the reference itself and its position).
IDENTITY_COLUMNS = [name for name in frames.BANK_LINES if name not in ("source_ref", "location")]


def _digest(row: Mapping[str, Any]) -> str:
    key = "\x1f".join("" if row[name] is None else str(row[name]) for name in IDENTITY_COLUMNS)
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]


def distinct_source_refs(parsed: ParsedFile) -> ParsedFile:
    """One source_ref per transaction, even where the bank gives two transactions one reference.

    Per account across the file: the first line with a reference keeps it. A later line with the
    same reference and other content (a card fee reusing its purchase's FITID, two CAMT entries
    sharing an AcctSvcrRef) gets "#" + a hash of its content; a later identical line in the SAME
    statement is another real transaction and gets "#n" (its occurrence number there), while an
    identical line in ANOTHER statement of the file is the same transaction seen twice (a statement
    sent twice, overlapping periods) and keeps the reference, so it is stored once. Everything is
    derived from the file's content and order: a re-import yields the same refs. Statements whose
    references were told apart carry a warning naming them.
    """
    if not any(s.lines.height for s in parsed.statements):
        return parsed
    refs = pl.concat([
        s.lines.select(pl.col("source_ref"), pl.lit(s.account).alias("account"),
                       pl.lit(i, pl.Int64).alias("statement"), pl.int_range(pl.len(), dtype=pl.Int64).alias("row"))
        for i, s in enumerate(parsed.statements)
    ])
    repeated = refs.filter(pl.col("source_ref").is_not_null() & pl.struct("account", "source_ref").is_duplicated())
    if not repeated.height:
        return parsed
    first: dict[tuple[str, str], str] = {}
    seen: dict[tuple[str, str, str, int], int] = {}
    changes: dict[int, dict[int, str]] = {}
    for ref, account, statement, row in repeated.iter_rows():
        digest = _digest(parsed.statements[statement].lines.row(row, named=True))
        n = seen[(account, ref, digest, statement)] = seen.get((account, ref, digest, statement), 0) + 1
        original = first.setdefault((account, ref), digest)
        if digest == original:
            suffix = "" if n == 1 else f"#{n}"
        else:
            suffix = f"#{digest}" if n == 1 else f"#{digest}#{n}"
        new = ref[:SOURCE_REF_LENGTH - len(suffix)] + suffix  # the stored reference holds 255 characters
        if new != ref:
            changes.setdefault(statement, {})[row] = new
    statements = list(parsed.statements)
    for index, rows in changes.items():
        statement = statements[index]
        values = statement.lines["source_ref"].to_list()
        told_apart = sorted({values[row] for row in rows})
        for row, new in rows.items():
            values[row] = new
        shown = ", ".join(told_apart[:5]) + (f" (and {len(told_apart) - 5} more)" if len(told_apart) > 5 else "")
        warning = (f"reference repeated in the file for different transactions: {shown}; "
                   "each later one is stored under the reference with a '#' suffix")
        statements[index] = replace(
            statement, lines=statement.lines.with_columns(pl.Series("source_ref", values, dtype=pl.String)),
            warnings=(*statement.warnings, warning))
    return replace(parsed, statements=statements)


# --- the calendar a booking belongs to ----------------------------------------------------------------

# The zone of the country an IBAN belongs to: SEPA countries and other IBAN countries with one zone.
# Only used when no zone is configured for the account (an explicit [statements] zone always wins).
IBAN_COUNTRY_ZONES: dict[str, str] = {
    "AD": "Europe/Andorra", "AE": "Asia/Dubai", "AL": "Europe/Tirane", "AT": "Europe/Vienna",
    "AZ": "Asia/Baku", "BA": "Europe/Sarajevo", "BE": "Europe/Brussels", "BG": "Europe/Sofia",
    "BH": "Asia/Bahrain", "CH": "Europe/Zurich", "CY": "Asia/Nicosia", "CZ": "Europe/Prague",
    "DE": "Europe/Berlin", "DK": "Europe/Copenhagen", "EE": "Europe/Tallinn", "EG": "Africa/Cairo",
    "ES": "Europe/Madrid", "FI": "Europe/Helsinki", "FO": "Atlantic/Faroe", "FR": "Europe/Paris",
    "GB": "Europe/London", "GE": "Asia/Tbilisi", "GG": "Europe/Guernsey", "GI": "Europe/Gibraltar",
    "GR": "Europe/Athens", "HR": "Europe/Zagreb", "HU": "Europe/Budapest", "IE": "Europe/Dublin",
    "IL": "Asia/Jerusalem", "IM": "Europe/Isle_of_Man", "IS": "Atlantic/Reykjavik", "IT": "Europe/Rome",
    "JE": "Europe/Jersey", "JO": "Asia/Amman", "KW": "Asia/Kuwait", "LB": "Asia/Beirut",
    "LI": "Europe/Vaduz", "LT": "Europe/Vilnius", "LU": "Europe/Luxembourg", "LV": "Europe/Riga",
    "MC": "Europe/Monaco", "MD": "Europe/Chisinau", "ME": "Europe/Podgorica", "MK": "Europe/Skopje",
    "MT": "Europe/Malta", "MU": "Indian/Mauritius", "NL": "Europe/Amsterdam", "NO": "Europe/Oslo",
    "PK": "Asia/Karachi", "PL": "Europe/Warsaw", "PT": "Europe/Lisbon", "QA": "Asia/Qatar",
    "RO": "Europe/Bucharest", "RS": "Europe/Belgrade", "SA": "Asia/Riyadh", "SE": "Europe/Stockholm",
    "SI": "Europe/Ljubljana", "SK": "Europe/Bratislava", "SM": "Europe/San_Marino", "TN": "Africa/Tunis",
    "TR": "Europe/Istanbul", "UA": "Europe/Kyiv", "VA": "Europe/Vatican", "XK": "Europe/Belgrade",
}
_IBAN = re.compile(r"([A-Z]{2})\d{2}[A-Z0-9]{10,30}")


def booking_zone(options: ParseOptions, account: str | None) -> str | None:
    """The IANA zone a date-time booking of `account` is read in: the configured one, else the zone of
    its IBAN's country, else None (the day is kept as the bank wrote it)."""
    configured = options.zone_for(account)
    if configured:
        return configured
    iban = _IBAN.fullmatch((account or "").replace(" ", "").upper())
    return IBAN_COUNTRY_ZONES.get(iban.group(1)) if iban else None
