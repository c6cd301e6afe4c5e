"""The one contract every statement format fulfils.

A parser says whether it claims a file from its content (`sniff`) and turns
the file's bytes into ParsedFile: statement metadata plus a bank-lines frame
in the frames.BANK_LINES schema. Parsers read bytes they are given; they do
not open files, touch the database or know about matching.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from reconcile.core import frames


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

    def zone_for(self, account: str | None) -> str | None:
        """The configured zone of `account`, else the default for every account, else None."""
        return self.timezones.get(account or "") or self.timezones.get("*") or None

    @classmethod
    def builtin(cls) -> ParseOptions:
        """The shipped CSV profiles and no time zones: for tools and tests that have no configuration."""
        from reconcile.parsers.csv_profiles import builtin_profiles

        return cls(csv_profiles=builtin_profiles())


def lines_frame(records: list[dict]) -> pl.DataFrame:
    """Bank-lines frame from per-line dicts (row-wise parsers: CAMT, OFX, MT940, BAI2)."""
    return frames.from_records(records, frames.BANK_LINES)
