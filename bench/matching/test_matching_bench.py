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
from reconcile.parsers.advice import parse_advice, sniff_advice

HERE = Path(__file__).resolve().parent
pytestmark = [pytest.mark.e2e, pytest.mark.slow]
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
    advices = sorted(p.name for p in (bench / "statements").glob("advices_*.csv"))
    assert advices and advices == sorted(p.name for p in (tmp_path / "statements").glob("advices_*.csv"))
    for name in advices:
        assert (tmp_path / "statements" / name).read_bytes() == (bench / "statements" / name).read_bytes(), name


def advice_files(folder: Path) -> list[Path]:
    return [p for p in sorted(folder.iterdir()) if sniff_advice(p.read_bytes()[:65536])]


def test_statements_parse_to_exactly_the_truth_lines(bench: Path) -> None:
    parsed: dict[tuple[str, str], int] = {}
    occurrences = 0
    advices = advice_files(bench / "statements")
    for path in sorted((bench / "statements").iterdir()):
        if path in advices:
            continue
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


def test_every_advice_line_has_its_advice(bench: Path) -> None:
    """The advice files are the generic-advice layout, each advice balanced, one advice per advice_* line: its
    amount and currency, and for a line that should post the invoices of its truth rows."""
    advices: dict[tuple[str, int], list[set[str]]] = defaultdict(list)
    for path in advice_files(bench / "statements"):
        parsed = parse_advice(path.read_bytes(), path)
        assert parsed.format == "csv-advice:generic-advice" and not parsed.warnings
        for ref, ccy, amount in parsed.advices.select("advice_ref", "currency", "payment_amount_minor").iter_rows():
            numbers = set(parsed.lines.filter(parsed.lines["advice_ref"] == ref)["invoice_number"].to_list())
            advices[(ccy, amount)].append(numbers)
    truth: dict[tuple[str, str], set[str]] = defaultdict(set)
    for r in rows(bench / "truth.csv"):
        truth[(r["account"], r["source_ref"])].add(r["invoice_number"])
    lines = [r for r in rows(bench / "truth_lines.csv") if r["scenario"].startswith("advice_")]
    assert {r["scenario"] for r in lines} == set(generate.ADVICE_SCENARIOS)
    assert sum(len(v) for v in advices.values()) == len(lines)
    for r in lines:
        found = advices[(r["currency"], int(Decimal(r["amount"]) * 100))]
        assert len(found) == 1, r
        if r["should_post"] == "true":
            assert found[0] == truth[(r["account"], r["source_ref"])], r


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
