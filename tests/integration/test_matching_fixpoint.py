"""A realistic day (the matching benchmark's generator, ~2,000 lines) through load-ar, ingest and run_posting.

On SQLite and PostgreSQL: the run ends at a fixpoint (a second run with no new input posts nothing), its
allocations are exactly the pure matcher's on the same input in any row order, and a run killed after a
few committed chunks, then run again, leaves exactly the allocations of one clean run.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import Engine

from reconcile.config import load_config
from reconcile.services import daily
from reconcile.services import exports as export

ROOT = Path(__file__).resolve().parents[2]
CONFIG = load_config(ROOT / "config")
CUSTOMERS = 500  # ~5,000 invoices, ~2,000 bank lines over five days and three accounts
KEY = ["bank_line_id", "customer_id", "invoice_number", "installment_no", "kind", "amount_minor", "rule"]


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sys.path.insert(0, str(ROOT / "bench" / "matching"))
    try:
        import generate
    finally:
        sys.path.remove(str(ROOT / "bench" / "matching"))
    out = tmp_path_factory.mktemp("day")
    generate.generate(out, customers=CUSTOMERS, seed=3)
    return out


def _load(engine: Engine, day: Path) -> None:
    daily.load_ar(engine, day / "ar")
    for path in sorted((day / "statements").iterdir()):
        daily.ingest_file(engine, path, CONFIG.parse_options(None))


def _posted(engine: Engine) -> pl.DataFrame:
    """Every allocation row the ledger holds, in a canonical order (run ids aside)."""
    frame = export.allocations_frame(engine)
    return frame.drop("run_id").sort(["account", "source_ref", "kind", "invoice_number", "installment_no",
                                      "amount"], nulls_last=True)


def _expected(engine: Engine, shuffle: int | None = None) -> pl.DataFrame:
    """The run's decisions computed in-process, before anything is posted (rows shuffled when asked)."""
    lines, book = daily.run_inputs(engine)
    if shuffle is not None:
        lines = lines.sample(fraction=1.0, shuffle=True, seed=shuffle)
        book = type(book)(**{name: getattr(book, name).sample(fraction=1.0, shuffle=True, seed=shuffle)
                             for name in ("customers", "aliases", "payer_accounts", "invoices", "installments")})
    return daily.decide_run(engine, lines, book, CONFIG.matching).allocations


def _canonical(allocations: pl.DataFrame) -> list[tuple]:
    return sorted(allocations.select(KEY).rows(), key=repr)


def test_a_run_ends_at_a_fixpoint_and_matches_the_pure_decisions(engine: Engine, day: Path) -> None:
    _load(engine, day)
    expected = _expected(engine)
    assert _canonical(_expected(engine, shuffle=7)) == _canonical(expected)  # input row order counts for nothing
    first = daily.run_posting(engine, config=CONFIG)
    assert first.status == "completed"
    assert first.lines_considered > 1500 and first.lines_posted > 1000
    assert first.lines_exception > 0  # some lines are honestly undecidable
    posted = _posted(engine)
    assert posted["source_ref"].n_unique() == first.lines_posted
    assert len(posted) == expected.height
    again = daily.run_posting(engine, config=CONFIG)
    assert again.lines_posted == 0  # nothing became decidable: the first run already went to its fixpoint
    assert again.lines_exception == first.lines_exception
    assert _posted(engine).equals(posted)


def test_a_run_killed_midway_then_run_again_equals_one_clean_run(engine: Engine, day: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _load(engine, day)
    clean = _canonical(_expected(engine))
    config = replace(CONFIG, posting=replace(CONFIG.posting, chunk_lines=150))
    real = daily._post_one_chunk

    def dies_after_three(*args, **kwargs):  # type: ignore[no-untyped-def]
        # by chunk number, not by a count: on PostgreSQL two chunks post at once
        if int(args[6].split()[1]) > 3:  # the marker, "chunk N of T"
            raise RuntimeError("killed")
        real(*args, **kwargs)

    monkeypatch.setattr(daily, "_post_one_chunk", dies_after_three)
    with pytest.raises(RuntimeError, match="killed"):
        daily.run_posting(engine, config=config)
    partial = export.allocations_frame(engine)
    assert 0 < partial["source_ref"].n_unique() < 500  # three chunks of 150 lines went in
    monkeypatch.setattr(daily, "_post_one_chunk", real)
    daily.run_posting(engine, config=config)
    frame = export.allocations_frame(engine)
    assert _canonical_export(frame) == _canonical_export_of(engine, clean)
    assert daily.run_posting(engine, config=config).lines_posted == 0


def _canonical_export(frame: pl.DataFrame) -> list[tuple]:
    return sorted(frame.select("account", "source_ref", "customer_id", "invoice_number", "installment_no", "kind",
                               "amount", "rule").rows(), key=repr)


def _canonical_export_of(engine: Engine, decisions: list[tuple]) -> list[tuple]:
    """Pure decisions (bank_line_id ...) in the export's terms (account, source_ref ..., decimal amount)."""
    from sqlalchemy import select

    from reconcile.core.money import format_minor
    from reconcile.store import db, tables

    with db.transaction(engine) as session:
        refs = {i: (a, s) for i, a, s in session.execute(
            select(tables.BankLine.id, tables.BankLine.account, tables.BankLine.source_ref)).all()}
        currency = dict(session.execute(select(tables.BankLine.id, tables.BankLine.currency)).all())
    return sorted(((*refs[line], customer, number, no, kind, format_minor(amount, currency[line]), rule)
                   for line, customer, number, no, kind, amount, rule in decisions), key=repr)
