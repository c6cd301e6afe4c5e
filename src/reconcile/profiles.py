"""CSV bank profiles: loading and checking config/profiles/*.toml.

A profile is data (see config/profiles/generic.toml for every key). This
module validates profiles, lists them, and explains for a given file which
profile claims it and why the others do not; parsing is parsers/csvprofile.py.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from reconcile.config import Settings, load_settings
from reconcile.errors import ConfigError

KNOWN_FIELDS = {
    "id", "booking_date", "value_date", "amount", "debit", "credit", "direction", "currency",
    "counterparty_name", "counterparty_account", "remittance", "reference", "end_to_end_id", "account",
}
ENCODINGS = {"utf-8", "utf-8-sig", "cp1252", "latin-1", "iso-8859-1", "utf-16"}


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


def _profile(path: Path, raw: dict[str, Any]) -> Profile:
    def need(condition: bool, why: str) -> None:
        if not condition:
            raise ConfigError(f"{path}: {why}")

    columns = raw.get("columns", {})
    need(isinstance(columns, dict) and bool(columns), "[columns] table is required")
    unknown = (set(columns) | set(raw.get("optional_columns", {}))) - KNOWN_FIELDS
    need(not unknown, f"unknown column field(s) {sorted(unknown)}; known: {sorted(KNOWN_FIELDS)}")
    need("booking_date" in columns, "columns.booking_date is required")
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
    preamble = raw.get("account_from_preamble")
    if preamble is not None:
        try:
            compiled = re.compile(str(preamble), re.MULTILINE)
        except re.error as exc:
            raise ConfigError(f"{path}: account_from_preamble is not a valid regular expression: {exc}") from None
        need(compiled.groups >= 1, "account_from_preamble needs a group ( ... ) around the account")
    formats = raw.get("date_formats", ["%Y-%m-%d"])
    need(isinstance(formats, list) and all(isinstance(f, str) for f in formats), "date_formats must be a list of strings")
    return Profile(
        name=str(raw.get("name", path.stem)), source=path, signature=signature, columns=dict(columns),
        description=str(raw.get("description", "")), encoding=encoding, delimiter=delimiter,
        quote=str(raw.get("quote", '"')), decimal=str(raw.get("decimal", ".")), thousands=str(raw.get("thousands", "")),
        date_formats=list(formats), skip_lines=int(raw.get("skip_lines", 0)), header_search=int(raw.get("header_search", 0)),
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
    )


@lru_cache(maxsize=8)
def _load_dir(directory: str) -> tuple[Profile, ...]:
    folder = Path(directory)
    profiles = []
    for path in sorted(folder.glob("*.toml")):
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        profiles.append(_profile(path, raw))
    names = [p.name for p in profiles]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ConfigError(f"{folder}: profile name(s) used twice: {sorted(duplicates)}")
    return tuple(profiles)


def load_profiles(settings: Settings | None = None) -> list[Profile]:
    settings = settings or load_settings()
    return list(_load_dir(str(settings.profiles_dir)))


def list_profiles(settings: Settings | None = None) -> list[dict[str, str]]:
    return [
        {"name": p.name, "encoding": p.encoding, "delimiter": p.delimiter, "signature": ", ".join(p.signature),
         "description": p.description if p.auto_detect else f"{p.description} (only with --profile {p.name})"}
        for p in load_profiles(settings)
    ]


def check_file(path: Path, settings: Settings | None = None) -> str:
    """A report for someone writing a profile: who claims the file, why others do not, what it parses to."""
    from reconcile.errors import InputError
    from reconcile.parsers.csvprofile import CsvProfileParser

    data = path.read_bytes()
    report = [f"{path}:"]
    claimed = []
    for profile in load_profiles(settings):
        parser = CsvProfileParser(profile)
        problem = parser.mismatch(data[:65536], path)
        if problem is not None:
            report.append(f"  {profile.name}: no ({problem})")
        elif not profile.auto_detect:
            report.append(f"  {profile.name}: fits, but is used only when chosen by name (--profile {profile.name})")
        else:
            claimed.append(parser)
            report.append(f"  {profile.name}: claims the file")
    if len(claimed) == 1:
        try:
            parsed = claimed[0].parse(data, path)
            report.append(f"parsed with {claimed[0].name}: {parsed.line_count} line(s) in {len(parsed.statements)} statement(s)")
        except InputError as exc:
            report.append(f"{claimed[0].name} claims it but cannot parse it: {exc}")
    elif len(claimed) > 1:
        report.append("more than one profile claims the file: make their signatures distinct "
                      "(header_exact, header_absent) or set auto_detect = false on one")
    else:
        report.append("no profile claims the file")
    return "\n".join(report)
