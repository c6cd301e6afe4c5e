"""Proves that the same database and files give byte-identical allocations, run after run, at any size.

Run: python bench/matching/determinism.py OUT [--customers 60000] [--runs 3] [--seed 1]

Generates the benchmark in OUT (unless OUT/truth_lines.csv is there), loads the snapshot and ingests the
statements once into OUT/determinism/base.db, then, for each run, copies that database, runs
`reconcile run --no-flow` on the copy and exports the allocations and the exceptions. The exports of every
run must be byte-identical to the first once the run_id column (a fresh id per run by design) is left
out. Prints the size, each run's time and posted lines, and exits 1 on the first difference (naming the
first differing row).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import generate
from score import _env, _read


def cli(python: str, *args: str) -> None:
    result = subprocess.run([python, "-m", "reconcile.cli", *args], capture_output=True, text=True, env=_env(),
                            check=False)
    if result.returncode not in (0, 1):  # a run that queued lines it could not post still counts
        raise SystemExit(f"reconcile {' '.join(args[:2])} failed ({result.returncode}): {result.stderr[-2000:]}")


def without_run_id(path: Path) -> bytes:
    """The export as CSV text without its run_id column."""
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        return b""
    keep = [i for i, name in enumerate(rows[0]) if name != "run_id"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        writer.writerow([row[i] for i in keep])
    return buffer.getvalue().encode()


def first_difference(a: bytes, b: bytes) -> str:
    for number, (x, y) in enumerate(zip(a.splitlines(), b.splitlines(), strict=False), start=1):
        if x != y:
            return f"row {number}:\n  {x.decode()}\n  {y.decode()}"
    return f"lengths differ: {len(a.splitlines())} and {len(b.splitlines())} rows"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--customers", type=int, default=60_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args(argv)
    out = args.out.resolve()
    if not (out / "truth_lines.csv").is_file():
        print("generate:", generate.generate(out, args.customers, args.seed), flush=True)
    work = out / "determinism"
    work.mkdir(parents=True, exist_ok=True)
    base = work / "base.db"
    base.unlink(missing_ok=True)
    url = f"sqlite:///{base}"
    started = time.perf_counter()
    cli(args.python, "init", "--db", url)
    cli(args.python, "load-ar", str(out / "ar"), "--db", url)
    cli(args.python, "ingest", *sorted(str(p) for p in (out / "statements").iterdir()), "--db", url)
    print(f"loaded and ingested in {time.perf_counter() - started:.1f} s", flush=True)
    last_day = max(r["booking_date"] for r in _read(out / "truth_lines.csv"))
    reference: dict[str, bytes] = {}
    for run in range(1, args.runs + 1):
        db = work / f"run{run}.db"
        shutil.copyfile(base, db)
        url = f"sqlite:///{db}"
        started = time.perf_counter()
        cli(args.python, "run", "--no-flow", "--as-of", last_day, "--db", url)
        seconds = time.perf_counter() - started
        exports = {}
        for what in ("allocations", "exceptions"):
            path = work / f"run{run}_{what}.csv"
            cli(args.python, "export", what, "-o", str(path), "--db", url)
            exports[what] = without_run_id(path)
        lines = {tuple(r[:2]) for r in csv.reader(io.StringIO(exports["allocations"].decode()))} - {
            ("source_ref", "account")}
        digest = hashlib.sha256(exports["allocations"]).hexdigest()[:16]
        print(f"run {run}: {seconds:.1f} s, {len(lines)} lines posted, "
              f"{len(exports['allocations'].splitlines()) - 1} allocation rows, sha256 {digest}", flush=True)
        db.unlink()
        if not reference:
            reference = exports
            continue
        for what, text in exports.items():
            if text != reference[what]:
                print(f"run {run} differs from run 1 in {what}: {first_difference(reference[what], text)}")
                return 1
    print(f"all {args.runs} runs gave byte-identical allocations and exceptions")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
