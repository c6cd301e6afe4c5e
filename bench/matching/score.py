"""Scores the matching engine (through the real CLI) and the naive baseline against the generated truth.

Run: python bench/matching/score.py OUT [--skip-naive] [--skip-engine] [--pg postgresql://...]

Engine: `python -m reconcile.cli` init / load-ar / ingest / run --no-flow / export allocations / export
exceptions on sqlite:///OUT/bench.db (a fresh database each time), each step timed with its peak memory;
with --pg, on a fresh schema of that PostgreSQL database instead (dropped afterwards; the matcher's
in-process stage timings are then not taken, and peak memory is the CLI's, not the server's).
Baseline: naive.py. Then, per scenario: lines, automatic-posting rate (lines posted exactly as the truth /
lines that should post), wrong-posting rate (lines posted to anything but the truth / lines posted),
exception rate (lines queued / lines) and, for queued lines that should have posted, how often one of the
first three suggestions is an invoice of the truth (top3%), for both side by side, with totals, timings
(each CLI step, and the matcher's own stages measured in-process on the database as it was before the run)
and the machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
Key = tuple[str, str]                    # (account, source_ref)
Row = tuple[str, str, str, Decimal]      # (invoice_number, installment_no, kind, amount)


@dataclass
class Step:
    name: str
    seconds: float
    peak_mib: float
    status: int
    cpu: float = 0.0   # the child's user + system time: on a machine shared with other work, the wall time's floor


@dataclass
class Outcome:
    """What one system did: the allocation rows of each posted line and the queued lines."""
    posted: dict[Key, list[Row]] = field(default_factory=dict)
    queued: set[Key] = field(default_factory=set)
    suggestions: dict[Key, list[str]] = field(default_factory=dict)


def run_step(name: str, argv: list[str], log: Path, cwd: Path) -> Step:
    """Run one child; its own wall time and peak RSS (wait4 gives the child's rusage, not the running max)."""
    started = time.perf_counter()
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(argv)}\n".encode())
        out.flush()
        child = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=_env())
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    peak = usage.ru_maxrss / 1024 if sys.platform != "darwin" else usage.ru_maxrss / 2**20
    return Step(name, time.perf_counter() - started, peak, child.returncode, usage.ru_utime + usage.ru_stime)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    env.setdefault("DO_NOT_TRACK", "1")
    return env


def run_engine(out: Path, log: Path, python: str, pg: str | None = None) -> list[Step]:
    if pg is None:
        return _run_engine(out, log, python, None)
    from uuid import uuid4

    from sqlalchemy import create_engine, text

    from reconcile.store import db as store

    schema = f"bench_{uuid4().hex[:8]}"
    admin = create_engine(store.resolve_url(pg))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        return _run_engine(out, log, python, f"{pg}{'&' if '?' in pg else '?'}options=-csearch_path%3D{schema}")
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _run_engine(out: Path, log: Path, python: str, pg_url: str | None) -> list[Step]:
    db = out / "bench.db"
    (out / "engine").mkdir(exist_ok=True)
    for stale in (db, out / "pre_run.db", out / "engine" / "allocations.csv", out / "engine" / "exceptions.csv"):
        stale.unlink(missing_ok=True)
    url = pg_url or f"sqlite:///{db}"
    cli = [python, "-m", "reconcile.cli"]
    statements = sorted(str(p) for p in (out / "statements").iterdir())
    last_day = max(r["booking_date"] for r in _read(out / "truth_lines.csv"))
    steps = [
        ("init", [*cli, "init", "--db", url]),
        ("load-ar", [*cli, "load-ar", str(out / "ar"), "--db", url]),
        ("ingest", [*cli, "ingest", *statements, "--db", url]),
        ("run", [*cli, "run", "--no-flow", "--as-of", last_day, "--db", url]),
        ("export allocations", [*cli, "export", "allocations", "-o", str(out / "engine" / "allocations.csv"),
                                "--db", url]),
        ("export exceptions", [*cli, "export", "exceptions", "-o", str(out / "engine" / "exceptions.csv"),
                               "--db", url]),
    ]
    done = []
    for name, argv in steps:
        if name == "run" and pg_url is None:  # the database as the run finds it, for the matcher's stage timings
            shutil.copyfile(db, out / "pre_run.db")
        step = run_step(name, argv, log, out)
        done.append(step)
        # a run that posts but exits 1 (some lines failed) still has something to score
        if step.status != 0 and name not in ("run",):
            raise SystemExit(f"engine step {name!r} failed with status {step.status}: see {log}")
    return done


def stages(db: Path, config: Path) -> dict[str, float]:
    """The matcher's stages, in this process, on a database as a run finds it: seconds each."""
    from reconcile.config import load_config
    from reconcile.match import engine as matcher
    from reconcile.services import daily
    from reconcile.store import db as store

    rules = load_config(config).matching
    engine = store.make_engine(f"sqlite:///{db}")
    clock = time.perf_counter
    started = clock()
    lines, book = daily.run_inputs(engine)
    loaded = clock()
    prepared = matcher.prepare(lines.drop("generation", strict=False), book, rules)
    ready = clock()
    matcher.decide_lines(prepared, prepared.credits, book)
    decided = clock()
    return {"read lines and book": loaded - started, "candidates (prepare)": ready - loaded,
            "decisions (fixpoint)": decided - ready, "cpu of that process": time.process_time()}


def run_stages(out: Path, python: str) -> dict[str, float]:
    result = subprocess.run([python, str(Path(__file__).resolve()), str(out), "--stages-only"],
                            capture_output=True, text=True, env=_env(), check=False)
    if result.returncode != 0:
        return {}
    return json.loads(result.stdout.strip().splitlines()[-1])


def _read(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def canonical(rows: list[Row]) -> list[Row]:
    """Net reversals out and put write-offs in one sign convention; a line netted to nothing was not posted.

    Convention (truth): the invoice row carries the cash, a positive write_off row the difference that closes
    the invoice. An engine that instead posts the invoice in full with a negative write_off is read the same.
    """
    net: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    for number, no, kind, amount in rows:
        if kind == "reversal":
            # a reversal names the invoice / installment of the row it takes back, not its kind
            match = next((k for k in net if k[0] == number and k[1] == no and net[k] == -amount), None)
            if match is None:
                match = next((k for k in net if k[0] == number and k[1] == no and net[k] != 0), (number, no, "?"))
            net[match] += amount
        else:
            net[(number, no, kind)] += amount
    for (number, no, kind), amount in list(net.items()):
        if kind == "write_off" and amount < 0:
            cash = (number, no, "installment" if no else "invoice")
            net[cash] += amount
            net[(number, no, kind)] = -amount
    return sorted((k[0], k[1], k[2], v) for k, v in net.items() if v != 0)


def load_outcome(folder: Path) -> Outcome:
    outcome = Outcome()
    rows: dict[Key, list[Row]] = defaultdict(list)
    for r in _read(folder / "allocations.csv"):
        rows[(r["account"], r["source_ref"])].append(
            (r["invoice_number"] or "", r["installment_no"] or "", r["kind"], Decimal(r["amount"])))
    for key, found in rows.items():
        net = canonical(found)
        if net:
            outcome.posted[key] = net
    if (folder / "exceptions.csv").is_file():
        for r in _read(folder / "exceptions.csv"):
            if r.get("status", "open") == "open":
                key = (r["account"], r["source_ref"])
                outcome.queued.add(key)
                outcome.suggestions[key] = [s for s in (r.get("suggestions") or "").split("|") if s]
    return outcome


@dataclass
class Tally:
    lines: int = 0
    should: int = 0
    correct: int = 0
    posted: int = 0
    wrong: int = 0
    queued: int = 0
    missed: int = 0        # queued although it should post, or queued with candidates to pick from
    suggested: int = 0     # ... and a truth invoice (a candidate) is among the first three suggestions
    tied: int = 0          # queued with candidates (a tie a person settles)
    shown: int = 0         # ... and every candidate is suggested

    def add(self, other: Tally) -> None:
        for name in ("lines", "should", "correct", "posted", "wrong", "queued", "missed", "suggested", "tied",
                     "shown"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def score(out: Path, outcome: Outcome, by: str = "scenario") -> tuple[dict[str, Tally], list[Key]]:
    truth_rows: dict[Key, list[Row]] = defaultdict(list)
    for r in _read(out / "truth.csv"):
        truth_rows[(r["account"], r["source_ref"])].append(
            (r["invoice_number"], r["installment_no"], r["kind"], Decimal(r["amount"])))
    tallies: dict[str, Tally] = defaultdict(Tally)
    known: set[Key] = set()
    for r in _read(out / "truth_lines.csv"):
        key = (r["account"], r["source_ref"])
        if key in known:
            continue
        known.add(key)
        group = r["scenario"] if by == "scenario" else f"{r['scenario']}/{r['variant']}"
        t = tallies[group]
        t.lines += 1
        should = r["should_post"] == "true"
        expected = canonical(truth_rows.get(key, []))
        got = outcome.posted.get(key)
        t.should += should
        if got is not None:
            t.posted += 1
            if should and got == expected:
                t.correct += 1
            else:
                t.wrong += 1
        elif key in outcome.queued:
            t.queued += 1
            suggested = outcome.suggestions.get(key, [])
            candidates = {c for c in (r.get("candidates") or "").split("|") if c}
            if should or candidates:
                t.missed += 1
                truth_numbers = {row[0] for row in expected if row[0]} | candidates
                t.suggested += bool(truth_numbers & set(suggested[:3]))
            if candidates:
                t.tied += 1
                t.shown += candidates <= set(suggested)
    strangers = sorted(k for k in outcome.posted if k not in known)
    return tallies, strangers


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:6.2f}" if whole else "     -"


def table(out: Path, results: dict[str, Outcome], by: str) -> str:
    scored = {name: score(out, outcome, by) for name, outcome in results.items()}
    groups = sorted({g for tallies, _ in scored.values() for g in tallies},
                    key=lambda g: (-next(iter(scored.values()))[0][g].lines, g))
    names = list(results)
    head = f"{by:<34}{'lines':>7}{'post?':>7}"
    for name in names:
        head += f" | {name + ' auto%':>12}{'wrong%':>8}{'(n)':>6}{'exc%':>8}{'top3%':>7}{'ties%':>7}"
    rule = "-" * len(head)
    out_lines = [head, rule]
    totals = {name: Tally() for name in names}
    for g in groups:
        first = scored[names[0]][0][g]
        text = f"{g:<34}{first.lines:>7}{first.should:>7}"
        for name in names:
            t = scored[name][0][g]
            totals[name].add(t)
            text += f" | {pct(t.correct, t.should):>12}{pct(t.wrong, t.posted):>8}{t.wrong:>6}" \
                    f"{pct(t.queued, t.lines):>8}{pct(t.suggested, t.missed):>7}{pct(t.shown, t.tied):>7}"
        out_lines.append(text)
    out_lines.append(rule)
    first = totals[names[0]]
    text = f"{'TOTAL':<34}{first.lines:>7}{first.should:>7}"
    for name in names:
        t = totals[name]
        text += f" | {pct(t.correct, t.should):>12}{pct(t.wrong, t.posted):>8}{t.wrong:>6}" \
                f"{pct(t.queued, t.lines):>8}{pct(t.suggested, t.missed):>7}{pct(t.shown, t.tied):>7}"
    out_lines.append(text)
    for name in names:
        strangers = scored[name][1]
        if strangers:
            out_lines.append(f"warning: {name} posted {len(strangers)} line(s) the truth does not know, "
                             f"e.g. {strangers[0]}")
    return "\n".join(out_lines)


def machine() -> str:
    memory = ""
    try:
        kb = next(int(x.split()[1]) for x in Path("/proc/meminfo").read_text().splitlines()
                  if x.startswith("MemTotal"))
        memory = f", {kb / 2**20:.1f} GiB RAM"
    except (OSError, StopIteration):
        pass
    return f"{platform.machine()} {platform.system()} {platform.release()}, {os.cpu_count()} cores{memory}, " \
           f"Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="benchmark folder made by generate.py")
    parser.add_argument("--skip-engine", action="store_true", help="score the last engine export again")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--by", choices=["scenario", "variant"], default="scenario")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--pg", metavar="URL", help="run the engine on a fresh schema of this PostgreSQL database")
    parser.add_argument("--stages-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    out = args.out.resolve()
    if args.stages_only:
        print(json.dumps(stages(out / "pre_run.db", HERE.parents[1] / "config")))
        return
    log = out / "score.log"
    steps: list[Step] = []
    if not args.skip_engine:
        log.write_text("")
        steps += run_engine(out, log, args.python, args.pg)
    if not args.skip_naive:
        steps.append(run_step("naive.py", [args.python, str(HERE / "naive.py"), str(out)], log, out))
    results = {"engine": load_outcome(out / "engine")}
    if (out / "naive" / "allocations.csv").is_file():
        results["naive"] = load_outcome(out / "naive")
    truth = _read(out / "truth_lines.csv")
    print(f"benchmark {out}: {len({(r['account'], r['source_ref']) for r in truth})} bank lines, "
          f"{sum(1 for _ in (out / 'ar' / 'invoices.csv').open()) - 1} invoices")
    print(f"machine: {machine()}")
    print()
    print(table(out, results, args.by))
    print()
    print("auto% = lines posted exactly as the truth / lines that should post; wrong% = lines posted to anything")
    print("but the truth / lines posted ((n) = how many); exc% = lines in the open exception queue / lines;")
    print("top3% = queued lines that should post (or have candidates to pick from: same-amount twins, namesakes")
    print("fitting both) with a truth invoice or a candidate among the first three suggestions; ties% = queued")
    print("lines with candidates whose suggestions name every candidate (a near-tie shown whole).")
    if steps:
        print()
        print(f"{'step':<22}{'seconds':>9}{'cpu s':>9}{'peak MiB':>10}{'status':>8}")
        for s in steps:
            print(f"{s.name:<22}{s.seconds:>9.2f}{s.cpu:>9.2f}{s.peak_mib:>10.0f}{s.status:>8}")
        engine = [s for s in steps if s.name in ("load-ar", "ingest", "run", "export allocations")]
        if engine:
            print(f"{'engine end to end':<22}{sum(s.seconds for s in engine):>9.2f}{sum(s.cpu for s in engine):>9.2f}"
                  f"{max(s.peak_mib for s in engine):>10.0f}   (load-ar + ingest + run + export allocations)")
        print(f"load average while it ran: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        import resource
        print(f"max RSS of any child (getrusage RUSAGE_CHILDREN): "
              f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MiB")
    if not args.skip_engine and (out / "pre_run.db").is_file():
        print()
        print("matcher stages (in-process, on the database as the run found it):")
        for name, seconds in run_stages(out, args.python).items():
            print(f"  {name:<24}{seconds:>7.2f} s")


if __name__ == "__main__":
    main()
