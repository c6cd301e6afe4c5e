"""Who paid? Customer candidates for each line from payer accounts and payer names.

Accounts are exact (normalised IBAN / account number against the customer's
known and learned accounts). Names are fuzzy, but only on blocked pairs: a
line is compared with the customers that share its rarest blocks (words,
pairs of words or of their stems, first letters, an initial with a word) of
their folded name or an alias, within a budget per line, never with every
customer. Scores (0-100) come from rapidfuzz over the folded names, the best
of token-set, token-sort and a prefix comparison for names the bank cut off.
Every sort that feeds a cut is total, so the same input gives the same
candidates whatever the order of its rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
from rapidfuzz import fuzz
from rapidfuzz.process import cpdist

from reconcile.match.normalise import abbreviated, account_norm, name_fold

CANDIDATES: dict[str, pl.DataType] = {
    "bank_line_id": pl.Int64(), "customer_id": pl.String(), "by": pl.String(), "score": pl.Float64(),
    "matched_name": pl.String(),
}
BLOCK_BUDGET = 300           # names a payer's blocks may bring, the rarest blocks first
BIGGEST_BLOCK = 1000         # a block shared by more customers than this brings none ("trading", "services")
COMPARED = 40                # names scored per payer at most: those that share the most blocks with it
KEEP_PER_LINE = 10           # best-scoring customers kept per line
MAX_WORDS = 8                # words of a name used for blocking (a 70-character name has about 8)
# banks cut payer names to their field's width (OFX 32, SWIFT 35, SEPA 70; a trailing blank may go too)
MAYBE_CUT_AT = [31, 32, 34, 35, 69, 70]


REFERENCE_PREFIX = "REF:"  # learned reference patterns live beside the payer accounts (learning.py)


def by_reference_pattern(lines: pl.DataFrame, payer_accounts: pl.DataFrame) -> pl.DataFrame:
    """Customers whose learned reference pattern (a customer number they always write) is in the line."""
    patterns = payer_accounts.filter(pl.col("account").str.starts_with(REFERENCE_PREFIX)).select(
        "customer_id", pl.col("account").str.slice(len(REFERENCE_PREFIX)).alias("token"))
    if patterns.height == 0:
        return pl.DataFrame(schema=CANDIDATES)
    text = pl.concat_str([pl.col(c).fill_null("") for c in ("remittance", "reference")],
                         separator=" ").str.to_uppercase()
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
    return (names.with_columns(name_fold(pl.col("raw"), False).alias("plain"))
            .with_columns(abbreviated(pl.col("plain")).alias("folded"))
            .filter(pl.col("folded").str.len_chars() >= 2)
            .sort("customer_id", "by", "raw"))  # name ids never depend on the order rows came in


def _block_keys(frame: pl.DataFrame, key: str, payer: bool = False) -> pl.DataFrame:
    """(key, block) rows. Blocks: each word of 3+ letters, each pair of such words (in either order), the
    first letters of the first two words, and the first word's initial with each other word. Single words
    are common among thousands of customers; pairs of words rarely are, and survive a typo, an
    abbreviation or a truncation in any other word; "M. Lebensmittel Stuttgart" still meets "Meyer
    Lebensmittel Stuttgart" on "m~lebensmittel" (a payer's name has these blocks only when it starts with
    an initial)."""
    words = (
        frame.select(key, pl.col("folded").str.split(" ").alias("word"))
        .explode("word")
        .filter(pl.col("word").str.len_chars() >= 3)
        .unique(maintain_order=True)  # the first MAX_WORDS words of a name, always the same ones
        .with_columns(pl.int_range(pl.len()).over(key).alias("n"))
        .filter(pl.col("n") < MAX_WORDS)
    )
    # pairs of words, and of their first three letters: a typo further on ("Zimermann", "Hanel") keeps those
    stems = words.select(key, pl.col("word").alias("whole"), pl.col("word").str.slice(0, 3).alias("stem"))
    both = stems.join(stems, on=key, suffix="_2").filter(pl.col("whole") < pl.col("whole_2"))
    pairs = pl.concat([
        both.select(key, (pl.col("whole") + "+" + pl.col("whole_2")).alias("block")),
        both.filter(pl.col("stem") != pl.col("stem_2")).select(
            key,
            (pl.min_horizontal("stem", "stem_2") + "+" + pl.max_horizontal("stem", "stem_2") + "*").alias("block")),
    ])
    first = pl.col("folded").str.extract(r"^(\S{1,4})\S*\s*(\S{0,4})", 1)
    second = pl.col("folded").str.extract(r"^(\S{1,4})\S*\s*(\S{0,4})", 2)
    prefix = frame.select(key, ("^" + first + second).alias("block"))
    initial = (
        frame.select(key, pl.col("folded").str.slice(0, 1).alias("initial"),
                     pl.col("folded").str.extract(r"^\S+", 0).alias("lead"))
        .filter(pl.col("lead").str.len_chars() == 1 if payer else pl.lit(True))
        .join(words, on=key)
        .filter(pl.col("word") != pl.col("lead"))
        .select(key, (pl.col("initial") + "~" + pl.col("word")).alias("block"))
    )
    return pl.concat([words.select(key, pl.col("word").alias("block")), pairs, prefix, initial]).drop_nulls().unique()


def _score(payer: list[str], known: list[str], payer_as_cut: list[str],
           known_as_cut: list[str]) -> np.ndarray[Any, np.dtype[np.float64]]:
    # token_set forgives extra words ("ACME BERLIN" paying for Acme) but calls "Favre" a perfect match for
    # "Favre Prazisionstechnik Consulting"; token_sort tells that family apart. The mean keeps both virtues.
    token_set = cpdist(payer, known, scorer=fuzz.token_set_ratio, workers=-1)
    token_sort = cpdist(payer, known, scorer=fuzz.token_sort_ratio, workers=-1)
    best = (token_set + token_sort) / 2
    # and the names as the bank may have cut them (_as_cut below)
    prefix = cpdist(payer_as_cut, known_as_cut, scorer=fuzz.ratio, workers=-1)
    scores: np.ndarray[Any, np.dtype[np.float64]] = np.maximum(best, prefix).astype(np.float64)
    return scores


def _as_cut(pairs: pl.DataFrame) -> tuple[list[str], list[str]]:
    """A payer name the bank may have cut off (as long as a name field: MAYBE_CUT_AT) compares, as written
    (no short forms: "INTERNATIONA" is no "intl"), with the same length of the customer's name; any other is
    compared whole, and "Rousseau Electricite" is no perfect match for "Rousseau Electricite Batiment"."""
    length = pl.col("plain").str.len_chars()
    cut = pl.col("cut") & (length >= 12) & (length < pl.col("plain_known").str.len_chars())
    frame = pairs.select(
        pl.when(pl.col("cut")).then(pl.col("plain")).otherwise(pl.col("payer")).alias("p"),
        pl.when(cut).then(pl.col("plain_known").str.slice(0, length))
        .when(pl.col("cut")).then(pl.col("plain_known")).otherwise(pl.col("known")).alias("k"),
    )
    return frame["p"].to_list(), frame["k"].to_list()


def by_name(lines: pl.DataFrame, customers: pl.DataFrame, aliases: pl.DataFrame) -> pl.DataFrame:
    payers = (
        lines.select("bank_line_id", name_fold(pl.col("counterparty_name"), False).alias("plain"),
                     pl.col("counterparty_name").str.len_chars().is_in(MAYBE_CUT_AT).alias("cut"))
        .with_columns(abbreviated(pl.col("plain")).alias("folded"))
        .filter(pl.col("folded").str.len_chars() >= 2)
    )
    names = _names(customers, aliases).with_row_index("name_id")
    if payers.height == 0 or names.height == 0:
        return pl.DataFrame(schema=CANDIDATES)
    name_blocks = _block_keys(names, "name_id")
    sizes = name_blocks.join(names.select("name_id", "customer_id"), on="name_id").group_by("block").agg(
        pl.col("customer_id").n_unique().alias("n"))
    # Each payer's blocks, the rarest first, while they bring fewer than BLOCK_BUDGET names (the block that
    # crosses it still counts; one shared by more than BIGGEST_BLOCK customers never does); of those names,
    # the COMPARED that share the most blocks with it. A name of rare words meets few names; one made of
    # common words ("Impianti Milano Firenze" among 100,000 customers) still meets its customers; and the
    # work per payer is bounded at any size.
    compared = (
        _block_keys(payers, "bank_line_id", payer=True).join(sizes, on="block")
        .filter(pl.col("n") <= BIGGEST_BLOCK)
        .sort("bank_line_id", "n", "block")
        .filter((pl.col("n").cum_sum().over("bank_line_id") - pl.col("n")) < BLOCK_BUDGET)
        .join(name_blocks, on="block")
        .group_by("bank_line_id", "name_id").len("shared")
        .sort(["bank_line_id", "shared", "name_id"], descending=[False, True, False])
        .filter(pl.int_range(pl.len()).over("bank_line_id") < COMPARED)
        .select("bank_line_id", "name_id")
    )
    pairs = (
        compared.join(payers, on="bank_line_id")
        .join(names.select("name_id", "customer_id", "by", pl.col("folded").alias("known"),
                           pl.col("plain").alias("plain_known"), "raw"), on="name_id")
        .sort("bank_line_id", "name_id")
    )
    if pairs.height == 0:
        return pl.DataFrame(schema=CANDIDATES)
    # an initial stands for the customer's first word when it fits: "E. Trasporti Milano" is read as
    # "Esposito Trasporti Milano" against Esposito, and stays "e trasporti milano" against Conti
    lead, known_lead = pl.col("folded").str.extract(r"^(\S+)", 1), pl.col("known").str.extract(r"^(\S+)", 1)
    pairs = pairs.with_columns(
        pl.when((lead.str.len_chars() == 1) & (known_lead.str.len_chars() > 1) & known_lead.str.starts_with(lead))
        .then(known_lead + pl.col("folded").str.slice(1)).otherwise(pl.col("folded")).alias("payer"))
    scores = _score(pairs["payer"].to_list(), pairs["known"].to_list(), *_as_cut(pairs))
    # where short forms were used, the names as written too: a typo in a word of trade ("MANUUFACTURING")
    # must not count against a name that spells it out
    spelt = pairs.with_row_index("i").filter((pl.col("folded") != pl.col("plain"))
                                             | (pl.col("known") != pl.col("plain_known")))
    if spelt.height:
        written = _score(spelt["plain"].to_list(), spelt["plain_known"].to_list(), spelt["plain"].to_list(),
                         spelt["plain_known"].to_list())
        index = spelt["i"].to_numpy()
        scores[index] = np.maximum(scores[index], written)
    return (
        pairs.with_columns(pl.Series("score", scores))
        .sort(["bank_line_id", "score", "by", "raw", "customer_id"], descending=[False, True, False, False, False])
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
        found.sort(["bank_line_id", "customer_id", "score", "by", "matched_name"],
                   descending=[False, False, True, False, False])
        .unique(["bank_line_id", "customer_id"], keep="first", maintain_order=True)
        .sort(["bank_line_id", "score", "customer_id"], descending=[False, True, False])  # deterministic
    )
