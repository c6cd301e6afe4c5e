"""The project's stable codes as StrEnums: statuses, allocation kinds, queue reasons, run outcomes.

They are the values stored in the database and written to the contract's exports (CONTRACTS.md §4), so
each member's value never changes; a StrEnum compares equal to its text, so rows read back as plain
strings compare with them directly. Code names a code through these, never as a bare string literal.
"""

from __future__ import annotations

from enum import StrEnum


class LineStatus(StrEnum):
    """A bank line's state: unmatched -> posted | exception | skipped | returned; a reversal takes posted back."""

    UNMATCHED = "unmatched"
    POSTED = "posted"
    EXCEPTION = "exception"
    SKIPPED = "skipped"
    RETURNED = "returned"


OPEN_LINE_STATUSES = (LineStatus.UNMATCHED, LineStatus.EXCEPTION)  # a run may still decide these


class Kind(StrEnum):
    """An allocation row's kind (CONTRACTS §4 allocations.csv `kind`)."""

    INVOICE = "invoice"
    INSTALLMENT = "installment"
    ON_ACCOUNT = "on_account"
    WRITE_OFF = "write_off"
    REVERSAL = "reversal"
    FX = "fx"                      # an FX gain or loss beside invoice rows paid in another currency


SETTLING_KINDS = (Kind.INVOICE, Kind.INSTALLMENT)  # the kinds that move an item's open amount


class ItemStatus(StrEnum):
    """A queue item's state."""

    OPEN = "open"
    RESOLVED = "resolved"


class Reason(StrEnum):
    """Why a line is queued (CONTRACTS §4 exceptions.csv `reason`)."""

    NO_CANDIDATE = "no_candidate"
    AMBIGUOUS = "ambiguous"
    AMOUNT_MISMATCH = "amount_mismatch"
    LOW_CONFIDENCE = "low_confidence"
    UNKNOWN_CURRENCY = "unknown_currency"
    DUPLICATE_SUSPECT = "duplicate_suspect"
    UNAPPLIED = "unapplied"
    RETURN_UNMATCHED = "return_unmatched"
    CLOSED_ELSEWHERE = "closed_elsewhere"
    AWAITING_ADVICE = "awaiting_advice"
    ADVICE_MISMATCH = "advice_mismatch"
    ADVICE_DEDUCTION = "advice_deduction"


class RunStatus(StrEnum):
    """A posting run's outcome."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    ABANDONED = "abandoned"


class ErpStatus(StrEnum):
    """An item as the receivables system last listed it."""

    OPEN = "open"
    CLOSED = "closed"


class SnapshotKind(StrEnum):
    FULL = "full"
    DELTA = "delta"
