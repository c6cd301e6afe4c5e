"""BAI2 (Cash Management Balance Reporting, version 2) files -> one Statement per 03 account.

Reads records 01/02/03/16/88/49/98/99 however they are laid out (one per line, several
on one line, a record wrapped onto a line without a record code), joins 88 continuations
to the record they continue and checks every trailer's control total and record count.
Matching and storage are left to the neighbours: this module only turns bytes into lines.

Layout rules (BAI2 spec, and what real files do):
- "/" ends a record, except in the text field of a 16 and its 88s, which runs to the end
  of the physical record and may hold "/": there a new record only starts at "/", blanks,
  then a record code (moov-io sample3 packs records that way).
- An 88 after a record that ended with "/" starts a new field; after a record that did
  not, the field (or the 16's text) goes on. Empty fields before the "/" are fields
  ("16,195,1000,,,,/": funds type, bank and customer reference and text all empty; an 88
  after it continues the text), except where many banks write ",/" merely to end a record:
  an 03 summary that ends "...,015,1500,,,/" (SVB) has no fifth, empty type code there, and
  its 88 goes on with the next type code. Text continuations are joined with one space:
  most banks send one 88 per line of text, and a glued "BANKSENDER" hurts matching more
  than NatWest's "CLIE NT" (a word cut at the physical record length).
- Amounts carry no decimal point: they are already minor units of the account currency
  (implied decimals = the ISO 4217 exponent; no currency anywhere means USD).
- Type codes 100-399 are credits, 400-699 debits; other 16 codes (890 non-monetary, 7xx
  loan, 9xx custom) are left out of the lines with a warning, but still count in totals.

Trailers are the only integrity check BAI2 has, so by default a control total or record
count that disagrees refuses the file (a truncated or damaged transmission must not be
half-imported). Bai2Parser(check_trailers=False) reports the mismatches as warnings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from reconcile.core import frames
from reconcile.core.errors import InputError
from reconcile.parsers.base import ParsedFile, Statement, lines_frame

RECORD_NAMES = {
    "01": "file header", "02": "group header", "03": "account identifier", "16": "transaction detail",
    "88": "continuation", "49": "account trailer", "98": "group trailer", "99": "file trailer",
}
LINE_BREAK = re.compile(r"\r\n|\r|\n")  # not str.splitlines: form feeds etc. would shift line numbers
BLANKS = re.compile(r"\s*")
CODE_AT_START = re.compile(r"(\d\d)(?:,|(?=/)|$)")
# Inside text: a "/" followed by blanks and a record code ends the record.
NEXT_RECORD_IN_TEXT = re.compile(r"/\s+(?=(?:01|02|03|16|49|88|98|99),)")
TYPE_CODE = re.compile(r"\d{3}")
UNSIGNED = re.compile(r"\+?\d{1,18}")
SIGNED = re.compile(r"[+-]?\d{1,18}")
YYMMDD = re.compile(r"(\d\d)(\d\d)(\d\d)")
CURRENCY = re.compile(r"[A-Z]{3}")
HASH_COLUMNS = ["account", "booking_date", "value_date", "amount_minor", "currency", "bank_code",
                "reference", "remittance"]
OPENING, CLOSING = "010", "015"
MAX_DISTRIBUTIONS = 99


@dataclass
class Record:
    """One logical record: its own physical record plus the 88s (and wrapped lines) continuing it."""

    code: str
    line: int
    pieces: list[tuple[str, bool]] = field(default_factory=list)  # (content, ended with "/")
    physical: int = 1                                              # records counted by trailers

    @property
    def where(self) -> str:
        return f"line {self.line} ({self.code} {RECORD_NAMES[self.code]})"

    @property
    def is_text(self) -> bool:
        return self.code == "16"


class Fields:
    """Reads a record's comma-separated fields across its pieces.

    A piece that ended with "/" closes its last field; one that did not lets that field
    go on in the next piece.
    """

    def __init__(self, pieces: list[tuple[str, bool]]) -> None:
        self.pieces = pieces
        self.index = 0
        self.pos = 0

    def at_end(self) -> bool:
        while self.index < len(self.pieces) and self.pos > len(self.pieces[self.index][0]):
            self.index += 1
            self.pos = 0
        return self.index >= len(self.pieces)

    def next(self) -> str:
        parts = []
        while not self.at_end():
            content, closed = self.pieces[self.index]
            comma = content.find(",", self.pos)
            if comma >= 0:
                parts.append(content[self.pos:comma])
                self.pos = comma + 1
                break
            parts.append(content[self.pos:])
            self.pos = len(content) + 1
            if closed or self.index == len(self.pieces) - 1:
                break
        return "".join(parts).strip()

    def skip_end_marker(self) -> None:
        """At the start of an 03 summary: an empty last field before "/" with more pieces after it is
        the ",/" many banks end a record with, not an empty type code; go on with the next piece."""
        if self.at_end():
            return
        content, closed = self.pieces[self.index]
        if closed and self.pos == len(content) and self.index + 1 < len(self.pieces):
            self.index, self.pos = self.index + 1, 0

    def rest_as_text(self) -> str:
        """Everything not read yet, as one text: pieces joined with a space (see the module notes)."""
        texts = []
        if not self.at_end():
            texts.append(self.pieces[self.index][0][self.pos:])
            texts.extend(content for content, _ in self.pieces[self.index + 1:])
        self.index, self.pos = len(self.pieces), 0
        # "TEXT,/": the comma only closed the field before the record end.
        return " ".join(t.strip() for t in texts if t.strip()).rstrip(", ")


def _decode(data: bytes) -> str:
    """UTF-8, else Windows-1252; latin-1 only for bytes Windows-1252 leaves undefined (those become
    control characters, which the registry refuses naming the line)."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    for encoding in ("utf-8", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _records(text: str, path: Path) -> Iterator[Record]:
    """Split the file into logical records, in one pass over its physical lines.

    Works with positions, never slices the rest of a line: a blocked file with every record
    on one long line stays linear.
    """
    current: Record | None = None
    for number, line in enumerate(LINE_BREAK.split(text), start=1):
        line = line.rstrip()
        pos = first = BLANKS.match(line).end()  # type: ignore[union-attr]
        while pos < len(line):
            match = CODE_AT_START.match(line, pos)
            code = match.group(1) if match and match.group(1) in RECORD_NAMES else None
            if code is None:
                # A physical line without a record code: the previous record wrapped onto it.
                if current is None or not (current.is_text or not current.pieces[-1][1]):
                    where = f"line {number}"
                    if match:
                        raise InputError(path, where, f"unsupported record type '{match.group(1)}'")
                    if pos > first:
                        raise InputError(path, where, f"text after the end of a record ('/'): '{line[pos:pos + 20]}'")
                    raise InputError(path, where, "does not start with a BAI2 record code "
                                                  "(01, 02, 03, 16, 49, 88, 98, 99)")
                start, counted = pos, False
            else:
                assert match is not None
                start, counted = match.end(), True
                if code == "88":
                    if current is None:
                        raise InputError(path, f"line {number}", "88 continuation record with no record before it")
                else:
                    if current is not None:
                        yield current
                    current = Record(code, number, physical=0)
            assert current is not None
            current.physical += counted
            if current.is_text:
                end = NEXT_RECORD_IN_TEXT.search(line, start)
                if end:
                    current.pieces.append((line[start:end.start()], True))
                    pos = end.end()
                    continue
                closed = line.endswith("/", start)
                current.pieces.append((line[start:len(line) - closed], closed))
                break
            slash = line.find("/", start)
            if slash < 0:
                current.pieces.append((line[start:], False))
                break
            current.pieces.append((line[start:slash], True))
            pos = BLANKS.match(line, slash + 1).end()  # type: ignore[union-attr]
    if current is not None:
        yield current


def _day(text: str, what: str) -> date:
    match = YYMMDD.fullmatch(text)
    try:
        if match is None:
            raise ValueError
        year = int(match[1])
        # The POSIX %y window: 69-99 are 1900s, 00-68 are 2000s.
        return date(year + (1900 if year >= 69 else 2000), int(match[2]), int(match[3]))
    except ValueError:
        raise ValueError(f"{what} '{text}' is not a date (YYMMDD)") from None


def _amount(text: str, what: str, *, signed: bool) -> int:
    if not (SIGNED if signed else UNSIGNED).fullmatch(text):
        kind = "a whole number of minor units" if signed else "an unsigned whole number of minor units"
        raise ValueError(f"{what} '{text}' is not {kind}")
    return int(text)


def _optional_amount(text: str, what: str) -> int | None:
    return _amount(text, what, signed=True) if text else None


def _count(text: str, what: str) -> int | None:
    if not text:
        return None
    if not text.isdigit() or len(text) > 9:
        raise ValueError(f"{what} '{text}' is not a count")
    return int(text)


def _currency(text: str, default: str) -> str:
    code = text.strip().upper()
    if not code:
        return default
    if not CURRENCY.fullmatch(code):
        raise ValueError(f"currency '{text}' is not an ISO 4217 code")
    return code


def _funds(fields: Fields, what: str) -> tuple[str, date | None]:
    """Funds type and its extra fields; returns the type and the value date of a V."""
    funds = fields.next().upper()
    if funds in ("", "Z", "0", "1", "2"):
        return funds, None
    if funds == "S":
        for part in ("immediate", "one-day", "two-or-more-day"):
            _optional_amount(fields.next(), f"{what}: funds type S {part} amount")
        return funds, None
    if funds == "V":
        raw_date, _time = fields.next(), fields.next()
        return funds, _day(raw_date, f"{what}: value date") if raw_date else None
    if funds == "D":
        count = _count(fields.next(), f"{what}: funds type D number of distributions") or 0
        if count > MAX_DISTRIBUTIONS:
            raise ValueError(f"{what}: funds type D announces {count} distributions")
        for n in range(count):
            if fields.at_end():
                raise ValueError(f"{what}: funds type D announces {count} distributions, the record holds {n}")
            _count(fields.next(), f"{what}: funds type D availability days")
            _optional_amount(fields.next(), f"{what}: funds type D amount")
        return funds, None
    raise ValueError(f"{what}: funds type '{funds}' is not one of 0, 1, 2, S, V, D, Z")


@dataclass
class Account:
    record: Record
    number: str
    currency: str
    total: int = 0                      # algebraic sum of every amount, as the 49 counts it
    declared_total: int = 0
    records: int = 0
    opening: int | None = None
    closing: int | None = None
    lines: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)          # "890 at line 12"
    trailer_warnings: list[str] = field(default_factory=list)


@dataclass
class Group:
    record: Record
    as_of: date
    currency: str
    status: str
    total: int = 0
    declared_total: int = 0
    records: int = 0
    accounts: int = 0
    statements: list[Statement] = field(default_factory=list)


@dataclass
class BaiFile:
    record: Record
    file_id: str
    total: int = 0
    records: int = 0
    groups: int = 0
    statements: list[Statement] = field(default_factory=list)


class Reader:
    """Walks the records: structure, fields, trailers."""

    def __init__(self, path: Path, check_trailers: bool) -> None:
        self.path = path
        self.check_trailers = check_trailers
        self.mismatches: list[tuple[str, str]] = []
        self.statements: list[Statement] = []

    def fail(self, record: Record, why: str) -> InputError:
        return InputError(self.path, record.where, why)

    def read(self, text: str) -> list[Statement]:
        bai: BaiFile | None = None
        group: Group | None = None
        account: Account | None = None
        seen_any = False
        for record in _records(text, self.path):
            code = record.code
            if not seen_any and code != "01":
                raise self.fail(record, "a BAI2 file starts with an 01 file header")
            seen_any = True
            fields = Fields(record.pieces)
            try:
                if code == "01":
                    if bai is not None:
                        raise ValueError("a new file header before the 99 file trailer of the previous file")
                    bai = self.file_header(record, fields)
                    continue
                if bai is None:
                    raise ValueError("record after the 99 file trailer")
                bai.records += record.physical
                if code == "02":
                    if group is not None:
                        raise ValueError("a new group header before the 98 group trailer of the previous group")
                    group = self.group_header(record, fields)
                elif code == "98":
                    if group is None or account is not None:
                        raise ValueError("98 group trailer outside a group or before the account's 49 trailer")
                    group.records += record.physical
                    self.group_trailer(record, fields, group)
                    bai.total += group.declared_total
                    bai.groups += 1
                    bai.statements.extend(group.statements)
                    group = None
                elif code == "99":
                    if group is not None:
                        raise ValueError("99 file trailer before the 98 group trailer")
                    self.file_trailer(record, fields, bai)
                    self.statements.extend(bai.statements)
                    bai = None
                elif group is None:
                    raise ValueError(f"{code} {RECORD_NAMES[code]} outside a group (no 02 before it)")
                else:
                    group.records += record.physical
                    if code == "03":
                        if account is not None:
                            raise ValueError("a new account identifier before the 49 trailer of the previous account")
                        account = self.account_identifier(record, fields, group)
                        group.accounts += 1
                    elif account is None:
                        raise ValueError(f"{code} {RECORD_NAMES[code]} outside an account (no 03 before it)")
                    elif code == "16":
                        account.records += record.physical
                        self.detail(record, fields, account, group)
                    else:  # "49"
                        account.records += record.physical
                        self.account_trailer(record, fields, account)
                        group.total += account.declared_total
                        group.statements.append(self.statement(account, group, bai))
                        account = None
            except ValueError as exc:
                raise self.fail(record, str(exc)) from None
        if bai is not None:
            raise InputError(self.path, None, "the file ends before its 99 file trailer: it looks truncated")
        if not seen_any:
            raise InputError(self.path, None, "no BAI2 records in the file")
        if self.mismatches and self.check_trailers:
            where, why = self.mismatches[0]
            if len(self.mismatches) > 1:
                why += (f" (and {len(self.mismatches) - 1} more trailer mismatch(es), next at "
                        f"{self.mismatches[1][0]}: {self.mismatches[1][1]})")
            raise InputError(self.path, where, why)
        return self.statements

    def file_header(self, record: Record, fields: Fields) -> BaiFile:
        sender, _receiver, created, _time, file_id, _length, _block, version = (fields.next() for _ in range(8))
        if version and version != "2":
            raise ValueError(f"BAI version '{version}' is not supported: only version 2 is")
        return BaiFile(record, ":".join(p for p in (sender, created, file_id) if p), records=record.physical)

    def group_header(self, record: Record, fields: Fields) -> Group:
        _receiver, _originator, status, as_of, _time, currency, _modifier = (fields.next() for _ in range(7))
        if status in ("2", "4"):
            meaning = "deletion" if status == "2" else "test only"
            raise ValueError(f"group status {status} ({meaning}): such a group must not be imported as bank lines")
        if status not in ("", "1", "3"):
            raise ValueError(f"group status '{status}' is not one of 1, 2, 3, 4")
        if not as_of:
            raise ValueError("the as-of date is missing")
        return Group(record, _day(as_of, "as-of date"), _currency(currency, "USD"), status, records=record.physical)

    def account_identifier(self, record: Record, fields: Fields, group: Group) -> Account:
        number = fields.next()
        if not number:
            raise ValueError("the account number is missing")
        account = Account(record, number, _currency(fields.next(), group.currency), records=record.physical)
        while True:
            fields.skip_end_marker()
            if fields.at_end():
                break
            type_code = fields.next()
            amount_text, count_text = fields.next(), fields.next()
            what = f"summary {type_code or '(no type code)'}"
            _funds(fields, what)
            if not type_code:
                if amount_text or count_text:
                    raise ValueError(f"{what}: an amount without a type code")
                continue
            if not TYPE_CODE.fullmatch(type_code):
                raise ValueError(f"type code '{type_code}' is not three digits")
            amount = _optional_amount(amount_text, f"{what}: amount")
            _count(count_text, f"{what}: item count")
            account.total += amount or 0
            if type_code == OPENING:
                account.opening = amount
            elif type_code == CLOSING:
                account.closing = amount
        return account

    def detail(self, record: Record, fields: Fields, account: Account, group: Group) -> None:
        type_code = fields.next()
        if not TYPE_CODE.fullmatch(type_code):
            raise ValueError(f"type code '{type_code}' is not three digits")
        amount_text = fields.next()
        if not amount_text:
            raise ValueError(f"type code {type_code}: the amount is missing")
        amount = _amount(amount_text, f"type code {type_code}: amount", signed=False)
        _funds_type, value_date = _funds(fields, f"type code {type_code}")
        bank_ref, customer_ref, text = fields.next(), fields.next(), fields.rest_as_text()
        account.total += amount
        code = int(type_code)
        if not 100 <= code < 700:
            account.skipped.append(f"{type_code} at line {record.line}")
            return
        account.lines.append({
            "source_ref": bank_ref or None,
            "booking_date": group.as_of,
            "value_date": value_date,
            "amount_minor": amount if code < 400 else -amount,
            "currency": account.currency,
            "remittance": text or None,
            "reference": customer_ref or None,
            "bank_code": type_code,
            "is_reversal": False,
            "location": f"line {record.line}",
        })

    def _trailer(self, record: Record, fields: Fields, names: tuple[str, ...]) -> list[int | None]:
        values: list[int | None] = []
        for name in names:
            raw = fields.next()
            values.append(_optional_amount(raw, name) if name.endswith("total") else _count(raw, name))
        return values

    def _compare(self, record: Record, what: str, declared: int | None, found: int, how: str) -> None:
        if declared is not None and declared != found:
            self.mismatches.append((record.where, f"{what}: the trailer says {declared}, found {found} ({how})"))

    def account_trailer(self, record: Record, fields: Fields, account: Account) -> None:
        total, count = self._trailer(record, fields, ("account control total", "number of records"))
        before = len(self.mismatches)
        self._compare(record, f"account {account.number} control total", total, account.total,
                      "sum of the account's 03 and 16 amounts")
        self._compare(record, f"account {account.number} record count", count, account.records, "records 03 to 49")
        # The group adds up what the account trailers declare, so one damaged 49 is reported once.
        account.declared_total = account.total if total is None else total
        account.trailer_warnings.extend(f"{where}: {why}" for where, why in self.mismatches[before:])

    def group_trailer(self, record: Record, fields: Fields, group: Group) -> None:
        total, accounts, count = self._trailer(
            record, fields, ("group control total", "number of accounts", "number of records"))
        before = len(self.mismatches)
        self._compare(record, "group control total", total, group.total, "sum of the 49 account control totals")
        self._compare(record, "group account count", accounts, group.accounts, "03 records in the group")
        self._compare(record, "group record count", count, group.records, "records 02 to 98")
        group.declared_total = group.total if total is None else total
        self._warn_first(group.statements, before)

    def file_trailer(self, record: Record, fields: Fields, bai: BaiFile) -> None:
        total, groups, count = self._trailer(
            record, fields, ("file control total", "number of groups", "number of records"))
        before = len(self.mismatches)
        self._compare(record, "file control total", total, bai.total, "sum of the 98 group control totals")
        self._compare(record, "file group count", groups, bai.groups, "02 records in the file")
        self._compare(record, "file record count", count, bai.records, "records 01 to 99")
        self._warn_first(bai.statements, before)

    def _warn_first(self, statements: list[Statement], before: int) -> None:
        """Group and file mismatches are reported on the first statement they cover (lenient mode)."""
        new = [f"{where}: {why}" for where, why in self.mismatches[before:]]
        if new and statements:
            statements[0] = replace(statements[0], warnings=(*statements[0].warnings, *new))

    def statement(self, account: Account, group: Group, bai: BaiFile | None) -> Statement:
        warnings = []
        if group.status == "3":
            warnings.append("correction group (status 3): lines it replaces are not removed; "
                            "lines with the same bank reference are not imported twice")
        if account.skipped:
            warnings.append(f"{len(account.skipped)} detail record(s) with type codes outside 100-699 (neither "
                            f"credit nor debit) left out: {', '.join(account.skipped[:5])}")
        warnings.extend(account.trailer_warnings)
        return Statement(
            account=account.number, currency=account.currency, lines=lines_frame(account.lines),
            opening_minor=account.opening, closing_minor=account.closing,
            period_start=group.as_of, period_end=group.as_of,
            statement_id=(bai.file_id or None) if bai else None,
            location=f"line {account.record.line}", warnings=tuple(warnings),
        )


def _with_source_refs(statements: list[Statement]) -> list[Statement]:
    """Blank bank references get a content hash, repeats counted per account across the file (a bank
    reference the file repeats is the registry's to tell apart: base.distinct_source_refs)."""
    if not any(s.lines.height for s in statements):
        return statements
    frame = pl.concat([
        s.lines.with_columns(pl.lit(s.account).alias("account"), pl.lit(i).alias("_statement"))
        for i, s in enumerate(statements)
    ])
    frame = frame.with_columns(
        pl.coalesce(pl.col("source_ref"), frames.content_refs(frame, HASH_COLUMNS)).alias("source_ref"))
    return [replace(statement, lines=frame.filter(pl.col("_statement") == i).drop("account", "_statement"))
            for i, statement in enumerate(statements)]


class Bai2Parser:
    name = "bai2"

    def __init__(self, check_trailers: bool = True) -> None:
        self.check_trailers = check_trailers

    def sniff(self, head: bytes, path: Path) -> bool:
        """An 01 file header first, after an optional BOM and blank space."""
        return head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n").startswith(b"01,")

    def parse(self, data: bytes, path: Path) -> ParsedFile:
        statements = Reader(path, self.check_trailers).read(_decode(data))
        return ParsedFile("bai2", _with_source_refs(statements))
