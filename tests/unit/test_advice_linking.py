"""Linking advices to payments: the evidence must point one way, and a busy day stays fast."""

from __future__ import annotations

import time
from datetime import date, timedelta

import polars as pl
import pytest

from reconcile.match.advices import link

pytestmark = pytest.mark.unit

DAY = date(2026, 3, 2)


def _lines(rows: list[tuple[int, int, str, str | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        [{"bank_line_id": i, "amount_minor": a, "currency": "USD", "remittance": text, "end_to_end_id": None,
          "booking_date": DAY, "counterparty_name": name} for i, a, text, name in rows],
        schema={"bank_line_id": pl.Int64(), "amount_minor": pl.Int64(), "currency": pl.String(),
                "remittance": pl.String(), "end_to_end_id": pl.String(), "booking_date": pl.Date(),
                "counterparty_name": pl.String()})


def _advices(rows: list[tuple[int, int, str | None, str | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        [{"advice_id": i, "bank_line_id": None, "linked_by": None, "currency": "USD", "payment_amount_minor": a,
          "end_to_end_id": None, "trace_number": trace, "payment_date": DAY - timedelta(days=1),
          "payer_name": payer} for i, a, trace, payer in rows],
        schema={"advice_id": pl.Int64(), "bank_line_id": pl.Int64(), "linked_by": pl.String(),
                "currency": pl.String(), "payment_amount_minor": pl.Int64(), "end_to_end_id": pl.String(),
                "trace_number": pl.String(), "payment_date": pl.Date(), "payer_name": pl.String()})


def test_links_by_trace_then_by_payer_and_leaves_a_tie_to_a_person() -> None:
    lines = _lines([
        (1, 100_00, "ACH CTX TRN 77001234", "BIGBOX STORES"),
        (2, 250_00, "PAYMENT", "ACME TOOLS INC"),
        (3, 900_00, "PAYMENT", "TWIN CO"),
        (4, 900_00, "PAYMENT", "TWIN CO"),      # two payments fit the third advice equally: nobody decides
        (5, -100_00, "ACH CTX TRN 77001234", "BIGBOX STORES"),  # a debit is never an advice's payment
    ])
    advices = _advices([(10, 100_00, "77001234", "Bigbox"), (11, 250_00, None, "Acme Tools"),
                        (12, 900_00, None, "Twin Co")])
    found = link(lines, advices).sort("advice_id").rows()
    assert found == [(10, 1, "trace"), (11, 2, "amount_payer")]


def test_a_day_of_twenty_thousand_payments_and_two_thousand_advices_links_each_once_in_seconds() -> None:
    n_lines, n_advices = 20_000, 2_000
    lines = _lines([(i, 10_000 + i, f"ACH CTX TRN {900000 + i}" if i < n_advices else "PAYMENT", f"PAYER {i}")
                    for i in range(n_lines)])
    advices = _advices([(i, 10_000 + i, str(900000 + i), f"Payer {i}") for i in range(n_advices)])
    started = time.perf_counter()
    found = link(lines, advices)
    elapsed = time.perf_counter() - started
    assert found.height == n_advices
    assert found.filter(pl.col("advice_id") != pl.col("bank_line_id")).height == 0
    assert set(found["linked_by"].to_list()) == {"trace"}
    assert elapsed < 10, f"linking took {elapsed:.1f} s: it must look only at payments of the advice's amount"


def test_a_payer_name_links_as_the_bank_spells_it_without_accents() -> None:
    lines = _lines([(1, 480_00, "PAYMENT", "CERNY & DVORAK A.S."), (2, 480_00, "PAYMENT", "NOVAK STAVBY SRO")])
    advices = _advices([(10, 480_00, None, "Černý & Dvořák a.s.")])
    assert link(lines, advices).rows() == [(10, 1, "amount_payer")]
