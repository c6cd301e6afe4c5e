"""Prints a posting run's summary as people read it."""

from __future__ import annotations

from typing import Any

from reconcile.cli.common import amount, console, print_table, safe


def _amounts(values: dict[str, str]) -> str:
    return ", ".join(f"{amount(value, currency)} {currency}" for currency, value in values.items()) or "-"


def print_run_summary(summary: dict[str, Any]) -> None:
    dry = " (dry run: nothing posted)" if summary["dry_run"] else ""
    console.print(f"[bold]posting run {safe(summary['run_id'])}[/bold] as of {safe(summary['as_of'])}{dry}",
                  highlight=False)
    print_table(None, ["", "lines", "amount"], [
        ("considered", summary["lines_considered"], ""),
        ("posted to invoices", summary["lines_posted"], _amounts(summary["posted"])),
        ("kept on account", "", _amounts(summary["on_account"])),
        ("written off", "", _amounts(summary["written_off"])),
        ("queued for review", summary["lines_exception"], _amounts(summary["exception_amounts"])),
        ("bank returns (payments taken back)", summary.get("returns", 0), ""),
        ("not receivables (skipped)", summary["lines_skipped"], ""),
    ], right=("lines", "amount"))
    if summary["exceptions_by_reason"]:
        print_table("exceptions by reason", ["reason", "lines"], summary["exceptions_by_reason"].items(),
                    right=("lines",))
    console.print(f"automatic posting rate: {summary['auto_rate'] * 100:.1f} %   status: {summary['status']}")
    for violation in summary.get("violations", []):
        console.print(f"[red]ledger check:[/red] {safe(violation)}", highlight=False)
