"""`reconcile explain LINE`: why a bank line was posted, queued or skipped (also shown by `audit --line` and by
`exceptions show` for a line that never was queued)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from reconcile.cli.common import (
    DbOption,
    JsonOption,
    amount,
    console,
    engine_for,
    handles_errors,
    print_json,
    print_table,
    safe,
)


def print_explanation(found: dict[str, Any]) -> None:
    """The explanation of services.explain as a few labelled lines and the line's allocation rows."""
    shown = [
        ("line", f"{found['account']}/{found['source_ref']}"),
        ("booked", found["booking_date"]),
        ("amount", f"{amount(found['amount'], found['currency'])} {found['currency']}"),
        ("payer", found["payer"] or ""),
        ("remittance", found["remittance"] or ""),
        ("decision", found["decision"]),
        ("rule", found["rule"]),
        ("confidence", found["confidence"]),
        ("reason", found["reason"]),
        ("runner-up", found["runner_up"]),
        ("margin", found["margin"]),
        ("suggested", ", ".join(found["suggestions"][:3]) or None),
        ("why", found["summary"]),
    ]
    for label, value in shown:
        if value is not None:
            console.print(f"[bold]{label:>12}[/bold]  {safe(value)}", highlight=False)
    if found["allocations"]:
        print_table("allocation rows", ["kind", "customer", "invoice", "installment", "amount", "rule"], [
            (r["kind"], r["customer_id"] or "", r["invoice_number"] or "", r["installment_no"] or "",
             amount(r["amount"], r["currency"]), r["rule"] or "")
            for r in found["allocations"]
        ], right=("amount",))


def explain(
    line: Annotated[str, typer.Argument(help="The bank line's source_ref")],
    account: Annotated[str | None, typer.Option("--account", help="The line's account, when the reference is on "
                                                                  "several")] = None,
    as_json: JsonOption = False,
    db_url: DbOption = None,
) -> None:
    """Why a bank line was posted, queued or skipped: the rule, the signals it used (references, payer account,
    name score), the runner-up and the margin, the suggestions and any remittance advice linked to it."""
    from reconcile.services.explain import explain_line

    found = explain_line(engine_for(db_url), line, account)
    if as_json:
        print_json(found)
        return
    print_explanation(found)


def register(root: typer.Typer) -> None:
    root.command("explain")(handles_errors(explain))
