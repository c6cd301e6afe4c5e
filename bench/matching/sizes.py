"""The matching benchmark at several sizes, per scenario side by side: engine and naive baseline.

Run: python bench/matching/sizes.py BASE [--sizes 200 20000] [--seed 1] [--by variant] [--skip-engine]
                                        [--pg postgresql://...]  (the engine on PostgreSQL instead of SQLite)

For each size, generates BASE/c<size> (unless it is there), runs score.py on it (the real CLI on a fresh
database, then naive.py; its full report goes to BASE/c<size>/score.txt) and prints one table: per
scenario and size, the engine's auto% / wrong% / top3% and the baseline's auto% / wrong%, then each
size's totals and timings (the engine's CLI steps end to end, and the matcher's own stages).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import generate
import score


def cell(t: score.Tally | None) -> str:
    if t is None:
        return " " * 28
    return f"{score.pct(t.correct, t.should):>7}{score.pct(t.wrong, t.posted):>7}" \
           f"{score.pct(t.suggested, t.missed):>7}{score.pct(t.shown, t.tied):>7}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", type=Path)
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 20_000])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--by", choices=["scenario", "variant"], default="scenario")
    parser.add_argument("--skip-engine", action="store_true", help="score the last exports again")
    parser.add_argument("--pg", metavar="URL", help="run the engine on a fresh schema of this PostgreSQL database")
    args = parser.parse_args(argv)
    results = {}
    reports = {}
    for size in args.sizes:
        out = (args.base / f"c{size}").resolve()
        if not (out / "truth_lines.csv").is_file():
            print(f"generating {size} customers:", generate.generate(out, size, args.seed), flush=True)
        extra = ["--skip-engine", "--skip-naive"] if args.skip_engine else []
        extra += ["--pg", args.pg] if args.pg and not args.skip_engine else []
        report = subprocess.run([sys.executable, str(HERE / "score.py"), str(out), *extra], capture_output=True,
                                text=True, check=False)
        (out / "score.txt").write_text(report.stdout + report.stderr)
        if report.returncode != 0:
            raise SystemExit(f"score.py failed at {size} customers: see {out / 'score.txt'}")
        reports[size] = report.stdout
        results[size] = {name: score.score(out, score.load_outcome(out / name), args.by)[0]
                         for name in ("engine", "naive") if (out / name / "allocations.csv").is_file()}
    groups = sorted({g for r in results.values() for tallies in r.values() for g in tallies},
                    key=lambda g: (-max(r["engine"][g].lines if g in r["engine"] else 0 for r in results.values()), g))
    head = f"{args.by:<30}"
    sub = f"{'':<30}"
    for size in args.sizes:
        head += f" | {f'{size} customers':^58}"
        sub += f" | {'lines':>6} {'engine auto  wrong   top3   ties':>28} {'naive auto  wrong':>20}"
    print(head)
    print(sub)
    print("-" * len(sub))
    totals = {size: {name: score.Tally() for name in results[size]} for size in args.sizes}
    for group in groups + ["TOTAL"]:
        text = f"{group:<30}"
        for size in args.sizes:
            if group == "TOTAL":
                engine, naive = totals[size].get("engine"), totals[size].get("naive")
            else:
                engine, naive = results[size]["engine"].get(group), results[size].get("naive", {}).get(group)
                for name, tally in (("engine", engine), ("naive", naive)):
                    if tally is not None and name in totals[size]:
                        totals[size][name].add(tally)
            lines = engine.lines if engine else 0
            naive_cell = cell(naive)[:14] if naive else " " * 14
            text += f" | {lines:>6} {cell(engine)} {naive_cell:>20}"
        if group == "TOTAL":
            print("-" * len(sub))
        print(text)
    print()
    print("auto% = posted exactly as the truth / should post; wrong% = posted to anything but the truth / posted;")
    print("top3% = queued lines that should post, or that have candidates to pick from (same-amount twins,")
    print("namesakes both fitting), with a truth invoice or a candidate among the first three suggestions;")
    print("ties% = queued lines with candidates whose suggestions name every one of them.")
    for size in args.sizes:
        print()
        print(f"{size} customers, timings (full report in {args.base / f'c{size}' / 'score.txt'}):")
        keep = False
        for row in reports[size].splitlines():
            if row.startswith(("step", "matcher stages", "load average")):
                keep = True
            if keep and row.strip():
                print("  " + row)


if __name__ == "__main__":
    main()
