"""Vectorised money parsing: decimal strings -> Int64 minor units in polars.

The frame-side twin of money.to_minor: no floats anywhere, invalid text or
too many decimals for the currency become null so the caller can name the
first bad row.
"""

from __future__ import annotations

import polars as pl

from reconcile.core.money import _EXPONENTS


def exponent_expr(currency: pl.Expr) -> pl.Expr:
    """ISO 4217 exponent of each row's currency (2 unless listed)."""
    table = pl.DataFrame({"c": list(_EXPONENTS), "e": list(_EXPONENTS.values())})
    return currency.str.to_uppercase().replace_strict(
        table["c"], table["e"], default=2, return_dtype=pl.Int64
    )


def minor_units_expr(text: pl.Expr, exponent: pl.Expr | int) -> pl.Expr:
    """'-1234.5' with exponent 2 -> -123450; null when not a plain decimal or too precise."""
    exp = exponent if isinstance(exponent, pl.Expr) else pl.lit(exponent, dtype=pl.Int64)
    s = text.cast(pl.String).str.strip_chars()
    parts = s.str.extract_groups(r"^([+-]?)(\d+)(?:\.(\d*))?$")
    sign = parts.struct.field("1")
    whole = parts.struct.field("2")
    frac = parts.struct.field("3").fill_null("")
    frac_trimmed = frac.str.strip_chars_end("0")
    too_precise = frac_trimmed.str.len_chars() > exp
    frac_value = (
        pl.when(exp == 0)
        .then(pl.lit(0, dtype=pl.Int64))
        .otherwise(frac_trimmed.str.pad_end(4, "0").str.slice(0, exp).cast(pl.Int64, strict=False).fill_null(0))
    )
    scale = pl.lit(10, dtype=pl.Int64).pow(exp)
    magnitude = whole.cast(pl.Int64, strict=False) * scale + frac_value
    signed = pl.when(sign == "-").then(-magnitude).otherwise(magnitude)
    return pl.when(whole.is_null() | too_precise).then(None).otherwise(signed).cast(pl.Int64)
