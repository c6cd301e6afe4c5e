"""The matcher's inputs and outputs: the open book, the rules (config [matching]), the result."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from reconcile.core import frames


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
class MatchResult:
    allocations: pl.DataFrame  # ALLOCATIONS
    exceptions: pl.DataFrame   # EXCEPTIONS
    skipped: pl.DataFrame      # SKIPPED
    # bank returns found by the run: debit_line_id, credit_line_id, evidence (returns.PAIRS)
    returns: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema={
        "debit_line_id": pl.Int64(), "credit_line_id": pl.Int64(), "evidence": pl.String()}))
