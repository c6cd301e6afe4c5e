"""What operations cost: `reconcile run` through Prefect (each way of getting a Prefect API) against
the same run without Prefect, and `balances --format table` against CSV at 20,000 customers.

Run: python bench/ops.py [--repeat 3] [--customers 20000] [--skip-balances]

Each `reconcile run` is a fresh process (as cron or a person starts it) on its own copy of one
small day (the demo data: two statement files), timed from start to exit:
  no-flow         `reconcile run --no-flow` (no Prefect at all)
  prefect-lazy    the flow called the way `reconcile run` did before: Prefect starts its temporary
                  server when the flow first needs it
  default         `reconcile run` with no Prefect server about: the steps without Prefect, said so
  --flow          `reconcile run --flow`: the temporary server started first thing, booting while
                  the flow's modules load
  serve's server  `reconcile run` while a `reconcile serve` on the machine runs a Prefect server
The medians are printed; overhead = variant - no-flow.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from reconcile.flows.server import LocalServer
from reconcile.services import daily as service
from reconcile.services.demo_data import write_demo_data
from reconcile.store import db

LAZY = """
import sys
from reconcile.cli.common import quiet_prefect
quiet_prefect()
from reconcile.flows.daily import run_posting_flow
run_posting_flow(db_url=sys.argv[1], config_dir=sys.argv[2], inbox=sys.argv[3], as_of=sys.argv[4])
"""


def day(root: Path, name: str, data) -> tuple[str, Path]:  # type: ignore[no-untyped-def]
    folder = root / name
    folder.mkdir()
    url = f"sqlite:///{folder / 'r.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    service.load_ar(engine, data.snapshot_dir)
    engine.dispose()
    box = folder / "inbox"
    box.mkdir()
    for path in data.statements:
        shutil.copy(path, box / path.name)
    return url, box


def timed(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(args, check=False, env=env, capture_output=True, text=True, timeout=600)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return took


def bench_runs(root: Path, repeat: int) -> None:
    data = write_demo_data(root / "data")
    config = str(REPO / "config")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update(PREFECT_HOME=str(root / "prefect"), DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false")
    cli = [sys.executable, "-m", "reconcile.cli"]
    as_of = data.as_of.isoformat()
    variants = {
        "no-flow": lambda url, box: [*cli, "run", "--no-flow", "--db", url, "--inbox", str(box), "--as-of", as_of],
        "prefect-lazy": lambda url, box: [sys.executable, "-c", LAZY, url, config, str(box), as_of],
        "default": lambda url, box: [*cli, "run", "--db", url, "--inbox", str(box), "--as-of", as_of],
        "--flow": lambda url, box: [*cli, "run", "--flow", "--db", url, "--inbox", str(box), "--as-of", as_of],
    }
    # the first Prefect call on a fresh PREFECT_HOME also creates its database: not what a day costs
    first_url, first_box = day(root, "first", data)
    first = timed(variants["--flow"](first_url, first_box), env)
    times: dict[str, list[float]] = {name: [] for name in [*variants, "serve's server"]}
    for n in range(repeat):
        for name, make in variants.items():
            url, box = day(root, f"{name}-{n}", data)
            times[name].append(timed(make(url, box), env))
    os.environ.update({k: v for k, v in env.items() if k.startswith("PREFECT_HOME")})
    server = LocalServer(log=lambda _m: None)
    server.start()
    try:
        for n in range(repeat):
            url, box = day(root, f"serve-{n}", data)
            times["serve's server"].append(timed(variants["default"](url, box), env))
    finally:
        server.stop()
    base = statistics.median(times["no-flow"])
    print(f"`reconcile run` of one small day (demo data, 2 files), median of {repeat}, wall time per process:")
    for name, values in times.items():
        median = statistics.median(values)
        extra = "" if name == "no-flow" else f"   Prefect overhead {median - base:+6.2f} s"
        print(f"  {name:15s} {median:6.2f} s{extra}   ({', '.join(f'{v:.1f}' for v in values)})")
    print(f"  (the very first flow run on a fresh PREFECT_HOME: {first:.1f} s)")


def bench_balances(root: Path, customers: int, repeat: int) -> None:
    from reconcile.config import load_config
    from tests.bulk import write_bulk

    files = write_bulk(root / "bulk", customers=customers, lines=customers)
    url = f"sqlite:///{root / 'bulk.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    service.load_ar(engine, files.snapshot_dir)
    config = load_config(REPO / "config")
    service.ingest_file(engine, files.statement, config.parse_options())
    service.run_posting(engine, config=config)
    engine.dispose()
    cli = [sys.executable, "-m", "reconcile.cli", "balances", "--db", url, "--format"]
    env = {**os.environ, "COLUMNS": "200"}
    print(f"\n`reconcile balances` at {customers} customers (stdout to a file), median of {repeat}:")
    for fmt in ("csv", "table", "json"):
        values = []
        for _ in range(repeat):
            with (root / f"out.{fmt}").open("w") as out:
                started = time.perf_counter()
                subprocess.run([*cli, fmt], env=env, stdout=out, check=True, timeout=600)
                values.append(time.perf_counter() - started)
        rows = sum(1 for _ in (root / f"out.{fmt}").open())
        print(f"  --format {fmt:5s} {statistics.median(values):6.2f} s   ({rows} lines)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--skip-balances", action="store_true")
    parser.add_argument("--skip-runs", action="store_true")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ops-bench-"))
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}, Python "
          f"{sys.version.split()[0]}")
    try:
        if not args.skip_runs:
            bench_runs(root, args.repeat)
        if not args.skip_balances:
            bench_balances(root, args.customers, args.repeat)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
