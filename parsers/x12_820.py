"""ANSI X12 820 (payment order / remittance advice) into the advice model of parsers/advice.py.

Reads the ISA/GS/ST envelope with the delimiters the ISA segment declares, checks every control
count, and turns each ST/SE transaction into one advice (BPR, TRN, CUR, DTM, N1, ENT, RMR, ADX).
Linking advices to bank lines and allocating from them is left to the store and matching layers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from reconcile.core.errors import InputError
from reconcile.core.money import to_minor
from reconcile.parsers.advice import (
    ADJUSTMENT,
    ITEM,
    ParsedAdvice,
    balance_warning,
    build,
    content_hash,
)

FORMAT = "x12_820"
ISA_LENGTH = 106  # "ISA" + 16 fixed-width elements + the segment terminator
_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{1,2}")
# X12 type R (decimal number): optional minus, explicit decimal point only when there are decimals
_DECIMAL = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)")
_HEADING_DATES = ("234", "009", "097")  # settlement, process, transaction creation: BPR16 first
_BLANKS = "\r\n"
_PADDING = " \t\r\n"  # not str.strip(): \x1c-\x1f count as whitespace there, yet are X12 separators


@dataclass
class Segment:
    number: int  # 1-based position in the file, ISA included
    id: str
    elements: list[str]  # elements[0] is the segment id; elements[n] is <id>0n

    def get(self, position: int) -> str | None:
        """The element at `position` (1-based), stripped; None when absent or empty."""
        if position >= len(self.elements):
            return None
        value = self.elements[position].strip(_PADDING)
        return value or None

    def where(self, position: int | None = None) -> str:
        if position is None:
            return f"segment {self.number} ({self.id})"
        return f"segment {self.number} ({self.id}), element {self.id}{position:02d}"


@dataclass
class Delimiters:
    element: str
    component: str
    segment: str


@dataclass
class _Transaction:
    start: Segment
    version: str
    segments: list[Segment] = field(default_factory=list)


def sniff(head: bytes) -> bool:
    """An X12 interchange: ISA, an element separator that is not a letter or digit, then ISA01
    (two digits) and the separator again."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if len(text) < 8 or text[:3] != b"ISA":
        return False
    separator = text[3:4]
    return (
        not separator.isalnum()
        and separator not in b" \t\r\n"
        and (text[4:6].isdigit() and text[6:7] == separator)
    )


def parse(data: bytes, path: Path) -> ParsedAdvice:
    text = _decode(data)
    advices: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    warnings: list[str] = []
    for transaction in _transactions(text, path, warnings):
        advice, own_lines, warning = _advice(transaction, path)
        advices.append(advice)
        lines.extend(own_lines)
        if warning:
            warnings.append(warning)
    if not advices:
        raise InputError(path, None, "the interchange holds no 820 transaction")
    return build(FORMAT, advices, lines, path, warnings)


def _decode(data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:  # X12's extended character set written in a single-byte code page
        text = data.decode("latin-1")
    return text.lstrip(" \t\r\n")


def delimiters(text: str, path: Path) -> tuple[Delimiters, bool]:
    """The separators an ISA segment declares (its 4th character, ISA16, and the character after
    ISA16) and whether the ISA has its fixed width.

    ISA is fixed width, so ISA16 sits at offset 104 and the terminator at 105; the separators are
    found by counting elements rather than by offset so that a sender's padding slip is still read.
    """
    if not text.startswith("ISA") or len(text) < 4:
        raise InputError(path, "segment 1", "an X12 interchange starts with an ISA segment")
    element = text[3]
    if element.isalnum() or element in " \t\r\n":
        raise InputError(path, "segment 1 (ISA)", f"{element!r} cannot be the element separator")
    position = 3
    for _ in range(15):
        position = text.find(element, position + 1)
        if position < 0:
            raise InputError(path, "segment 1 (ISA)", "the ISA segment has fewer than 16 elements")
    if len(text) < position + 3:
        raise InputError(path, "segment 1 (ISA)", "the file ends inside the ISA segment")
    component, segment = text[position + 1], text[position + 2]
    if segment.isalnum() or segment == " " or segment == element:
        raise InputError(
            path,
            "segment 1 (ISA), element ISA16",
            f"ISA16 must be one character followed by the segment terminator, not "
            f"{text[position + 1 : position + 3]!r}",
        )
    if len({element, component, segment}) < 3:
        raise InputError(
            path, "segment 1 (ISA)", "the element, component and segment separators must differ"
        )
    return Delimiters(element, component, segment), position + 1 == ISA_LENGTH - 2


def _segments(
    text: str, path: Path, first_number: int, warnings: list[str]
) -> tuple[list[Segment], Delimiters, str]:
    """The segments of one interchange (ISA .. IEA), its delimiters and the text after it.

    The end of the file also ends the last segment: a file cut short is caught by the IEA and
    control-count checks, and newline-terminated files often lack the final newline.
    """
    marks, fixed_width = delimiters(text, path)
    if not fixed_width:
        warnings.append(
            f"segment {first_number} (ISA): not {ISA_LENGTH} characters wide; its separators "
            f"were found by counting elements"
        )
    segments: list[Segment] = []
    position, number = 0, first_number
    while position < len(text):
        end = text.find(marks.segment, position)
        end = len(text) if end < 0 else end
        raw = text[position:end].strip(_BLANKS)
        position = end + 1
        if not raw.strip(_PADDING):
            continue
        elements = raw.split(marks.element)
        seg_id = elements[0].strip(_PADDING)
        if not _SEGMENT_ID.fullmatch(seg_id):
            raise InputError(
                path,
                f"segment {number}",
                f"malformed segment: {seg_id[:20]!r} is not a segment id "
                f"(element separator {marks.element!r}, segment terminator {marks.segment!r})",
            )
        segments.append(Segment(number, seg_id, elements))
        number += 1
        if seg_id == "IEA":
            return segments, marks, text[position:]
    return segments, marks, ""


def _transactions(text: str, path: Path, warnings: list[str]) -> list[_Transaction]:
    """Every ST/SE transaction of every interchange, with the envelope's control counts checked."""
    found: list[_Transaction] = []
    number = 1
    rest = text
    while rest.strip():
        rest = rest.lstrip(" \t\r\n")
        segments, _, rest = _segments(rest, path, number, warnings)
        number += len(segments)
        found.extend(_envelope(segments, path, warnings))
    return found


def _envelope(segments: list[Segment], path: Path, warnings: list[str]) -> list[_Transaction]:
    isa = segments[0]
    if len(isa.elements) != 17:
        raise InputError(path, isa.where(), f"ISA has {len(isa.elements) - 1} elements, not 16")
    control = isa.get(13)
    group: Segment | None = None
    groups = 0
    transaction: _Transaction | None = None
    in_group = 0
    found: list[_Transaction] = []
    for segment in segments[1:]:
        if segment.id == "ISA":
            raise InputError(
                path, segment.where(), "an ISA inside an interchange (the previous one has no IEA)"
            )
        if segment.id == "GS":
            if group is not None:
                raise InputError(
                    path,
                    segment.where(),
                    f"a GS before the GE of the group at segment {group.number}",
                )
            group, in_group = segment, 0
            continue
        if segment.id == "ST":
            if group is None:
                raise InputError(
                    path, segment.where(), "a transaction set (ST) outside a functional group (GS)"
                )
            if transaction is not None:
                raise InputError(
                    path,
                    segment.where(),
                    f"an ST before the SE of the transaction at segment {transaction.start.number}",
                )
            kind = segment.get(1)
            if kind != "820":
                raise InputError(
                    path, segment.where(1), f"transaction set {kind}, not an 820 remittance advice"
                )
            version = group.get(8) or isa.get(12) or ""
            transaction = _Transaction(segment, version, [segment])
            continue
        if segment.id == "SE":
            if transaction is None:
                raise InputError(path, segment.where(), "an SE without its ST")
            transaction.segments.append(segment)
            _check_se(transaction, segment, path)
            found.append(transaction)
            transaction = None
            in_group += 1
            continue
        if segment.id == "GE":
            if group is None or transaction is not None:
                why = (
                    "a GE without its GS"
                    if group is None
                    else "a GE inside a transaction set (no SE)"
                )
                raise InputError(path, segment.where(), why)
            _check_count(segment, 1, in_group, "transaction sets", path)
            _check_control(segment, 2, group.get(6), f"GS06 at segment {group.number}", path)
            group = None
            groups += 1
            continue
        if segment.id == "IEA":
            if group is not None or transaction is not None:
                raise InputError(
                    path, segment.where(), "an IEA before the group or transaction set is closed"
                )
            _check_count(segment, 1, groups, "functional groups", path)
            _check_control(segment, 2, control, f"ISA13 at segment {isa.number}", path)
            return found
        if transaction is None:
            raise InputError(
                path, segment.where(), "a segment outside a transaction set (ST ... SE)"
            )
        transaction.segments.append(segment)
    last = segments[-1]
    raise InputError(path, last.where(), "the interchange ends without an IEA segment")


def _check_se(transaction: _Transaction, se: Segment, path: Path) -> None:
    _check_count(se, 1, len(transaction.segments), "segments (ST to SE)", path)
    _check_control(
        se, 2, transaction.start.get(2), f"ST02 at segment {transaction.start.number}", path
    )


def _check_count(segment: Segment, position: int, actual: int, what: str, path: Path) -> None:
    written = segment.get(position)
    if written is None or not written.isdigit():
        raise InputError(path, segment.where(position), f"{written!r} is not a count of {what}")
    if int(written) != actual:
        raise InputError(
            path,
            segment.where(position),
            f"control count says {int(written)} {what}, the file has {actual}",
        )


def _check_control(
    segment: Segment, position: int, expected: str | None, source: str, path: Path
) -> None:
    written = segment.get(position)
    if (written or "").lstrip("0") != (expected or "").lstrip("0"):
        raise InputError(
            path,
            segment.where(position),
            f"control number {written!r} does not match {expected!r} ({source})",
        )


@dataclass
class _Amounts:
    """Amounts read once the transaction's currency is known (CUR follows BPR), errors located."""

    path: Path
    currency: str = "USD"

    def minor(self, segment: Segment, position: int, *, required: bool = False) -> int | None:
        text = segment.get(position)
        if text is None:
            if required:
                raise InputError(self.path, segment.where(position), "amount is missing")
            return None
        if not _DECIMAL.fullmatch(text):
            raise InputError(
                self.path, segment.where(position), f"{text!r} is not an X12 decimal amount"
            )
        try:
            return to_minor(Decimal(text), self.currency)
        except ValueError as exc:
            raise InputError(self.path, segment.where(position), str(exc)) from None


def _date(segment: Segment, position: int, path: Path) -> date | None:
    text = segment.get(position)
    if text is None:
        return None
    try:
        if len(text) == 8 and text.isdigit():
            return date(int(text[:4]), int(text[4:6]), int(text[6:]))
        if len(text) == 6 and text.isdigit():  # YYMMDD of releases before 4010
            year = int(text[:2])
            return date((2000 if year < 50 else 1900) + year, int(text[2:4]), int(text[4:]))
    except ValueError:
        pass
    raise InputError(path, segment.where(position), f"{text!r} is not a date (CCYYMMDD)")


def _reduction_sign(version: str) -> int:
    """ADX01 -> "reduces the payment": from release 003050 on a negative ADX01 reduces the payment;
    release 003030 (and, we assume, 003040) wrote reductions as positive amounts."""
    release = version[:6]
    return 1 if release.isdigit() and release < "003050" else -1


def _advice(
    transaction: _Transaction, path: Path
) -> tuple[dict[str, Any], list[dict[str, Any]], str | None]:
    body = transaction.segments[1:-1]
    st = transaction.start
    if not body or body[0].id != "BPR":
        where = body[0].where() if body else st.where()
        raise InputError(path, where, "an 820 transaction must begin with a BPR segment after ST")
    amounts = _Amounts(path)
    for segment in body:
        if segment.id == "CUR":
            currency = segment.get(2)
            if currency is None or not re.fullmatch(r"[A-Z]{3}", currency):
                raise InputError(
                    path, segment.where(2), f"{currency!r} is not an ISO 4217 currency code"
                )
            amounts.currency = currency
            break
    bpr = body[0]
    sign = _reduction_sign(transaction.version)
    payment = amounts.minor(bpr, 2, required=True)
    assert payment is not None
    flag = bpr.get(3)
    if flag not in (None, "C", "D"):
        raise InputError(path, bpr.where(3), f"{flag!r} is not a credit/debit flag (C or D)")
    advice: dict[str, Any] = {
        "handling_code": bpr.get(1),
        "payment_amount_minor": payment,
        "credit_debit": flag,
        "payment_method": bpr.get(4),
        "payment_date": _date(bpr, 16, path),
        "currency": amounts.currency,
        "location": st.where(),
    }
    trace: Segment | None = None
    heading_dates: dict[str, date | None] = {}
    lines: list[dict[str, Any]] = []
    entity: str | None = None
    item: dict[str, Any] | None = None  # the open RMR loop, which ADX and DTM*003 attach to
    last: dict[str, Any] | None = None  # the line an NTE after an ADX explains
    in_detail = False
    for segment in body[1:]:
        sid = segment.id
        if sid == "TRN" and trace is None and not in_detail:
            trace = segment
        elif sid == "DTM" and not in_detail and segment.get(1):
            heading_dates.setdefault(segment.get(1) or "", _date(segment, 2, path))
        elif sid == "N1" and not in_detail:
            role = {"PR": "payer", "PE": "payee"}.get(segment.get(1) or "")
            if role and advice.get(f"{role}_name") is None and advice.get(f"{role}_id") is None:
                advice[f"{role}_name"], advice[f"{role}_id"] = segment.get(2), segment.get(4)
        elif sid == "ENT":
            in_detail, item, last = True, None, None
            entity = segment.get(4) or segment.get(1)
        elif sid == "RMR":
            in_detail = True
            qualifier, reference = segment.get(1), segment.get(2)
            if reference is None:
                raise InputError(
                    path, segment.where(2), "RMR02 (the document's reference) is missing"
                )
            item = {
                "line_kind": ITEM,
                "reference_qualifier": qualifier,
                "invoice_number": reference,
                "payment_action": segment.get(3),
                "entity": entity,
                "amount_paid_minor": amounts.minor(segment, 4),
                "invoice_total_minor": amounts.minor(segment, 5),
                "discount_minor": amounts.minor(segment, 6),
                "adjustment_minor": None,
                "adjustment_reasons": [],
                "location": segment.where(),
                "_segment": segment,
            }
            if item["amount_paid_minor"] is None and item["invoice_total_minor"] is None:
                raise InputError(
                    path, segment.where(4), "RMR04 (amount paid) is missing and there is no RMR05"
                )
            lines.append(item)
            last = None
        elif sid == "DTM" and item is not None and segment.get(1) == "003":
            item["document_date"] = _date(segment, 2, path)
        elif sid == "ADX":
            value = amounts.minor(segment, 1, required=True)
            assert value is not None
            reduction = sign * value
            reason = segment.get(2)
            if item is not None:
                item["adjustment_minor"] = (item["adjustment_minor"] or 0) + reduction
                if reason:
                    item["adjustment_reasons"].append(reason)
                last = item
            else:
                last = {
                    "line_kind": ADJUSTMENT,
                    "reference_qualifier": segment.get(3),
                    "invoice_number": segment.get(4),
                    "entity": entity,
                    "amount_paid_minor": -reduction,
                    "adjustment_minor": reduction,
                    "adjustment_reasons": [reason] if reason else [],
                    "location": segment.where(),
                }
                lines.append(last)
        elif sid == "NTE" and last is not None and segment.get(2):
            last["description"] = "; ".join(filter(None, [last.get("description"), segment.get(2)]))
    for line in lines:
        rmr = line.pop("_segment", None)
        if (
            line["amount_paid_minor"] is None and rmr is not None
        ):  # derive RMR04 from RMR05 as documented
            line["amount_paid_minor"] = (
                line["invoice_total_minor"]
                - (line["discount_minor"] or 0)
                - (line["adjustment_minor"] or 0)
            )
    if advice["payment_date"] is None:
        advice["payment_date"] = next(
            (heading_dates[q] for q in _HEADING_DATES if heading_dates.get(q)),
            next(iter(heading_dates.values()), None),
        )
    trace_number = trace.get(2) if trace is not None else None
    advice["trace_number"] = trace_number
    if trace_number:
        origin = (trace.get(3) if trace is not None else None) or advice.get("payer_id") or ""
        ref = f"820:{origin}:{trace_number}"
    else:
        normalized = ["\x1e".join(e.strip(_PADDING) for e in s.elements) for s in body]
        ref = f"820:h:{content_hash(normalized)}"
    advice["advice_ref"] = ref
    for line in lines:
        line["advice_ref"] = ref
    return advice, lines, _balance(advice, lines)


def _balance(advice: dict[str, Any], lines: list[dict[str, Any]]) -> str | None:
    """BPR02 should equal the RMR04 amounts plus the ADX outside RMR loops; warn, never refuse."""
    total = sum(line["amount_paid_minor"] for line in lines)
    advice["balanced"] = total == advice["payment_amount_minor"]
    if advice["balanced"]:
        return None
    detail = ""
    gross = total - sum(
        line["adjustment_minor"] or 0 for line in lines if line["line_kind"] == ITEM
    )
    if not lines:
        detail = " (the transaction has no RMR detail)"
    elif gross == advice["payment_amount_minor"] and gross != total:
        detail = " (it would balance if RMR04 were written before the ADX adjustments of its loop)"
    return balance_warning(advice, total, detail)
