"""Ledger commands: `check` (invariants), `unapply` (reverse a posting), `audit` (history)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from reconcile.cli.common import (
    DbOption,
    JsonOption,
    amount,
    console,
    echo,
    engine_for,
    err_console,
    handles_errors,
    print_json,
    print_table,
    safe,
)
from reconcile.core.errors import ReconcileError
from reconcile.core.money import format_amount
from reconcile.services import ledger
from reconcile.services.daily import utcnow

ActorOption = Annotated[str, typer.Option("--actor", help="Who does this (kept in the audit log)", envvar="USER")]


def _details_summary(details: str | None) -> str:
    if not details:
        return ""
    value = json.loads(details)
    parts = value.get("allocations") or value.get("reversed") or []
    shown = [
        " ".join(str(x) for x in (
            p.get("kind"), p.get("invoice_number"),
            format_amount(p["amount_minor"], p["currency"]) if p.get("currency") else p.get("amount_minor"),
        ) if x is not None)
        for p in parts if isinstance(p, dict)
    ]
    extra = {k: v for k, v in value.items() if k not in ("allocations", "reversed")}
    return "; ".join(shown + [f"{k}={v}" for k, v in extra.items()])


def register(app: typer.Typer) -> None:
    @app.command("check")
    @handles_errors
    def check_command(json_output: JsonOption = False, db_url: DbOption = None) -> None:
        """Check the ledger's invariants; exit 1 naming every violation."""
        violations = ledger.check(engine_for(db_url))
        if json_output:
            print_json({"ok": not violations, "violations": [v.__dict__ for v in violations]})
        elif violations:
            for v in violations:
                echo(v, err=True)
            err_console.print(f"{len(violations)} violation(s)", highlight=False)
        else:
            console.print("ledger consistent: every invariant holds", highlight=False)
        if violations:
            raise typer.Exit(1)

    @app.command("unapply")
    @handles_errors
    def unapply_command(
        source_ref: Annotated[str, typer.Argument(help="The bank line's source_ref")],
        reason: Annotated[str, typer.Option("--reason", help="Why the posting is reversed (kept in the audit log)")],
        account: Annotated[str | None, typer.Option(
            "--account", help="The line's account, when the reference is on several")] = None,
        rematch: Annotated[bool, typer.Option(
            "--rematch", help="Let the next run match the line again instead of queueing it")] = False,
        actor: ActorOption = "cli",
        json_output: JsonOption = False,
        db_url: DbOption = None,
    ) -> None:
        """Reverse a posted line's allocations (new reversal rows; nothing is deleted) and reopen its invoices."""
        done = ledger.unapply(engine_for(db_url), source_ref, reason=reason, actor=actor, now=utcnow(),
                              account=account, rematch=rematch)
        if json_output:
            print_json(done)
            return
        print_table(f"reversed {done['account']}/{done['source_ref']}", ["kind", "invoice", "installment", "amount"],
                    [(r["kind"], r["invoice_number"], r["installment_no"], amount(r["amount"], r.get("currency")))
                     for r in done["reversed"]],
                    right=["amount"])
        where = "the exception queue" if done["then"] == "exception" else "the next run's matching"
        console.print(f"the line goes to {where}", highlight=False)

    @app.command("audit")
    @handles_errors
    def audit_command(
        line: Annotated[str | None, typer.Option("--line", help="A bank line's source_ref")] = None,
        invoice: Annotated[str | None, typer.Option("--invoice", help="An invoice number")] = None,
        account: Annotated[str | None, typer.Option("--account", help="The line's account, when needed")] = None,
        json_output: JsonOption = False,
        db_url: DbOption = None,
    ) -> None:
        """The audit history of a bank line or an invoice: every posting, reversal and decision."""
        frame = ledger.history(engine_for(db_url), line_ref=line, invoice=invoice, account=account)
        if json_output:
            print_json(frame.to_dicts())
            return
        print_table(
            f"audit history of {'line ' + line if line else 'invoice ' + str(invoice)}",
            ["at (UTC)", "actor", "action", "line", "invoice", "reason", "what"],
            [(r["at"], r["actor"], r["action"], f"{r['account']}/{r['source_ref']}" if r["source_ref"] else "",
              r["invoice_number"], r["reason"], _details_summary(r["details"])) for r in frame.iter_rows(named=True)],
        )
        if line:  # and why the line stands as it does (`reconcile explain` gives the whole of it)
            from reconcile.services.explain import explain_line

            try:
                why = explain_line(engine_for(db_url), line, account)["summary"]
            except ReconcileError:  # on several accounts without --account: the history says which
                return
            console.print(f"why: {safe(why)}", highlight=False)
