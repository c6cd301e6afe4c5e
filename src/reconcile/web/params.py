"""Request parameters of the web workspace, checked before any query runs: malformed ones give 400.

Amounts are plain decimals of at most 13 whole digits (no exponent: 1e999 is no amount), dates lie
between 1900 and 2999, ids are whole numbers that fit the database, pages are counted from 1.
The queue's view (its filters, search and sort) travels in the URL, also across Claim next and
from one item to the next; ViewState reads and writes it.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields, replace
from datetime import date
from urllib.parse import parse_qsl, urlencode

from reconcile.queue import views as queue
from reconcile.queue.views import QueueFilter
from reconcile.web.common import BadRequest

AMOUNT = re.compile(r"^-?\d{1,13}(\.\d{1,4})?$")
MAX_ID = 2**63 - 1
MAX_PAGE = 1_000_000
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2999, 12, 31)
STATUSES = ("open", "resolved", "all")


def amount(text: str, what: str = "amount") -> str | None:
    value = (text or "").strip()
    if not value:
        return None
    if not AMOUNT.match(value):
        raise BadRequest(f"{what} {value[:40]!r} is not an amount: write it like 1250.00")
    return value


def item_id(text: str) -> int:
    value = (text or "").strip()
    if not value.isdigit() or len(value) > 19 or int(value) > MAX_ID:
        raise BadRequest(f"{value[:40]!r} is not an exception id")
    return int(value)


def page_number(text: str) -> int:
    value = (text or "1").strip()
    if not value.isdigit() or not 1 <= int(value) <= MAX_PAGE:
        raise BadRequest(f"page {value[:20]!r}: give a page number from 1")
    return int(value)


def whole(text: str, what: str, *, most: int = 100_000) -> int | None:
    value = (text or "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) > most:
        raise BadRequest(f"{what} {value[:20]!r}: give a whole number up to {most}")
    return int(value)


def day(text: str, default: date) -> date:
    value = (text or "").strip()
    if not value:
        return default
    try:
        found = date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{value[:20]!r} is not a date: use YYYY-MM-DD") from None
    if not FIRST_DAY <= found <= LAST_DAY:
        raise BadRequest(
            f"{value} is outside the dates this ledger can show ({FIRST_DAY} to {LAST_DAY})"
        )
    return found


def choice(text: str, allowed: tuple[str, ...], what: str, default: str) -> str:
    value = (text or "").strip() or default
    if value not in allowed:
        raise BadRequest(f"{what} {value[:20]!r}: use one of {', '.join(allowed)}")
    return value


def words(text: str, what: str = "search", *, most: int = 200) -> str:
    value = (text or "").strip()
    if len(value) > most:
        raise BadRequest(f"{what} is longer than {most} characters")
    return value


@dataclass(frozen=True)
class ViewState:
    """The queue's view as the URL carries it: search, filters and sort (the page is separate)."""

    q: str = ""
    reason: str = ""
    assignee: str = ""
    customer: str = ""
    min_amount: str = ""
    max_amount: str = ""
    min_age: str = ""
    status: str = "open"
    sort: str = "oldest"

    @classmethod
    def read(cls, values: dict[str, str]) -> ViewState:
        """From query or form fields; every one checked (BadRequest names the bad one)."""
        state = cls(
            **{
                f.name: str(values.get(f.name) or "").strip()
                for f in fields(cls)
                if values.get(f.name) is not None
            }
        )
        state = replace(state, status=state.status or "open", sort=state.sort or "oldest")
        choice(state.status, STATUSES, "status", "open")
        choice(state.sort, queue.SORTS, "sort", "oldest")
        amount(state.min_amount, "amount from")
        amount(state.max_amount, "amount to")
        whole(state.min_age, "age in days", most=36_500)
        words(state.q)
        for name in ("reason", "assignee", "customer"):
            words(getattr(state, name), name, most=64)
        return state

    @classmethod
    def decode(cls, text: str) -> ViewState:
        return cls.read(dict(parse_qsl(text or "", keep_blank_values=False)))

    def encode(self) -> str:
        """The view as a query string, leaving out what is at its default."""
        default = ViewState()
        return urlencode({k: v for k, v in asdict(self).items() if v and v != getattr(default, k)})

    def filters(self, *, status: str | None = None) -> QueueFilter:
        shown = status or self.status
        return QueueFilter(
            status=None if shown == "all" else shown,
            reason=self.reason or None,
            assignee=self.assignee or None,
            customer=self.customer or None,
            min_amount=self.min_amount or None,
            max_amount=self.max_amount or None,
            min_age_days=int(self.min_age) if self.min_age else None,
            search=self.q or None,
        )

    def fields(self) -> dict[str, str]:
        return asdict(self)
