"""CSV statements through declarative bank profiles (config/profiles/*.toml).

A profile says how a bank writes its export: encoding, delimiter, decimal
and thousands separators, date formats, preamble, which columns hold what,
and the header columns that identify the layout. Parsing is vectorised with
polars; a bad cell is reported with its file line and column. Profile
loading and validation live in reconcile.profiles.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import polars as pl

from reconcile import frames
from reconcile.errors import InputError
from reconcile.money_expr import exponent_expr, minor_units_expr
from reconcile.parsers.base import ParsedFile, Statement
from reconcile.profiles import Profile, load_profiles

HASH_COLUMNS = ["booking_date", "amount_minor", "currency", "counterparty_name", "counterparty_account",
                "remittance", "reference"]
DEFAULT_ACCOUNT = "default"


def _decode(data: bytes, profile: Profile, path: Path) -> str:
    encoding = profile.encoding
    if data.startswith(b"\xef\xbb\xbf"):
        encoding = "utf-8-sig"
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(path, f"line {line}", f"not valid {encoding} text") from None


def _split_header(text: str, profile: Profile) -> tuple[int, list[str]] | None:
    """Character offset of the header line (after the preamble) and its column names, or None.

    Only the head of the text is looked at: the header is near the top.
    """
    lines = text[: 64 * 1024].splitlines(keepends=True)
    offset = sum(len(line) for line in lines[: profile.skip_lines])
    for index in range(profile.skip_lines, min(len(lines), profile.skip_lines + profile.header_search + 1)):
        line = lines[index]
        if line.strip():
            columns = next(csv.reader([line.rstrip("\r\n")], delimiter=profile.delimiter, quotechar=profile.quote))
            columns = [c.strip().lstrip("\ufeff") for c in columns]
            if all(name in columns for name in profile.signature):
                return offset, columns
            if not profile.header_search:
                return None
        offset += len(line)
    return None


class CsvProfileParser:
    """One parser per profile; it claims files whose header carries the profile's signature."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.name = f"csv:{profile.name}"

    def sniff(self, head: bytes, path: Path) -> bool:
        stripped = head.lstrip()
        if stripped.startswith((b"<", b"{", b"OFXHEADER", b"01,", b":20:")):
            return False
        try:
            text = _decode(head[: 16 * 1024].rsplit(b"\n", 1)[0] if b"\n" in head else head, self.profile, path)
        except InputError:
            return False
        return _split_header(text, self.profile) is not None

    def parse(self, data: bytes, path: Path, account: str | None = None) -> ParsedFile:
        return parse_csv(data, path, self.profile, account)


def parse_csv(data: bytes, path: Path, profile: Profile, account: str | None = None) -> ParsedFile:
    text = _decode(data, profile, path)
    found = _split_header(text, profile)
    if found is None:
        raise InputError(path, None, f"header with columns {', '.join(profile.signature)} not found (profile {profile.name})")
    header_offset, _ = found
    header_index = text.count("\n", 0, header_offset)
    body = text[header_offset:]
    if profile.skip_footer:
        body = "".join(body.splitlines(keepends=True)[: -profile.skip_footer])
    try:
        raw = pl.read_csv(
            io.BytesIO(body.encode("utf-8")), separator=profile.delimiter, quote_char=profile.quote,
            infer_schema=False, has_header=True, truncate_ragged_lines=False,
        )
    except pl.exceptions.PolarsError as exc:
        raise InputError(path, None, f"not a valid CSV table: {str(exc).splitlines()[0]}") from None
    raw = raw.rename({c: c.strip().lstrip("\ufeff") for c in raw.columns})
    first_line = header_index + 2
    raw = raw.with_columns(pl.int_range(first_line, first_line + pl.len()).alias("_line"))
    # blank rows (all cells empty) are layout, not data
    cells = [c for c in raw.columns if c != "_line"]
    raw = raw.filter(~pl.all_horizontal([pl.col(c).is_null() | (pl.col(c) == "") for c in cells]))
    for column, values in profile.skip_rows_where.items():
        if column in raw.columns:
            raw = raw.filter(~pl.col(column).str.strip_chars().is_in(values))
    lines = _lines(raw, profile, path, account)
    statements = []
    for (account_name,), group in lines.group_by(["_account"], maintain_order=True):
        currencies = group["currency"].unique().to_list()
        statements.append(Statement(
            account=str(account_name), currency=currencies[0] if len(currencies) == 1 else None,
            lines=frames.conform(group, frames.BANK_LINES),
            period_start=group["booking_date"].min(), period_end=group["booking_date"].max(),  # type: ignore[arg-type]
            warnings=(("no account in the file: lines stored under account 'default'; pass --account",)
                      if account_name == DEFAULT_ACCOUNT else ()),
        ))
    return ParsedFile(f"csv:{profile.name}", statements)


def _column(raw: pl.DataFrame, profile: Profile, field: str, path: Path) -> pl.Expr | None:
    names = profile.columns.get(field)
    if not names:
        optional = profile.optional_columns.get(field)
        if not optional or optional not in raw.columns:
            return None
        names = optional
    names = [names] if isinstance(names, str) else list(names)
    missing = [n for n in names if n not in raw.columns]
    if missing:
        raise InputError(path, "header", f"column {missing[0]!r} (for {field}) not found")
    parts = [pl.col(n).str.strip_chars() for n in names]
    if len(parts) == 1:
        return parts[0].replace("", None)
    return pl.concat_str(parts, separator=" ", ignore_nulls=True).str.strip_chars().replace("", None)


def _first_bad(raw: pl.DataFrame, bad: pl.Series, source: str, path: Path, why: str) -> None:
    if bad.any():
        row = raw.filter(bad).row(0, named=True)
        raise InputError(path, f"line {row['_line']}, column {source}", why.format(value=row.get(source)))


def _amounts(raw: pl.DataFrame, profile: Profile, currency: pl.Expr, path: Path) -> pl.Series:
    def clean(expr: pl.Expr) -> pl.Expr:
        expr = expr.str.strip_chars().str.replace_all(r"[\s\u00a0]", "")
        for symbol in profile.strip_symbols:
            expr = expr.str.replace_all(symbol, "", literal=True)
        if profile.thousands:
            expr = expr.str.replace_all(profile.thousands, "", literal=True)
        if profile.decimal != ".":
            expr = expr.str.replace_all(profile.decimal, ".", literal=True)
        # a trailing minus ("12.50-") and a sign after a space ("- 12.50") are both seen in exports
        expr = pl.when(expr.str.ends_with("-")).then(pl.lit("-") + expr.str.strip_chars_end("-")).otherwise(expr)
        return expr

    exponent = exponent_expr(currency)
    cols = profile.columns
    if "amount" in cols:
        source = cols["amount"]
        parsed = raw.select(minor_units_expr(clean(pl.col(source)), exponent).alias("m"), pl.col(source))
        _first_bad(raw, parsed["m"].is_null() & parsed[source].is_not_null() & (parsed[source].str.strip_chars() != ""),
                   source, path, "'{value}' is not an amount")
        _first_bad(raw, parsed[source].is_null() | (parsed[source].str.strip_chars() == ""), source, path, "amount is empty")
        minor = parsed["m"]
        if "direction" in cols:
            marker = raw[cols["direction"]].str.strip_chars().str.to_uppercase()
            debit = marker.is_in([v.upper() for v in profile.debit_values])
            credit = marker.is_in([v.upper() for v in profile.credit_values])
            _first_bad(raw, ~(debit | credit), cols["direction"], path, "'{value}' is neither a debit nor a credit marker")
            minor = pl.select(pl.when(debit).then(-minor.abs()).otherwise(minor.abs())).to_series()
    else:
        debit_col, credit_col = cols["debit"], cols["credit"]
        parsed = raw.select(
            minor_units_expr(clean(pl.col(debit_col)), exponent).alias("d"),
            minor_units_expr(clean(pl.col(credit_col)), exponent).alias("c"),
            pl.col(debit_col), pl.col(credit_col),
        )
        for name, source in (("d", debit_col), ("c", credit_col)):
            text = parsed[source].fill_null("").str.strip_chars()
            _first_bad(raw, parsed[name].is_null() & (text != ""), source, path, "'{value}' is not an amount")
        both_empty = parsed["d"].is_null() & parsed["c"].is_null()
        _first_bad(raw, both_empty, debit_col, path, "neither a debit nor a credit amount")
        minor = parsed.select((pl.col("c").fill_null(0).abs() - pl.col("d").fill_null(0).abs()).alias("m"))["m"]
    if profile.inverse_sign:
        minor = -minor
    return minor


def _dates(raw: pl.DataFrame, source: str, formats: list[str], path: Path, required: bool) -> pl.Series:
    text = raw[source].str.strip_chars().replace("", None)
    parsed = pl.select(
        pl.coalesce([text.str.strptime(pl.Date, f, strict=False) for f in formats]) if formats else text
    ).to_series()
    _first_bad(raw, text.is_not_null() & parsed.is_null(), source, path,
               f"'{{value}}' is not a date in the form {' or '.join(formats)}")
    if required:
        _first_bad(raw, text.is_null(), source, path, "date is empty")
    return parsed


def _lines(raw: pl.DataFrame, profile: Profile, path: Path, account: str | None) -> pl.DataFrame:
    cols = profile.columns
    if "currency" in cols:
        currency = _column(raw, profile, "currency", path)
        assert currency is not None
        currency_values = raw.select(currency.str.to_uppercase().alias("c"))["c"]
        if profile.currency:
            currency_values = currency_values.fill_null(profile.currency)
        _first_bad(raw, currency_values.is_null() | ~currency_values.str.contains(r"^[A-Z]{3}$"),
                   cols["currency"], path, "'{value}' is not a currency code")
    elif profile.currency:
        currency_values = pl.Series("c", [profile.currency] * raw.height, dtype=pl.String)
    else:
        raise InputError(path, None, f"profile {profile.name} names no currency column and no fixed currency")
    with_currency = raw.with_columns(currency_values.alias("_currency"))
    amount = _amounts(with_currency, profile, pl.col("_currency"), path)
    booking = _dates(raw, cols["booking_date"], profile.date_formats, path, required=True)
    value = (_dates(raw, cols["value_date"], profile.date_formats, path, required=False)
             if "value_date" in cols else pl.Series([None] * raw.height, dtype=pl.Date))
    text = {field: _column(raw, profile, field, path) for field in
            ("counterparty_name", "counterparty_account", "remittance", "reference", "end_to_end_id", "id", "account")}
    account_expr = (pl.lit(account) if account else
                    (text["account"].fill_null(profile.account or DEFAULT_ACCOUNT) if text["account"] is not None
                     else pl.lit(profile.account or DEFAULT_ACCOUNT)))
    lines = raw.select(
        (text["id"] if text["id"] is not None else pl.lit(None, dtype=pl.String)).alias("source_ref"),
        *[(text[f] if text[f] is not None else pl.lit(None, dtype=pl.String)).alias(f)
          for f in ("counterparty_name", "counterparty_account", "remittance", "reference", "end_to_end_id")],
        account_expr.alias("_account"),
        pl.format("line {}", pl.col("_line")).alias("location"),
        "_line",
    ).with_columns(
        amount.alias("amount_minor"), currency_values.alias("currency"), booking.alias("booking_date"),
        value.alias("value_date"), pl.lit(False).alias("is_reversal"),
    )
    if profile.skip_zero_amounts:
        lines = lines.filter(pl.col("amount_minor") != 0)
    if text["id"] is not None:
        _first_bad(raw, raw.select(text["id"].is_null().alias("x"))["x"], cols["id"], path, "id is empty")
        dup = ~lines["source_ref"].is_first_distinct()
        if dup.any():
            row = lines.filter(dup).row(0, named=True)
            raise InputError(path, row["location"], f"id {row['source_ref']!r} appears more than once")
        return lines
    refs = frames.content_refs(lines, HASH_COLUMNS)
    return lines.with_columns(refs.alias("source_ref"))


def csv_parsers() -> list[CsvProfileParser]:
    return [CsvProfileParser(profile) for profile in load_profiles()]
