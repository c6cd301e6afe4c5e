"""The rules that decide money on open items, in one place: pure functions, no database.

- An item's open amount keeps the sign of the item (an invoice's is >= 0, a credit note's <= 0) and never
  crosses zero. When the receivables system leaves less open than reconcile's own not-yet-included postings
  take (it closed the item some other way), the open amount stays at zero and the rest is the item's
  *excess*: open - excess = snapshot open - not-included postings, always (`clamp_open`).
- A posting takes from an item at most what is open (`take`), a reversal gives back first what was in
  excess (`give_back`).
- Installments of a plan are paid in due order: by due date, then installment number (`due_order`);
  an installment is paid only when every earlier one is settled (`order_violations`).

The matcher, the queue's manual decisions, posting and the ledger check all use these.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

import polars as pl


def clamp_open(unclamped: int, credit_note: bool) -> tuple[int, int]:
    """(open, excess) of an item whose snapshot open minus not-included postings is `unclamped`."""
    open_ = min(0, unclamped) if credit_note else max(0, unclamped)
    return open_, open_ - unclamped


def clamp_open_expr(unclamped: pl.Expr, credit_note: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """The frame twin of clamp_open: (open, excess) expressions."""
    open_ = pl.when(credit_note).then(pl.min_horizontal(pl.lit(0), unclamped)) \
        .otherwise(pl.max_horizontal(pl.lit(0), unclamped))
    return open_, open_ - unclamped


class OverApplied(ValueError):
    """A posting would take more from an item than is open on it."""


def move(open_: int, excess: int, delta: int, credit_note: bool) -> tuple[int, int]:
    """An item's (open, excess) after postings that take `delta` from it (negative: give back).

    A take (delta of the item's own sign) never goes beyond what is open; giving back first undoes the
    excess, then reopens the item.
    """
    taking = delta < 0 if credit_note else delta > 0
    if taking and abs(delta) > abs(open_):
        raise OverApplied(f"takes {abs(delta)} minor units, {abs(open_)} open")
    return clamp_open(open_ - excess - delta, credit_note)


# --- installments in due order ------------------------------------------------------------


@dataclass(frozen=True)
class Installment:
    no: int
    due_date: date
    open_minor: int


def due_order(installments: Iterable[Installment]) -> list[Installment]:
    """The order a plan is paid in: due date, then installment number (total and stable)."""
    return sorted(installments, key=lambda i: (i.due_date, i.no))


def take_in_due_order(installments: Sequence[Installment], amount: int) -> list[tuple[int, int]]:
    """(installment no, part) rows taking `amount` through the plan's open installments in due order;
    what the plan cannot hold is left for the invoice itself (not returned)."""
    rows, left = [], amount
    for entry in due_order(installments):
        part = min(left, entry.open_minor)
        if part > 0:
            rows.append((entry.no, part))
            left -= part
        if left == 0:
            break
    return rows


def first_unpaid(installments: Sequence[Installment]) -> Installment | None:
    return next((i for i in due_order(installments) if i.open_minor > 0), None)


def check_installment_take(installments: Sequence[Installment], no: int, amount: int) -> str | None:
    """Why taking `amount` from installment `no` breaks the due order, or None when it does not.

    Paying an installment is allowed when every installment due before it is settled, or when the same
    decision settles them first (the caller passes the plan as it stands after its earlier rows).
    """
    ordered = due_order(installments)
    target = next((i for i in ordered if i.no == no), None)
    if target is None:
        return f"the plan has no installment {no}"
    earlier = [i for i in ordered[:ordered.index(target)] if i.open_minor > 0]
    if earlier:
        names = ", ".join(f"#{i.no}" for i in earlier)
        return (f"installment #{no} cannot be paid while {names} (due earlier) "
                f"{'is' if len(earlier) == 1 else 'are'} still open: installments are paid in due order")
    if amount > target.open_minor:
        return f"installment #{no} has {target.open_minor} minor units open, not {amount}"
    return None


def order_violations(schedule: pl.DataFrame) -> pl.DataFrame:
    """Installments paid while an earlier one (in due order) of their plan is still open.

    `schedule`: plan_id, no, due_date, open, applied, reversals (installment rows reopened by a reversal,
    e.g. a bank return, break a plan rather than the order). Returns the offending rows.
    """
    ordered = schedule.sort("plan_id", "due_date", "no")
    unpaid = ((pl.col("open") > 0) & (pl.col("reversals") == 0)).cast(pl.Int64)
    earlier_open = unpaid.cum_sum().over("plan_id") - unpaid
    return ordered.filter((pl.col("applied") > 0) & (earlier_open > 0))
