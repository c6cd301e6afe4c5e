"""`reconcile demo`: sample data, then the whole job on embedded SQLite, then a summary."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, cast

from reconcile.cli.common import console, print_table, quiet_prefect
from reconcile.cli.summary import print_run_summary
from reconcile.config import load_config
from reconcile.services import daily as service
from reconcile.services.demo_data import write_demo_data
from reconcile.store import db


def run_demo(directory: Path, use_flow: bool = True) -> None:
    started = time.perf_counter()
    if directory.exists():
        shutil.rmtree(directory)
    files = write_demo_data(directory)
    url = f"sqlite:///{directory / 'reconcile.db'}"
    engine = db.make_engine(url)
    service.init_database(engine)
    console.print(f"[bold]reconcile demo[/bold]: sample data in {directory}/, database {url}\n")

    counts = service.load_ar(engine, files.snapshot_dir)
    console.print(f"loaded {counts.customers_new} customers, {counts.invoices_new} open invoices, "
                  f"{counts.installments_new} plan installments")
    config = load_config()
    rows = []
    for path in files.statements:
        result = service.ingest_file(engine, path, config.parse_options())
        rows.append((path.name, result.format, result.lines, result.new_lines))
    print_table("statements ingested", ["file", "format", "lines", "new"], rows, right=("lines", "new"))

    if use_flow:
        quiet_prefect()
        from reconcile.flows.daily import run_posting_flow

        inbox = directory / "inbox"  # the statements above are ingested already: the flow finds an empty inbox
        inbox.mkdir(exist_ok=True)
        summary = run_posting_flow(db_url=url, config_dir=str(config.directory), inbox=str(inbox),
                                   as_of=files.as_of.isoformat())
    else:
        summary = service.run_posting(engine, config=config, as_of=files.as_of).to_dict()
    print_run_summary(cast(dict[str, Any], summary))

    again = service.run_posting(engine, config=config, as_of=files.as_of)
    console.print(f"re-running the same day posts {again.lines_posted} more line(s): nothing is posted twice")
    console.print(
        f"\nnext: reconcile --db {url} exceptions list | balances | export allocations -o allocations.csv"
        f"\n(done in {time.perf_counter() - started:.1f} s)"
    )
