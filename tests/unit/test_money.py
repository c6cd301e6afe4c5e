"""Exact money: Decimal <-> minor units, vectorised parsing and formatting, splits."""

from __future__ import annotations

from decimal import Decimal

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconcile.core.money import format_minor, from_minor, split_minor, to_minor
from reconcile.core.money_expr import exponent_expr, minor_units_expr
from reconcile.services.exports import decimal_text


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [("1234.50", "EUR", 123450), ("-0.01", "EUR", -1), ("1500", "JPY", 1500), ("1.234", "KWD", 1234),
     ("0.10", "usd", 10)],
)
def test_to_minor_uses_the_currency_exponent(amount: str, currency: str, minor: int) -> None:
    assert to_minor(amount, currency) == minor
    assert from_minor(minor, currency) == Decimal(amount)


def test_to_minor_refuses_more_decimals_than_the_currency_has() -> None:
    with pytest.raises(ValueError, match="more decimals than EUR allows"):
        to_minor("1.005", "EUR")
    with pytest.raises(ValueError, match="more decimals than JPY allows"):
        to_minor("10.5", "JPY")


def test_split_adds_up_to_the_cent() -> None:
    assert split_minor(100, [1, 1, 1]) == [34, 33, 33]
    assert sum(split_minor(1_000_001, [3, 7, 11, 13])) == 1_000_001


@given(st.integers(-10**12, 10**12), st.sampled_from(["EUR", "JPY", "KWD", "CLF"]))
def test_vectorised_parse_and_format_agree_with_decimal(minor: int, currency: str) -> None:
    text = format_minor(minor, currency)
    frame = pl.DataFrame({"t": [text], "c": [currency], "m": [minor]})
    out = frame.select(
        minor_units_expr(pl.col("t"), exponent_expr(pl.col("c"))).alias("parsed"),
        decimal_text(pl.col("m"), pl.col("c")).alias("formatted"),
    )
    assert out.row(0) == (minor, text)


def test_vectorised_parse_refuses_what_is_not_a_plain_decimal() -> None:
    values = ["12,50", "1.005", "abc", "", "1e3", "--1", " 7.5 "]
    out = pl.DataFrame({"t": values}).select(minor_units_expr(pl.col("t"), 2).alias("m"))["m"].to_list()
    assert out == [None, None, None, None, None, None, 750]


def test_amounts_for_people_have_the_currency_decimals_and_thousands_separators() -> None:
    from reconcile.core.money import format_amount

    assert format_amount(11891282876, "EUR") == "118,912,828.76"
    assert format_amount(-5, "EUR") == "-0.05"
    assert format_amount(1234567, "JPY") == "1,234,567"
    assert format_amount(1234567890, "KWD", "de") == "1.234.567,890"
    assert format_amount(100000, "EUR", "plain") == "1000.00"
