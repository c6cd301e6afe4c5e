"""CSV bank profiles as data: the profile model and its validation from TOML.

A profile (see config/profiles/generic.toml for every key) says how one bank
writes its CSV export. This module reads and validates profile files into
frozen Profile objects; csvprofile.py parses statements with them, and
reconcile.statements.profiles explains to a person which profile claims a file.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from reconcile.core.errors import ConfigError

KNOWN_FIELDS = {
    "id", "booking_date", "value_date", "amount", "debit", "credit", "direction", "currency",
    "counterparty_name", "counterparty_account", "remittance", "reference", "end_to_end_id", "account",
}
# "utf-8-or-cp1252": banks that changed their export's encoding over the years (Rabobank): UTF-8 when
# the bytes are valid UTF-8, else Windows-1252
UTF8_OR_CP1252 = "utf-8-or-cp1252"
ENCODINGS = {"utf-8", "utf-8-sig", "cp1252", "latin-1", "iso-8859-1", "utf-16", UTF8_OR_CP1252}
# How an indicator column signs columns.amount (direction_mode), and what a debit or credit cell's
# own sign means (debit_credit_rule); generic.toml says more.
DIRECTION_MODES = {
    "sign": "the amount is unsigned (its sign is not trusted): a debit is -abs, a credit +abs",
    "check": "the amount carries its own sign; the indicator must agree, else the row is refused",
}
DEBIT_CREDIT_RULES = {
    "magnitude": "debit cells are money out, credit cells money in, whatever their sign; a column "
    "holding both signs is refused",
    "reversal": "a negative cell goes the other way ('-5.00' under debit is 5.00 in: a refund)",
    "signed": "cells carry the bank's sign (debits negative): credit + debit; a positive debit or "
    "a negative credit is refused",
}


@dataclass(frozen=True)
class Profile:
    name: str
    source: Path
    signature: tuple[str, ...]
    columns: dict[str, Any]
    description: str = ""
    encoding: str = "utf-8"
    delimiter: str = ","
    quote: str = '"'
    decimal: str = "."
    thousands: str = ""
    date_formats: list[str] = field(default_factory=lambda: ["%Y-%m-%d"])
    skip_lines: int = 0
    header_search: int = 0          # look this many further lines for the header (variable preambles)
    skip_footer: int = 0
    currency: str | None = None     # fixed currency when the file has none
    account: str | None = None      # fixed account when the file has none
    inverse_sign: bool = False      # credit-card exports that write charges as positive
    debit_values: tuple[str, ...] = ("D", "DBIT", "DEBIT")
    credit_values: tuple[str, ...] = ("C", "CRDT", "CREDIT")
    strip_symbols: tuple[str, ...] = ()
    skip_rows_where: dict[str, list[str]] = field(default_factory=dict)  # e.g. pending rows
    skip_zero_amounts: bool = False
    optional_columns: dict[str, Any] = field(default_factory=dict)  # used when the header has them
    currency_default: str | None = None  # for empty cells of the currency column
    header_exact: bool = False      # the header's (non-empty) names are exactly the signature
    header_absent: tuple[str, ...] = ()  # header names that rule the layout out
    auto_detect: bool = True        # False: used only when chosen by name (parse --profile)
    balance_column: str | None = None  # running balance after each line
    newest_first: bool = False      # rows run newest to oldest (matters for the running balance)
    account_from_preamble: str | None = None  # regex over the lines above the header; group 1 is the account
    has_header: bool = True         # False: columns by position, named by column_names
    column_names: tuple[str, ...] = ()  # with has_header = false: a name for each position
    fee: FeeRule | None = None      # [fee]: a fee column booked as its own line
    yearless_date_formats: tuple[str, ...] = ()  # dates written without a year ("%B %d")
    year_from_file_name: str | None = None  # regex over the file name; group 1 is the year of yearless dates
    one_account_per_file: bool = False  # a second account in the account column is refused
    strict_quoting: bool = False    # a quote after leading spaces in a cell is refused (not read as text)
    balance_only: bool = False      # balance-history layout: dates and balances, no amounts (no lines)
    account_from_file_name: str | None = None  # regex over the file name; group 1 is the account
    origin: str = "built-in"       # where it was defined: "built-in" or the team's profile folder
    # other spellings of a header name
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # "sign": the indicator signs an unsigned amount; "check": it must agree with the amount's sign
    direction_mode: str = "sign"
    debit_credit_rule: str = "magnitude"  # what a debit/credit cell's own sign means
    # indicator-like columns known not to carry the sign here
    ignore_type_columns: tuple[str, ...] = ()
    # the balance column is the balance before each row, not after it
    balance_before: bool = False


@dataclass(frozen=True)
class FeeRule:
    """A fee column (or several, summed) booked as a line of its own."""

    columns: tuple[str, ...]
    sign: int = 1                   # the fee line's amount is the cell times sign (PayPal writes -4.25: 1)
    per: str = "row"                # "row": a fee line after each row with a fee; "file": one per account+currency
    ref_suffix: str = "/fee"        # per row: the fee line's source_ref is its row's plus this
    remittance: str = "fee"
    amount_is_net: bool = False     # the amount column is net of the fee: the row's line books amount - fee
    all_required: bool = True       # False: a fee column missing from the header counts as no fee


KNOWN_KEYS = {
    "name",
    "description",
    "encoding",
    "delimiter",
    "quote",
    "decimal",
    "thousands",
    "date_formats",
    "skip_lines",
    "header_search",
    "skip_footer",
    "currency",
    "account",
    "inverse_sign",
    "debit_values",
    "credit_values",
    "strip_symbols",
    "skip_rows_where",
    "skip_zero_amounts",
    "optional_columns",
    "currency_default",
    "header_exact",
    "header_absent",
    "auto_detect",
    "balance_column",
    "newest_first",
    "account_from_preamble",
    "has_header",
    "column_names",
    "fee",
    "yearless_date_formats",
    "year_from_file_name",
    "one_account_per_file",
    "strict_quoting",
    "balance_only",
    "account_from_file_name",
    "signature",
    "columns",
    "aliases",
    "direction_mode",
    "debit_credit_rule",
    "ignore_type_columns",
    "balance_before",
}


def _profile(path: Path, raw: dict[str, Any]) -> Profile:
    def need(condition: bool, why: str) -> None:
        if not condition:
            raise ConfigError(f"{path}: {why}")

    unknown_keys = sorted(set(raw) - KNOWN_KEYS)
    if unknown_keys:
        close = difflib.get_close_matches(unknown_keys[0], sorted(KNOWN_KEYS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        need(False, f"unknown key {unknown_keys[0]!r}{hint}")

    columns = raw.get("columns", {})
    need(isinstance(columns, dict) and bool(columns), "[columns] table is required")
    unknown = (set(columns) | set(raw.get("optional_columns", {}))) - KNOWN_FIELDS
    need(not unknown, f"unknown column field(s) {sorted(unknown)}; known: {sorted(KNOWN_FIELDS)}")
    need("booking_date" in columns, "columns.booking_date is required")
    balance_only = bool(raw.get("balance_only", False))
    if balance_only:
        need(bool(raw.get("balance_column")), "balance_only = true needs balance_column")
    else:
        need("amount" in columns or ("debit" in columns and "credit" in columns),
             "columns.amount, or columns.debit and columns.credit, is required")
    encoding = str(raw.get("encoding", "utf-8")).lower()
    need(encoding in ENCODINGS, f"encoding {encoding!r} is not one of {sorted(ENCODINGS)}")
    delimiter = raw.get("delimiter", ",")
    need(isinstance(delimiter, str) and len(delimiter) == 1, "delimiter must be one character")
    signature = tuple(raw.get("signature", []))
    has_header = bool(raw.get("has_header", True))
    column_names = raw.get("column_names", [])
    need(isinstance(column_names, list) and all(isinstance(n, str) and n for n in column_names),
         "column_names must be a list of non-empty strings")
    if has_header:
        need(not column_names, "column_names is only for has_header = false")
    else:
        need(bool(column_names), "has_header = false needs column_names (a name for each column position)")
        need(len(set(column_names)) == len(column_names), "column_names must be distinct")
        signature = signature or tuple(column_names)
    need(bool(signature), "signature (header column names that identify the layout) is required")
    for key in ("currency", "currency_default"):
        value = raw.get(key)
        need(value is None or (isinstance(value, str) and re.fullmatch(r"[A-Z]{3}", value) is not None),
             f"{key} must be an ISO 4217 code such as \"EUR\"")
    for key in ("account_from_preamble", "year_from_file_name", "account_from_file_name"):
        pattern = raw.get(key)
        if pattern is not None:
            try:
                compiled = re.compile(str(pattern), re.MULTILINE)
            except re.error as exc:
                raise ConfigError(f"{path}: {key} is not a valid regular expression: {exc}") from None
            need(compiled.groups >= 1, f"{key} needs a group ( ... ) around the value")
    preamble = raw.get("account_from_preamble")
    yearless = raw.get("yearless_date_formats", [])
    need(isinstance(yearless, list) and all(isinstance(f, str) and "%Y" not in f and "%y" not in f for f in yearless),
         "yearless_date_formats must be a list of date formats without a year")
    fee = _fee_rule(raw.get("fee"), need)
    aliases = raw.get("aliases", {})
    need(isinstance(aliases, dict) and all(
        isinstance(v, list) and v and all(isinstance(a, str) and a for a in v)
        for v in aliases.values()),
        "aliases must be a table of header name = [other spellings]")
    direction_mode = raw.get("direction_mode", "sign")
    need(direction_mode in DIRECTION_MODES,
         f"direction_mode must be one of {list(DIRECTION_MODES)}")
    has_direction = "direction" in columns or "direction" in raw.get("optional_columns", {})
    need(not has_direction or "amount" in columns,
         "columns.direction needs columns.amount (it signs one amount)")
    rule = raw.get("debit_credit_rule", "magnitude")
    need(rule in DEBIT_CREDIT_RULES, f"debit_credit_rule must be one of {list(DEBIT_CREDIT_RULES)}")
    markers = {}
    for key in ("debit_values", "credit_values", "ignore_type_columns"):
        value = raw.get(key, [])
        need(isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value),
             f"{key} must be a list of non-empty strings")
        markers[key] = {v.strip().upper() for v in value}
    both = markers["debit_values"] & markers["credit_values"]
    need(not both, f"{min(both) if both else ''!r} is both a debit and a credit value")
    formats = raw.get("date_formats", ["%Y-%m-%d"])
    need(isinstance(formats, list) and all(isinstance(f, str) for f in formats),
         "date_formats must be a list of strings")
    return Profile(
        name=str(raw.get("name", path.stem)), source=path, signature=signature, columns=dict(columns),
        description=str(raw.get("description", "")), encoding=encoding, delimiter=delimiter,
        quote=str(raw.get("quote", '"')), decimal=str(raw.get("decimal", ".")), thousands=str(raw.get("thousands", "")),
        date_formats=list(formats), skip_lines=int(raw.get("skip_lines", 0)),
        header_search=int(raw.get("header_search", 0)),
        skip_footer=int(raw.get("skip_footer", 0)), currency=raw.get("currency"), account=raw.get("account"),
        inverse_sign=bool(raw.get("inverse_sign", False)),
        debit_values=tuple(raw.get("debit_values", ("D", "DBIT", "DEBIT"))),
        credit_values=tuple(raw.get("credit_values", ("C", "CRDT", "CREDIT"))),
        strip_symbols=tuple(raw.get("strip_symbols", ())),
        skip_rows_where={k: list(v) for k, v in raw.get("skip_rows_where", {}).items()},
        skip_zero_amounts=bool(raw.get("skip_zero_amounts", False)),
        optional_columns=dict(raw.get("optional_columns", {})),
        currency_default=raw.get("currency_default"), header_exact=bool(raw.get("header_exact", False)),
        header_absent=tuple(raw.get("header_absent", ())), auto_detect=bool(raw.get("auto_detect", True)),
        balance_column=raw.get("balance_column"), newest_first=bool(raw.get("newest_first", False)),
        account_from_preamble=preamble, has_header=has_header, column_names=tuple(column_names),
        fee=fee, yearless_date_formats=tuple(yearless), year_from_file_name=raw.get("year_from_file_name"),
        one_account_per_file=bool(raw.get("one_account_per_file", False)),
        strict_quoting=bool(raw.get("strict_quoting", False)), balance_only=balance_only,
        account_from_file_name=raw.get("account_from_file_name"),
        aliases={str(k): tuple(v) for k, v in aliases.items()}, direction_mode=direction_mode,
        debit_credit_rule=rule, ignore_type_columns=tuple(raw.get("ignore_type_columns", ())),
        balance_before=bool(raw.get("balance_before", False)),
    )


def _fee_rule(raw: Any, need: Any) -> FeeRule | None:
    if raw is None:
        return None
    need(isinstance(raw, dict), "[fee] must be a table")
    columns = raw.get("column", raw.get("columns"))
    columns = [columns] if isinstance(columns, str) else columns
    need(isinstance(columns, list) and bool(columns) and all(isinstance(c, str) and c for c in columns),
         "fee.column must name the fee column (or a list of columns, summed)")
    sign = raw.get("sign", 1)
    need(sign in (1, -1), "fee.sign must be 1 or -1")
    per = raw.get("per", "row")
    need(per in ("row", "file"), "fee.per must be \"row\" or \"file\"")
    unknown = set(raw) - {"column", "columns", "sign", "per", "ref_suffix", "remittance",
                          "amount_is_net",
                          "all_required"}
    need(not unknown, f"unknown [fee] key(s) {sorted(unknown)}")
    suffix = str(raw.get("ref_suffix", "/fee"))
    need(bool(suffix), "fee.ref_suffix must not be empty")
    return FeeRule(columns=tuple(columns), sign=int(sign), per=per, ref_suffix=suffix,
                   remittance=str(raw.get("remittance", "fee")),
                   amount_is_net=bool(raw.get("amount_is_net", False)),
                   all_required=bool(raw.get("all_required", True)))


def profile_from_text(text: str, path: Path, origin: str) -> Profile:
    """The profile a TOML text defines, validated as the file `path` (ConfigError says why not)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return replace(_profile(path, raw), origin=origin)


def load_profile_dir(folder: Path, origin: str) -> tuple[Profile, ...]:
    """Every *.toml profile in `folder`, validated; a bad file is a ConfigError naming it."""
    profiles = []
    for path in sorted(folder.glob("*.toml")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read profile: {exc}") from None
        profiles.append(profile_from_text(text, path, origin))
    names = [p.name for p in profiles]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ConfigError(f"{folder}: profile name(s) used twice: {sorted(duplicates)}")
    return tuple(profiles)


def builtin_profile_dir() -> Path:
    """The profiles shipped with reconcile (the repository's config/profiles)."""
    return Path(str(resources.files("reconcile.default_config"))) / "profiles"


@lru_cache(maxsize=1)
def builtin_profiles() -> tuple[Profile, ...]:
    return load_profile_dir(builtin_profile_dir(), "built-in")


def merge_profiles(builtin: tuple[Profile, ...], team: tuple[Profile, ...]) -> tuple[Profile, ...]:
    """A team's profiles add to the built-in ones; a team profile of the same name replaces the built-in."""
    overridden = {p.name for p in team}
    return tuple(p for p in builtin if p.name not in overridden) + team
