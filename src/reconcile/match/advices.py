"""Remittance advices and their bank lines: which advice explains which payment, and what it allocates.

Pure functions over frames, no database. `link` pairs each unlinked advice with the one credit it explains:
by end-to-end id, by the trace number written in the line's text, by amount and date from the bank account or
name this payer's earlier advices were paid from (its habits: `habits`), or by amount, payer name and a date
window when only one payment fits; anything less certain stays unlinked for a person. `plan` turns a linked
advice's lines into allocation rows (invoice by invoice; a line short-paid with a discount or adjustment
settles the invoice in full beside a write-off row with the advice's reason code) or queues the line with
the advice shown and the differences named. `awaiting` names queued lines that look like they wait for
an advice (an ACH CTX/CCD+ payment, a payer who sends advices).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import polars as pl
from rapidfuzz import fuzz

from reconcile.core import frames
from reconcile.core.allocation import Installment, take_in_due_order
from reconcile.core.codes import Kind, Reason
from reconcile.core.evidence import evidence_of, evidence_text, suggestions_text
from reconcile.core.money import format_minor
from reconcile.match.book import Book
from reconcile.match.normalise import name_fold

DATE_WINDOW = timedelta(days=10)
NAME_SCORE = 85
WAITING_MARKERS = re.compile(
    r"\b(CTX|CCD\+?|EDI|REMIT(TANCE)?\s+ADVICE|ADVICE\s+TO\s+FOLLOW|PAYREF\w*)\b", re.IGNORECASE
)
LINKS: dict[str, pl.DataType] = {"advice_id": pl.Int64(), "bank_line_id": pl.Int64(), "linked_by": pl.String()}


def _key(text: str | None) -> str:
    return re.sub(r"[^0-9A-Z]", "", (text or "").upper())


def _text_of(line: dict[str, Any]) -> str:
    return _key(" ".join(str(line.get(c) or "") for c in ("remittance", "reference", "end_to_end_id")))


def payer_key(payer_id: str | None, payer_name: str | None) -> str:
    """Who sent an advice: its payer id where the format carries one, else its name."""
    return f"id:{_key(payer_id)}" if _key(payer_id) else f"name:{_key(payer_name)}"


def _identities(line: dict[str, Any]) -> set[str]:
    """What a bank line says about who paid: its account and its name."""
    found = {f"account:{_key(line.get('counterparty_account'))}", f"name:{_key(line.get('counterparty_name'))}"}
    return {i for i in found if not i.endswith(":")}


def habits(past_links: pl.DataFrame) -> dict[str, set[str]]:
    """payer key -> the accounts and names its payments came from, learned from earlier links made by
    evidence or by a person (past_links: payer_id, payer_name, counterparty_account, counterparty_name)."""
    learned: dict[str, set[str]] = {}
    for row in past_links.iter_rows(named=True):
        learned.setdefault(payer_key(row["payer_id"], row["payer_name"]), set()).update(_identities(row))
    return learned


LINK_WAYS = ("end_to_end", "trace", "payer_habit", "amount_payer")  # strongest evidence first


def link(lines: pl.DataFrame, advices: pl.DataFrame, window: timedelta = DATE_WINDOW,
         payer_habits: dict[str, set[str]] | None = None) -> pl.DataFrame:
    """New links (advice_id, bank_line_id, linked_by) between unlinked advices and the run's credit lines.

    A link is made only when the evidence points one way: an advice matching several lines (or a line
    several advices) at the strongest evidence found is left for a person. payer_habits: see `habits`.
    """
    known = payer_habits or {}
    taken = set(advices.filter(pl.col("bank_line_id").is_not_null())["bank_line_id"].to_list())
    # every way of linking needs the same currency and amount: only those lines are looked at (a day of
    # thousands of payments and hundreds of advices stays linear)
    unlinked = advices.filter(pl.col("bank_line_id").is_null())
    asked = unlinked.select("currency", pl.col("payment_amount_minor").alias("amount_minor")).unique()
    by_amount: dict[tuple[str, int], list[dict[str, Any]]] = {}
    credits = lines.filter(pl.col("amount_minor") > 0).join(asked, on=["currency", "amount_minor"], how="semi") \
        .sort("bank_line_id").with_columns(name_fold(pl.col("counterparty_name")).alias("_folded_name"))
    for c in credits.iter_rows(named=True):
        if c["bank_line_id"] not in taken:
            by_amount.setdefault((c["currency"], c["amount_minor"]), []).append(c)
    open_advices = list(unlinked.sort("advice_id")
                        .with_columns(name_fold(pl.col("payer_name")).alias("_folded_name")).iter_rows(named=True))
    found: list[tuple[int, int, str]] = []
    linked: set[int] = set()
    used_lines: set[int] = set()
    for how in LINK_WAYS:
        candidates: dict[int, list[int]] = {}
        for advice in open_advices:
            if advice["advice_id"] in linked:
                continue
            pool = by_amount.get((advice["currency"], advice["payment_amount_minor"]), [])
            fits = [c["bank_line_id"] for c in pool
                    if c["bank_line_id"] not in used_lines and _fits(advice, c, how, window, known)]
            if fits:
                candidates[advice["advice_id"]] = fits
        claimed: dict[int, list[int]] = {}
        for advice_id, fits in candidates.items():
            for line_id in fits:
                claimed.setdefault(line_id, []).append(advice_id)
        for advice_id, fits in sorted(candidates.items()):
            if len(fits) == 1 and len(claimed[fits[0]]) == 1:
                found.append((advice_id, fits[0], how))
                linked.add(advice_id)
                used_lines.add(fits[0])
    return pl.DataFrame(found, schema=LINKS, orient="row")


def _fits(advice: dict[str, Any], line: dict[str, Any], how: str, window: timedelta,
          known: dict[str, set[str]]) -> bool:
    """Does `line` (of the advice's currency and amount: link looks at no other) fit `advice` the way `how`?"""
    if how == "end_to_end":
        ref = _key(advice["end_to_end_id"])
        return bool(ref) and ref != "NOTPROVIDED" and ref == _key(line.get("end_to_end_id"))
    if how == "trace":
        trace = _key(advice["trace_number"])
        return len(trace) >= 4 and trace in _text_of(line)
    day = advice["payment_date"]
    if day is not None and abs(line["booking_date"] - day) > window:
        return False
    if how == "payer_habit":
        return bool(known.get(payer_key(advice.get("payer_id"), advice["payer_name"]), set()) & _identities(line))
    # both names folded as the matcher folds payer names (accents, umlauts written out, legal forms): an
    # advice from "Černý & Dvořák a.s." is paid by "CERNY & DVORAK A.S." as the bank spells it
    payer, name = advice["_folded_name"], line["_folded_name"]
    return bool(payer and name) and fuzz.token_set_ratio(payer, name) >= NAME_SCORE


@dataclass(frozen=True)
class AdvicePlan:
    """What the linked advices decide: allocation rows (frames.ALLOCATIONS + installment_id) and queued lines."""

    allocations: pl.DataFrame
    exceptions: pl.DataFrame


def plan(lines: pl.DataFrame, advices: pl.DataFrame, advice_lines: pl.DataFrame, book: Book,
         approval_limit: dict[str, int]) -> AdvicePlan:
    """Allocation rows for each line an advice is linked to, or the line queued with the advice beside it.

    approval_limit: currency -> the write-off total a person must approve above (config [queue]).
    """
    linked = advices.filter(pl.col("bank_line_id").is_not_null())
    by_line = {r["bank_line_id"]: r for r in linked.iter_rows(named=True)}
    advice_lines = advice_lines.filter(pl.col("advice_id").is_in(linked["advice_id"].implode())).sort(
        "advice_id", "line_no")
    lines_of = {k[0]: part.to_dicts() for k, part in advice_lines.partition_by("advice_id", as_dict=True).items()}
    named = advice_lines["invoice_number"].drop_nulls().unique().implode()  # only the invoices the advices name
    invoices = {r["invoice_number"]: r for r in book.invoices.filter(pl.col("invoice_number").is_in(named))
                .iter_rows(named=True)}
    schedule: dict[str, list[Installment]] = {}
    installment_ids: dict[tuple[str, int], int] = {}
    for r in book.installments.filter(pl.col("invoice_number").is_in(named)).iter_rows(named=True):
        schedule.setdefault(r["invoice_number"], []).append(Installment(r["installment_no"], r["due_date"],
                                                                          r["open_minor"]))
        installment_ids[(r["invoice_number"], r["installment_no"])] = r["installment_id"]
    taken: dict[str, int] = {}
    rows: list[dict[str, Any]] = []
    queued: list[dict[str, Any]] = []
    for line in lines.filter(pl.col("bank_line_id").is_in(list(by_line))).sort("booking_date", "bank_line_id") \
            .iter_rows(named=True):
        advice = by_line[line["bank_line_id"]]
        own = lines_of.get(advice["advice_id"], [])
        outcome = _plan_one(line, advice, own, invoices, taken, approval_limit.get(line["currency"], 0))
        if isinstance(outcome, dict):
            queued.append(outcome)
            continue
        for r in outcome:
            number = r["invoice_number"]
            if r["kind"] == Kind.INVOICE and number in schedule and r["amount_minor"] > 0:
                rows.extend(_through_plan(r, schedule, installment_ids))
            else:
                rows.append(r)
    allocations = frames.from_records(rows, {**frames.ALLOCATIONS, "installment_id": pl.Int64()})
    return AdvicePlan(allocations, frames.from_records(queued, frames.EXCEPTIONS))


def _through_plan(row: dict[str, Any], schedule: dict[str, list[Installment]],
                  ids: dict[tuple[str, int], int]) -> list[dict[str, Any]]:
    """An invoice row of an invoice with a payment plan: through its installments in due order."""
    number = row["invoice_number"]
    parts = take_in_due_order(schedule[number], row["amount_minor"])
    schedule[number] = [Installment(i.no, i.due_date, i.open_minor - sum(p for n, p in parts if n == i.no))
                        for i in schedule[number]]
    out = [{**row, "kind": Kind.INSTALLMENT, "installment_no": no, "installment_id": ids[(number, no)],
            "amount_minor": part} for no, part in parts]
    rest = row["amount_minor"] - sum(p for _, p in parts)
    if rest:
        out.append({**row, "amount_minor": rest})
    return out


def _plan_one(line: dict[str, Any], advice: dict[str, Any], own: list[dict[str, Any]],
              invoices: dict[str, dict[str, Any]], taken: dict[str, int],
              limit: int) -> list[dict[str, Any]] | dict[str, Any]:
    ccy = line["currency"]
    evidence: dict[str, Any] = {"advice": advice["advice_ref"], "linked_by": advice["linked_by"]}
    problems: list[str] = []
    total = sum(r["amount_paid_minor"] or 0 for r in own)
    if total != line["amount_minor"]:
        problems.append(f"the advice's lines add up to {format_minor(total, ccy)}, the payment is "
                        f"{format_minor(line['amount_minor'], ccy)}")
    items = [r for r in own if r["line_kind"] == "item"]
    adjustments = [r for r in own if r["line_kind"] != "item"]
    rows: list[dict[str, Any]] = []
    customers = set()
    write_off_total = 0
    for item in items:
        number, paid = item["invoice_number"], item["amount_paid_minor"]
        invoice = invoices.get(number or "")
        if invoice is None:
            problems.append(f"{number or 'a line without a number'}: no such invoice")
            continue
        if invoice["currency"] != ccy:
            problems.append(f"{number}: invoice in {invoice['currency']}, the payment in {ccy}")
            continue
        open_ = invoice["open_minor"] - taken.get(number, 0)
        customers.add(invoice["customer_id"])
        if paid is None or paid == 0:
            problems.append(f"{number}: the advice states no amount")
            continue
        if (paid > 0) != (open_ > 0) or abs(paid) > abs(open_):
            problems.append(f"{number}: the advice pays {format_minor(paid, ccy)}, "
                            f"{format_minor(open_, ccy)} is open")
            continue
        deducted = (item["discount_minor"] or 0) + (item["adjustment_minor"] or 0)
        short = open_ - paid
        if short > 0 and deducted > 0 and short <= deducted:
            # settled in full: the deduction the payer took is written off with the advice's reason
            rows.append(_row(line, invoice, "invoice", open_))
            code = (item["adjustment_reasons"] or "").split("|")[0] or ("discount" if item["discount_minor"] else
                                                                          "advice_deduction")
            rows.append({**_row(line, invoice, "write_off", -short), "rule": code})
            write_off_total += short
        else:
            rows.append(_row(line, invoice, "invoice", paid))
        taken[number] = taken.get(number, 0) + (open_ if short > 0 and 0 < short <= deducted else paid)
    for adjustment in adjustments:
        # an advice-level deduction (no document): a write-off beside the last invoice it pays
        amount = adjustment["amount_paid_minor"] or 0
        host = next((r for r in reversed(rows) if r["kind"] == Kind.INVOICE), None)
        if host is None or amount >= 0:
            problems.append(f"an adjustment of {format_minor(amount, ccy)} with no invoice to book it against")
            continue
        rows.append({**host, "kind": "write_off", "amount_minor": amount,
                     "rule": (adjustment["adjustment_reasons"] or "").split("|")[0] or Reason.ADVICE_DEDUCTION})
        write_off_total += -amount
    if len(customers) > 1:
        problems.append("the advice pays invoices of several customers: " + ", ".join(sorted(customers)))
    suggestions = suggestions_text(r["invoice_number"] for r in items)
    guess = next(iter(sorted(customers)), None)
    if problems:
        for r in rows:  # what was taken for this line is given back: nothing of it is posted
            if r["kind"] == "invoice":
                taken[r["invoice_number"]] -= r["amount_minor"] if r["amount_minor"] else 0
        evidence["differences"] = problems
        return {"bank_line_id": line["bank_line_id"], "reason": Reason.ADVICE_MISMATCH, "suggestions": suggestions,
                "customer_id": guess, "evidence": evidence_text(evidence)}
    evidence["write_off"] = format_minor(write_off_total, ccy)
    if write_off_total > limit:
        parts = [(r["invoice_number"] if r["kind"] == "invoice" else f"write_off:{r['invoice_number']}",
                  format_minor(r["amount_minor"], ccy)) for r in rows]
        code = next(r["rule"] for r in rows if r["kind"] == "write_off")
        evidence["proposal"] = {"action": "allocate", "parts": parts, "code": code,
                                "note": f"from advice {advice['advice_ref']}"}
        evidence["why"] = (f"the advice's deductions ({format_minor(write_off_total, ccy)}) are above the approval "
                           f"limit: a second person approves them")
        for r in rows:
            if r["kind"] == "invoice":
                taken[r["invoice_number"]] -= r["amount_minor"]
        return {"bank_line_id": line["bank_line_id"], "reason": Reason.ADVICE_DEDUCTION, "suggestions": suggestions,
                "customer_id": guess, "evidence": evidence_text(evidence)}
    return [{**r, "evidence": evidence_text(evidence)} for r in rows]


def _row(line: dict[str, Any], invoice: dict[str, Any], kind: str, amount: int) -> dict[str, Any]:
    return {"bank_line_id": line["bank_line_id"], "kind": kind, "customer_id": invoice["customer_id"],
            "invoice_number": invoice["invoice_number"], "installment_no": None, "installment_id": None,
            "amount_minor": amount, "currency": line["currency"], "rule": "advice", "confidence": 0.99}


def awaiting(lines: pl.DataFrame, exceptions: pl.DataFrame, advice_payers: set[str]) -> pl.DataFrame:
    """Queued lines that look like they wait for an advice get the reason `awaiting_advice` (their own reason
    and suggestions kept in the evidence): an ACH CTX/CCD+ payment or a remittance that says an advice
    follows, or a payer known to send advices."""
    if exceptions.height == 0:
        return exceptions
    payers = {_key(p) for p in advice_payers if p}
    queued = lines.filter(pl.col("bank_line_id").is_in(exceptions["bank_line_id"].implode()))  # the rest is posted
    text = queued.select("bank_line_id", "remittance", "reference", "counterparty_name")
    marked = []
    for r in text.iter_rows(named=True):
        words = " ".join(str(r[c] or "") for c in ("remittance", "reference"))
        if WAITING_MARKERS.search(words) or (r["counterparty_name"] and _key(r["counterparty_name"]) in payers):
            marked.append(r["bank_line_id"])
    waiting = pl.col("bank_line_id").is_in(marked) & pl.col("reason").is_in(["no_candidate", "ambiguous",
                                                                             "amount_mismatch", "low_confidence"])
    evidence = [
        evidence_text({**evidence_of(e), "matcher_reason": reason,
                       "why": "the payment looks like it comes with a separate remittance advice"})
        if wait else e
        for e, reason, wait in exceptions.select("evidence", "reason", waiting.alias("w")).iter_rows()
    ]
    return exceptions.with_columns(
        pl.when(waiting).then(pl.lit(Reason.AWAITING_ADVICE)).otherwise(pl.col("reason")).alias("reason"),
        pl.Series("evidence", evidence, dtype=pl.String),
    )
