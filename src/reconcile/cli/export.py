"""`reconcile export allocations|exceptions -o FILE.csv` (CONTRACTS.md §4)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reconcile.cli.common import DbOption, JsonOption, echo, engine_for, handles_errors, print_json
from reconcile.services import exports as export

app = typer.Typer(help="Export posted allocations or the exception queue as CSV.", no_args_is_help=True)
OutOption = Annotated[Path, typer.Option("-o", "--output", help="CSV file to write")]


@app.command()
@handles_errors
def allocations(output: OutOption, as_json: JsonOption = False, db_url: DbOption = None) -> None:
    """Every posted allocation, one row each (reversals included)."""
    count = export.write_csv(export.allocations_frame(engine_for(db_url)), output)
    done(output, count, "allocation(s)", as_json)


def done(output: Path, count: int, what: str, as_json: bool) -> None:
    if as_json:
        print_json({"file": str(output), "rows": count})
    else:
        echo(f"{count} {what} written to {output}")


@app.command()
@handles_errors
def exceptions(
    output: OutOption,
    status: Annotated[str | None, typer.Option(help="Only open or resolved items")] = None,
    as_json: JsonOption = False,
    db_url: DbOption = None,
) -> None:
    """The exception queue, one row per queued bank line."""
    count = export.write_csv(export.exceptions_frame(engine_for(db_url), status), output)
    done(output, count, "exception(s)", as_json)
