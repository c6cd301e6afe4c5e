"""Exact money: Decimal at the edges, integer minor units everywhere else.

Converts between decimal strings / Decimal and integer minor units using the
ISO 4217 exponent of each currency, and splits amounts so parts add up to
the cent. Nothing here ever touches a float.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

# ISO 4217 currencies whose minor unit is not 1/100. Everything else has 2.
_EXPONENTS: dict[str, int] = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0,
    "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    "CLF": 4, "UYW": 4,
}


def exponent(currency: str) -> int:
    """Number of decimal places of a currency's minor unit (ISO 4217)."""
    return _EXPONENTS.get(currency.upper(), 2)


def parse_decimal(text: str) -> Decimal:
    """Parse a plain decimal string ("-1234.50"); raises ValueError on anything else."""
    cleaned = text.strip()
    if not cleaned:
        raise ValueError("empty amount")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(f"not a decimal amount: {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"not a finite amount: {text!r}")
    return value


def to_minor(amount: Decimal | str | int, currency: str, *, exact: bool = True) -> int:
    """Decimal amount -> integer minor units.

    With exact=True (the default) an amount with more decimals than the
    currency allows is refused rather than rounded: a bank line of 1.005 EUR
    is an input problem, not something to guess at.
    """
    value = amount if isinstance(amount, Decimal) else parse_decimal(str(amount))
    scaled = value.scaleb(exponent(currency))
    integral = scaled.to_integral_value(rounding=ROUND_HALF_EVEN)
    if exact and integral != scaled:
        raise ValueError(f"{value} has more decimals than {currency} allows")
    return int(integral)


def from_minor(minor: int, currency: str) -> Decimal:
    """Integer minor units -> Decimal with the currency's number of places."""
    places = exponent(currency)
    return Decimal(int(minor)).scaleb(-places).quantize(Decimal(1).scaleb(-places))


def format_minor(minor: int, currency: str) -> str:
    """Minor units as a plain signed decimal string ("-12.50")."""
    return str(from_minor(minor, currency))


# Separators for people reading amounts: (thousands, decimal). Exports and JSON never group.
NUMBER_STYLES: dict[str, tuple[str, str]] = {
    "en": (",", "."),        # 1,234,567.89
    "de": (".", ","),        # 1.234.567,89
    "fr": ("\u202f", ","),  # 1 234 567,89 (narrow no-break space)
    "ch": ("\u2019", "."),  # 1’234’567.89
    "plain": ("", "."),      # 1234567.89
}


def format_amount(minor: int, currency: str, style: str = "en") -> str:
    """Minor units as people read them: the currency's decimals with thousands separators ("1,234.50")."""
    thousands, point = NUMBER_STYLES.get(style, NUMBER_STYLES["en"])
    text = format_minor(abs(minor), currency)
    whole, _, frac = text.partition(".")
    groups: list[str] = []
    while len(whole) > 3:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    grouped = thousands.join([whole, *groups]) if thousands else whole + "".join(groups)
    return ("-" if minor < 0 else "") + grouped + (point + frac if frac else "")


def split_minor(total: int, weights: list[int]) -> list[int]:
    """Split total minor units in proportion to weights; the parts add up to total.

    Largest-remainder method; ties go to the earliest part so the split is
    deterministic.
    """
    if not weights:
        raise ValueError("nothing to split across")
    weight_sum = sum(weights)
    if weight_sum == 0:
        raise ValueError("weights add up to zero")
    shares = [total * w // weight_sum for w in weights]
    remainders = [total * w - s * weight_sum for w, s in zip(weights, shares)]
    left = total - sum(shares)
    for index in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:left]:
        shares[index] += 1
    return shares
