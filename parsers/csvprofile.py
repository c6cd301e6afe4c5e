"""CSV statements through declarative bank profiles (config/profiles/*.toml).

A profile says how a bank writes its export: encoding, delimiter, decimal and thousands separators,
date formats, preamble, which columns hold what, and the header columns that identify the layout.
Parsing is vectorised with polars; a bad cell is reported with its file line and column. Profile
loading and validation live in reconcile.parsers.csv_profiles; explaining claims to people lives in
reconcile.statements.profiles.
"""

from __future__ import annotations

import csv
import io
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl

from reconcile.core import frames
from reconcile.core.errors import InputError
from reconcile.core.money import exponent as money_exponent
from reconcile.core.money import format_minor
from reconcile.core.money_expr import exponent_expr, minor_units_expr
from reconcile.parsers.base import ParsedFile, Statement, lines_frame
from reconcile.parsers.csv_profiles import UTF8_OR_CP1252, Profile

HASH_COLUMNS = ["booking_date", "amount_minor", "currency", "counterparty_name", "counterparty_account",
                "remittance", "reference"]
DEFAULT_ACCOUNT = "default"
HEAD_CHARS = 64 * 1024
SAMPLE_ROWS = 20

# Header names (lower case, runs of spaces, '_' and '-' as one space) that say a column is a
# debit/credit indicator or a transaction type: a profile that neither signs its amounts by such a
# column nor lists it in ignore_type_columns does not claim the file, since it would book a debit
# as a credit.
INDICATOR_NAMES = {
    "type", "transaction type", "trans type", "tran type", "txn type", "tx type", "entry type",
    "booking type", "credit debit indicator", "creditdebitindicator", "cdtdbtind", "credit debit",
    "debit credit", "credit/debit", "debit/credit", "debit or credit", "credit or debit", "cd",
    "c/d", "d/c", "dc", "cdi", "dr/cr", "cr/dr", "drcr", "dr cr", "db/cr", "cr/db", "soll/haben",
    "soll haben", "s/h", "sh", "af/bij", "af bij", "afbij", "bij/af", "creditdebet", "credit/debet",
    "debet/credit", "debet credit", "direction", "sign", "indicator", "balance impact",
    "d/c indicator", "dc indicator", "vorzeichen", "debit credit indicator",
    "transaction direction", "sens", "debit/credit indicator",
}
# Cell values (upper case) of such a column; a column whose sampled cells are all of these is one.
INDICATOR_VALUES = {
    "D", "C", "DR", "CR", "DB", "DBIT", "CRDT", "DEBIT", "CREDIT", "AF", "BIJ", "S", "H", "SOLL",
    "HABEN", "DEBET", "CREDIET", "DÉBIT", "CRÉDIT", "+", "-",
}


def _decode(data: bytes, profile: Profile, path: Path) -> str:
    encoding = _encoding(data, profile)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(path, f"line {line}", f"not valid {encoding} text") from None


def _encoding(data: bytes, profile: Profile) -> str:
    """The profile's encoding, unless a byte order mark says otherwise (a BOM always wins)."""
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if profile.encoding == UTF8_OR_CP1252:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return "cp1252"
        return "utf-8"
    return profile.encoding


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", name.strip().lower())


def _present(name: str, names: list[str], profile: Profile) -> str | None:
    """The header's spelling of `name`: itself, else the first of its aliases the header has."""
    if name in names:
        return name
    return next((a for a in profile.aliases.get(name, ()) if a in names), None)


def _sign_columns(profile: Profile) -> set[str]:
    """Header names the profile reads the sign from, or knowingly leaves (ignore_type_columns)."""
    names = {
        n
        for n in (profile.columns.get("direction"), profile.optional_columns.get("direction"))
        if isinstance(n, str)
    }
    names |= {a for n in list(names) for a in profile.aliases.get(n, ())}
    return names | set(profile.ignore_type_columns)


def indicator_columns(
    columns: list[str], rows: list[list[str]], profile: Profile
) -> list[tuple[str, str]]:
    """(column, why) for each column that looks like a sign indicator the profile ignores."""
    found = []
    used = _sign_columns(profile)
    for index, name in enumerate(columns):
        if not name or name in used:
            continue
        values = [r[index].strip() for r in rows if index < len(r) and r[index].strip()]
        if _norm(name) in INDICATOR_NAMES:
            shown = ", ".join(sorted(set(values))[:4])
            why = "its name says debit/credit or transaction type"
            found.append((name, f"{why} ({shown})" if shown else why))
            continue
        upper = {v.upper() for v in values}
        words = upper - {"+", "-"}
        if upper and upper <= INDICATOR_VALUES and (words or upper == {"+", "-"}):
            found.append(
                (name, f"its cells are debit/credit markers ({', '.join(sorted(set(values))[:4])})")
            )
    return found


def _indicator_problem(columns: list[str], rows: list[list[str]], profile: Profile) -> str | None:
    ignored = indicator_columns(columns, rows, profile)
    if not ignored:
        return None
    name, why = ignored[0]
    return (
        f"column {name!r} looks like a debit/credit indicator ({why}) that the profile does not "
        "read: it would ignore the sign (map it as columns.direction, or list it in "
        "ignore_type_columns when the amounts carry their own sign)"
    )


def _header_problem(
    columns: list[str], profile: Profile, rows: list[list[str]] | None = None
) -> str | None:
    """Why a header row is not this profile's layout, or None when it is."""
    names = [c for c in columns if c]
    missing = [n for n in profile.signature if _present(n, names, profile) is None]
    if missing:
        return f"no column {missing[0]!r}"
    if profile.header_exact:
        known = set(profile.signature) | {
            a for n in profile.signature for a in profile.aliases.get(n, ())
        }
        extra = [n for n in names if n not in known]
        if extra:
            return f"column {extra[0]!r} is not part of its exact header"
    present = [n for n in profile.header_absent if n in names]
    if present:
        return f"column {present[0]!r} rules the layout out"
    return _indicator_problem(columns, rows or [], profile)


def _looks_like_amount(cell: str, profile: Profile) -> bool:
    text = re.sub(r"[\s\u00a0]", "", cell)
    for symbol in profile.strip_symbols:
        text = text.replace(symbol, "")
    if profile.thousands:
        text = text.replace(profile.thousands, "")
    if profile.decimal != ".":
        text = text.replace(profile.decimal, ".")
    return re.fullmatch(r"[+-]?\d+(\.\d*)?-?", text) is not None


def _row_problem(cells: list[str], profile: Profile, rows: list[list[str]]) -> str | None:
    """Why a headerless file's first row does not have this profile's shape, or None when it does."""
    width = len(profile.column_names)
    if not (len(cells) == width or (len(cells) == width + 1 and not cells[-1].strip())):
        return f"its first row has {len(cells)} columns, not {width}"
    row = dict(zip(profile.column_names, cells, strict=False))
    date_cell = row.get(profile.columns["booking_date"], "")
    if not any(_is_date(date_cell, f) for f in profile.date_formats):
        return f"its first row's {profile.columns['booking_date']} {date_cell!r} is not a date"
    for field in ("amount", "debit", "credit"):
        source = profile.columns.get(field)
        if (
            isinstance(source, str)
            and row.get(source, "").strip()
            and not _looks_like_amount(row[source], profile)
        ):
            return f"its first row's {source} {row[source]!r} is not an amount"
    return _indicator_problem(list(profile.column_names), rows, profile)


def _is_date(text: str, fmt: str) -> bool:
    try:
        datetime.strptime(text.strip(), fmt)
    except ValueError:
        return False
    return True


def _cells(lines: list[str], profile: Profile) -> list[list[str]]:
    """The non-empty lines split into cells (a sample: a field spanning lines is cut there)."""
    text = [line.rstrip("\r\n") for line in lines if line.strip()]
    return [
        [c.strip().lstrip("\ufeff") for c in row]
        for row in csv.reader(text, delimiter=profile.delimiter, quotechar=profile.quote)
    ]


def _find_header(text: str, profile: Profile) -> tuple[int, list[str]] | str:
    """Character offset of the header line (after the preamble) and its column names, or why there is none.

    Only the head of the text is looked at: the header is near the top. A headerless
    profile's "header" is its first data row, which must have the profile's row shape.
    """
    lines = text[:HEAD_CHARS].splitlines(keepends=True)
    offset = sum(len(line) for line in lines[: profile.skip_lines])
    last = min(len(lines), profile.skip_lines + profile.header_search + 1)
    if profile.skip_lines >= len(lines):
        return f"the file ends before line {profile.skip_lines + 1}"
    problem = f"lines {profile.skip_lines + 1}-{last} are empty"
    for index in range(profile.skip_lines, last):
        line = lines[index]
        if line.strip():
            columns = _cells([line], profile)[0]
            if not profile.has_header:
                rows = _cells(lines[index: index + SAMPLE_ROWS], profile)
                problem = _row_problem(columns, profile, rows) or ""
                return (offset, list(profile.column_names)) if not problem else f"line {index + 1}: {problem}"
            sample = _cells(lines[index + 1 : index + 1 + SAMPLE_ROWS], profile)
            found = _header_problem(columns, profile, sample)
            if found is None:
                return offset, columns
            if not profile.header_search:
                return f"line {index + 1}: {found}"
            problem = f"no line in lines {profile.skip_lines + 1}-{last} has its header ({found} in line {index + 1})"
        offset += len(line)
    return problem


def _trailing_column(text: str, offset: int, profile: Profile) -> bool:
    """True when data rows end with a delimiter the header lacks (one empty cell too many)."""
    lines = text[offset : offset + HEAD_CHARS].splitlines(keepends=True)
    rows = _cells(lines[:2], profile)
    if profile.has_header:
        if len(rows) < 2:
            return False
        header, row = rows
        return len(row) == len(header) + 1 and not row[-1] and bool(header[-1])
    return bool(rows) and len(rows[0]) == len(profile.column_names) + 1 and not rows[0][-1]


def _head(data: bytes, profile: Profile, path: Path) -> tuple[str, int | None]:
    """The decoded head of the file (whole lines) and, for UTF-8, the byte offset of its text.

    A UTF-8 file's body goes to the CSV reader as it is (no decoding and re-encoding of a large
    file); any other encoding is decoded whole (such exports are small).
    """
    encoding = _encoding(data, profile)
    if encoding not in ("utf-8", "utf-8-sig"):
        return _decode(data, profile, path)[:HEAD_CHARS], None
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    head = data[start : start + 4 * HEAD_CHARS]
    if len(data) > start + len(head) and b"\n" in head:
        head = head.rsplit(b"\n", 1)[0] + b"\n"
    try:
        return head.decode("utf-8"), start
    except UnicodeDecodeError as exc:
        line = head[: exc.start].count(b"\n") + 1
        raise InputError(path, f"line {line}", f"not valid {encoding} text") from None


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


def read_table(data: bytes, path: Path, profile: Profile) -> tuple[pl.DataFrame, str]:
    """The file's rows as text cells (with `_line`, each row's file line) and the text above the
    header. Blank rows are dropped; aliases become the profile's names.
    """
    head, byte_start = _head(data, profile, path)
    found = _find_header(head, profile)
    if isinstance(found, str):
        layout = (
            "rows"
            if not profile.has_header
            else f"header with columns {', '.join(profile.signature)}"
        )
        raise InputError(path, None, f"{layout} not found (profile {profile.name}): {found}")
    header_offset, _ = found
    header_index = head.count("\n", 0, header_offset)
    if byte_start is not None and not profile.skip_footer:
        skip = byte_start + len(head[:header_offset].encode("utf-8"))
        body = data[skip:] if skip else data
    else:
        text = _decode(data, profile, path)
        lines = text[header_offset:].splitlines(keepends=True)
        body = "".join(lines[: len(lines) - profile.skip_footer]).encode("utf-8")
    trailing = _trailing_column(head, header_offset, profile)
    names = list(profile.column_names) or None
    if trailing and profile.has_header:
        # give the header the empty last name its rows have (Chase writes a comma after every row)
        end = body.find(b"\n")
        end = len(body) if end < 0 else end
        cut = end - 1 if end > 0 and body[end - 1] == 13 else end
        body = body[:cut] + profile.delimiter.encode() + body[cut:]
    elif trailing and names:
        names.append("_trailing")
    try:
        raw = pl.read_csv(
            body,
            separator=profile.delimiter,
            quote_char=profile.quote,
            infer_schema=False,
            has_header=profile.has_header,
            truncate_ragged_lines=False,
            new_columns=names,
        )
    except pl.exceptions.PolarsError as exc:
        text = _decode(data, profile, path)  # names the line of a bad byte, if that is the problem
        _ragged_row(text[header_offset:], header_index, profile, trailing, path)
        raise InputError(path, None, f"not a valid CSV table: {str(exc).splitlines()[0]}") from None
    first_line = header_index + (2 if profile.has_header else 1)
    raw = raw.with_columns(pl.int_range(first_line, first_line + pl.len()).alias("_line"))
    if trailing:
        extra = raw.columns[-2]
        _first_bad(
            raw,
            raw[extra].is_not_null() & (raw[extra].str.strip_chars() != ""),
            extra,
            path,
            "a cell after the header's last column ('{value}')",
        )
        raw = raw.drop(extra)
    taken = set(raw.columns)
    renames = {}
    # " Balance (EUR)" is "Balance (EUR)", unless that name is taken already
    for name in raw.columns:
        clean = name.strip().lstrip("\ufeff")
        if clean != name and clean not in taken:
            renames[name] = clean
            taken.add(clean)
    raw = raw.rename(renames)
    # blank rows (all cells empty) are layout, not data
    cells = [c for c in raw.columns if c != "_line"]
    first = raw[cells[0]] if cells else None
    maybe_blank = first is not None and (first.is_null() | (first == "")).any()
    blank = (raw.select(pl.all_horizontal([pl.col(c).is_null() | (pl.col(c) == "") for c in cells]))
             .to_series() if maybe_blank else None)
    if blank is not None and blank.any():
        raw = raw.filter(~blank)
    for name, alternatives in profile.aliases.items():
        if name not in raw.columns:
            spelling = next((a for a in alternatives if a in raw.columns), None)
            if spelling is not None:
                raw = raw.with_columns(pl.col(spelling).alias(name))
    # also catches a header the CSV reader split otherwise than detection did (stray quotes)
    names = list(profile.signature) + [
        n for v in profile.columns.values() for n in ([v] if isinstance(v, str) else v)
    ]
    missing = next((n for n in names if n not in raw.columns), None)
    if missing is not None:
        raise InputError(path, "header", f"column {missing!r} (profile {profile.name}) not found")
    return raw, head[:header_offset]


def _ragged_row(body: str, first_index: int, profile: Profile, trailing: bool, path: Path) -> None:
    """Name the first row whose number of cells differs from the header's (what polars refused)."""
    rows = csv.reader(
        io.StringIO(body, newline=""), delimiter=profile.delimiter, quotechar=profile.quote
    )
    width = None if profile.has_header else len(profile.column_names)
    for number, row in enumerate(rows):
        line = first_index + 1 + number
        if not any(c.strip() for c in row):
            continue
        if width is None:
            width = len(row) + (1 if trailing else 0)
            continue
        if len(row) != width:
            extra = " (with the trailing empty one)" if trailing else ""
            raise InputError(
                path, f"line {line}", f"{len(row)} cells where the header has {width}{extra}"
            )
        # only reached once polars refused the table: a quote that opens or closes nothing (Rabobank
        # once wrote 'NL77RABO0311467415","EUR"' with the row's first quote missing)
        stray = next((c for c in row if profile.quote in (c[:1], c[-1:])), None)
        if stray is not None:
            raise InputError(path, f"line {line}", f"a stray {profile.quote} in the cell {stray!r}: a quote "
                             "missing or one too many")


def parse_csv(data: bytes, path: Path, profile: Profile, account: str | None = None) -> ParsedFile:
    raw, preamble = read_table(data, path, profile)
    for column, values in profile.skip_rows_where.items():
        if column in raw.columns:
            raw = raw.filter(~pl.col(column).str.strip_chars().is_in(values))
    if profile.strict_quoting:
        _check_quoting(raw, [c for c in raw.columns if c != "_line"], path)
    fallback_account = (
        _preamble_account(preamble, profile)
        or _file_name_account(path, profile)
        or profile.account
        or DEFAULT_ACCOUNT
    )
    if profile.balance_only:
        return _balance_history(raw, profile, path, account or fallback_account)
    lines = _lines(raw, profile, path, account, fallback_account)
    if profile.one_account_per_file and lines["_account"].n_unique() > 1:
        first = lines["_account"][0]
        row = lines.filter(pl.col("_account") != first).row(0, named=True)
        raise InputError(
            path,
            row["location"],
            f"account {row['_account']!r} differs from the file's first account "
            f"{first!r} (profile {profile.name} allows one account per file)",
        )
    statements = []
    accounts = lines["_account"]
    groups = (
        [((accounts[0],), lines)]
        if accounts.len() and (accounts == accounts[0]).all()
        else lines.group_by(["_account"], maintain_order=True)
    )
    for (account_name,), group in groups:
        currencies = group["currency"].unique().to_list()
        warnings: list[str] = []
        if account_name == DEFAULT_ACCOUNT:
            warnings.append(
                "no account in the file: lines stored under account 'default'; pass --account"
            )
        opening, closing = (
            _balances(group, profile, warnings) if profile.balance_column else (None, None)
        )
        statements.append(
            Statement(
                account=str(account_name),
                currency=currencies[0] if len(currencies) == 1 else None,
                lines=frames.conform(group, frames.BANK_LINES),
                opening_minor=opening,
                closing_minor=closing,
                period_start=group["booking_date"].min(),  # type: ignore[arg-type]
                period_end=group["booking_date"].max(),  # type: ignore[arg-type]
                warnings=tuple(warnings),
            )
        )
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
    balance = _running_balance(raw, profile, pl.lit(money_exponent(currency), dtype=pl.Int64), path)
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

    Each row's balance is the balance after that row (before it, with balance_before), so every row
    implies an opening balance (its balance minus the amounts in it); they must all agree.
    Rows run oldest first unless the profile says newest_first.

    """
    implied = _implied(group.reverse() if profile.newest_first else group, profile)
    if implied.is_empty():
        return None, None
    if implied["opening"].n_unique() > 1:
        # the balances prove the rows run the other way (re-sorted by whoever saved the export)
        other = _implied(group if profile.newest_first else group.reverse(), profile)
        if other["opening"].n_unique() == 1:
            implied = other
            way = "oldest" if profile.newest_first else "newest"
            warnings.append(f"the running balance shows the rows run {way} first, not as profile "
                            f"{profile.name} says: balances read that way")
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


def _implied(ordered: pl.DataFrame, profile: Profile) -> pl.DataFrame:
    """Per row with a balance (oldest first): the opening and closing balance that row implies."""
    total = ordered["amount_minor"].sum()
    running = pl.col("amount_minor").cum_sum()
    if profile.balance_before:  # the balance before each row: only the rows above it are in it
        running = running - pl.col("amount_minor")
    return ordered.select(
        "location",
        "_balance",
        (pl.col("_balance") - running).alias("opening"),
        (pl.col("_balance") + total - running).alias("closing"),
    ).filter(pl.col("_balance").is_not_null())


def _or_null(expr: pl.Expr | None) -> pl.Expr:
    return expr if expr is not None else pl.lit(None, dtype=pl.String)


def _column(raw: pl.DataFrame, profile: Profile, field: str, path: Path) -> pl.Expr | None:
    """A text field's cells, stripped, empty as null; several names are joined with spaces.

    A field under [columns] must be in the header; one under [optional_columns] is read from the
    names the header has (none: the field is empty).
    """
    names = profile.columns.get(field)
    if names:
        names = [names] if isinstance(names, str) else list(names)
        missing = [n for n in names if n not in raw.columns]
        if missing:
            raise InputError(path, "header", f"column {missing[0]!r} (for {field}) not found")
    else:
        optional = profile.optional_columns.get(field)
        optional = [optional] if isinstance(optional, str) else list(optional or [])
        names = [n for n in optional if n in raw.columns]
        if not names:
            return None
    parts = [pl.col(n).str.strip_chars() for n in names]
    if len(parts) == 1:
        return parts[0].replace("", None)
    return (
        pl.concat_str(parts, separator=" ", ignore_nulls=True).str.strip_chars().replace("", None)
    )


def _source(raw: pl.DataFrame, profile: Profile, field: str) -> str | None:
    """The one column of a field: its [columns] name, else its optional one if the header has it."""
    name = profile.columns.get(field)
    if isinstance(name, str):
        return name
    optional = profile.optional_columns.get(field)
    return optional if isinstance(optional, str) and optional in raw.columns else None


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


POWERS = {shift: 10**shift for shift in range(5)}  # currency exponents are 0 to 4


def _minor(raw: pl.DataFrame, source: str, profile: Profile, exponent: pl.Expr) -> pl.Series:
    """A column's amounts in minor units, null where empty or not an amount (the caller says which).

    Plain cells ("-1234.50", the profile's decimal mark, no more decimals than the currency has)
    are read on a fast path; every other non-empty cell (spaces, symbols, thousands separators, a
    trailing minus, "1.000" in a 2-decimal currency) by the full rule, money_expr.minor_units_expr,
    so both agree.
    """
    text = pl.col(source)
    mark = profile.decimal
    # materialised once: polars does not share these sub-expressions between the ones below
    parts = raw.select(
        text.str.find(mark, literal=True).cast(pl.Int64).alias("point"),
        text.str.len_bytes().cast(pl.Int64).alias("size"),
        text.str.replace(mark, "", literal=True).cast(pl.Int64, strict=False).alias("digits"),
        exponent.alias("exponent"),
    )
    point, digits = pl.col("point"), pl.col("digits")
    places = (pl.col("size") - point - 1).fill_null(0)
    scale = (pl.col("exponent") - places).replace_strict(
        POWERS, default=None, return_dtype=pl.Int64
    )
    plain = (point.is_null() | (point > 0)) & (
        digits.abs() < 10**14
    )  # far from Int64's end after scaling
    fast = parts.select(
        pl.when(plain).then(digits * scale).alias("m"), (pl.col("size") > 0).alias("t")
    )
    minor, written = fast["m"], fast["t"]
    if (
        parts["point"] == 1
    ).any():  # "-.5" and "+.5" have no whole part: the full rule refuses them
        minor = raw.select(
            pl.when(text.str.starts_with("-" + mark) | text.str.starts_with("+" + mark))
            .then(None)
            .otherwise(minor)
        )[:, 0]
    retry = minor.is_null() & written
    if retry.any():
        slow = raw.filter(retry).select(
            minor_units_expr(_clean(text, profile), exponent).alias("m")
        )["m"]
        minor = minor.scatter(retry.arg_true(), slow)
    return minor


def _running_balance(
    raw: pl.DataFrame, profile: Profile, exponent: pl.Expr, path: Path
) -> pl.Series:
    """The balance column in minor units (null where empty), in the same sign convention as the amounts."""
    source = profile.balance_column
    assert source is not None
    if source not in raw.columns:  # a layout variant without balances (ING DE's older export)
        return _constant(None, raw.height, pl.Int64)
    balance = _minor(raw, source, profile, exponent)
    text = raw[source].fill_null("").str.strip_chars()
    _first_bad(
        raw, balance.is_null() & (text != ""), source, path, "'{value}' is not a balance amount"
    )
    return -balance if profile.inverse_sign else balance


def _amounts(raw: pl.DataFrame, profile: Profile, exponent: pl.Expr, path: Path) -> pl.Series:
    cols = profile.columns
    if "amount" in cols:
        source = cols["amount"]
        minor = _minor(raw, source, profile, exponent)
        text = raw[source]
        if minor.null_count():
            _first_bad(
                raw,
                minor.is_null() & text.is_not_null() & (text.str.strip_chars() != ""),
                source,
                path,
                "'{value}' is not an amount",
            )
            _first_bad(raw, minor.is_null(), source, path, "amount is empty")
        direction = _source(raw, profile, "direction")
        if direction is not None:
            minor = _directed(raw, minor, direction, profile, path)
    else:
        debit_col, credit_col = cols["debit"], cols["credit"]
        debit = _minor(raw, debit_col, profile, exponent)
        credit = _minor(raw, credit_col, profile, exponent)
        for parsed, source in ((debit, debit_col), (credit, credit_col)):
            text = raw[source].fill_null("").str.strip_chars()
            _first_bad(
                raw, parsed.is_null() & (text != ""), source, path, "'{value}' is not an amount"
            )
        _first_bad(
            raw,
            debit.is_null() & credit.is_null(),
            debit_col,
            path,
            "neither a debit nor a credit amount",
        )
        d, c = debit.fill_null(0), credit.fill_null(0)
        if profile.debit_credit_rule == "magnitude":
            for cells, source in ((d, debit_col), (c, credit_col)):
                _mixed_signs(raw, cells, source, path)
            minor = c.abs() - d.abs()
        elif profile.debit_credit_rule == "reversal":
            minor = c - d
        else:
            _first_bad(
                raw,
                d > 0,
                debit_col,
                path,
                "'{value}' is a positive debit (debits are written negative "
                'under debit_credit_rule = "signed")',
            )
            _first_bad(
                raw,
                c < 0,
                credit_col,
                path,
                "'{value}' is a negative credit (debit_credit_rule = \"signed\")",
            )
            minor = c + d
    if profile.inverse_sign:
        minor = -minor
    return minor.alias("amount_minor")


def _mixed_signs(raw: pl.DataFrame, cells: pl.Series, source: str, path: Path) -> None:
    """Refuse a debit or credit column holding both signs: whether its minority is a reversal (a
    refund written -5.00 under debit) or the layout's way of writing, only the profile can say.
    """
    negative = cells < 0
    positive = cells > 0
    if negative.any() and positive.any():
        odd = negative if negative.sum() <= positive.sum() else positive
        _first_bad(
            raw,
            odd,
            source,
            path,
            f"'{{value}}': column {source} holds both positive and negative "
            "amounts, so which way this one goes is not certain; the profile must say with "
            'debit_credit_rule ("reversal": a negative cell goes the other way; "signed": cells '
            "carry "
            "the bank's sign)",
        )


def _directed(
    raw: pl.DataFrame, minor: pl.Series, source: str, profile: Profile, path: Path
) -> pl.Series:
    """The amounts signed (direction_mode "sign") or checked ("check") by an indicator column."""
    marker = raw[source].str.strip_chars().str.to_uppercase()
    debit = marker.is_in([v.upper() for v in profile.debit_values])
    credit = marker.is_in([v.upper() for v in profile.credit_values])
    markers = "/".join(list(profile.debit_values[:1]) + list(profile.credit_values[:1]))
    _first_bad(
        raw,
        ~(debit | credit).fill_null(False),
        source,
        path,
        f"'{{value}}' is neither a debit nor a credit marker ({markers})",
    )
    if profile.direction_mode == "sign":
        return pl.select(pl.when(debit).then(-minor.abs()).otherwise(minor.abs())).to_series()
    _first_bad(
        raw,
        (debit & (minor > 0)) | (credit & (minor < 0)),
        source,
        path,
        "the amount's own sign disagrees with its '{value}' marker",
    )
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
    cells = raw[source]
    if not formats or profile is not None and profile.yearless_date_formats:
        text = cells.str.strip_chars().replace("", None)
    else:  # cleaned only where a cell as written is not a date (the common case costs one pass)
        first = cells.str.strptime(pl.Date, formats[0], strict=False)
        retry = first.is_null() & cells.is_not_null()
        text = cells if not retry.any() else cells.str.strip_chars().replace("", None)
        if not retry.any() and len(formats) == 1:
            if required:
                _first_bad(raw, cells.is_null(), source, path, "date is empty")
            return first
    parsers: list[pl.Series | pl.Expr] = [text.str.strptime(pl.Date, f, strict=False) for f in formats]
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


def _constant(value: Any, length: int, dtype: pl.DataType | type[pl.DataType]) -> pl.Series:
    """A column of one value (built by polars: a Python list of a million items is slow)."""
    return pl.select(pl.repeat(value, length, dtype=dtype)).to_series()


def _currencies(raw: pl.DataFrame, profile: Profile, path: Path) -> pl.Series:
    """Each row's currency code: the currency column (upper case, empty cells the profile's
    default), else the profile's fixed currency. Checked on the distinct values (a file has few).
    """
    cols = profile.columns
    fallback = profile.currency_default or profile.currency
    if "currency" not in cols:
        if not fallback:
            raise InputError(
                path, None, f"profile {profile.name} names no currency column and no fixed currency"
            )
        return _constant(fallback, raw.height, pl.String)
    source = cols["currency"] if isinstance(cols["currency"], str) else cols["currency"][0]
    plain = raw[source] if isinstance(cols["currency"], str) and source in raw.columns else None
    if plain is not None and all(c and c == c.strip().upper() for c in plain.unique().to_list()):
        values = plain  # already clean codes (the common case): no per-row string work
    else:
        expr = _column(raw, profile, "currency", path)
        assert expr is not None
        values = raw.select(expr.str.to_uppercase().alias("c"))["c"]
        if fallback:
            values = values.fill_null(fallback)
    if values.null_count():
        _first_bad(
            raw,
            values.is_null(),
            source,
            path,
            f"currency is empty and profile {profile.name} sets no currency_default",
        )
    bad = [c for c in values.unique().to_list() if not re.fullmatch(r"[A-Z]{3}", c)]
    if bad:
        _first_bad(raw, values.is_in(bad), source, path, "'{value}' is not a currency code")
    return values


def _exponent(currencies: pl.Series) -> pl.Expr:
    """The currency exponent of each row: one literal when every currency of the file has it."""
    exponents = {money_exponent(c) for c in currencies.unique().to_list()}
    if len(exponents) == 1:
        return pl.lit(exponents.pop(), dtype=pl.Int64)
    return exponent_expr(pl.col("_currency"))


def _lines(raw: pl.DataFrame, profile: Profile, path: Path, account: str | None, fallback_account: str) -> pl.DataFrame:
    cols = profile.columns
    currency_values = _currencies(raw, profile, path)
    with_currency = raw.with_columns(currency_values.alias("_currency"))
    exponent = _exponent(currency_values)
    value_source = _source(raw, profile, "value_date")

    def texts() -> tuple[pl.DataFrame, dict[str, pl.Expr | None]]:
        text = {field: _column(raw, profile, field, path) for field in
                ("counterparty_name", "counterparty_account", "remittance", "reference", "end_to_end_id", "id",
                 "account")}
        account_expr = (pl.lit(account) if account else
                        (text["account"].fill_null(fallback_account) if text["account"] is not None
                         else pl.lit(fallback_account)))
        return raw.select(
            _or_null(text["id"]).alias("source_ref"),
            *[_or_null(text[f]).alias(f)
              for f in ("counterparty_name", "counterparty_account", "remittance", "reference", "end_to_end_id")],
            account_expr.alias("_account"),
            pl.format("line {}", pl.col("_line")).alias("location"),
            "_line",
        ), text

    # The dates and the text columns do not depend on the amounts: polars computes them on the other core
    # while the amounts are read (each step is mostly single-threaded string work; -13 % on 1M lines).
    # Results are taken in the order the steps always ran, so a file with several faults names the same one.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="csv-columns") as pool:
        booking_read = pool.submit(_dates, raw, cols["booking_date"], profile.date_formats, path, required=True,
                                   profile=profile)
        value_read = (pool.submit(_dates, raw, value_source, profile.date_formats, path, required=False,
                                  profile=profile) if value_source else None)
        texts_read = pool.submit(texts)
        amount = _amounts(with_currency, profile, exponent, path)
        booking = booking_read.result()
        value = value_read.result() if value_read is not None else _constant(None, raw.height, pl.Date)
        selected, text = texts_read.result()
    balance = (_running_balance(with_currency, profile, exponent, path)
               if profile.balance_column else _constant(None, raw.height, pl.Int64))
    lines = selected.with_columns(
        amount.alias("amount_minor"), currency_values.alias("currency"), booking.alias("booking_date"),
        value.alias("value_date"), pl.lit(False).alias("is_reversal"), balance.alias("_balance"),
    )
    if profile.fee is not None:
        fee = _fees(with_currency, profile, exponent, path)
        lines = lines.with_columns(fee.alias("_fee"))
        if profile.fee.amount_is_net:  # the row's line books the gross: net minus the (negative) fee line
            lines = lines.with_columns(pl.col("amount_minor") - pl.col("_fee"))
    if profile.skip_zero_amounts:
        lines = lines.filter(pl.col("amount_minor") != 0)
    if text["id"] is not None:
        refs = lines["source_ref"]
        if refs.null_count():
            _first_bad(raw, refs.is_null(), cols["id"], path, "id is empty")
        # an id the export repeats for different transactions is told apart by the registry's one rule
        # (base.distinct_source_refs), as for every format: both are stored, a re-import adds nothing
    else:
        lines = lines.with_columns(frames.content_refs(lines, HASH_COLUMNS).alias("source_ref"))
    return _with_fee_lines(lines, profile) if profile.fee is not None else lines


def _fees(raw: pl.DataFrame, profile: Profile, exponent: pl.Expr, path: Path) -> pl.Series:
    """Each row's fee line amount in minor units (0 where the fee cells are empty): the cells summed, times sign."""
    rule = profile.fee
    assert rule is not None
    missing = [c for c in rule.columns if c not in raw.columns]
    if missing and rule.all_required:
        raise InputError(path, "header", f"fee column {missing[0]!r} not found")
    total = _constant(0, raw.height, pl.Int64)
    for column in (c for c in rule.columns if c in raw.columns):
        fee = _minor(raw, column, profile, exponent)
        text = raw[column].fill_null("").str.strip_chars()
        _first_bad(raw, fee.is_null() & (text != ""), column, path, "'{value}' is not a fee amount")
        total = total + fee.fill_null(0)
    return (total * rule.sign).cast(pl.Int64)


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
