"""The matching benchmark end to end at 200 customers: generate -> parse -> score (engine CLI and naive).

Not part of the default run (pytest's testpaths is tests/): run `pytest bench/matching`.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from reconcile.parsers import parse_file

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import generate
import score


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    generate.generate(out, customers=200, seed=1)
    return out


def rows(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_generation_is_deterministic(bench: Path, tmp_path: Path) -> None:
    generate.generate(tmp_path, customers=200, seed=1)
    for name in ("truth.csv", "truth_lines.csv", "ar/invoices.csv", "statements/camt053_2026-11-23.xml"):
        assert (tmp_path / name).read_bytes() == (bench / name).read_bytes(), name


def test_statements_parse_to_exactly_the_truth_lines(bench: Path) -> None:
    parsed: dict[tuple[str, str], int] = {}
    occurrences = 0
    for path in sorted((bench / "statements").iterdir()):
        for statement in parse_file(path).statements:
            for ref, amount in statement.lines.select("source_ref", "amount_minor").iter_rows():
                occurrences += 1
                assert parsed.setdefault((statement.account, ref), amount) == amount
    truth = {(r["account"], r["source_ref"]): r for r in rows(bench / "truth_lines.csv")}
    assert set(parsed) == set(truth)
    assert occurrences > len(parsed)  # overlapping statements repeat lines
    for key, amount in parsed.items():
        assert Decimal(truth[key]["amount"]) * 100 == amount


def test_truth_is_consistent(bench: Path) -> None:
    lines = {(r["account"], r["source_ref"]): r for r in rows(bench / "truth_lines.csv")}
    cash: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for r in rows(bench / "truth.csv"):
        if r["kind"] != "write_off":
            cash[(r["account"], r["source_ref"])] += Decimal(r["amount"])
    for key, line in lines.items():
        if line["should_post"] == "true":
            assert cash[key] == Decimal(line["amount"]), key
        else:
            assert key not in cash, key
    scenarios = {r["scenario"] for r in lines.values()}
    assert set(generate.SCENARIOS) | {"debit"} == scenarios
    invoices = rows(bench / "ar" / "invoices.csv")
    for ref in (i["payment_reference"] for i in invoices if i["payment_reference"]):
        digits = "".join(str(int(ch, 36)) for ch in ref[4:] + ref[:4])
        assert int(digits) % 97 == 1, ref


def test_unique_fit_counts_subsets() -> None:
    assert generate.fits([100, 200, 300], 300, 300) == 2          # {300} and {100, 200}
    assert generate.fits([100, 250, 999], 350, 350) == 1
    assert generate.fits([100, 250, 999], 1_000, 1_100) == 1      # {100, 999}


def test_canonical_reads_both_write_off_conventions() -> None:
    cash_first = [("INV-1", "", "invoice", Decimal("99.50")), ("INV-1", "", "write_off", Decimal("0.50"))]
    full_first = [("INV-1", "", "invoice", Decimal("100.00")), ("INV-1", "", "write_off", Decimal("-0.50"))]
    assert score.canonical(cash_first) == score.canonical(full_first)
    reversed_ = [("INV-1", "", "invoice", Decimal("10.00")), ("INV-1", "", "reversal", Decimal("-10.00"))]
    assert score.canonical(reversed_) == []


def test_score_runs_engine_and_naive_end_to_end(bench: Path) -> None:
    result = subprocess.run([sys.executable, str(HERE / "score.py"), str(bench)],
                            check=False, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    for scenario in generate.SCENARIOS:
        assert scenario in result.stdout
    assert "TOTAL" in result.stdout and "engine end to end" in result.stdout
    naive = score.load_outcome(bench / "naive")
    tallies, strangers = score.score(bench, naive)
    assert not strangers
    # the baseline gets every exact reference right and never posts a bank fee as the truth wants
    assert tallies["exact"].correct == tallies["exact"].should
    assert tallies["bank_fee"].correct == 0
    engine = score.load_outcome(bench / "engine")
    assert engine.posted, "the engine posted nothing"
