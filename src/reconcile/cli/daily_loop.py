"""The daily loop with the receivables system: `export postings`, `credit list|apply`, `snapshots`.

What load-ar prints lives here too. Every command calls one service function and prints its result
(CONTRACTS section 5: batches the receivables system imports, snapshots that say what they include).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from reconcile.cli.common import (
    ConfigOption,
    DbOption,
    JsonOption,
    config_for,
    console,
    engine_for,
    handles_errors,
    print_json,
    print_table,
)
from reconcile.core.errors import ReconcileError
from reconcile.receivables.store import LoadCounts


def parse_day(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ReconcileError(f"{text!r} is not a date: write YYYY-MM-DD, e.g. 2026-03-02") from None


def print_load(counts: LoadCounts) -> None:
    if counts.already_loaded:
        console.print(f"this snapshot was loaded already (snapshot {counts.snapshot_id}, business day "
                      f"{counts.business_date}): nothing changed")
        return
    includes = counts.includes_postings_through or "none of reconcile's postings"
    print_table(
        f"receivables snapshot {counts.snapshot_id} loaded ({counts.kind}, business day {counts.business_date}, "
        f"includes {includes})",
        ["", "new", "changed", "closed"],
        [
            ("customers", counts.customers_new, counts.customers_changed, ""),
            ("invoices", counts.invoices_new, counts.invoices_changed, counts.invoices_closed),
            ("installments", counts.installments_new, counts.installments_changed, ""),
            ("aliases", counts.aliases_new, "", ""),
            ("payer accounts", counts.accounts_new, "", ""),
        ],
        right=("new", "changed", "closed"),
    )
    if counts.closed_elsewhere:
        console.print(f"{counts.closed_elsewhere} posting(s) to invoices the receivables system closed before "
                      "importing them: see `reconcile exceptions list --reason closed_elsewhere`")


def export_postings(
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder the batch file is written to")],
    batch: Annotated[str | None, typer.Option(help="Write an existing batch again (e.g. B000003), "
                                                   "byte for byte")] = None,
    actor: Annotated[str, typer.Option(help="Who is exporting (audit trail)")] = "export",
    as_json: JsonOption = False,
    db_url: DbOption = None,
) -> None:
    """Every posting not yet handed to the receivables system, as one new numbered batch file DIR/B000001.csv."""
    from reconcile.ledger.batches import export_postings as export
    from reconcile.ledger.batches import rewrite_batch
    from reconcile.services.daily import utcnow

    engine = engine_for(db_url)
    result = rewrite_batch(engine, batch, output) if batch else export(engine, output, actor=actor, now=utcnow())
    if as_json:
        print_json({"batch_id": result.batch_id, "rows": result.rows, "file": result.path})
        return
    if result.batch_id is None:
        console.print("nothing new to export: every posting is in a batch already (no file written)")
        return
    console.print(f"batch {result.batch_id}: {result.rows} posting row(s) written to {result.path}")


credit = typer.Typer(help="Money kept on a customer's account: list it, apply it to open invoices.",
                     no_args_is_help=True)


@credit.command("list")
@handles_errors
def credit_list(
    customer: Annotated[str | None, typer.Argument(help="A customer id (default: every customer with credit)")] = None,
    as_json: JsonOption = False, db_url: DbOption = None,
) -> None:
    """Credit on account per customer and currency, and the bank lines it came from."""
    from reconcile.ledger.credit import credit_available

    rows = credit_available(engine_for(db_url), customer)
    if as_json:
        print_json(rows)
        return
    print_table("credit on account", ["customer", "currency", "credit", "from lines"],
                [(r["customer_id"], r["currency"], r["credit"], ", ".join(r["source_refs"])) for r in rows],
                right=("credit",))


@credit.command("apply")
@handles_errors
def credit_apply(
    customer: Annotated[str, typer.Argument(help="The customer whose credit is applied")],
    invoice: Annotated[list[str], typer.Option("--invoice", help="Invoice to apply credit to (repeatable, in order)")],
    amount: Annotated[str | None, typer.Option(help="How much to apply in all (default: as much as is open)")] = None,
    actor: Annotated[str, typer.Option(help="Who is applying it (audit trail)")] = "cli",
    note: Annotated[str | None, typer.Option(help="Why (kept in the audit log)")] = None,
    as_json: JsonOption = False, db_url: DbOption = None, config_dir: ConfigOption = None,
) -> None:
    """Apply money kept on account to open invoices: posted and audited like any allocation, reversible."""
    from reconcile.ledger.credit import apply_credit
    from reconcile.services.daily import utcnow

    now = utcnow()
    config = config_for(config_dir)
    done = apply_credit(engine_for(db_url), customer, invoice, amount=amount, actor=actor, now=now,
                        business_date=config.queue.business_date(now), note=note)
    if as_json:
        print_json(done)
        return
    print_table(f"credit of {customer} applied", ["line", "invoice", "amount"],
                [(r["source_ref"], r["invoice_number"] or "on account", r["amount"]) for r in done["rows"]],
                right=("amount",))


def snapshots(as_json: JsonOption = False, db_url: DbOption = None) -> None:
    """Every receivables snapshot loaded: business day, full or delta, what it includes, what it changed."""
    from reconcile.services.daily import snapshot_history

    rows = snapshot_history(engine_for(db_url))
    if as_json:
        print_json(rows)
        return
    print_table("receivables snapshots", ["id", "business day", "kind", "includes", "loaded at", "by", "summary"],
                [(r["id"], r["business_date"], r["kind"], r["includes"], r["loaded_at"], r["loaded_by"], r["summary"])
                 for r in rows])


def register(root: typer.Typer) -> None:
    root.add_typer(credit, name="credit")
    root.command("snapshots")(handles_errors(snapshots))


def register_export(export_app: typer.Typer) -> None:
    export_app.command("postings")(handles_errors(export_postings))
