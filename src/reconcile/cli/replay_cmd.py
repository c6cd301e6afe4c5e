"""`reconcile replay`: what another configuration would have decided on past days (writes nothing)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reconcile.cli.common import (
    DbOption,
    JsonOption,
    console,
    engine_for,
    handles_errors,
    print_json,
    print_table,
)
from reconcile.cli.daily_loop import parse_day
from reconcile.config import load_config


def replay(
    config_dir: Annotated[Path, typer.Option("--config",
                                             help="The configuration to try (a folder with reconcile.toml)")],
    output: Annotated[Path | None, typer.Option("-o", "--output",
                                                help="Write the lines that would change as CSV")] = None,
    start: Annotated[str | None, typer.Option("--from", help="First business day (YYYY-MM-DD)")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last business day (YYYY-MM-DD)")] = None,
    as_json: JsonOption = False,
    db_url: DbOption = None,
) -> None:
    """Re-decide the bank lines of past runs under another configuration, without writing anything: per line
    whose decision would change, what was posted or queued then and what would be now, and a summary."""
    from reconcile.services.exports import write_csv
    from reconcile.services.replay import replay as run_replay

    diff, summary = run_replay(engine_for(db_url), load_config(config_dir), start=parse_day(start), end=parse_day(end))
    if output is not None:
        write_csv(diff, output)
    if as_json:
        print_json({"summary": summary.to_dict(), "file": str(output) if output else None,
                    "changes": None if output else diff.to_dicts()})
        return
    s = summary.to_dict()
    print_table(f"replay under {config_dir} ({s['days']} business day(s), {s['lines']} line(s))", ["", "then", "now"], [
        ("posted automatically", s["posted_then"], s["posted_now"]),
        ("posting rate", s["posting_rate_then"], s["posting_rate_now"]),
    ], right=("then", "now"))
    console.print(f"{s['changed']} line(s) would be decided differently: "
                  + (", ".join(f"{k} {v}" for k, v in s["by_change"].items()) or "none"))
    if s["posted_elsewhere"]:
        console.print(f"[bold red]{s['posted_elsewhere']} line(s) would be posted to different items[/bold red]: "
                      "check them before this goes live")
    if output is not None:
        console.print(f"the lines that would change: {output}")


def register(root: typer.Typer) -> None:
    root.command("replay")(handles_errors(replay))
