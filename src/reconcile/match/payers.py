"""Who paid? Customer candidates for each line from payer accounts and payer names.

Accounts are exact (normalised IBAN / account number against the customer's
known and learned accounts). Names are fuzzy, but only on blocked pairs: a
line is compared with the customers that share a distinctive word (or the
first letters) of their folded name or an alias, never with every customer.
Scores (0-100) come from rapidfuzz over the folded names, the best of
token-set, token-sort and a prefix comparison for names the bank truncated.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from rapidfuzz import fuzz
from rapidfuzz.process import cpdist

from reconcile.match.normalise import account_norm, name_fold

CANDIDATES: dict[str, pl.DataType] = {
    "bank_line_id": pl.Int64(), "customer_id": pl.String(), "by": pl.String(), "score": pl.Float64(),
    "matched_name": pl.String(),
}
COMMON_WORD_CUSTOMERS = 40   # a block shared by more customers than this blocks nothing ("trading", "services")
KEEP_PER_LINE = 10           # best-scoring customers kept per line
MAX_WORDS = 8                # words of a name used for blocking (a 70-character name has about 8)
TRUNCATED_AT = (32, 35, 70)  # lengths banks cut payer names to


REFERENCE_PREFIX = "REF:"  # learned reference patterns live beside the payer accounts (learning.py)


def by_reference_pattern(lines: pl.DataFrame, payer_accounts: pl.DataFrame) -> pl.DataFrame:
    """Customers whose learned reference pattern (a customer number they always write) is in the line."""
    patterns = payer_accounts.filter(pl.col("account").str.starts_with(REFERENCE_PREFIX)).select(
        "customer_id", pl.col("account").str.slice(len(REFERENCE_PREFIX)).alias("token"))
    if patterns.height == 0:
        return pl.DataFrame(schema=CANDIDATES)
    text = pl.concat_str([pl.col(c).fill_null("") for c in ("remittance", "reference")], separator=" ").str.to_uppercase()
    tokens = (
        lines.select("bank_line_id", text.str.extract_all(r"[A-Z0-9][A-Z0-9\-/\.]{2,}[A-Z0-9]").alias("token"))
        .explode("token").drop_nulls("token")
        .with_columns(pl.col("token").str.replace_all(r"[^A-Z0-9]", ""))
        .unique()
    )
    return tokens.join(patterns, on="token").select(
        "bank_line_id", "customer_id", pl.lit("account").alias("by"), pl.lit(100.0).alias("score"),
        (REFERENCE_PREFIX + pl.col("token")).alias("matched_name"))


def by_account(lines: pl.DataFrame, payer_accounts: pl.DataFrame) -> pl.DataFrame:
    payer_accounts = payer_accounts.filter(~pl.col("account").str.starts_with(REFERENCE_PREFIX))
    known = payer_accounts.select("customer_id", account_norm(pl.col("account")).alias("acct")).unique()
    return (
        lines.filter(pl.col("counterparty_account").is_not_null())
        .select("bank_line_id", account_norm(pl.col("counterparty_account")).alias("acct"))
        .filter(pl.col("acct").str.len_chars() >= 6)
        .join(known, on="acct")
        .select("bank_line_id", "customer_id", pl.lit("account").alias("by"), pl.lit(100.0).alias("score"),
                pl.col("acct").alias("matched_name"))
    )


def _names(customers: pl.DataFrame, aliases: pl.DataFrame) -> pl.DataFrame:
    names = pl.concat([
        customers.select("customer_id", pl.col("name").alias("raw"), pl.lit("name").alias("by")),
        aliases.select("customer_id", pl.col("alias").alias("raw"), pl.lit("alias").alias("by")),
    ])
    return names.with_columns(name_fold(pl.col("raw")).alias("folded")).filter(pl.col("folded").str.len_chars() >= 2)


def _block_keys(frame: pl.DataFrame, key: str) -> pl.DataFrame:
    """(key, block) rows. Blocks: each word of 3+ letters, each pair of such words (in either order), and
    the first letters of the first two words. Single words are common among thousands of customers; pairs
    of words rarely are, and survive a typo, an abbreviation or a truncation in any other word."""
    words = (
        frame.select(key, pl.col("folded").str.split(" ").alias("word"))
        .explode("word")
        .filter(pl.col("word").str.len_chars() >= 3)
        .unique()
        .with_columns(pl.int_range(pl.len()).over(key).alias("n"))
        .filter(pl.col("n") < MAX_WORDS)
    )
    pairs = (
        words.join(words, on=key, suffix="_2")
        .filter(pl.col("word") < pl.col("word_2"))
        .select(key, (pl.col("word") + "+" + pl.col("word_2")).alias("block"))
    )
    prefix = frame.select(key, ("^" + pl.col("folded").str.extract(r"^(\S{1,4})\S*\s*(\S{0,4})", 1)
                                + pl.col("folded").str.extract(r"^(\S{1,4})\S*\s*(\S{0,4})", 2)).alias("block"))
    return pl.concat([words.select(key, pl.col("word").alias("block")), pairs, prefix]).drop_nulls().unique()


def _score(payer: list[str], known: list[str]) -> np.ndarray:
    # token_set forgives extra words ("ACME BERLIN" paying for Acme) but calls "Favre" a perfect match for
    # "Favre Prazisionstechnik Consulting"; token_sort tells that family apart. The mean keeps both virtues.
    token_set = cpdist(payer, known, scorer=fuzz.token_set_ratio, workers=1)
    token_sort = cpdist(payer, known, scorer=fuzz.token_sort_ratio, workers=1)
    best = (token_set + token_sort) / 2
    # a truncated payer name compares with the same length of the customer's name
    cut = [k[: len(p)] if len(p) >= 12 and len(p) < len(k) else k for p, k in zip(payer, known, strict=True)]
    prefix = cpdist(payer, cut, scorer=fuzz.ratio, workers=1)
    return np.maximum(best, prefix).astype(np.float64)


def by_name(lines: pl.DataFrame, customers: pl.DataFrame, aliases: pl.DataFrame) -> pl.DataFrame:
    payers = (
        lines.select("bank_line_id", name_fold(pl.col("counterparty_name")).alias("folded"))
        .filter(pl.col("folded").str.len_chars() >= 2)
    )
    names = _names(customers, aliases).with_row_index("name_id")
    if payers.height == 0 or names.height == 0:
        return pl.DataFrame(schema=CANDIDATES)
    name_blocks = _block_keys(names, "name_id")
    common = name_blocks.join(names.select("name_id", "customer_id"), on="name_id").group_by("block").agg(
        pl.col("customer_id").n_unique().alias("n")
    ).filter(pl.col("n") > COMMON_WORD_CUSTOMERS).select("block")
    name_blocks = name_blocks.join(common, on="block", how="anti")
    pairs = (
        _block_keys(payers, "bank_line_id").join(name_blocks, on="block")
        .select("bank_line_id", "name_id").unique()
        .join(payers, on="bank_line_id")
        .join(names.select("name_id", "customer_id", "by", pl.col("folded").alias("known"), "raw"), on="name_id")
    )
    if pairs.height == 0:
        return pl.DataFrame(schema=CANDIDATES)
    scores = _score(pairs["folded"].to_list(), pairs["known"].to_list())
    return (
        pairs.with_columns(pl.Series("score", scores))
        .sort(["score", "by", "raw"], descending=[True, False, False])
        .unique(["bank_line_id", "customer_id"], keep="first", maintain_order=True)
        .filter(pl.int_range(pl.len()).over("bank_line_id") < KEEP_PER_LINE)
        .select("bank_line_id", "customer_id", "by", "score", pl.col("raw").alias("matched_name"))
    )


def payer_candidates(lines: pl.DataFrame, customers: pl.DataFrame, aliases: pl.DataFrame,
                     payer_accounts: pl.DataFrame, names_for: pl.DataFrame | None = None) -> pl.DataFrame:
    """Every (line, customer) the payer details point to, best evidence per pair.

    Names are compared only for the lines in `names_for` (default all): a line whose references already
    name its invoices, or whose account is known, needs no fuzzy name search.
    """
    accounts = pl.concat([by_account(lines, payer_accounts), by_reference_pattern(lines, payer_accounts)])
    named = lines if names_for is None else lines.join(names_for.select("bank_line_id"), on="bank_line_id")
    named = named.join(accounts.select("bank_line_id").unique(), on="bank_line_id", how="anti")
    found = pl.concat([accounts, by_name(named, customers, aliases)])
    return (
        found.sort(["score", "by", "matched_name"], descending=[True, False, False])
        .unique(["bank_line_id", "customer_id"], keep="first", maintain_order=True)
        .sort(["bank_line_id", "score", "customer_id"], descending=[False, True, False])  # deterministic
    )
