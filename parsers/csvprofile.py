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
import re
from datetime import date, datetime
from pathlib import Path

import polars as pl

from reconcile.core import frames
from reconcile.core.errors import InputError
from reconcile.core.money import format_minor
from reconcile.core.money_expr import exponent_expr, minor_units_expr
from reconcile.parsers.base import ParsedFile, Statement, lines_frame
from reconcile.parsers.csv_profiles import Profile

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


def _header_problem(columns: list[str], profile: Profile) -> str | None:
    """Why a header row is not this profile's layout, or None when it is."""
    names = [c for c in columns if c]
    missing = [n for n in profile.signature if n not in names]
    if missing:
        return f"no column {missing[0]!r}"
    if profile.header_exact:
        extra = [n for n in names if n not in profile.signature]
        if extra:
            return f"column {extra[0]!r} is not part of its exact header"
    present = [n for n in profile.header_absent if n in names]
    if present:
        return f"column {present[0]!r} rules the layout out"
    return None


def _looks_like_amount(cell: str, profile: Profile) -> bool:
    text = re.sub(r"[\s\u00a0]", "", cell)
    for symbol in profile.strip_symbols:
        text = text.replace(symbol, "")
    if profile.thousands:
        text = text.replace(profile.thousands, "")
    if profile.decimal != ".":
        text = text.replace(profile.decimal, ".")
    return re.fullmatch(r"[+-]?\d+(\.\d*)?-?", text) is not None


def _row_problem(cells: list[str], profile: Profile) -> str | None:
    """Why a headerless file's first row does not have this profile's shape, or None when it does."""
    if len(cells) != len(profile.column_names):
        return f"its first row has {len(cells)} columns, not {len(profile.column_names)}"
    row = dict(zip(profile.column_names, cells, strict=True))
    date_cell = row.get(profile.columns["booking_date"], "")
    if not any(_is_date(date_cell, f) for f in profile.date_formats):
        return f"its first row's {profile.columns['booking_date']} {date_cell!r} is not a date"
    for field in ("amount", "debit", "credit"):
        source = profile.columns.get(field)
        if isinstance(source, str) and row.get(source, "").strip() and not _looks_like_amount(row[source], profile):
            return f"its first row's {source} {row[source]!r} is not an amount"
    return None


def _is_date(text: str, fmt: str) -> bool:
    try:
        datetime.strptime(text.strip(), fmt)
    except ValueError:
        return False
    return True


def _find_header(text: str, profile: Profile) -> tuple[int, list[str]] | str:
    """Character offset of the header line (after the preamble) and its column names, or why there is none.

    Only the head of the text is looked at: the header is near the top. A headerless
    profile's "header" is its first data row, which must have the profile's row shape.
    """
    lines = text[: 64 * 1024].splitlines(keepends=True)
    offset = sum(len(line) for line in lines[: profile.skip_lines])
    last = min(len(lines), profile.skip_lines + profile.header_search + 1)
    if profile.skip_lines >= len(lines):
        return f"the file ends before line {profile.skip_lines + 1}"
    problem = f"lines {profile.skip_lines + 1}-{last} are empty"
    for index in range(profile.skip_lines, last):
        line = lines[index]
        if line.strip():
            columns = next(csv.reader([line.rstrip("\r\n")], delimiter=profile.delimiter, quotechar=profile.quote))
            columns = [c.strip().lstrip("\ufeff") for c in columns]
            if not profile.has_header:
                problem = _row_problem(columns, profile) or ""
                return (offset, list(profile.column_names)) if not problem else f"line {index + 1}: {problem}"
            found = _header_problem(columns, profile)
            if found is None:
                return offset, columns
            if not profile.header_search:
                return f"line {index + 1}: {found}"
            problem = f"no line in lines {profile.skip_lines + 1}-{last} has its header ({found} in line {index + 1})"
        offset += len(line)
    return problem


def _split_header(text: str, profile: Profile) -> tuple[int, list[str]] | None:
    found = _find_header(text, profile)
    return None if isinstance(found, str) else found


class CsvProfileParser:
    """One parser per profile; it claims files whose header carries the profile's signature."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.name = f"csv:{profile.name}"

    def mismatch(self, head: bytes, path: Path) -> str | None:
        """Why the file is not in this profile's layout (from its first bytes), or None when it is."""
        stripped = head.lstrip()
        if stripped.startswith((b"<", b"{", b"OFXHEADER", b"01,", b":20:")):
            return "it is not a CSV file"
        try:
            text = _decode(head[: 16 * 1024].rsplit(b"\n", 1)[0] if b"\n" in head else head, self.profile, path)
        except InputError as exc:
            return exc.why
        found = _find_header(text, self.profile)
        return found if isinstance(found, str) else None

    def sniff(self, head: bytes, path: Path) -> bool:
        return self.mismatch(head, path) is None

    def parse(self, data: bytes, path: Path, account: str | None = None) -> ParsedFile:
        return parse_csv(data, path, self.profile, account)


def parse_csv(data: bytes, path: Path, profile: Profile, account: str | None = None) -> ParsedFile:
    text = _decode(data, profile, path)
    found = _find_header(text, profile)
    if isinstance(found, str):
        layout = "rows" if not profile.has_header else f"header with columns {', '.join(profile.signature)}"
        raise InputError(path, None, f"{layout} not found (profile {profile.name}): {found}")
    header_offset, _ = found
    header_index = text.count("\n", 0, header_offset)
    body = text[header_offset:]
    if profile.skip_footer:
        body = "".join(body.splitlines(keepends=True)[: -profile.skip_footer])
    try:
        raw = pl.read_csv(
            io.BytesIO(body.encode("utf-8")), separator=profile.delimiter, quote_char=profile.quote,
            infer_schema=False, has_header=profile.has_header, truncate_ragged_lines=False,
            new_columns=list(profile.column_names) or None,
        )
    except pl.exceptions.PolarsError as exc:
        raise InputError(path, None, f"not a valid CSV table: {str(exc).splitlines()[0]}") from None
    raw = raw.rename({c: c.strip().lstrip("\ufeff") for c in raw.columns})
    first_line = header_index + (2 if profile.has_header else 1)
    raw = raw.with_columns(pl.int_range(first_line, first_line + pl.len()).alias("_line"))
    # blank rows (all cells empty) are layout, not data
    cells = [c for c in raw.columns if c != "_line"]
    raw = raw.filter(~pl.all_horizontal([pl.col(c).is_null() | (pl.col(c) == "") for c in cells]))
    for column, values in profile.skip_rows_where.items():
        if column in raw.columns:
            raw = raw.filter(~pl.col(column).str.strip_chars().is_in(values))
    if profile.strict_quoting:
        _check_quoting(raw, cells, path)
    fallback_account = (_preamble_account(text[:header_offset], profile) or _file_name_account(path, profile)
                        or profile.account or DEFAULT_ACCOUNT)
    if profile.balance_only:
        return _balance_history(raw, profile, path, account or fallback_account)
    lines = _lines(raw, profile, path, account, fallback_account)
    if profile.one_account_per_file and lines["_account"].n_unique() > 1:
        first = lines["_account"][0]
        row = lines.filter(pl.col("_account") != first).row(0, named=True)
        raise InputError(path, row["location"], f"account {row['_account']!r} differs from the file's first account "
                         f"{first!r} (profile {profile.name} allows one account per file)")
    statements = []
    for (account_name,), group in lines.group_by(["_account"], maintain_order=True):
        currencies = group["currency"].unique().to_list()
        warnings: list[str] = []
        if account_name == DEFAULT_ACCOUNT:
            warnings.append("no account in the file: lines stored under account 'default'; pass --account")
        opening, closing = _balances(group, profile, warnings) if profile.balance_column else (None, None)
        statements.append(Statement(
            account=str(account_name), currency=currencies[0] if len(currencies) == 1 else None,
            lines=frames.conform(group, frames.BANK_LINES), opening_minor=opening, closing_minor=closing,
            period_start=group["booking_date"].min(), period_end=group["booking_date"].max(),  # type: ignore[arg-type]
            warnings=tuple(warnings),
        ))
    return ParsedFile(f"csv:{profile.name}", statements)


def _preamble_account(preamble: str, profile: Profile) -> str | None:
    """The account named in the lines above the header, by the profile's regex; spaces removed (IBAN groups)."""
    if not profile.account_from_preamble:
        return None
    match = re.search(profile.account_from_preamble, preamble, re.MULTILINE)
    if match is None or not match.group(1):
        return None
    return re.sub(r"\s+", "", match.group(1)) or None


def _file_name_account(path: Path, profile: Profile) -> str | None:
    """The account in the file's name, by the profile's regex (group 1)."""
    if not profile.account_from_file_name:
        return None
    match = re.search(profile.account_from_file_name, path.name)
    return match.group(1) if match is not None and match.group(1) else None


def _check_quoting(raw: pl.DataFrame, cells: list[str], path: Path) -> None:
    """Refuse a cell whose quote follows spaces (`, "text"`): a lenient reader keeps the quotes as text."""
    for column in cells:
        bad = raw.select(pl.col(column).fill_null("").str.contains(r'^\s+"').alias("x"))["x"]
        _first_bad(raw, bad, column, path, "a quoted field starts after a space (the quote would be read as text)")


def _balance_history(raw: pl.DataFrame, profile: Profile, path: Path, account: str) -> ParsedFile:
    """A balance-only export (dates and end-of-day balances, no amounts): one statement without lines.

    Opening is the balance of the oldest day, closing that of the newest; the money that moved in between
    is not in the file, so the statement says so in a warning.
    """
    if raw.is_empty():
        return ParsedFile(f"csv:{profile.name}", [])
    currency = profile.currency or profile.currency_default
    if not currency:
        raise InputError(path, None, f"profile {profile.name} names no fixed currency")
    booking = _dates(raw, profile.columns["booking_date"], list(profile.date_formats), path, required=True)
    balance = _running_balance(raw.with_columns(pl.lit(currency).alias("_currency")), profile,
                               pl.col("_currency"), path)
    rows = pl.DataFrame({"d": booking, "b": balance}).filter(pl.col("b").is_not_null()).sort("d", maintain_order=True)
    if rows.is_empty():
        return ParsedFile(f"csv:{profile.name}", [])
    start, end = rows["d"][0], rows["d"][-1]
    statement = Statement(
        account=account, currency=currency, lines=lines_frame([]),
        opening_minor=rows["b"][0], closing_minor=rows["b"][-1], period_start=start, period_end=end,
        warnings=(f"balance history only: balances of {start} to {end}, no transactions",),
    )
    return ParsedFile(f"csv:{profile.name}", [statement])


def _balances(group: pl.DataFrame, profile: Profile, warnings: list[str]) -> tuple[int | None, int | None]:
    """Opening and closing balance of one statement from its running-balance column.

    Each row's balance is the balance after that row, so every row implies an opening
    balance (its balance minus the amounts up to and including it); they must all agree.
    Rows run oldest first unless the profile says newest_first.
    """
    ordered = group.reverse() if profile.newest_first else group
    total = ordered["amount_minor"].sum()
    running = pl.col("amount_minor").cum_sum()
    implied = ordered.select(
        "location", "_balance",
        (pl.col("_balance") - running).alias("opening"), (pl.col("_balance") + total - running).alias("closing"),
    ).filter(pl.col("_balance").is_not_null())
    if implied.is_empty():
        return None, None
    opening, closing = implied["opening"][0], implied["closing"][-1]
    off = implied.filter(pl.col("opening") != opening)
    if not off.is_empty():
        row = off.row(0, named=True)
        currencies = group["currency"].unique().to_list()
        unit = currencies[0] if len(currencies) == 1 else "XXX"
        expected = format_minor(row["_balance"] - row["opening"] + opening, unit)
        warnings.append(
            f"running balance does not add up at {row['location']}: opening {format_minor(opening, unit)} "
            f"plus the lines up to it make {expected}, the file says {format_minor(row['_balance'], unit)}")
    return opening, closing


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
        value = row.get(source)
        if value is None or not str(value).strip():
            why = why.replace("'{value}'", "empty")  # "empty is not a currency code", never "'None' is ..."
        raise InputError(path, f"line {row['_line']}, column {source}", why.format(value=value))


def _clean(expr: pl.Expr, profile: Profile) -> pl.Expr:
    """An amount cell as a plain decimal string: spaces, symbols and thousands separators gone, '.' decimal."""
    expr = expr.str.strip_chars().str.replace_all(r"[\s\u00a0]", "")
    for symbol in profile.strip_symbols:
        expr = expr.str.replace_all(symbol, "", literal=True)
    if profile.thousands:
        expr = expr.str.replace_all(profile.thousands, "", literal=True)
    if profile.decimal != ".":
        expr = expr.str.replace_all(profile.decimal, ".", literal=True)
    # a trailing minus ("12.50-") and a sign after a space ("- 12.50") are both seen in exports
    return pl.when(expr.str.ends_with("-")).then(pl.lit("-") + expr.str.strip_chars_end("-")).otherwise(expr)


def _running_balance(raw: pl.DataFrame, profile: Profile, currency: pl.Expr, path: Path) -> pl.Series:
    """The balance column in minor units (null where empty), in the same sign convention as the amounts."""
    source = profile.balance_column
    assert source is not None
    if source not in raw.columns:  # a layout variant without balances (ING DE's older export)
        return pl.Series([None] * raw.height, dtype=pl.Int64)
    parsed = raw.select(minor_units_expr(_clean(pl.col(source), profile), exponent_expr(currency)).alias("b"),
                        pl.col(source).fill_null("").str.strip_chars().alias("text"))
    _first_bad(raw, parsed["b"].is_null() & (parsed["text"] != ""), source, path, "'{value}' is not a balance amount")
    return -parsed["b"] if profile.inverse_sign else parsed["b"]


def _amounts(raw: pl.DataFrame, profile: Profile, currency: pl.Expr, path: Path) -> pl.Series:
    def clean(expr: pl.Expr) -> pl.Expr:
        return _clean(expr, profile)

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


def _year_of(path: Path, profile: Profile) -> tuple[int, date | None]:
    """The year of dates written without one, and the day after which such a date is in the year before.

    From the file name when the profile's year_from_file_name finds one (no rollback), else the import date.
    """
    if profile.year_from_file_name:
        match = re.search(profile.year_from_file_name, path.name)
        if match is not None and match.group(1) and match.group(1).isdigit() and 1900 <= int(match.group(1)) <= 2999:
            return int(match.group(1)), None
    today = date.today()
    return today.year, today


def _dates(raw: pl.DataFrame, source: str, formats: list[str], path: Path, required: bool,
           profile: Profile | None = None) -> pl.Series:
    text = raw[source].str.strip_chars().replace("", None)
    parsers = [text.str.strptime(pl.Date, f, strict=False) for f in formats]
    yearless = list(profile.yearless_date_formats) if profile is not None else []
    if yearless:
        assert profile is not None
        year, today = _year_of(path, profile)
        for fmt in yearless:
            guess = (pl.lit(f"{year} ") + text).str.strptime(pl.Date, f"%Y {fmt}", strict=False)
            if today is not None:  # "December 30" read on 2 January is last year's
                guess = pl.when(guess > pl.lit(today)).then(guess.dt.offset_by("-1y")).otherwise(guess)
            parsers.append(guess)
    parsed = pl.select(pl.coalesce(parsers) if parsers else text).to_series()
    _first_bad(raw, text.is_not_null() & parsed.is_null(), source, path,
               f"'{{value}}' is not a date in the form {' or '.join(formats + yearless)}")
    if required:
        _first_bad(raw, text.is_null(), source, path, "date is empty")
    return parsed


def _lines(raw: pl.DataFrame, profile: Profile, path: Path, account: str | None, fallback_account: str) -> pl.DataFrame:
    cols = profile.columns
    fallback_currency = profile.currency_default or profile.currency
    if "currency" in cols:
        currency = _column(raw, profile, "currency", path)
        assert currency is not None
        currency_values = raw.select(currency.str.to_uppercase().alias("c"))["c"]
        if fallback_currency:
            currency_values = currency_values.fill_null(fallback_currency)
        source = cols["currency"] if isinstance(cols["currency"], str) else cols["currency"][0]
        _first_bad(raw, currency_values.is_null(), source, path,
                   f"currency is empty and profile {profile.name} sets no currency_default")
        _first_bad(raw, ~currency_values.str.contains(r"^[A-Z]{3}$"), source, path, "'{value}' is not a currency code")
    elif fallback_currency:
        currency_values = pl.Series("c", [fallback_currency] * raw.height, dtype=pl.String)
    else:
        raise InputError(path, None, f"profile {profile.name} names no currency column and no fixed currency")
    with_currency = raw.with_columns(currency_values.alias("_currency"))
    amount = _amounts(with_currency, profile, pl.col("_currency"), path)
    booking = _dates(raw, cols["booking_date"], profile.date_formats, path, required=True, profile=profile)
    value = (_dates(raw, cols["value_date"], profile.date_formats, path, required=False, profile=profile)
             if "value_date" in cols else pl.Series([None] * raw.height, dtype=pl.Date))
    text = {field: _column(raw, profile, field, path) for field in
            ("counterparty_name", "counterparty_account", "remittance", "reference", "end_to_end_id", "id", "account")}
    account_expr = (pl.lit(account) if account else
                    (text["account"].fill_null(fallback_account) if text["account"] is not None
                     else pl.lit(fallback_account)))
    balance = (_running_balance(raw.with_columns(currency_values.alias("_currency")), profile, pl.col("_currency"), path)
               if profile.balance_column else pl.Series([None] * raw.height, dtype=pl.Int64))
    lines = raw.select(
        (text["id"] if text["id"] is not None else pl.lit(None, dtype=pl.String)).alias("source_ref"),
        *[(text[f] if text[f] is not None else pl.lit(None, dtype=pl.String)).alias(f)
          for f in ("counterparty_name", "counterparty_account", "remittance", "reference", "end_to_end_id")],
        account_expr.alias("_account"),
        pl.format("line {}", pl.col("_line")).alias("location"),
        "_line",
    ).with_columns(
        amount.alias("amount_minor"), currency_values.alias("currency"), booking.alias("booking_date"),
        value.alias("value_date"), pl.lit(False).alias("is_reversal"), balance.alias("_balance"),
    )
    if profile.fee is not None:
        fee = _fees(with_currency, profile, pl.col("_currency"), path)
        lines = lines.with_columns(fee.alias("_fee"))
        if profile.fee.amount_is_net:  # the row's line books the gross: net minus the (negative) fee line
            lines = lines.with_columns(pl.col("amount_minor") - pl.col("_fee"))
    if profile.skip_zero_amounts:
        lines = lines.filter(pl.col("amount_minor") != 0)
    if text["id"] is not None:
        _first_bad(raw, raw.select(text["id"].is_null().alias("x"))["x"], cols["id"], path, "id is empty")
        dup = ~lines["source_ref"].is_first_distinct()
        if dup.any():
            row = lines.filter(dup).row(0, named=True)
            raise InputError(path, row["location"], f"id {row['source_ref']!r} appears more than once")
    else:
        lines = lines.with_columns(frames.content_refs(lines, HASH_COLUMNS).alias("source_ref"))
    return _with_fee_lines(lines, profile) if profile.fee is not None else lines


def _fees(raw: pl.DataFrame, profile: Profile, currency: pl.Expr, path: Path) -> pl.Series:
    """Each row's fee line amount in minor units (0 where the fee cells are empty): the cells summed, times sign."""
    rule = profile.fee
    assert rule is not None
    missing = [c for c in rule.columns if c not in raw.columns]
    if missing:
        raise InputError(path, "header", f"fee column {missing[0]!r} not found")
    exponent = exponent_expr(currency)
    parsed = raw.select([minor_units_expr(_clean(pl.col(c), profile), exponent).alias(f"_f{i}")
                         for i, c in enumerate(rule.columns)])
    for i, column in enumerate(rule.columns):
        text = raw[column].fill_null("").str.strip_chars()
        _first_bad(raw, parsed[f"_f{i}"].is_null() & (text != ""), column, path, "'{value}' is not a fee amount")
    return parsed.select((pl.sum_horizontal([pl.col(c).fill_null(0) for c in parsed.columns]) * rule.sign)
                         .cast(pl.Int64).alias("f"))["f"]


def _with_fee_lines(lines: pl.DataFrame, profile: Profile) -> pl.DataFrame:
    """The rows' lines plus their fee lines: one after each row with a fee, or one per account and currency."""
    rule = profile.fee
    assert rule is not None
    blank = {c: pl.lit(None, dtype=pl.String) for c in ("counterparty_name", "counterparty_account", "reference",
                                                           "end_to_end_id")}
    charged = lines.filter(pl.col("_fee") != 0)
    if rule.per == "row":
        # the fee line sits where the running balance already includes it: before its row (oldest-first order)
        part = 2 if profile.newest_first else 0
        fees = charged.with_columns(
            (pl.col("source_ref") + rule.ref_suffix).alias("source_ref"), pl.col("_fee").alias("amount_minor"),
            pl.lit(rule.remittance).alias("remittance"), pl.lit(None, dtype=pl.Int64).alias("_balance"),
            pl.lit(part).alias("_part"), **blank)
    else:
        fees = charged.group_by("_account", "currency", maintain_order=True).agg(
            pl.col("_fee").sum().alias("amount_minor"), pl.col("booking_date").max(), pl.col("value_date").max(),
            pl.col("_line").min().alias("_first"), pl.col("_line").max().alias("_line"),
        ).filter(pl.col("amount_minor") != 0).with_columns(
            pl.format("lines {}-{}", pl.col("_first"), pl.col("_line")).alias("location"),
            pl.lit(rule.remittance).alias("remittance"), pl.lit(False).alias("is_reversal"),
            pl.lit(None, dtype=pl.Int64).alias("_balance"), pl.lit(3).alias("_part"), pl.lit(0).alias("_fee"), **blank,
        ).drop("_first").with_columns(pl.lit(lines["_line"].max(), dtype=lines["_line"].dtype).alias("_line"))  # last
        fees = fees.with_columns(pl.lit(None, dtype=pl.String).alias("source_ref"))
        fees = fees.with_columns((frames.content_refs(fees, HASH_COLUMNS) + rule.ref_suffix).alias("source_ref"))
    main = lines.with_columns(pl.lit(1).alias("_part"))
    combined = pl.concat([main, fees.select(main.columns)], how="vertical_relaxed")
    return combined.sort("_line", "_part", maintain_order=True).drop("_part", "_fee")


def csv_parsers(profiles: tuple[Profile, ...]) -> list[CsvProfileParser]:
    """The parsers that take part in detection (profiles with auto_detect = false are only chosen by name)."""
    return [CsvProfileParser(profile) for profile in profiles if profile.auto_detect]


def profile_parser(name: str, path: Path, profiles: tuple[Profile, ...]) -> CsvProfileParser:
    """The parser of the CSV profile called name ("oca-sheet" or "csv:oca-sheet"); unknown names are input errors."""
    wanted = name.removeprefix("csv:")
    for profile in profiles:
        if profile.name == wanted:
            return CsvProfileParser(profile)
    known = ", ".join(sorted(p.name for p in profiles))
    raise InputError(path, None, f"unknown CSV profile {name!r} (known: {known})")
