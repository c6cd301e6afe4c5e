"""`reconcile profiles list | check FILE`: for users writing a CSV bank profile."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reconcile.cli.common import ConfigOption, config_for, console, handles_errors, print_table

app = typer.Typer(help="CSV bank profiles in config/profiles.", no_args_is_help=True)


@app.command("list")
@handles_errors
def list_(config_dir: ConfigOption = None) -> None:
    """The CSV profiles available, with what identifies each."""
    from reconcile.statements.profiles import list_profiles

    rows = list_profiles(config_for(config_dir).profiles)
    print_table("CSV profiles", list(rows[0].keys()) if rows else ["name"], [list(r.values()) for r in rows])


@app.command()
@handles_errors
def check(file: Annotated[Path, typer.Argument(help="A CSV statement file")], config_dir: ConfigOption = None) -> None:
    """Which profile claims FILE, why the others do not, and what it parses to."""
    from reconcile.statements.profiles import check_file

    console.print(check_file(file, config_for(config_dir).profiles))
