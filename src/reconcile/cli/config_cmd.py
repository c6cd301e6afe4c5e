"""`reconcile config show | check DIR`: the effective configuration, and a folder checked before it goes live."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reconcile.cli.common import (
    ConfigOption,
    JsonOption,
    config_for,
    console,
    handles_errors,
    print_json,
    print_table,
)
from reconcile.config import described, load_config

app = typer.Typer(help="The configuration: what is in effect, and checking a folder.", no_args_is_help=True)


@app.command()
@handles_errors
def show(config_dir: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Every setting in effect, and where its value came from (the file, or the default)."""
    config = config_for(config_dir)
    rows = described(config)
    if as_json:
        print_json({"directory": str(config.directory),
                    "settings": [{"key": k, "value": v, "source": s} for k, v, s in rows]})
        return
    print_table(f"configuration from {config.directory}", ["key", "value", "source"], rows)


@app.command()
@handles_errors
def check(directory: Annotated[Path, typer.Argument(help="A configuration folder (reconcile.toml, profiles/)")],
          as_json: JsonOption = False) -> None:
    """Validate a configuration folder before deploying it: unknown keys, wrong types, bad profiles."""
    config = load_config(directory)
    team = [p for p in config.profiles if p.origin != "built-in"]
    if as_json:
        print_json({"directory": str(directory), "ok": True, "team_profiles": [p.name for p in team]})
        return
    console.print(f"{directory}: configuration is valid ({len(config.sources)} setting(s) set, "
                  f"{len(team)} team profile(s), {len(config.profiles)} profile(s) in all)")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="config")
