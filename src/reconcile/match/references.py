"""Which invoices does a line's text name? Candidate pairs from references, vectorised.

Each pair carries how it was found, strongest first:
- `exact`: a token equals an invoice number or payment reference (separators and case aside);
- `core`: the number inside a token equals the invoice's number (prefix, OCR confusions and leading
  zeros aside), and no other invoice has that number;
- `joined`: two adjacent tokens together do (a number wrapped across 35-character remittance lines);
- `fuzzy`: one adjacent transposition, or a truncated number that is the start of a few invoices'
  numbers. Fuzzy pairs only count when exactly one of them is open for the amount paid (the decision step).
"""

from __future__ import annotations

import polars as pl

from reconcile.match.normalise import ref_core, ref_group_core, ref_norm

TOKEN = r"[A-Z0-9][A-Z0-9\-/\._]*"
RF_PRINTED = r"RF[0-9]{2}(?: ?[A-Z0-9]{4}){1,5}(?: ?[A-Z0-9]{1,3})?"
MIN_CORE = 5            # shorter numbers are amounts, dates, house numbers, not invoice numbers
MIN_FUZZY = 6
MAX_TRUNCATED_CANDIDATES = 20  # a cut-off number may fit several invoices; the amount must pick one
STRENGTH = {"exact": 4, "core": 3, "joined": 2, "fuzzy": 1}

PAIRS: dict[str, pl.DataType] = {"bank_line_id": pl.Int64(), "invoice_number": pl.String(), "found_by": pl.String()}


def _tokens(lines: pl.DataFrame) -> pl.DataFrame:
    """bank_line_id, position, norm, core for each token and each adjacent pair of tokens."""
    text = pl.concat_str(
        [pl.col(c).fill_null("") for c in ("reference", "remittance", "end_to_end_id")], separator=" "
    ).str.to_uppercase()
    single = (
        lines.select("bank_line_id", text.str.extract_all(TOKEN).alias("token"))
        .explode("token")
        .drop_nulls("token")
        .with_columns(pl.int_range(pl.len(), dtype=pl.Int64).over("bank_line_id").alias("position"),
                      ref_norm(pl.col("token")).alias("norm"))
        .filter(pl.col("norm").str.len_chars() > 0)
    )
    joined = (
        single.with_columns(pl.col("norm").shift(-1).over("bank_line_id").alias("next"))
        .drop_nulls("next")
        .select("bank_line_id", "position", (pl.col("norm") + pl.col("next")).alias("norm"))
        .filter(pl.col("norm").str.len_chars().is_between(MIN_CORE, 40))
        .with_columns(pl.lit(True).alias("is_joined"))
    )
    # creditor references are printed in groups of four: "RF18 5390 0754 7034"
    rf = (
        lines.select("bank_line_id", text.str.extract_all(RF_PRINTED).alias("token"))
        .explode("token").drop_nulls("token")
        .select("bank_line_id", pl.lit(-1, dtype=pl.Int64).alias("position"), ref_norm(pl.col("token")).alias("norm"),
                pl.lit(False).alias("is_joined"))
    )
    tokens = pl.concat([
        single.select("bank_line_id", "position", "norm", pl.lit(False).alias("is_joined"),
                      ref_group_core(pl.col("token")).alias("group_core")),
        joined.with_columns(pl.lit(None, dtype=pl.String).alias("group_core")),
        rf.with_columns(pl.lit(None, dtype=pl.String).alias("group_core")),
    ])
    return tokens.with_columns(ref_core(pl.col("norm")).alias("core")).unique()


def _group_keys(invoices: pl.DataFrame) -> pl.DataFrame:
    """group_core -> invoice: zeros dropped inside the number ("2026-004512" -> "20264512"). Weak: a truncated
    "2026-004" gives the key of "2026-0004" too, so these pairs count only when the amount agrees (fuzzy)."""
    return (
        invoices.select("invoice_number", ref_group_core(pl.col("invoice_number")).alias("group_core"))
        .filter(pl.col("group_core").str.len_chars() >= MIN_CORE)
        .unique()
        .filter(pl.len().over("group_core") <= MAX_TRUNCATED_CANDIDATES)
    )


def _invoice_keys(invoices: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(exact keys: norm -> invoice, core keys: core -> invoice) with ambiguous cores removed."""
    exact = pl.concat([
        invoices.select("invoice_number", ref_norm(pl.col("invoice_number")).alias("norm")),
        invoices.filter(pl.col("payment_reference").is_not_null()).select(
            "invoice_number", ref_norm(pl.col("payment_reference")).alias("norm")),
    ]).filter(pl.col("norm").str.len_chars() >= 4).unique()
    core = (
        invoices.select("invoice_number", ref_core(ref_norm(pl.col("invoice_number"))).alias("core"))
        .filter(pl.col("core").str.len_chars() >= MIN_CORE)
        .unique()
        .filter(pl.len().over("core") == 1)
    )
    return exact, core


def _fuzzy(unmatched: pl.DataFrame, core_keys: pl.DataFrame) -> pl.DataFrame:
    """Transposed or truncated numbers that point to exactly one invoice."""
    tokens = unmatched.filter(pl.col("core").str.len_chars() >= MIN_FUZZY).select("bank_line_id", "core").unique()
    if tokens.height == 0 or core_keys.height == 0:
        return pl.DataFrame(schema=PAIRS)
    sorted_digits = pl.col("core").str.split("").list.sort().list.join("")
    swapped = (
        tokens.with_columns(sorted_digits.alias("bag"))
        .join(core_keys.with_columns(sorted_digits.alias("bag")), on="bag", suffix="_inv")
        .filter(pl.col("core") != pl.col("core_inv"))
    )
    found = [
        (line, invoice) for line, a, b, invoice in swapped.select("bank_line_id", "core", "core_inv", "invoice_number").iter_rows()
        if _one_adjacent_swap(a, b)
    ]
    truncated = []
    for length in tokens["core"].str.len_chars().unique().to_list():
        prefixes = core_keys.filter(pl.col("core").str.len_chars() > length).with_columns(
            pl.col("core").str.slice(0, length).alias("prefix")
        ).filter(pl.len().over("prefix") <= MAX_TRUNCATED_CANDIDATES)
        truncated.append(tokens.filter(pl.col("core").str.len_chars() == length).join(
            prefixes.select("prefix", "invoice_number"), left_on="core", right_on="prefix"
        ).select("bank_line_id", "invoice_number"))
    pairs = pl.concat([pl.DataFrame(found, schema=["bank_line_id", "invoice_number"], orient="row",
                                    schema_overrides={"bank_line_id": pl.Int64(), "invoice_number": pl.String()}),
                       *truncated])
    return pairs.unique().with_columns(pl.lit("fuzzy").alias("found_by")).select(list(PAIRS))


def _one_adjacent_swap(a: str, b: str) -> bool:
    if len(a) != len(b):
        return False
    diff = [i for i in range(len(a)) if a[i] != b[i]]
    return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]


def reference_pairs(lines: pl.DataFrame, invoices: pl.DataFrame) -> pl.DataFrame:
    """One row per (line, invoice) named by the line, with the strongest way it was found."""
    if lines.height == 0 or invoices.height == 0:
        return pl.DataFrame(schema=PAIRS)
    tokens = _tokens(lines)
    exact_keys, core_keys = _invoice_keys(invoices)
    exact = tokens.join(exact_keys, on="norm").select(
        "bank_line_id", "invoice_number",
        pl.when(pl.col("is_joined")).then(pl.lit("joined")).otherwise(pl.lit("exact")).alias("found_by"))
    core = tokens.filter(pl.col("core").str.len_chars() >= MIN_CORE).join(core_keys, on="core").select(
        "bank_line_id", "invoice_number",
        pl.when(pl.col("is_joined")).then(pl.lit("joined")).otherwise(pl.lit("core")).alias("found_by"))
    strong = pl.concat([exact, core])
    named = strong.select("bank_line_id").unique()
    weak = tokens.join(named, on="bank_line_id", how="anti")
    grouped = weak.filter(pl.col("group_core").is_not_null()).join(_group_keys(invoices), on="group_core").select(
        "bank_line_id", "invoice_number", pl.lit("fuzzy").alias("found_by"))
    fuzzy = pl.concat([_fuzzy(weak, core_keys), grouped])
    pairs = pl.concat([strong, fuzzy])
    rank = pl.col("found_by").replace_strict(STRENGTH, return_dtype=pl.Int64())
    return (
        pairs.with_columns(rank.alias("rank"))
        .sort("rank", descending=True)
        .unique(["bank_line_id", "invoice_number"], keep="first", maintain_order=True)
        .drop("rank")
        .sort("bank_line_id", "invoice_number")  # deterministic: decisions and evidence repeat exactly
    )
