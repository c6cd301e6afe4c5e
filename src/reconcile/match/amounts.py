"""Which of one customer's open items does an amount pay? Small exact searches, no floats.

Items are (key, open_minor) pairs of one customer in one currency, oldest due
first; a credit note is an item with a negative open amount. Each search
returns every fit it finds up to a small limit, in a fixed order (the items'
order), so the caller can tell "exactly one fit" (post) from "several" (ask a
person), and the same items always give the same answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import accumulate
from typing import TypeVar

K = TypeVar("K")


def singles(items: Sequence[tuple[K, int]], amount: int) -> list[list[K]]:
    return [[key] for key, open_minor in items if open_minor == amount]


def prefix_runs(runs: Sequence[Sequence[tuple[K, int]]], amount: int) -> list[list[K]]:
    """Payment plans paid in due order: the first k open installments of a plan that add up to the amount."""
    found = []
    for run in runs:
        for k, total in enumerate(accumulate(open_minor for _, open_minor in run), start=1):
            if total == amount:
                found.append([key for key, _ in run[:k]])
            if total >= amount:
                break
    return found


def subsets(items: Sequence[tuple[K, int]], amount: int, *, max_items: int, max_size: int,
            limit: int = 3) -> list[list[K]]:
    """Combinations of 2..max_size items adding up to amount; credit notes (negative items) may take part.

    Bounded: the max_items oldest invoices and the max_items oldest credit notes. Depth-first over the
    items by amount, largest first (ties in the items' own order), pruned by what the remaining items can
    still add or take away; stops after `limit` fits, since two already mean ambiguous. Each fit lists its
    keys in the items' order.
    """
    positives = [(i, k, a) for i, (k, a) in enumerate(items) if a > 0][:max_items]
    negatives = [(i, k, a) for i, (k, a) in enumerate(items) if a < 0][:max_items]
    if not negatives:
        positives = [p for p in positives if p[2] <= amount]
    pool = sorted(positives + negatives, key=lambda item: (-item[2], item[0]))
    values = [a for _, _, a in pool]
    most = list(accumulate(max(a, 0) for a in reversed(values)))[::-1] + [0]   # the most the rest can add
    least = list(accumulate(min(a, 0) for a in reversed(values)))[::-1] + [0]  # the most it can take away
    found: list[list[K]] = []
    chosen: list[int] = []

    def walk(start: int, left: int) -> None:
        if len(found) >= limit:
            return
        if left == 0 and len(chosen) >= 2:
            found.append([pool[j][1] for j in sorted(chosen, key=lambda j: pool[j][0])])
        if len(chosen) == max_size:
            return
        for i in range(start, len(pool)):
            if not least[i] <= left <= most[i]:
                return
            a = values[i]
            if least[i + 1] <= left - a <= most[i + 1] or left - a == 0:
                chosen.append(i)
                walk(i + 1, left - a)
                chosen.pop()
                if len(found) >= limit:
                    return

    walk(0, amount)
    return found


def short_by(items: Sequence[tuple[K, int]], amount: int, tolerance: int) -> list[tuple[K, int]]:
    """Items the amount pays short by at most `tolerance` (bank fee deducted, rounding): (key, difference)."""
    return [(k, a - amount) for k, a in items if 0 < a - amount <= tolerance]


def discounted(items: Sequence[tuple[K, int]], amount: int, rate_per_mille: int) -> list[tuple[K, int]]:
    """Items paid with an early-payment discount of rate (per mille of the open amount, rounded half up, +-1)."""
    found = []
    for key, open_minor in items:
        discount = (open_minor * rate_per_mille + 500) // 1000
        if discount > 0 and abs(open_minor - discount - amount) <= 1:
            found.append((key, open_minor - amount))
    return found
