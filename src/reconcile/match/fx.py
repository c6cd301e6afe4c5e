"""Payments in another currency than their invoices: matched in the invoice's currency, booked in the bank's.

Pure functions. A bank line the bank gives an instructed amount for (CAMT AmtDtls/InstdAmt, OFX
ORIGCURRENCY) is matched as that amount in that currency: the rate is the bank's, exact. Otherwise, when
the team configures rates ([fx]), a line in a currency no open item is in is matched again at the day's
rate in the currencies its payer's items are in. After matching, `book_back` turns the rows (in the item's
currency) into rows in the bank line's currency that still add up to its amount, each carrying what it
settles in the item's currency; with a configured rate, a difference within the FX tolerance is booked as
an `fx` gain/loss row beside the invoice rows instead of a write-off or money on account.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Any

import polars as pl

from reconcile.core import frames
from reconcile.core.codes import Kind
from reconcile.core.evidence import evidence_of, evidence_text
from reconcile.core.money import exponent

SETTLING = ("invoice", "installment")


@dataclass(frozen=True)
class Rates:
    """Configured rates: (from, to) -> [(first day, rate)]; a day's rate is the latest on or before it.

    rate = units of `to` for one unit of `from`; the inverse pair is used when only it is configured.
    """

    table: Mapping[tuple[str, str], tuple[tuple[date, Decimal], ...]]
    tolerance: Decimal = Decimal("0.01")

    def rate(self, source: str, target: str, day: date) -> Decimal | None:
        for pair, invert in (((source, target), False), ((target, source), True)):
            found = [r for d, r in self.table.get(pair, ()) if d <= day]
            if found:
                return (Decimal(1) / found[-1]) if invert else found[-1]
        return None


@dataclass(frozen=True)
class Conversion:
    """How one bank line was presented to the matcher."""

    bank_amount: int          # minor units of the bank currency
    bank_currency: str
    amount: int               # minor units of `currency`, what the matcher saw
    currency: str
    exact: bool               # the bank's own instructed amount (True) or a configured rate (False)
    rate: Decimal             # units of `currency` per unit of the bank currency


def to_minor_of(value: Decimal | Fraction, currency: str) -> int:
    scaled = Decimal(value.numerator) / Decimal(value.denominator) if isinstance(value, Fraction) else value
    return int((scaled.scaleb(exponent(currency))).to_integral_value(rounding=ROUND_HALF_EVEN))


def instructed(lines: pl.DataFrame) -> tuple[pl.DataFrame, dict[int, Conversion]]:
    """Lines the bank gives an amount in another currency for, presented in that currency (exact rate)."""
    conversions: dict[int, Conversion] = {}
    eligible = lines.filter(
        (pl.col("amount_minor") > 0) & pl.col("instructed_currency").is_not_null()
        & (pl.col("instructed_currency") != pl.col("currency")))
    for r in eligible.iter_rows(named=True):
        amount = r["instructed_amount_minor"]
        if amount is None and r["exchange_rate"]:
            # OFX gives the rate of the original currency, not its amount: the amount follows from it
            try:
                rate = Decimal(str(r["exchange_rate"]))
            except ArithmeticError:
                continue
            if rate <= 0:
                continue
            value = Decimal(r["amount_minor"]).scaleb(-exponent(r["currency"])) / rate
            amount = to_minor_of(value, r["instructed_currency"])
            exact = False
        else:
            exact = True
        if not amount or amount <= 0:
            continue
        rate = (Decimal(amount).scaleb(-exponent(r["instructed_currency"]))
                / Decimal(r["amount_minor"]).scaleb(-exponent(r["currency"])))
        conversions[r["bank_line_id"]] = Conversion(r["amount_minor"], r["currency"], amount,
                                                    r["instructed_currency"], exact, rate)
    return present(lines, conversions), conversions


def at_rate(lines: pl.DataFrame, currencies: Mapping[int, list[str]], rates: Rates) -> dict[int, Conversion]:
    """Lines converted at the configured rate of their booking day into the first currency offered that has
    one (currencies: line id -> the currencies its payer's open items are in, preferred first)."""
    conversions: dict[int, Conversion] = {}
    for r in lines.filter(pl.col("bank_line_id").is_in(list(currencies))).iter_rows(named=True):
        for target in currencies[r["bank_line_id"]]:
            if target == r["currency"]:
                continue
            rate = rates.rate(r["currency"], target, r["booking_date"])
            if rate is None or rate <= 0:
                continue
            value = Decimal(r["amount_minor"]).scaleb(-exponent(r["currency"])) * rate
            conversions[r["bank_line_id"]] = Conversion(r["amount_minor"], r["currency"],
                                                        to_minor_of(value, target), target, False, rate)
            break
    return conversions


def present(lines: pl.DataFrame, conversions: Mapping[int, Conversion]) -> pl.DataFrame:
    """The lines as the matcher sees them: converted ones with their amount and currency replaced."""
    if not conversions:
        return lines
    ids = list(conversions)
    amounts = pl.DataFrame({"bank_line_id": ids, "_amount": [conversions[i].amount for i in ids],
                            "_currency": [conversions[i].currency for i in ids]},
                           schema={"bank_line_id": pl.Int64(), "_amount": pl.Int64(), "_currency": pl.String()})
    return lines.join(amounts, on="bank_line_id", how="left").with_columns(
        pl.coalesce("_amount", "amount_minor").alias("amount_minor"),
        pl.coalesce("_currency", "currency").alias("currency"),
    ).drop("_amount", "_currency")


def _split(total: int, weights: list[int]) -> list[int]:
    """total split in proportion to signed weights (largest remainder), the parts adding up to total."""
    whole = sum(weights)
    if whole == 0:
        return [0] * (len(weights) - 1) + [total]
    exact = [Fraction(w * total, whole) for w in weights]
    parts = [int(e) for e in exact]                 # toward zero
    rest = total - sum(parts)
    order = sorted(range(len(weights)), key=lambda i: (-(abs(exact[i] - parts[i])), i))
    for i in order[:abs(rest)]:
        parts[i] += 1 if rest > 0 else -1
    return parts


def book_back(allocations: pl.DataFrame, conversions: Mapping[int, Conversion], tolerance: Decimal) -> pl.DataFrame:
    """Rows of converted lines in the bank's currency, each with what it settles in the item's currency."""
    if not conversions or allocations.height == 0:
        return allocations.with_columns(pl.lit(None, dtype=pl.Int64).alias("settled_amount_minor"),
                                        pl.lit(None, dtype=pl.String).alias("settled_currency"))
    out: list[dict[str, Any]] = []
    for (line_id,), rows in allocations.group_by(["bank_line_id"], maintain_order=True):
        conversion = conversions.get(int(line_id))
        records = rows.to_dicts()
        if conversion is None:
            out.extend({**r, "settled_amount_minor": None, "settled_currency": None} for r in records)
            continue
        out.extend(_booked(records, conversion, tolerance))
    return pl.DataFrame(out, schema={**dict(allocations.schema), "settled_amount_minor": pl.Int64(),
                                     "settled_currency": pl.String()})


def _booked(records: list[dict[str, Any]], c: Conversion, tolerance: Decimal) -> list[dict[str, Any]]:
    settling = [r for r in records if r["kind"] in SETTLING]
    others = [r for r in records if r["kind"] not in SETTLING]
    settled = sum(r["amount_minor"] for r in settling)
    difference = sum(r["amount_minor"] for r in others)
    within = (not c.exact and settled > 0 and others
              and Decimal(abs(difference)) <= tolerance * Decimal(settled)
              and all(r["kind"] in ("on_account", "write_off") for r in others))
    evidence = {"fx": {"bank": c.bank_currency, "item": c.currency, "rate": str(c.rate),
                       "source": "bank (instructed amount)" if c.exact else "configured rate"}}
    if within:
        # the invoices settle in full in their currency; what the rate leaves over is an FX gain or loss
        value = [to_minor_of(Decimal(r["amount_minor"]).scaleb(-exponent(c.currency)) / c.rate, c.bank_currency)
                 for r in settling]
        rows = [{**r, "amount_minor": v, "currency": c.bank_currency, "settled_amount_minor": r["amount_minor"],
                 "settled_currency": c.currency, "evidence": _with(r["evidence"], evidence)}
                for r, v in zip(settling, value, strict=True)]
        fx = c.bank_amount - sum(value)
        if fx:
            rows.append({**settling[-1], "kind": Kind.FX, "invoice_number": None, "installment_no": None,
                         "amount_minor": fx, "currency": c.bank_currency, "rule": "fx_difference",
                         "settled_amount_minor": None, "settled_currency": None,
                         "evidence": _with(settling[-1]["evidence"], evidence)})
        return rows
    parts = _split(c.bank_amount, [r["amount_minor"] for r in records])
    booked = []
    for r, part in zip(records, parts, strict=True):
        moves_item = r["kind"] in SETTLING or r["kind"] == "write_off"
        booked.append({**r, "amount_minor": part, "currency": c.bank_currency,
                       "settled_amount_minor": r["amount_minor"] if moves_item else None,
                       "settled_currency": c.currency if moves_item else None,
                       "evidence": _with(r["evidence"], evidence)})
    return booked


def _with(evidence: str | None, extra: dict[str, Any]) -> str:
    return evidence_text({**evidence_of(evidence), **extra})


def empty_result_schema() -> dict[str, pl.DataType]:
    return {**frames.ALLOCATIONS, "settled_amount_minor": pl.Int64(), "settled_currency": pl.String()}
