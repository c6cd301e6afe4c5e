"""`reconcile exceptions list | show`: the manual-review queue."""

from __future__ import annotations

from typing import Annotated

import typer

from reconcile import queue
from reconcile.cli.common import DbOption, JsonOption, console, engine_for, handles_errors, print_json, print_table

app = typer.Typer(help="The manual-review queue.", no_args_is_help=True)


@app.command("list")
@handles_errors
def list_(
    status: Annotated[str, typer.Option(help="open, resolved or all")] = "open",
    reason: Annotated[str | None, typer.Option(help="Only this reason code")] = None,
    as_json: JsonOption = False,
    db_url: DbOption = None,
) -> None:
    """Queued bank lines, oldest first."""
    frame = queue.list_items(engine_for(db_url), None if status == "all" else status, reason)
    columns = ["id", "reason", "status", "booking_date", "amount", "currency", "counterparty_name", "customer_id", "suggestions"]
    if as_json:
        print_json(frame.select(columns + ["source_ref", "account"]).to_dicts())
        return
    print_table(f"{frame.height} exception(s)", columns, frame.select(columns).iter_rows(), right=("amount",))


@app.command()
@handles_errors
def show(
    key: Annotated[str, typer.Argument(help="Exception id or the bank line's source_ref")],
    as_json: JsonOption = False,
    db_url: DbOption = None,
) -> None:
    """One queued line: why it is here, the payer, suggestions and the customer's open items."""
    item = queue.get_item(engine_for(db_url), key)
    if as_json:
        print_json(item)
        return
    for name in ("id", "reason", "status", "source_ref", "account", "booking_date", "amount", "currency",
                 "counterparty_name", "counterparty_account", "remittance", "reference", "end_to_end_id",
                 "customer_id", "assignee"):
        console.print(f"[bold]{name:>20}[/bold]  {item[name] if item[name] is not None else ''}", highlight=False)
    console.print(f"[bold]{'suggestions':>20}[/bold]  {', '.join(item['suggestions']) or '-'}")
    if item["evidence"]:
        console.print(f"[bold]{'evidence':>20}[/bold]  {item['evidence']}", highlight=False)
    if item["open_items"]:
        print_table("customer's open items", ["invoice_number", "due_date", "open", "currency"],
                    [tuple(o.values()) for o in item["open_items"]], right=("open",))


@app.command()
@handles_errors
def resolve(
    key: Annotated[int, typer.Argument(help="Exception id")],
    invoice: Annotated[list[str], typer.Option("--invoice", help="Invoice to allocate to (repeat, in order)")] = [],  # noqa: B006
    on_account: Annotated[str | None, typer.Option("--on-account", help="Customer to keep the payment (or the rest) for")] = None,
    actor: Annotated[str, typer.Option(help="Who decides (audit trail)")] = "cli",
    note: Annotated[str | None, typer.Option(help="Why")] = None,
    db_url: DbOption = None,
) -> None:
    """Post a queued line to the invoices named (in order, up to each one's open amount); the rest on account."""
    from reconcile.queue_actions import resolve_item
    from reconcile.service import utcnow

    rows = resolve_item(engine_for(db_url), key, invoice, actor=actor, now=utcnow(),
                        on_account_customer=on_account, note=note)
    print_table(f"exception {key} resolved", ["kind", "invoice_number", "amount"],
                [(r["kind"], r["invoice_number"], r["amount"]) for r in rows], right=("amount",))
