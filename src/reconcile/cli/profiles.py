"""`reconcile profiles list | check FILE | new FILE`: for people writing or adopting a CSV profile.

JSON shapes (--json):
  list:  [{"name", "origin" ("built-in" or the team folder), "source", "auto_detect",
           "encoding", "delimiter", "signature": [...], "description"}]
  check: {"file", "claimed_by": name|null, "ambiguous": [names], "profiles": [{"name", "origin",
           "claims", "reason"}], "parsed": {"format", "statements", "lines", "accounts"}|null,
           "error": str|null}
  new:   {"name", "profile": TOML text, "notes": [...], "unsure": [...], "error": str|null,
          "claimed_by": [configured profiles that already claim the file],
          "preview": [{"location", "account", "booking_date", "amount_minor", "amount" (decimal
          text), "currency", "counterparty", "remittance"}], "written": path|null}
Exit status: check is 0 when exactly one profile claims the file and reads it, 1 when none or
several claim it, 2 when the one that claims it cannot read it; new is 0 when the profile reads
the file, 1 when it does not (nothing written), 2 for a refusal (a file that exists, a name that
is taken, no team folder).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, cast

import typer
from rich.markup import escape

from reconcile.cli.common import (
    ConfigOption,
    JsonOption,
    config_for,
    console,
    fail,
    handles_errors,
    print_json,
    print_table,
)

app = typer.Typer(
    help="CSV bank profiles: built-in ones and the team's (CONFIG/profiles).", no_args_is_help=True
)


@app.command("list")
@handles_errors
def list_(as_json: JsonOption = False, config_dir: ConfigOption = None) -> None:
    """The CSV profiles available, where each comes from, and what identifies it."""
    from reconcile.statements.profiles import list_profiles

    rows = list_profiles(config_for(config_dir).profiles)
    if as_json:
        print_json(rows)
        return
    team = sorted({r["origin"] for r in rows if r["origin"] != "built-in"})
    print_table(
        "CSV profiles",
        ["name", "origin", "signature", "description"],
        [
            (
                r["name"],
                "built-in" if r["origin"] == "built-in" else "team",
                ", ".join(r["signature"]),
                r["description"],
            )
            for r in rows
        ],
    )
    for folder in team:
        console.print(f"team: {escape(folder)}", highlight=False, soft_wrap=True)


@app.command()
@handles_errors
def check(
    file: Annotated[Path, typer.Argument(help="A CSV statement file")],
    as_json: JsonOption = False,
    config_dir: ConfigOption = None,
) -> None:
    """Which profile claims FILE, why each other does not, what it parses to (exit 1: none does)."""
    from reconcile.parsers.registry import read_statement
    from reconcile.statements.profiles import check_file, check_text

    read_statement(file)  # a missing or empty file is refused like ingest refuses it
    report = check_file(file, config_for(config_dir).profiles)
    if as_json:
        print_json(report)
    else:
        console.print(escape(check_text(report)), highlight=False, soft_wrap=True)
    if report["claimed_by"] is None:
        raise typer.Exit(1)
    if report["error"]:
        raise typer.Exit(2)


@app.command()
@handles_errors
def new(
    file: Annotated[Path, typer.Argument(help="A sample export in the unknown layout")],
    name: Annotated[
        str | None, typer.Option(help="Profile name (default: from the file name)")
    ] = None,
    write: Annotated[
        bool,
        typer.Option("--write", help="Save it as CONFIG/profiles/NAME.toml (never overwrites)"),
    ] = False,
    as_json: JsonOption = False,
    config_dir: ConfigOption = None,
) -> None:
    """Infer a profile for FILE's layout, show the first lines read with it; --write saves it."""
    from reconcile.config import shipped_dir
    from reconcile.parsers.registry import read_statement
    from reconcile.statements.infer import infer_profile, preview_rows
    from reconcile.statements.profiles import check_file

    data = read_statement(file)
    config = config_for(config_dir)
    if name is not None and not _valid_name(name):
        fail(f"profile name {name!r}: use lower-case letters, digits and '-' (e.g. my-bank)")
    inference = infer_profile(data, file.name, name)
    report = inference.to_dict()
    report["claimed_by"] = [
        r["name"] for r in check_file(file, config.profiles)["profiles"] if r["claims"]
    ]
    report["preview"] = preview_rows(data, file.name, inference.text) if not inference.error else []
    report["written"] = None
    target = config.directory / "profiles" / f"{inference.name}.toml"
    if write and not inference.error:
        taken = {p.name: p for p in config.profiles}
        if config.directory.resolve() == shipped_dir().resolve():
            fail(
                "no team configuration folder in use (the built-in one is not for editing): "
                "pass --config DIR"
            )
        if target.exists():
            fail(f"{target} exists: not overwritten (choose another --name, or edit that file)")
        if inference.name in taken:
            fail(
                f"a profile called {inference.name!r} exists ({taken[inference.name].origin}): "
                "choose another --name"
            )
        if report["claimed_by"]:
            fail(
                f"{file} is already claimed by {', '.join(str(p) for p in cast(list, report['claimed_by']))}: "
                "a second profile would make it "
                "ambiguous (see `reconcile profiles check`)"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        # "x": never over a file that appeared since the check above
        with target.open("x", encoding="utf-8") as handle:
            handle.write(inference.text)
        report["written"] = str(target)
    if as_json:
        print_json(report)
    else:
        shipped = config.directory.resolve() == shipped_dir().resolve()
        _show(report, file, None if shipped else target, write)
    if inference.error:
        raise typer.Exit(1)


def _valid_name(name: str) -> bool:
    import re

    return re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", name) is not None


def _show(report: dict, file: Path, target: Path | None, write: bool) -> None:
    console.print(f"# profile inferred from {escape(str(file))}", highlight=False)
    console.print(escape(report["profile"] or ""), highlight=False, soft_wrap=True)
    for note in report["notes"]:
        console.print(f"  read: {escape(note)}", highlight=False, soft_wrap=True)
    for unsure in report["unsure"]:
        console.print(f"  unsure: {escape(unsure)}", highlight=False, soft_wrap=True)
    if report["claimed_by"]:
        console.print(
            f"  note: already claimed by {', '.join(report['claimed_by'])}", highlight=False
        )
    if report["error"]:
        console.print(
            f"[red]this profile does not read the file:[/red] {escape(report['error'])}",
            highlight=False,
            soft_wrap=True,
        )
        return
    rows = report["preview"]
    print_table(
        f"the first lines as this profile reads them ({len(rows)} shown)",
        ["line", "account", "date", "amount", "currency", "counterparty", "remittance"],
        [
            (
                r["location"],
                r["account"],
                r["booking_date"],
                r["amount"],
                r["currency"],
                r["counterparty"],
                r["remittance"],
            )
            for r in rows
        ],
        right=("amount",),
    )
    if report["written"]:
        console.print(f"written to {escape(report['written'])}", highlight=False)
    elif target is None:
        console.print(f"not saved: add --write --config DIR to save it as DIR/profiles/"
                      f"{report['name']}.toml in the team's configuration folder", highlight=False,
                      soft_wrap=True)
    elif not write:
        console.print(f"not saved: add --write to save it as {escape(str(target))}", highlight=False,
                      soft_wrap=True)
