"""Why a bank line was posted, queued or skipped: the matcher's evidence as a dict a person can read.

Reads the line, its allocation rows and its exception items (the evidence the run stored with them) and
says which rule decided, on which signals, what the runner-up was and by what margin, and what is
suggested. Shown by `reconcile explain`, `audit --line`, `exceptions show` and the web's line page.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from reconcile.core.evidence import evidence_of, suggestions_of
from reconcile.core.money import format_minor
from reconcile.services.ledger import find_line
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
    "unapplied": "a person reversed the posting; the line waits for a new decision",
    "closed_elsewhere": "the receivables system closed the invoices this payment was posted to before it "
                        "imported the posting; a person decides where the money goes",
    "awaiting_advice": "the payment says a remittance advice follows; it waits for the advice",
    "advice_mismatch": "the remittance advice does not add up to the payment or names unknown invoices",
    "advice_deduction": "the remittance advice deducts more than the write-off limit; a second person approves",
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
    elif found["decision"] == "posted, then queued":
        parts.append(f"queued as {found['reason']}: {REASONS.get(found['reason'] or '', found['reason'])} "
                     f"(posted by rule {found['rule']})")
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
    advice = found.get("advice")
    if advice:
        parts.append(f"remittance advice {advice['advice_ref']} lists "
                     + ", ".join(f"{x['invoice_number']} {x['paid']}" for x in advice["lines"][:5])
                     + (" ..." if len(advice["lines"]) > 5 else ""))
    if found["runner_up"] is not None:
        parts.append(f"runner-up {found['runner_up']}, margin {found['margin']}")
    if found["suggestions"]:
        parts.append("suggested: " + ", ".join(found["suggestions"][:3]))
    return "; ".join(parts)


def explain_line(engine: Engine, source_ref: str, account: str | None = None) -> dict[str, Any]:
    """Why the bank line `source_ref` (on `account`, needed when the reference is on several) was posted or
    queued: rule, signals, runner-up, margin, suggestions, the allocation rows, and a one-line summary."""
    with db.transaction(engine) as session:
        return explain(session, source_ref, account)


def _advice(session: Session, line_id: int) -> dict[str, Any] | None:
    """The remittance advice linked to the line, with what it lists, or None."""
    a, al = tables.Advice, tables.AdviceLine
    advice = session.execute(select(a).where(a.bank_line_id == line_id).order_by(a.id)).scalars().first()
    if advice is None:
        return None
    listed = session.execute(select(al.invoice_number, al.amount_paid_minor, al.discount_minor, al.adjustment_minor,
                                    al.adjustment_reasons).where(al.advice_id == advice.id)
                             .order_by(al.line_no)).all()
    return {
        "advice_ref": advice.advice_ref, "format": advice.format, "payer": advice.payer_name,
        "amount": format_minor(advice.payment_amount_minor, advice.currency), "currency": advice.currency,
        "linked_by": advice.linked_by,
        "lines": [{"invoice_number": n, "paid": format_minor(paid or 0, advice.currency),
                   "discount": format_minor(discount, advice.currency) if discount else None,
                   "adjustment": format_minor(adj, advice.currency) if adj else None, "reasons": reasons}
                  for n, paid, discount, adj, reasons in listed],
    }


def explain(session: Session, source_ref: str, account: str | None = None) -> dict[str, Any]:
    """explain_line inside the caller's transaction."""
    al, ex = tables.Allocation, tables.ExceptionItem
    line = find_line(session, source_ref, account)
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
    open_item = item is not None and item.status == "open"
    if line.status == "posted" and live and not open_item:
        evidence = evidence_of(live[0].evidence)
        found.update(rule=live[0].rule, confidence=live[0].confidence)
    elif item is not None:
        if line.status == "posted" and live:  # posted, then queued again (closed elsewhere): both hold
            found.update(rule=live[0].rule, confidence=live[0].confidence, decision="posted, then queued")
        evidence = evidence_of(item.evidence)
        found.update(reason=item.reason, suggestions=suggestions_of(item.suggestions),
                     customer_id=item.customer_id)
        if item.status != "open":
            found["decision"] = f"queued, then {item.resolution or item.status}"
    else:
        evidence = {}
    found["advice"] = _advice(session, line.id)
    found["signals"] = {k: v for k, v in evidence.items() if k not in _NOT_SIGNALS}
    found["runner_up"], found["margin"] = evidence.get("runner_up"), evidence.get("margin")
    found["summary"] = _summary(found)
    return found
