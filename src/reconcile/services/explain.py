"""Why a bank line was posted, queued or skipped: the matcher's evidence as a dict a person can read.

Reads the line, its allocation rows and its exception items (the evidence the run stored with them) and
says which rule decided, on which signals, what the runner-up was and by what margin, and what is
suggested. Presenting it (`audit --line`, `exceptions show`) is left to the CLI and the web.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, select

from reconcile.core.errors import NotFoundError, ReconcileError
from reconcile.core.money import format_minor
from reconcile.store import db, tables

# What a queue reason means, for people.
REASONS = {
    "no_candidate": "no invoice is named and no customer is recognised from the payer's account or name",
    "ambiguous": "several candidates fit equally well; a person picks one",
    "amount_mismatch": "the customer is known, but no open item or combination of items fits the amount",
    "low_confidence": "a candidate fits, but the evidence is below the automatic-posting threshold",
    "unknown_currency": "no open item in the line's currency",
    "duplicate_suspect": "every invoice named is already paid",
    "return_unmatched": "a bank reversal entry that names no single earlier payment",
}
# What a posting rule means.
RULES = {
    "reference": "the remittance names the invoices and the amount pays them in full",
    "reference_partial": "the remittance names the invoice; the amount pays part of it",
    "reference_overpayment": "the remittance names the invoices; the excess is kept on account",
    "reference_plus_combination": "the remittance names invoices; the rest of the amount pays exactly one "
                                  "combination of the customer's other open items",
    "reference_installments": "the remittance names the invoice; the amount pays its next installments",
    "reference_bank_fee_or_rounding": "the remittance names the invoices; the amount is short by a bank fee",
    "reference_early_payment_discount": "the remittance names the invoice; the amount is short by the discount",
    "fuzzy_reference": "a mistyped or cut-off invoice number, and the amount picks exactly one of its candidates",
    "amount_unique": "the payer is known and the amount equals exactly one open item (or next installments)",
    "amount_combination": "the payer is known and exactly one combination of open items adds up to the amount",
    "amount_bank_fee_or_rounding": "the payer is known and exactly one open item is the amount plus a bank fee",
    "amount_early_payment_discount": "the payer is known and exactly one open item is the amount plus the "
                                     "early-payment discount",
}
_NOT_SIGNALS = ("rule", "runner_up", "margin")


def _load(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {"text": text}
    return data if isinstance(data, dict) else {"value": data}


def _payer_words(payer: dict[str, Any]) -> str | None:
    how = payer.get("by")
    if how == "account":
        return f"the payer's account is on file for customer {payer.get('customer')}"
    names = payer.get("names") or []
    if how in ("name", "name_weak", "name_close", "name_and_amount") and names:
        best = names[0]
        text = f"the payer's name matches {best.get('name')!r} of customer {best.get('customer')} " \
               f"(score {best.get('score')})"
        tied = payer.get("tied")
        if tied and len(tied) > 1:
            text += f"; customers within the margin: {', '.join(tied)}"
        return text
    return None


def _summary(found: dict[str, Any]) -> str:
    signals = found["signals"]
    parts = []
    if found["decision"] == "posted":
        parts.append(f"posted by rule {found['rule']}: {RULES.get(found['rule'] or '', found['rule'])}")
    elif found["decision"] == "queued":
        parts.append(f"queued as {found['reason']}: {REASONS.get(found['reason'] or '', found['reason'])}")
    else:
        parts.append(found["decision"])
    references = signals.get("references") or {}
    if references:
        parts.append("the remittance names " + ", ".join(f"{n} ({how})" for n, how in sorted(references.items())))
    payer = _payer_words(signals.get("payer") or {})
    if payer:
        parts.append(payer)
    if found["runner_up"] is not None:
        parts.append(f"runner-up {found['runner_up']}, margin {found['margin']}")
    if found["suggestions"]:
        parts.append("suggested: " + ", ".join(found["suggestions"][:3]))
    return "; ".join(parts)


def explain_line(engine: Engine, source_ref: str, account: str | None = None) -> dict[str, Any]:
    """Why the bank line `source_ref` (on `account`, needed when the reference is on several) was posted or
    queued: rule, signals, runner-up, margin, suggestions, the allocation rows, and a one-line summary."""
    bl, al, ex = tables.BankLine, tables.Allocation, tables.ExceptionItem
    with db.transaction(engine) as session:
        query = select(bl).where(bl.source_ref == source_ref)
        if account:
            query = query.where(bl.account == account)
        lines = session.execute(query.order_by(bl.account)).scalars().all()
        if not lines:
            raise NotFoundError(f"no bank line {source_ref}" + (f" on account {account}" if account else ""))
        if len(lines) > 1:
            raise ReconcileError(f"bank line {source_ref} is on several accounts "
                                 f"({', '.join(x.account for x in lines)}): name the account")
        line = lines[0]
        rows = session.execute(select(al).where(al.bank_line_id == line.id).order_by(al.id)).scalars().all()
        items = session.execute(select(ex).where(ex.bank_line_id == line.id).order_by(ex.id)).scalars().all()
        allocations = [{
            "customer_id": r.customer_id, "invoice_number": r.invoice_number, "installment_no": r.installment_no,
            "kind": r.kind, "amount": format_minor(r.amount_minor, r.currency), "currency": r.currency,
            "rule": r.rule, "confidence": r.confidence,
        } for r in rows]
        # the decision that holds: the last posting's rows (reversals aside), else the latest queue item
        live = [r for r in rows if r.kind != "reversal" and r.reverses_id is None]
        reversed_ids = {r.reverses_id for r in rows if r.reverses_id is not None}
        live = [r for r in live if r.id not in reversed_ids]
        item = next((i for i in reversed(items) if i.status == "open"), items[-1] if items else None)
        found: dict[str, Any] = {
            "source_ref": line.source_ref, "account": line.account, "booking_date": line.booking_date.isoformat(),
            "amount": format_minor(line.amount_minor, line.currency), "currency": line.currency,
            "payer": line.counterparty_name, "payer_account": line.counterparty_account,
            "remittance": line.remittance, "status": line.status,
            "decision": {"posted": "posted", "exception": "queued", "skipped": "skipped"}.get(line.status,
                                                                                            line.status),
            "rule": None, "confidence": None, "reason": None, "signals": {}, "runner_up": None, "margin": None,
            "suggestions": [], "allocations": allocations,
        }
        if line.status == "posted" and live:
            evidence = _load(live[0].evidence)
            found.update(rule=live[0].rule, confidence=live[0].confidence)
        elif item is not None:
            evidence = _load(item.evidence)
            found.update(reason=item.reason, suggestions=[s for s in (item.suggestions or "").split("|") if s],
                         customer_id=item.customer_id)
            if item.status != "open":
                found["decision"] = f"queued, then {item.resolution or item.status}"
        else:
            evidence = {}
    found["signals"] = {k: v for k, v in evidence.items() if k not in _NOT_SIGNALS}
    found["runner_up"], found["margin"] = evidence.get("runner_up"), evidence.get("margin")
    found["summary"] = _summary(found)
    return found
