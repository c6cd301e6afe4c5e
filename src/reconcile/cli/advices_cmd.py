"""`reconcile advices list | link | unlink`: remittance advices received apart from their payments."""

from __future__ import annotations

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

app = typer.Typer(help="Remittance advices (X12 820, remt.001, CSV) and the payments they explain.",
                  no_args_is_help=True)


@app.command("list")
@handles_errors
def list_(
    unlinked: Annotated[bool, typer.Option("--unlinked", help="Only advices no payment was found for yet")] = False,
    as_json: JsonOption = False, db_url: DbOption = None,
) -> None:
    """Advices with the bank line each explains (or none yet), oldest first."""
    from reconcile.core.money import format_amount
    from reconcile.services.daily import utcnow
    from reconcile.statements.advices import advice_list
    from reconcile.store import db

    with db.transaction(engine_for(db_url)) as session:
        rows = advice_list(session, unlinked_only=unlinked)
    today = utcnow().date()
    for r in rows:
        r["age_days"] = (today - r["imported_at"].date()).days if r["imported_at"] else None
        r["amount"] = format_amount(r.pop("payment_amount_minor"), r["currency"])
    if as_json:
        print_json(rows)
        return
    print_table(f"{len(rows)} advice(s)", ["advice", "payer", "amount", "currency", "paid on", "trace", "age (days)",
                                          "bank line", "line status", "linked by"],
                [(r["advice_ref"], r["payer_name"], r["amount"], r["currency"], r["payment_date"], r["trace_number"],
                  r["age_days"], r["source_ref"] or "-", r["status"] or "waiting for its payment", r["linked_by"])
                 for r in rows], right=("amount", "age (days)"))


@app.command()
@handles_errors
def link(
    advice: Annotated[str, typer.Argument(help="The advice (its advice_ref)")],
    line: Annotated[str, typer.Argument(help="The bank line it explains (source_ref)")],
    account: Annotated[str | None, typer.Option(help="The line's account, "
                                                     "when the reference exists on several")] = None,
    actor: Annotated[str, typer.Option(help="Who links it (audit trail)")] = "cli",
    db_url: DbOption = None,
) -> None:
    """Link an advice to its payment by hand; the next run allocates the payment from the advice."""
    from reconcile.services.daily import utcnow
    from reconcile.statements.advices import link_by_hand
    from reconcile.store import db

    with db.transaction(engine_for(db_url)) as session:
        done = link_by_hand(session, advice, line, actor=actor, now=utcnow(), account=account)
    console.print(f"advice {done['advice_ref']} linked to bank line {done['bank_line']}: the next run decides it")


@app.command()
@handles_errors
def unlink(
    advice: Annotated[str, typer.Argument(help="The advice (its advice_ref)")],
    actor: Annotated[str, typer.Option(help="Who unlinks it (audit trail)")] = "cli",
    db_url: DbOption = None,
) -> None:
    """Take a wrong link back (the line's posting, if any, is unapplied separately)."""
    from reconcile.services.daily import utcnow
    from reconcile.statements.advices import link_by_hand
    from reconcile.store import db

    with db.transaction(engine_for(db_url)) as session:
        link_by_hand(session, advice, None, actor=actor, now=utcnow())
    console.print(f"advice {advice} unlinked")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="advices")
