"""ISO 20022 remt.001 remittance advices (any version) into the advice model of parsers/advice.py.

Each RmtInf is one advice: its original payment (OrgnlPmtInf, older drafts RltdPmtInf) gives the
amount, date, parties and end-to-end id; each Strd entry becomes a line. XML loading and its
safety rules are xmlsafe's; elements are matched by local name so every version reads alike.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from lxml import etree

from reconcile.core.errors import InputError
from reconcile.core.money import to_minor
from reconcile.parsers.advice import ITEM, ParsedAdvice, build
from reconcile.parsers.xmlsafe import load, split_documents

FORMAT = "remt001"
_ROOT = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?RmtAdvc[\s/>]")
_NAMESPACE = re.compile(rb"urn:iso:std:iso:20022:tech:xsd:remt\.001\.")
_OTHER_REMT = re.compile(
    rb"urn:iso:std:iso:20022:tech:xsd:remt\.00[2-9]\.|<(?:[\w.-]+:)?RmtLctnAdvc[\s/>]"
)
_PAYMENT = ("OrgnlPmtInf", "RltdPmtInf")


def sniff(head: bytes) -> bool:
    """remt.001 by its root element or namespace; remt.002 (location advice) too, to refuse it."""
    if b"<" not in head[:1024]:
        return False
    return bool(_ROOT.search(head) or _NAMESPACE.search(head) or _OTHER_REMT.search(head))


def parse(data: bytes, path: Path) -> ParsedAdvice:
    advices: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    warnings: list[str] = []
    for document in split_documents(data):
        root, namespace = load(document, path)
        _document(root, namespace, path, advices, lines, warnings)
    if not advices:
        raise InputError(path, None, "the remittance advice holds no RmtInf")
    return build(FORMAT, advices, lines, path, warnings)


class _Reader:
    """Located access to one document: every error names the element path."""

    def __init__(self, root: etree._Element, path: Path) -> None:
        self.tree = root.getroottree()
        self.path = path

    def where(self, element: etree._Element) -> str:
        return str(self.tree.getpath(element))

    def text(self, element: etree._Element | None, child: str) -> str | None:
        if element is None:
            return None
        value = element.findtext(child)
        if value is None:
            return None
        value = " ".join(value.split())
        return value or None

    def amount(self, element: etree._Element | None) -> tuple[int, str] | None:
        """(minor units, currency) of an amount element with a Ccy attribute; None when absent."""
        if element is None:
            return None
        if element.get("Ccy") is None and element.find("Amt") is not None:
            element = element.find("Amt")  # DiscountAmountAndType: <Tp/><Amt Ccy=..>
            assert element is not None
        currency = (element.get("Ccy") or "").strip().upper()
        raw = (element.text or "").strip()
        if not re.fullmatch(r"[A-Z]{3}", currency):
            raise InputError(
                self.path, self.where(element), f"amount has no valid Ccy attribute ({currency!r})"
            )
        if not re.fullmatch(r"-?\d+(\.\d+)?", raw):
            raise InputError(self.path, self.where(element), f"{raw!r} is not a decimal amount")
        try:
            return to_minor(Decimal(raw), currency), currency
        except (InvalidOperation, ValueError) as exc:
            raise InputError(self.path, self.where(element), str(exc)) from None

    def day(self, element: etree._Element | None) -> date | None:
        """An ISODate, a DtTm's date part, or a <Dt>/<DtTm> choice below the element."""
        if element is None:
            return None
        raw = (
            self.text(element, "Dt")
            or self.text(element, "DtTm")
            or " ".join((element.text or "").split())
        )
        if not raw:
            return None
        try:
            return date.fromisoformat(raw[:10])
        except ValueError:
            raise InputError(self.path, self.where(element), f"{raw!r} is not a date") from None


def _document(
    root: etree._Element,
    namespace: str | None,
    path: Path,
    advices: list[dict[str, Any]],
    lines: list[dict[str, Any]],
    warnings: list[str],
) -> None:
    read = _Reader(root, path)
    advc = root if root.tag == "RmtAdvc" else root.find("RmtAdvc")
    if advc is None:
        if root.find("RmtLctnAdvc") is not None or (namespace or "").find("remt.002") >= 0:
            raise InputError(
                path,
                read.where(root),
                "a remt.002 remittance location advice says where the "
                "remittance detail is, it holds none; import the remt.001 it points to",
            )
        raise InputError(
            path, read.where(root), "no RmtAdvc element (not a remt.001 remittance advice)"
        )
    header = advc.find("GrpHdr")
    msg_id = read.text(header, "MsgId")
    if msg_id is None:
        raise InputError(
            path, read.where(header if header is not None else advc), "GrpHdr/MsgId is missing"
        )
    for number, info in enumerate(advc.findall("RmtInf"), start=1):
        advice, own = _advice(read, info, msg_id, number, warnings)
        advices.append(advice)
        lines.extend(own)


def _party(read: _Reader, payment: etree._Element, role: str) -> tuple[str | None, str | None]:
    party = payment.find(role)
    if party is not None and party.find("Pty") is not None:  # older drafts wrap the party in <Pty>
        party = party.find("Pty")
    name = read.text(party, "Nm")
    ident = None
    for child in (
        "Id/OrgId/Othr/Id",
        "Id/OrgId/AnyBIC",
        "Id/OrgId/BICOrBEI",
        "Id/OrgId/LEI",
        "Id/PrvtId/Othr/Id",
    ):
        ident = ident or read.text(party, child)
    account = payment.find(f"{role}Acct")
    ident = ident or read.text(account, "Id/IBAN") or read.text(account, "Id/Othr/Id")
    return name, ident


def _payment_amount(read: _Reader, payment: etree._Element) -> tuple[int, str] | None:
    amt = payment.find("Amt")
    if amt is not None and amt.get("Ccy") is None:
        equivalent = amt.find("EqvtAmt")
        return read.amount(
            amt.find("InstdAmt")
            if amt.find("InstdAmt") is not None
            else equivalent.find("Amt")
            if equivalent is not None
            else None
        )
    return read.amount(amt if amt is not None else payment.find("IntrBkSttlmAmt"))


def _advice(
    read: _Reader, info: etree._Element, msg_id: str, number: int, warnings: list[str]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    path = read.path
    payment = next((p for p in (info.find(name) for name in _PAYMENT) if p is not None), None)
    if payment is None:
        raise InputError(
            path, read.where(info), "OrgnlPmtInf (the payment this advice explains) is missing"
        )
    paid = _payment_amount(read, payment)
    if paid is None:
        raise InputError(
            path, read.where(payment), "the payment's amount (Amt/InstdAmt) is missing"
        )
    amount, currency = paid
    rmt_id = read.text(info, "RmtId")
    ref = f"remt:{msg_id}/{rmt_id}" if rmt_id else f"remt:{msg_id}/#{number}"
    payer_name, payer_id = _party(read, payment, "Dbtr")
    payee_name, payee_id = _party(read, payment, "Cdtr")
    end_to_end = read.text(payment, "Refs/EndToEndId") or read.text(payment, "EndToEndId")
    when = None
    for child in ("ReqdExctnDt", "IntrBkSttlmDt", "ReqdColltnDt", "ValDt"):
        when = when or read.day(payment.find(child))
    method = (
        read.text(payment, "PmtTpInf/LclInstrm/Cd")
        or read.text(payment, "PmtTpInf/LclInstrm/Prtry")
        or read.text(payment, "PmtTpInf/SvcLvl/Cd")
        or read.text(payment, "PmtMtd")
    )
    texts = [" ".join((u.text or "").split()) for u in info.findall("Ustrd")]
    advice: dict[str, Any] = {
        "advice_ref": ref,
        "payer_name": payer_name,
        "payer_id": payer_id,
        "payee_name": payee_name,
        "payee_id": payee_id,
        "payment_method": method,
        "payment_amount_minor": amount,
        "currency": currency,
        "payment_date": when,
        "trace_number": rmt_id,
        "end_to_end_id": None if (end_to_end or "").upper() == "NOTPROVIDED" else end_to_end,
        "remittance": " ".join(t for t in texts if t) or None,
        "location": read.where(info),
    }
    lines = [_line(read, strd, ref, currency, warnings) for strd in info.findall("Strd")]
    unstated = [line for line in lines if line["amount_paid_minor"] is None]
    if len(lines) == 1 and unstated:  # one document and no amounts: the whole payment pays it
        lines[0]["amount_paid_minor"] = amount
    elif unstated:
        warnings.append(
            f"advice {ref}: {len(unstated)} of its {len(lines)} documents state no amount "
            f"(first at {unstated[0]['location']})"
        )
    return advice, lines


def _line(
    read: _Reader, strd: etree._Element, ref: str, currency: str, warnings: list[str]
) -> dict[str, Any]:
    documents = strd.findall("RfrdDocInf")
    first = documents[0] if documents else None
    number = read.text(first, "Nb")
    kind = (
        read.text(first, "Tp/CdOrPrtry/Cd")
        or read.text(first, "Tp/CdOrPrtry/Prtry")
        or read.text(first, "Tp/Cd")
    )
    if number is None:  # a creditor reference (RF...) instead of a document number
        number = read.text(strd, "CdtrRefInf/Ref")
        kind = (
            kind
            or read.text(strd, "CdtrRefInf/Tp/CdOrPrtry/Cd")
            or read.text(strd, "CdtrRefInf/Tp/CdOrPrtry/Prtry")
        )
    notes = [" ".join((a.text or "").split()) for a in strd.findall("AddtlRmtInf")]
    if len(documents) > 1:
        others = [read.text(d, "Nb") or "?" for d in documents[1:]]
        notes.append("also refers to " + ", ".join(others))
        warnings.append(
            f"advice {ref}: {read.where(strd)} refers to {len(documents)} documents with one "
            f"amount; the line names the first"
        )
    amounts = strd.find("RfrdDocAmt")

    def money(child: str) -> int | None:
        found = read.amount(amounts.find(child)) if amounts is not None else None
        if found is None:
            return None
        if found[1] != currency:
            element = amounts.find(child)  # type: ignore[union-attr]
            raise InputError(
                read.path,
                read.where(element),
                f"amount in {found[1]}, the payment is in {currency}",
            )
        return found[0]

    discount = None
    for element in amounts.findall("DscntApldAmt") if amounts is not None else []:
        value = read.amount(element)
        if value is not None:
            discount = (discount or 0) + value[0]
    adjustment = None
    reasons: list[str] = []
    for element in amounts.findall("AdjstmntAmtAndRsn") if amounts is not None else []:
        value = read.amount(element.find("Amt"))
        if value is None:
            raise InputError(read.path, read.where(element), "AdjstmntAmtAndRsn/Amt is missing")
        # CRDT increases the amount, DBIT decreases it; no indicator: a deduction, the usual case
        reduces = (read.text(element, "CdtDbtInd") or "DBIT").upper() != "CRDT"
        adjustment = (adjustment or 0) + (value[0] if reduces else -value[0])
        reason = read.text(element, "Rsn")
        if reason:
            reasons.append(reason)
        note = read.text(element, "AddtlInf")
        if note:
            notes.append(note)
    due, remitted, credit_note = money("DuePyblAmt"), money("RmtdAmt"), money("CdtNoteAmt")
    if remitted is None and due is not None:
        remitted = due - (discount or 0) - (adjustment or 0) - (credit_note or 0)
    elif remitted is None and credit_note is not None:  # a credit note the payer deducts
        remitted = -credit_note
    return {
        "advice_ref": ref,
        "line_kind": ITEM,
        "reference_qualifier": kind,
        "invoice_number": number,
        "document_date": read.day(first.find("RltdDt")) if first is not None else None,
        "amount_paid_minor": remitted,
        "invoice_total_minor": due,
        "discount_minor": discount,
        "adjustment_minor": adjustment,
        "adjustment_reasons": reasons,
        "description": "; ".join(n for n in notes if n) or None,
        "location": read.where(strd),
    }
