"""Prefect's overhead on a daily run: 10 statement files through the flow vs the same steps as plain calls.

Run: python bench/flow_overhead.py [--files 10] [--lines 2000] [--repeat 5] [--pg postgresql://postgres@127.0.0.1:5432/test]

The day: a receivables snapshot and one generic CSV of --lines payments
(tests/bulk.py) split into --files inbox files. Each variant gets its own
fresh database and inbox: reconcile.inbox.run_day and the day's balances (what
the flow does, as plain calls without Prefect), then the daily-posting-run flow,
cold (the first in the process; with no PREFECT_API_URL it starts Prefect's
temporary server) and warm. Plain and warm runs are repeated
--repeat times and their medians compared. Both must post the same; the
difference is Prefect's cost.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import create_engine, text

from reconcile.collectors.balances import balances
from reconcile.config import load_config
from reconcile.services import daily as service
from reconcile.statements import inbox
from reconcile.store import db
from tests.bulk import write_bulk

AS_OF = date(2026, 11, 24)
CONFIG_DIR = str(REPO / "config")
SCHEMAS: list[str] = []  # PostgreSQL schemas made for the run, dropped at the end


def split_statement(statement: Path, folder: Path, parts: int) -> None:
    header, *rows = statement.read_text(encoding="utf-8").splitlines(keepends=True)
    size = -(-len(rows) // parts)
    for n in range(parts):
        (folder / f"statement-{n + 1:02d}.csv").write_text(header + "".join(rows[n * size:(n + 1) * size]))


def prepared(root: Path, name: str, data: Path, parts: int, pg: str | None) -> tuple[str, Path]:
    if pg:
        schema = f"bench_{name}_{uuid.uuid4().hex[:8]}"
        SCHEMAS.append(schema)
        with create_engine(db.resolve_url(pg)).begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{pg}{'&' if '?' in pg else '?'}options=-csearch_path%3D{schema}"
    else:
        url = f"sqlite:///{root / f'{name}.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    service.load_ar(engine, data / "ar")
    engine.dispose()
    box = root / f"inbox-{name}"
    box.mkdir()
    split_statement(next((data).glob("*.csv")), box, parts)
    return url, box


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--lines", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5, help="plain and warm runs each, medians compared")
    parser.add_argument("--pg", help="PostgreSQL URL (a throwaway schema per variant); default SQLite")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="flow-bench-"))
    os.environ.setdefault("PREFECT_HOME", str(root / "prefect-home"))
    from reconcile.cli.common import quiet_prefect

    quiet_prefect()
    bulk = write_bulk(root / "data", customers=max(args.lines // 10, 10), lines=args.lines)
    data = root / "data"
    shutil.move(bulk.statement, data / "day.csv")
    settings = load_config(CONFIG_DIR)

    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, "
          f"{'PostgreSQL' if args.pg else 'SQLite'}; {args.files} files, {bulk.lines} lines; "
          f"Prefect API: {os.environ.get('PREFECT_API_URL') or 'temporary local server'}")

    plain = []
    for run in range(args.repeat + 1):  # the first pays for imports and warm-up and is not compared
        url, box = prepared(root, f"plain{run}", data, args.files, args.pg)
        started = time.perf_counter()
        engine = db.make_engine(url)
        direct = inbox.run_day(engine, settings, inbox=box, as_of=AS_OF).to_dict()
        balances(engine, AS_OF, list(settings.aging.buckets))  # the flow publishes them after a completed run
        plain.append(time.perf_counter() - started)
    direct_s = statistics.median(plain[1:])

    import prefect

    from reconcile.flows.daily import run_posting_flow

    flows = []
    for run in range(args.repeat + 1):
        url, box = prepared(root, f"flow{run}", data, args.files, args.pg)
        started = time.perf_counter()
        via_flow = run_posting_flow(db_url=url, config_dir=CONFIG_DIR, inbox=str(box), as_of=AS_OF.isoformat())
        flows.append(time.perf_counter() - started)
        same = all(via_flow[k] == direct[k] for k in ("lines_posted", "lines_exception", "posted", "on_account"))
        assert same and len(via_flow["files"]) == args.files, "the flow must post what the plain run posts"
    timings = {"cold": flows[0], "warm": statistics.median(flows[1:])}
    overheads = [t - direct_s for t in flows[1:]]

    print(f"prefect {prefect.__version__}; posted {direct['lines_posted']} of {direct['lines_considered']} lines "
          f"({direct['auto_rate'] * 100:.1f} %), same through the flow")
    print(f"plain calls (run_day, balances) {direct_s:7.2f} s   (median of {args.repeat}; first time in the process "
          f"{plain[0]:.2f} s)")
    print(f"flow, cold (first in the process){timings['cold']:7.2f} s   overhead {timings['cold'] - direct_s:+.2f} s")
    print(f"flow, warm                       {timings['warm']:7.2f} s   overhead {timings['warm'] - direct_s:+.2f} s "
          f"({(timings['warm'] - direct_s) / args.files * 1000:+.0f} ms per file; median of {args.repeat}, "
          f"range {min(overheads):+.2f} to {max(overheads):+.2f} s)")
    shutil.rmtree(root, ignore_errors=True)
    if args.pg:
        with create_engine(db.resolve_url(args.pg)).begin() as conn:
            for schema in SCHEMAS:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


if __name__ == "__main__":
    main()
