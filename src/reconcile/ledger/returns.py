"""Bank returns: a debit that takes back an earlier payment.

A return is a debit on the same account, of the same amount, that names the
original payment: the same EndToEndId, the original's bank reference in its
remittance, or (for a bank reversal entry, CAMT RvslInd) the same structured
reference. Only a debit that names exactly one credit is paired; a reversal
entry that names none (or several) goes to the queue for a person.
"""

from __future__ import annotations

import polars as pl

UNUSABLE_IDS = ["", "NOTPROVIDED", "NONREF", "NONE"]

PAIRS: dict[str, pl.DataType] = {"debit_line_id": pl.Int64(), "credit_line_id": pl.Int64(), "evidence": pl.String()}


def _usable(column: str) -> pl.Expr:
    value = pl.col(column).str.strip_chars().str.to_uppercase()
    return pl.when(value.is_in(UNUSABLE_IDS)).then(None).otherwise(value)


def pair_returns(debits: pl.DataFrame, credits: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(pairs, unpaired reversal debits) for debit lines against candidate credit lines.

    Both frames carry bank_line_id, account, source_ref, amount_minor, currency,
    remittance, reference, end_to_end_id, is_reversal. A credit is paired once.
    """
    keys = ["bank_line_id", "account", "amount_minor", "currency"]
    d = debits.select(
        *keys, "is_reversal", "remittance",
        _usable("end_to_end_id").alias("e2e"), _usable("reference").alias("ref"),
    ).with_columns((-pl.col("amount_minor")).alias("amount_minor"))
    c = credits.select(
        *keys, pl.col("source_ref"),
        _usable("end_to_end_id").alias("e2e"), _usable("reference").alias("ref"),
    )
    joined = d.join(c, on=["account", "amount_minor", "currency"], suffix="_credit")
    by_e2e = pl.col("e2e").is_not_null() & (pl.col("e2e") == pl.col("e2e_credit"))
    by_ref = pl.col("is_reversal") & pl.col("ref").is_not_null() & (pl.col("ref") == pl.col("ref_credit"))
    by_source = (pl.col("source_ref").str.len_chars() >= 6) & pl.col("remittance").fill_null("").str.contains(
        pl.col("source_ref"), literal=True
    )
    hits = joined.filter(by_e2e | by_ref | by_source).with_columns(
        pl.when(by_e2e).then(pl.lit("end_to_end_id")).when(by_ref).then(pl.lit("reference"))
        .otherwise(pl.lit("bank_reference_in_remittance")).alias("evidence")
    )
    # exactly one credit per debit, and each credit taken back once (the earliest debit wins)
    unique = hits.filter(pl.len().over("bank_line_id") == 1).sort("bank_line_id")
    unique = unique.filter(pl.col("bank_line_id") == pl.col("bank_line_id").first().over("bank_line_id_credit"))
    pairs = unique.select(
        pl.col("bank_line_id").alias("debit_line_id"), pl.col("bank_line_id_credit").alias("credit_line_id"), "evidence"
    )
    unpaired = debits.filter(
        pl.col("is_reversal").fill_null(False) & ~pl.col("bank_line_id").is_in(pairs["debit_line_id"].implode())
    )
    return pairs, unpaired
