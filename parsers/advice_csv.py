"""CSV remittance advices (a payer portal's payment-details export) through advice profiles as data.

An advice profile (config/advice_profiles/generic-advice.toml lists every key) says how one
portal writes its export; rows are grouped into advices by the payment reference. Decoding,
header finding, amount cleaning and located cell errors reuse the bank CSV machinery of
csvprofile.py; storing and linking the advices is left to the store and matching layers.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import polars as pl

from reconcile.core.errors import ConfigError, InputError
from reconcile.core.money_expr import exponent_expr, minor_units_expr
from reconcile.parsers.advice import ADJUSTMENT, ITEM, ParsedAdvice, build
from reconcile.parsers.csv_profiles import ENCODINGS, Profile, merge_profiles
from reconcile.parsers.csvprofile import CsvProfileParser, _clean, _dates, _first_bad, read_table

ADVICE_FIELDS = {
    "payment_reference",
    "payment_date",
    "payment_amount",
    "currency",
    "payer_name",
    "payer_id",
    "payee_name",
    "payment_method",
    "end_to_end_id",
    "invoice_number",
    "reference_qualifier",
    "document_date",
    "amount_paid",
    "invoice_amount",
    "discount",
    "deduction",
    "reason",
    "reason_text",
}
MONEY_FIELDS = ("payment_amount", "amount_paid", "invoice_amount", "discount", "deduction")
# the same value on every row of one payment
PAYMENT_FIELDS = (
    "payment_date",
    "payment_amount",
    "currency",
    "payer_name",
    "payer_id",
    "payee_name",
    "payment_method",
    "end_to_end_id",
)

__all__ = [
    "AdviceProfile",
    "builtin_advice_profiles",
    "claiming_profiles",
    "load_advice_profile_dir",
    "merge_profiles",
    "parse",
]


LAYOUT_KEYS = {
    "encoding",
    "delimiter",
    "quote",
    "decimal",
    "thousands",
    "strip_symbols",
    "date_formats",
    "skip_lines",
    "header_search",
    "skip_footer",
    "header_exact",
    "header_absent",
}
ADVICE_KEYS = {
    "name",
    "description",
    "signature",
    "columns",
    "optional_columns",
    "currency",
    "currency_default",
    "payer_name",
    "payer_id",
    "deduction_sign",
    "discount_sign",
    "reason_separator",
    "auto_detect",
}


@dataclass(frozen=True)
class AdviceProfile:
    """One portal's CSV advice layout. How the file is written (encoding, delimiter, decimal mark,
    header search) is a csv_profiles.Profile in `layout`, read by csvprofile's machinery."""

    name: str
    source: Path
    columns: dict[str, str]
    layout: Profile
    optional_columns: dict[str, str] = field(default_factory=dict)  # read when the header has them
    description: str = ""
    currency: str | None = None  # fixed currency when the file has no currency column
    currency_default: str | None = None  # for empty cells of the currency column
    payer_name: str | None = None  # fixed payer: a portal export is usually one payer's
    payer_id: str | None = None
    deduction_sign: int = 1  # 1: deductions written positive; -1: written negative
    discount_sign: int = 1
    reason_separator: str | None = None  # several reason codes in one cell, e.g. "|"
    auto_detect: bool = True
    origin: str = "built-in"

    @property
    def signature(self) -> tuple[str, ...]:
        return self.layout.signature


def _advice_profile(path: Path, raw: dict[str, Any]) -> AdviceProfile:
    def need(condition: bool, why: str) -> None:
        if not condition:
            raise ConfigError(f"{path}: {why}")

    extra = set(raw) - LAYOUT_KEYS - ADVICE_KEYS
    need(not extra, f"unknown key(s) {sorted(extra)}")
    columns = raw.get("columns", {})
    need(isinstance(columns, dict) and bool(columns), "[columns] table is required")
    optional = raw.get("optional_columns", {})
    need(isinstance(optional, dict), "[optional_columns] must be a table")
    need(
        all(isinstance(v, str) and v for v in [*columns.values(), *optional.values()]),
        "each column must name one header",
    )
    need(
        not set(columns) & set(optional), "a field is either in [columns] or in [optional_columns]"
    )
    unknown = (set(columns) | set(optional)) - ADVICE_FIELDS
    need(not unknown, f"unknown column field(s) {sorted(unknown)}; known: {sorted(ADVICE_FIELDS)}")
    for required in ("payment_reference", "payment_date", "invoice_number"):
        need(required in columns, f"columns.{required} is required")
    need(
        "amount_paid" in columns or "invoice_amount" in columns,
        "columns.amount_paid (or columns.invoice_amount, less discount and deduction) is required",
    )
    encoding = str(raw.get("encoding", "utf-8")).lower()
    need(encoding in ENCODINGS, f"encoding {encoding!r} is not one of {sorted(ENCODINGS)}")
    delimiter = raw.get("delimiter", ",")
    need(isinstance(delimiter, str) and len(delimiter) == 1, "delimiter must be one character")
    signature = tuple(raw.get("signature", []))
    need(
        bool(signature) and all(isinstance(s, str) and s for s in signature),
        "signature (header column names that identify the layout) is required",
    )
    for key in ("currency", "currency_default"):
        value = raw.get(key)
        need(
            value is None
            or (isinstance(value, str) and re.fullmatch(r"[A-Z]{3}", value) is not None),
            f'{key} must be an ISO 4217 code such as "EUR"',
        )
    need(
        "currency" in columns or "currency" in optional or raw.get("currency") is not None,
        "columns.currency or a fixed currency is required",
    )
    formats = raw.get("date_formats", ["%Y-%m-%d"])
    need(
        isinstance(formats, list) and bool(formats) and all(isinstance(f, str) for f in formats),
        "date_formats must be a list of strings",
    )
    for key in ("deduction_sign", "discount_sign"):
        need(raw.get(key, 1) in (1, -1), f"{key} must be 1 or -1")
    name = str(raw.get("name", path.stem))
    mapped = tuple(dict.fromkeys([*columns.values(), *optional.values()]))
    layout = Profile(
        name=name,
        source=path,
        signature=signature,
        columns={},
        encoding=encoding,
        delimiter=delimiter,
        quote=str(raw.get("quote", '"')),
        decimal=str(raw.get("decimal", ".")),
        thousands=str(raw.get("thousands", "")),
        strip_symbols=tuple(raw.get("strip_symbols", ())),
        date_formats=list(formats),
        skip_lines=int(raw.get("skip_lines", 0)),
        header_search=int(raw.get("header_search", 0)),
        skip_footer=int(raw.get("skip_footer", 0)),
        header_exact=bool(raw.get("header_exact", False)),
        header_absent=tuple(raw.get("header_absent", ())),
        # an advice's document-type column is not a bank debit/credit indicator
        ignore_type_columns=mapped,
    )
    return AdviceProfile(
        name=name,
        source=path,
        columns=dict(columns),
        layout=layout,
        optional_columns=dict(optional),
        description=str(raw.get("description", "")),
        currency=raw.get("currency"),
        currency_default=raw.get("currency_default"),
        payer_name=raw.get("payer_name"),
        payer_id=raw.get("payer_id"),
        deduction_sign=int(raw.get("deduction_sign", 1)),
        discount_sign=int(raw.get("discount_sign", 1)),
        reason_separator=raw.get("reason_separator"),
        auto_detect=bool(raw.get("auto_detect", True)),
    )


def load_advice_profile_dir(folder: Path, origin: str) -> tuple[AdviceProfile, ...]:
    """Every *.toml advice profile in `folder`, validated; a bad file is a ConfigError naming it."""
    profiles = []
    for path in sorted(folder.glob("*.toml")):
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read advice profile: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        profiles.append(replace(_advice_profile(path, raw), origin=origin))
    names = [p.name for p in profiles]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ConfigError(f"{folder}: advice profile name(s) used twice: {sorted(duplicates)}")
    return tuple(profiles)


def builtin_advice_profile_dir() -> Path:
    return Path(str(resources.files("reconcile.default_config"))) / "advice_profiles"


@lru_cache(maxsize=1)
def builtin_advice_profiles() -> tuple[AdviceProfile, ...]:
    return load_advice_profile_dir(builtin_advice_profile_dir(), "built-in")


def claiming_profiles(head: bytes, profiles: tuple[AdviceProfile, ...]) -> list[AdviceProfile]:
    """The auto-detecting profiles whose signature the file's header carries."""
    probe = Path("<head>")
    return [
        p
        for p in profiles
        if p.auto_detect and CsvProfileParser(p.layout).mismatch(head, probe) is None
    ]


def parse(data: bytes, path: Path, profile: AdviceProfile) -> ParsedAdvice:
    raw = _table(data, path, profile)
    if raw.height == 0:
        raise InputError(path, None, f"no advice rows (profile {profile.name})")
    cols = {
        **{k: v for k, v in profile.optional_columns.items() if v in raw.columns},
        **profile.columns,
    }
    currency = _currencies(raw, profile, cols.get("currency"), path)
    raw = raw.with_columns(currency.alias("_currency"))
    values: dict[str, pl.Series] = {}
    for name in MONEY_FIELDS:
        if name in cols:
            values[name] = _money(raw, profile, cols[name], path)
    for name in ("payment_date", "document_date"):
        if name in cols:
            values[name] = _dates(
                raw, cols[name], profile.layout.date_formats, path, required=name == "payment_date"
            )
    texts = {
        name: _text(raw, cols[name])
        for name in sorted(ADVICE_FIELDS - {*MONEY_FIELDS, *values, "currency"})
        if name in cols
    }
    _first_bad(
        raw,
        texts["payment_reference"].is_null(),
        cols["payment_reference"],
        path,
        "payment reference is empty",
    )
    rows = pl.DataFrame({"_line": raw["_line"], "currency": currency, **values, **texts}).to_dicts()
    advices: dict[str, dict[str, Any]] = {}
    firsts: dict[str, dict[str, Any]] = {}
    lines: list[dict[str, Any]] = []
    for row in rows:
        reference = row["payment_reference"]
        first = firsts.setdefault(reference, row)
        for name in PAYMENT_FIELDS:
            if name in row and row[name] != first[name]:
                source = cols.get(name, "currency")
                raise InputError(
                    path,
                    f"line {row['_line']}, column {source}",
                    f"payment {reference!r} has {row[name]!r} here but {first[name]!r} on "
                    f"line {first['_line']}",
                )
        ref = f"csv:{profile.name}:{reference}"
        if reference not in advices:
            advices[reference] = {
                "advice_ref": ref,
                "payer_name": row.get("payer_name") or profile.payer_name,
                "payer_id": row.get("payer_id") or profile.payer_id,
                "payee_name": row.get("payee_name"),
                "payment_method": row.get("payment_method"),
                "payment_amount_minor": row.get("payment_amount"),
                "currency": row["currency"],
                "payment_date": row["payment_date"],
                "trace_number": reference,
                "end_to_end_id": row.get("end_to_end_id"),
                "location": f"line {row['_line']}",
            }
        lines.append(_line(row, ref, profile, cols, path))
    for reference, advice in advices.items():
        if (
            advice["payment_amount_minor"] is None
        ):  # no total column: the payment is what the rows pay
            advice["payment_amount_minor"] = sum(
                line["amount_paid_minor"]
                for line in lines
                if line["advice_ref"] == advice["advice_ref"]
            )
    return build(f"csv-advice:{profile.name}", list(advices.values()), lines, path)


def _line(
    row: dict[str, Any], ref: str, profile: AdviceProfile, cols: dict[str, str], path: Path
) -> dict[str, Any]:
    discount = row.get("discount")
    discount = None if discount is None else discount * profile.discount_sign
    deduction = row.get("deduction")
    deduction = None if deduction is None else deduction * profile.deduction_sign
    paid = row.get("amount_paid")
    if paid is None:
        total = row.get("invoice_amount")
        if total is None:
            source = cols.get("amount_paid") or cols["invoice_amount"]
            raise InputError(
                path, f"line {row['_line']}, column {source}", "no amount paid on this row"
            )
        paid = total - (discount or 0) - (deduction or 0)
    reason = row.get("reason")
    reasons = (
        [r.strip() for r in reason.split(profile.reason_separator) if r.strip()]
        if reason and profile.reason_separator
        else [reason]
        if reason
        else []
    )
    kind = ITEM if row.get("invoice_number") else ADJUSTMENT
    if (
        kind == ADJUSTMENT and deduction is None
    ):  # a deduction row of its own: the negative amount is it
        deduction = -paid
    return {
        "advice_ref": ref,
        "line_kind": kind,
        "reference_qualifier": row.get("reference_qualifier"),
        "invoice_number": row.get("invoice_number"),
        "document_date": row.get("document_date"),
        "amount_paid_minor": paid,
        "invoice_total_minor": row.get("invoice_amount"),
        "discount_minor": discount,
        "adjustment_minor": deduction,
        "adjustment_reasons": reasons,
        "description": row.get("reason_text"),
        "location": f"line {row['_line']}",
    }


def _table(data: bytes, path: Path, profile: AdviceProfile) -> pl.DataFrame:
    """The rows below the header as text cells, each with its file line in `_line`."""
    raw = read_table(data, path, profile.layout)[0]
    missing = [c for c in profile.columns.values() if c not in raw.columns]
    if missing:
        raise InputError(
            path, "header", f"column {missing[0]!r} not found (advice profile {profile.name})"
        )
    return raw


def _text(raw: pl.DataFrame, column: str) -> pl.Series:
    return raw.select(pl.col(column).str.strip_chars().replace("", None))[column]


def _currencies(
    raw: pl.DataFrame, profile: AdviceProfile, source: str | None, path: Path
) -> pl.Series:
    if source is None:
        fixed = profile.currency or profile.currency_default
        if fixed is None:
            raise InputError(
                path,
                "header",
                f"no currency column and advice profile {profile.name} sets no currency",
            )
        return pl.Series("currency", [fixed] * raw.height, dtype=pl.String)
    values = _text(raw, source).str.to_uppercase()
    fallback = profile.currency_default or profile.currency
    if fallback:
        values = values.fill_null(fallback)
    _first_bad(raw, values.is_null(), source, path, "currency is empty")
    _first_bad(
        raw, ~values.str.contains(r"^[A-Z]{3}$"), source, path, "'{value}' is not a currency code"
    )
    return values.alias("currency")


def _money(raw: pl.DataFrame, profile: AdviceProfile, source: str, path: Path) -> pl.Series:
    """A money column in minor units of each row's currency; empty cells null, bad ones refused."""
    parsed = raw.select(
        minor_units_expr(
            _clean(pl.col(source), profile.layout), exponent_expr(pl.col("_currency"))
        ).alias("m"),
        pl.col(source).fill_null("").str.strip_chars().alias("t"),
    )
    _first_bad(
        raw, parsed["m"].is_null() & (parsed["t"] != ""), source, path, "'{value}' is not an amount"
    )
    return parsed["m"]
