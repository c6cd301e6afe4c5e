"""Remittance advices: the common model every advice reader fills, and detection from content.

X12 820 (x12_820.py), ISO 20022 remt.001 (remt.py) and CSV advices through advice profiles
(advice_csv.py) all return a ParsedAdvice; storing advices, linking them to bank lines and
allocating from them is left to the store and matching layers.

The contract (one row per advice, one row per remitted document):

ADVICES: one row per advice, i.e. per payment it explains
  advice_ref            stable across re-imports of the same advice, unique within a file:
                        X12 "820:<TRN03 originator>:<TRN02 trace>" (no TRN: "820:h:<content hash>"),
                        remt "remt:<MsgId>/<RmtId>" (no RmtId: "remt:<MsgId>/#<n>"),
                        CSV "csv:<profile>:<payment reference>"
  payer_name, payer_id  who pays (X12 N1*PR, remt Dbtr, CSV payer columns)
  payee_name, payee_id  who is paid (X12 N1*PE, remt Cdtr)
  payment_method        X12 BPR04 (ACH, CHK, FWT, BOP, NON, ...), remt LclInstrm/SvcLvl, CSV column
  payment_amount_minor  what the payment is for, positive, minor units of `currency`
  currency              ISO 4217 (X12 CUR02, default USD; remt Ccy; CSV column or profile)
  payment_date          X12 BPR16 (effective entry date), remt ReqdExctnDt/IntrBkSttlmDt, CSV
  trace_number          X12 TRN02 (check or EFT trace), remt RmtId, CSV payment reference:
                        what the bank line's reference or remittance text may quote
  end_to_end_id         remt OrgnlPmtInf/Refs/EndToEndId (matches a CAMT line's end_to_end_id)
  credit_debit          X12 BPR03 "C" or "D" as written; null elsewhere
  handling_code         X12 BPR01 (C payment with advice, I advice only, P prenote, ...)
  remittance            free text of the advice as a whole (remt Ustrd), for reading references
  balanced              the lines add up to payment_amount_minor (see LINES); else a warning
  line_count            rows of LINES for this advice
  location              where the advice starts ("segment 4 (ST)", an element path, "line 2")

LINES: one row per remitted document or per advice-level adjustment
  advice_ref, line_no   line_no counts 1.. within its advice, in file order
  line_kind             "item": a document the payment settles (X12 RMR, remt RfrdDocInf, CSV row);
                        "adjustment": a deduction tied to no document (X12 ADX outside an RMR loop)
  reference_qualifier   X12 RMR01 (IV invoice, PO purchase order, CR credit memo, AP ...), remt
                        document type code (CINV, CREN, ...), CSV column; for adjustments ADX03
  invoice_number        X12 RMR02, remt RfrdDocInf/Nb, CSV column; for adjustments ADX04 (debit
                        memo number), often null
  document_date         X12 DTM*003 in the RMR loop, remt RfrdDocInf/RltdDt, CSV column
  payment_action        X12 RMR03 (PI pay item, PP partial, PO on account, ...)
  entity                X12 ENT loop's identifier (a division, store or account of the payer)
  amount_paid_minor     the money this line contributes to the payment, signed (a credit memo or
                        an adjustment that reduces the payment is negative); null only when a remt
                        advice with several documents states no amount for this one (then a warning)
  invoice_total_minor   the document's amount before discount and adjustments (nullable)
  discount_minor        terms discount taken (nullable)
  adjustment_minor      sum of the line's adjustments, positive when they reduce the payment
                        (nullable when there are none)
  adjustment_reasons    the adjustments' reason codes in file order (X12 ADX02, remt Rsn, CSV)
  description           free text: adjustment notes, remt AddtlRmtInf, CSV reason text
  location              the segment, element path or CSV line of the row

Invariants: for a balanced advice, sum(amount_paid_minor) over its lines equals
payment_amount_minor. For an item with an invoice total, usually invoice_total - discount -
adjustment = amount_paid; the readers report but do not enforce that. For an adjustment line,
adjustment_minor = -amount_paid_minor.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from reconcile.core import frames
from reconcile.core.errors import InputError
from reconcile.core.money import format_minor

ADVICES: dict[str, pl.DataType] = {
    "advice_ref": pl.String(),
    "payer_name": pl.String(),
    "payer_id": pl.String(),
    "payee_name": pl.String(),
    "payee_id": pl.String(),
    "payment_method": pl.String(),
    "payment_amount_minor": pl.Int64(),
    "currency": pl.String(),
    "payment_date": pl.Date(),
    "trace_number": pl.String(),
    "end_to_end_id": pl.String(),
    "credit_debit": pl.String(),
    "handling_code": pl.String(),
    "remittance": pl.String(),
    "balanced": pl.Boolean(),
    "line_count": pl.Int64(),
    "location": pl.String(),
}

ADVICE_LINES: dict[str, pl.DataType] = {
    "advice_ref": pl.String(),
    "line_no": pl.Int64(),
    "line_kind": pl.String(),
    "reference_qualifier": pl.String(),
    "invoice_number": pl.String(),
    "document_date": pl.Date(),
    "payment_action": pl.String(),
    "entity": pl.String(),
    "amount_paid_minor": pl.Int64(),
    "invoice_total_minor": pl.Int64(),
    "discount_minor": pl.Int64(),
    "adjustment_minor": pl.Int64(),
    "adjustment_reasons": pl.List(pl.String()),
    "description": pl.String(),
    "location": pl.String(),
}

ITEM = "item"
ADJUSTMENT = "adjustment"


@dataclass(frozen=True)
class ParsedAdvice:
    """What one advice file holds: `advices` (schema ADVICES) and their `lines` (ADVICE_LINES)."""

    format: str  # "x12_820", "remt001", "csv-advice:<profile>"
    advices: pl.DataFrame
    lines: pl.DataFrame
    warnings: tuple[str, ...] = ()


def build(
    fmt: str,
    advices: list[dict[str, Any]],
    lines: list[dict[str, Any]],
    path: Path,
    warnings: Iterable[str] = (),
) -> ParsedAdvice:
    """Frames from per-advice and per-line dicts: numbers and counts the lines, checks the balance.

    Every reader ends here, so the balance rule and the uniqueness of advice_ref live in one place.
    A reader may set `balanced` itself (and warn in its own words); otherwise it is computed.
    """
    notes = list(warnings)
    seen: dict[str, str] = {}
    for advice in advices:
        ref = advice["advice_ref"]
        if ref in seen:
            raise InputError(
                path,
                advice.get("location"),
                f"advice {ref!r} appears twice in the file (first at {seen[ref]})",
            )
        seen[ref] = advice.get("location") or "?"
    by_ref: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        by_ref.setdefault(line["advice_ref"], []).append(line)
    for advice in advices:
        own = by_ref.get(advice["advice_ref"], [])
        for number, line in enumerate(own, start=1):
            line["line_no"] = number
            line.setdefault("line_kind", ITEM)
            line["adjustment_reasons"] = list(line.get("adjustment_reasons") or [])
        advice["line_count"] = len(own)
        if "balanced" not in advice:
            total = sum(line["amount_paid_minor"] or 0 for line in own)
            advice["balanced"] = total == advice["payment_amount_minor"]
            if not advice["balanced"]:
                notes.append(balance_warning(advice, total))
    return ParsedAdvice(
        fmt,
        frames.from_records(advices, ADVICES),
        frames.from_records(lines, ADVICE_LINES),
        tuple(notes),
    )


def balance_warning(advice: Mapping[str, Any], total: int, detail: str = "") -> str:
    currency = advice.get("currency") or "XXX"
    where = f" ({advice['location']})" if advice.get("location") else ""
    return (
        f"advice {advice['advice_ref']}{where}: its lines add up to "
        f"{format_minor(total, currency)}, the payment is "
        f"{format_minor(advice['payment_amount_minor'], currency)} {currency}{detail}"
    )


def content_hash(parts: Iterable[str]) -> str:
    """A short stable digest for an advice without its own identifier."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:24]


def sniff_advice(head: bytes, profiles: tuple[Any, ...] | None = None) -> bool:
    """True when an advice reader claims the file from its first bytes (profiles: as parse)."""
    return bool(_claims(head, Path("<head>"), profiles))


def parse_advice(data: bytes, path: Path, profiles: tuple[Any, ...] | None = None) -> ParsedAdvice:
    """Detect the advice format from content (exactly one reader must claim) and parse the file.

    profiles: the CSV advice profiles that take part; None means the shipped ones
    (config/advice_profiles), () means no CSV advices.
    """
    head = data[: 64 * 1024]
    claims = _claims(head, path, profiles)
    if not claims:
        raise InputError(
            path,
            None,
            "not a remittance advice (X12 820, ISO 20022 remt.001 or a CSV advice layout)",
        )
    if len(claims) > 1:
        raise InputError(
            path, None, f"ambiguous advice format: claimed by {', '.join(n for n, _ in claims)}"
        )
    parsed: ParsedAdvice = claims[0][1](data, path)
    return parsed


def _claims(head: bytes, path: Path, profiles: tuple[Any, ...] | None) -> list[tuple[str, Any]]:
    from reconcile.parsers import advice_csv, remt, x12_820

    found: list[tuple[str, Any]] = []
    if x12_820.sniff(head):
        found.append(("x12_820", x12_820.parse))
    if remt.sniff(head):
        found.append(("remt001", remt.parse))
    chosen = advice_csv.builtin_advice_profiles() if profiles is None else profiles
    for profile in advice_csv.claiming_profiles(head, chosen):
        found.append(
            (
                f"csv-advice:{profile.name}",
                lambda data, p, profile=profile: advice_csv.parse(data, p, profile),
            )
        )
    return found
