"""Matching split into independent partitions, for running on several workers (Prefect + Dask).

A line's decision reads and changes only the open items of the customers its
candidates name (invoices its references point to, customers its payer
details point to). Lines that share a customer, directly or through other
lines, are put in the same partition (union-find over customers), and each
partition gets only its customers' part of the book. Partitions then share
nothing, so deciding them apart, in any order, gives exactly the decisions of
one in-process run; `match_partitioned` is that, with the map function given.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import polars as pl

from reconcile.config import MatchingRules
from reconcile.match.book import Book, MatchResult
from reconcile.match.engine import Prepared, decide_lines, prepare


@dataclass
class Partition:
    number: int
    prepared: Prepared   # this partition's lines and candidates only
    book: Book           # this partition's customers only


class _Components:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:  # path compression
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _bucket(key: str, count: int) -> int:
    return zlib.crc32(key.encode()) % count  # stable across processes, unlike hash()


def split(prepared: Prepared, book: Book, count: int) -> list[Partition]:
    """`count` partitions (some may be empty) of the prepared lines and the book."""
    invoice_customer = dict(zip(book.invoices["invoice_number"].to_list(), book.invoices["customer_id"].to_list(),
                                strict=True))
    touched: dict[int, list[str]] = {}
    components = _Components()
    for line_id in prepared.credits["bank_line_id"].to_list():
        customers = sorted({invoice_customer[n] for n, _ in prepared.refs.get(line_id, ())}
                           | {c for c, *_ in prepared.payers.get(line_id, ())})
        touched[line_id] = customers
        for other in customers[1:]:
            components.union(customers[0], other)
    line_part = {
        line_id: _bucket(components.find(cs[0]), count) if cs else _bucket(str(line_id), count)
        for line_id, cs in touched.items()
    }
    customer_part = {c: _bucket(components.find(c), count) for c in book.customers["customer_id"].to_list()}
    lines = prepared.credits.with_columns(
        pl.col("bank_line_id").replace_strict(line_part, return_dtype=pl.Int64()).alias("_part")
    )
    customer_frame = book.customers.with_columns(
        pl.col("customer_id").replace_strict(customer_part, return_dtype=pl.Int64()).alias("_part")
    )
    parts = []
    for number in range(count):
        mine = customer_frame.filter(pl.col("_part") == number)["customer_id"].implode()
        invoices = book.invoices.filter(pl.col("customer_id").is_in(mine))
        sub_book = Book(
            customers=book.customers.filter(pl.col("customer_id").is_in(mine)),
            aliases=book.aliases.filter(pl.col("customer_id").is_in(mine)),
            payer_accounts=book.payer_accounts.filter(pl.col("customer_id").is_in(mine)),
            invoices=invoices,
            installments=book.installments.filter(pl.col("invoice_number").is_in(invoices["invoice_number"].implode())),
        )
        credits = lines.filter(pl.col("_part") == number).drop("_part")
        ids = set(credits["bank_line_id"].to_list())
        sub = replace(
            prepared, credits=credits, skipped=prepared.skipped.clear(),
            refs={k: v for k, v in prepared.refs.items() if k in ids},
            payers={k: v for k, v in prepared.payers.items() if k in ids},
            non_receivable={k: v for k, v in prepared.non_receivable.items() if k in ids},
        )
        parts.append(Partition(number, sub, sub_book))
    return parts


def decide_partition(part: Partition) -> MatchResult:
    return decide_lines(part.prepared, part.prepared.credits, part.book)


def combine(prepared: Prepared, results: Iterable[MatchResult]) -> MatchResult:
    """The partitions' results as one, in the order of one in-process run (the lines' booking order), so
    that the number of partitions changes nothing, not even the order of rows."""
    results = list(results)
    order = prepared.credits.select("bank_line_id", pl.int_range(pl.len()).alias("_order"))

    def in_order(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.join(order, on="bank_line_id", how="left").sort("_order", maintain_order=True).drop("_order")

    return MatchResult(
        allocations=in_order(pl.concat([r.allocations for r in results])),
        exceptions=in_order(pl.concat([r.exceptions for r in results])),
        skipped=pl.concat([prepared.skipped, in_order(pl.concat([r.skipped for r in results]))]),
    )


Mapper = Callable[[Callable[[Partition], MatchResult], list[Partition]], Iterable[MatchResult]]


def match_partitioned(lines: pl.DataFrame, book: Book, rules: MatchingRules, count: int,
                      mapper: Mapper = map) -> MatchResult:
    """The same decisions as match_lines, decided partition by partition through `mapper`."""
    prepared = prepare(lines, book, rules)
    return combine(prepared, mapper(decide_partition, split(prepared, book, count)))
