"""The kept balances frame of the web's Balances pages: after every kind of change it equals a full
balances() recomputation, and only the customers a change touched were recomputed (both databases)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import polars as pl
from polars.testing import assert_frame_equal

from reconcile.collectors import balance_pages
from reconcile.collectors.balances import Collections, balances
from reconcile.config import load_config
from reconcile.core.errors import ReconcileError
from reconcile.queue import views
from reconcile.queue.actions import Decision, claim, reopen, resolve
from tests.web.scale import build_book

CONFIG = load_config(Path(__file__).resolve().parents[2] / "config")
RULES = Collections.from_config(CONFIG)


def test_kept_balances_follow_every_change_recomputing_only_the_touched_customers(engine, monkeypatch) -> None:
    book = build_book(engine, CONFIG, customers=300, queued=120)
    now = datetime.combine(book.as_of, time(10), tzinfo=UTC)  # decisions of the day the balances are for
    recomputed: list[Any] = []
    real = balance_pages.balances_in

    def spy(session, as_of, edges=None, *, customer=None, **rest):  # type: ignore[no-untyped-def]
        recomputed.append(customer)
        return real(session, as_of, edges, customer=customer, **rest)

    monkeypatch.setattr(balance_pages, "balances_in", spy)

    def kept_equals_full() -> pl.DataFrame:
        kept = balance_pages.all_balances(engine, book.as_of, RULES)
        full = balances(engine, book.as_of, RULES.edges, broken_after_days=RULES.broken_after_days)
        assert_frame_equal(kept, full)
        return kept

    first = kept_equals_full()
    assert recomputed == [None] and first.height >= 300
    assert balance_pages.all_balances(engine, book.as_of, RULES) is first  # nothing moved: the same frame

    queued = views.list_items(engine, config=CONFIG.queue, limit=200, sort="largest")
    positive = queued.filter(pl.col("amount_minor") > 0)
    target = str(first["customer_id"][7])

    # a claim changes no balance: nothing is recomputed
    claim(engine, int(queued["id"][0]), actor="alice", now=now, config=CONFIG.queue)
    kept_equals_full()
    assert recomputed == [None]

    # the whole line on account of a named customer: that customer (and the payer's guessed one, if any)
    item = int(positive["id"][0])
    resolve(engine, item, Decision("on_account", customer=target), actor="alice", now=now, config=CONFIG.queue)
    kept_equals_full()
    assert isinstance(recomputed[-1], list) and target in recomputed[-1] and len(recomputed[-1]) <= 2

    # undo it: reversal rows, the item queued again
    reopen(engine, item, actor="alice", now=now, reason="wrong customer")
    kept_equals_full()
    assert isinstance(recomputed[-1], list) and target in recomputed[-1]

    # not a receivable: no allocation, but the payer's guessed customer has one unapplied payment less
    guessed = queued.filter(pl.col("customer_id").is_not_null() & (pl.col("amount_minor") > 0)
                            & ~pl.col("id").is_in([item, int(queued["id"][0])])
                            & (pl.col("customer_id") != target))
    skipped = int(guessed["id"][1])
    resolve(engine, skipped, Decision("not_receivable", code="transfer", note="own account"), actor="alice",
            now=now, config=CONFIG.queue)
    kept_equals_full()
    assert recomputed[-1] == [guessed["customer_id"][1]]

    # accept a ranked suggestion: the invoice's customer
    decided = 0
    for key in queued.filter(~pl.col("id").is_in([item, skipped]))["id"].to_list()[1:40]:
        try:
            resolve(engine, int(key), Decision("accept"), actor="alice", now=now, config=CONFIG.queue)
        except ReconcileError:  # an item without a usable suggestion is not this test's subject
            continue
        decided += 1
        if decided == 4:
            break
        kept_equals_full()
        assert isinstance(recomputed[-1], list) and 0 < len(recomputed[-1]) <= 3
    assert decided > 0

    # a row that committed below the newest id seen (a PostgreSQL transaction finishing late) moves the count
    # of recent ids without moving the newest: everyone is recomputed, since which customer it touched is unknown
    key = next(k for k in balance_pages._CACHE if k[0] == str(engine.url) and k[1] == book.as_of)
    kept = balance_pages._CACHE[key]
    balance_pages._CACHE[key] = replace(kept, marks=(kept.marks[0], kept.marks[1] - 1, *kept.marks[2:]))
    kept_equals_full()
    assert recomputed[-1] is None
