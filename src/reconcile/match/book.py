"""The matcher's inputs and outputs: the open book, the rules, the result."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import polars as pl

from reconcile.core import frames
from reconcile.core.money import to_minor


@dataclass(frozen=True)
class Book:
    """Open receivables and what is known about payers, as frames (frames.py schemas)."""

    customers: pl.DataFrame       # CUSTOMERS
    aliases: pl.DataFrame         # ALIASES (snapshot and learned)
    payer_accounts: pl.DataFrame  # PAYER_ACCOUNTS (snapshot and learned), normalised
    invoices: pl.DataFrame        # INVOICES, settled ones too (open_minor 0)
    installments: pl.DataFrame    # INSTALLMENTS with open_minor > 0, of the invoices above

    @classmethod
    def empty(cls) -> Book:
        return cls(
            customers=frames.empty(frames.CUSTOMERS),
            aliases=frames.empty(frames.ALIASES),
            payer_accounts=frames.empty(frames.PAYER_ACCOUNTS),
            invoices=frames.empty(frames.INVOICES),
            installments=frames.empty(frames.INSTALLMENTS),
        )


@dataclass(frozen=True)
class Rules:
    """Thresholds and tolerances from config [matching]; data, not code."""

    auto_post_threshold: float = 0.90
    write_off_tolerance: dict[str, str] = field(default_factory=lambda: {"default": "0.00"})
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, section: dict[str, Any]) -> Rules:
        return cls(
            auto_post_threshold=float(section.get("auto_post_threshold", 0.90)),
            write_off_tolerance=dict(section.get("write_off_tolerance", {"default": "0.00"})),
            raw=dict(section),
        )

    def tolerance_minor(self, currency: str) -> int:
        text = self.write_off_tolerance.get(currency, self.write_off_tolerance.get("default", "0"))
        return to_minor(Decimal(str(text)), currency)


@dataclass(frozen=True)
class MatchResult:
    allocations: pl.DataFrame  # ALLOCATIONS
    exceptions: pl.DataFrame   # EXCEPTIONS
    skipped: pl.DataFrame      # SKIPPED
    # bank returns found by the run: debit_line_id, credit_line_id, evidence (returns.PAIRS)
    returns: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema={
        "debit_line_id": pl.Int64(), "credit_line_id": pl.Int64(), "evidence": pl.String()}))
