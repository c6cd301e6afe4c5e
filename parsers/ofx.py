"""OFX/QFX statements, 1.x SGML and 2.x XML, with one linear tokenizer.

ofxparse reads bodies as ASCII, shifts dates to UTC, guesses amount
separators and is super-linear on SGML (STACK-NOTES), so bank and credit-card
statements are read here in a single pass: unclosed SGML leaves, XML leaves,
empty and self-closing tags are all the same token stream. Dates keep the
bank's calendar day; amounts are exact. Investment statements, account
listings and server error responses are refused with their reason.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

import polars as pl

from reconcile import frames
from reconcile.errors import InputError
from reconcile.money import to_minor
from reconcile.parsers.base import ParsedFile, Statement, lines_frame

TOKEN = re.compile(rb"<(/?)([A-Za-z0-9_.]+)\s*(/?)>([^<]*)")
HASH_COLUMNS = ["booking_date", "amount_minor", "currency", "counterparty_name", "remittance", "reference", "bank_code"]
AMOUNT = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)$")


@dataclass
class Node:
    name: str
    offset: int
    leaves: dict[str, str] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)

    def child(self, name: str) -> Node | None:
        return next((c for c in self.children if c.name == name), None)

    def find_all(self, name: str) -> list[Node]:
        """Descendants named `name`, in document order (not looking inside a match)."""
        found: list[Node] = []
        for c in self.children:
            if c.name == name:
                found.append(c)
            else:
                found.extend(c.find_all(name))
        return found

    def leaf(self, path: str) -> str | None:
        *aggregates, last = path.split("/")
        node: Node | None = self
        for name in aggregates:
            node = node.child(name) if node else None
        if node is None:
            return None
        value = node.leaves.get(last)
        return value if value else None


def _decode(data: bytes) -> bytes:
    """The body as UTF-8 bytes: UTF-8 when it is, else cp1252 (what CHARSET:1252 banks send)."""
    try:
        data.decode("utf-8")
        return data
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace").encode("utf-8")


def _tree(body: bytes, path: Path) -> Node:
    tokens = list(TOKEN.finditer(body))
    closers = {m.group(2).decode("ascii").upper() for m in tokens if m.group(1)}
    root = Node("#root", 0)
    stack = [root]
    skip_close: str | None = None
    for index, match in enumerate(tokens):
        closing, raw_name, selfclose, text = match.groups()
        name = raw_name.decode("ascii").upper()
        if closing:
            if skip_close == name:
                skip_close = None
                continue
            skip_close = None
            # tolerant close: pop to the matching aggregate, ignore strays
            for depth in range(len(stack) - 1, 0, -1):
                if stack[depth].name == name:
                    del stack[depth:]
                    break
            continue
        skip_close = None
        value = text.strip()
        next_close = index + 1 < len(tokens) and tokens[index + 1].group(1) and \
            tokens[index + 1].group(2).upper() == raw_name.upper()
        if value or selfclose or next_close or name not in closers:
            stack[-1].leaves.setdefault(name, value.decode("utf-8", errors="replace"))
            if next_close:
                skip_close = name
            continue
        node = Node(name, match.start())
        stack[-1].children.append(node)
        stack.append(node)
    return root


def _day(text: str | None, where: str, path: Path, what: str) -> date:
    if not text:
        raise InputError(path, where, f"{what} is missing")
    digits = text.strip()[:8]
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        raise InputError(path, where, f"{what} '{text}' is not a date") from None


def _amount(text: str | None, currency: str, where: str, path: Path) -> int:
    raw = (text or "").strip().replace(" ", "")
    if not AMOUNT.match(raw):
        raise InputError(path, where, f"TRNAMT '{text}' is not an amount")
    # OFX allows a comma as the decimal point; thousands separators are not allowed
    try:
        return to_minor(Decimal(raw.replace(",", ".")), currency)
    except (InvalidOperation, ValueError) as exc:
        raise InputError(path, where, f"TRNAMT '{text}': {exc}") from None


class OfxParser:
    name = "ofx"

    def sniff(self, head: bytes, path: Path) -> bool:
        start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:4096]
        upper = start.upper()
        return upper.startswith(b"OFXHEADER") or b"<?OFX" in upper or (b"<OFX>" in upper and b"<DOCUMENT" not in upper)

    def parse(self, data: bytes, path: Path) -> ParsedFile:
        body = _decode(data)
        start = body.upper().find(b"<OFX>")
        if start < 0:
            raise InputError(path, None, "no <OFX> element")
        end = body.upper().rfind(b"</OFX>")
        body = body[start:end + 6] if end > start else body[start:]
        newlines = [m.start() for m in re.finditer(rb"\n", data[:start])]
        header_lines = len(newlines)
        body_newlines = [m.start() for m in re.finditer(rb"\n", body)]

        def line_of(offset: int) -> str:
            return f"line {header_lines + bisect.bisect_right(body_newlines, offset) + 1}"

        root = _tree(body, path)
        self._refuse_errors(root, path)
        statements = [self._statement(node, path, line_of) for node in root.find_all("STMTRS") + root.find_all("CCSTMTRS")]
        if not statements:
            if root.find_all("INVSTMTRS"):
                raise InputError(path, "INVSTMTRS", "an investment statement, not a bank or credit-card statement")
            if root.find_all("ACCTINFORS"):
                raise InputError(path, "ACCTINFORS", "an account listing with no statements")
        return ParsedFile("ofx", statements)

    def _refuse_errors(self, root: Node, path: Path) -> None:
        for owner in ("SONRS", "STMTTRNRS", "CCSTMTTRNRS"):
            for node in root.find_all(owner):
                code = node.leaf("STATUS/CODE")
                if code and code.strip() not in ("0", "1000"):
                    message = node.leaf("STATUS/MESSAGE") or node.leaf("STATUS/SEVERITY") or "no message"
                    raise InputError(path, f"{owner}/STATUS", f"the bank's server answered with error {code}: {message}")

    def _statement(self, node: Node, path: Path, line_of) -> Statement:  # type: ignore[no-untyped-def]
        account_node = node.child("BANKACCTFROM") or node.child("CCACCTFROM")
        account = account_node.leaf("ACCTID") if account_node else None
        if not account:
            raise InputError(path, line_of(node.offset), f"{node.name} names no ACCTID")
        currency = (node.leaf("CURDEF") or "").upper() or None
        tranlist = node.child("BANKTRANLIST")
        records = []
        for txn in tranlist.find_all("STMTTRN") if tranlist else []:
            where = line_of(txn.offset)
            txn_currency = (txn.leaf("CURRENCY/CURSYM") or currency or "").upper()
            if not txn_currency:
                raise InputError(path, where, "no currency: neither CURDEF nor the transaction's CURRENCY is given")
            name = txn.leaf("NAME") or txn.leaf("PAYEE/NAME")
            memo = txn.leaf("MEMO")
            records.append({
                "source_ref": txn.leaf("FITID"),
                "booking_date": _day(txn.leaf("DTPOSTED"), where, path, "DTPOSTED"),
                "value_date": _day(txn.leaf("DTAVAIL"), where, path, "DTAVAIL") if txn.leaf("DTAVAIL") else None,
                "amount_minor": _amount(txn.leaf("TRNAMT"), txn_currency, where, path),
                "currency": txn_currency,
                "counterparty_name": name,
                "counterparty_account": txn.leaf("BANKACCTTO/ACCTID"),
                "remittance": memo if memo != name else memo,
                "reference": txn.leaf("REFNUM"),
                "end_to_end_id": None,
                "bank_code": (txn.leaf("TRNTYPE") or "").upper() or None,
                "is_reversal": False,
                "location": where,
            })
        lines = lines_frame(records)
        if lines.height and lines["source_ref"].is_null().any():
            hashed = frames.content_refs(lines, HASH_COLUMNS)
            lines = lines.with_columns(
                pl.when(pl.col("source_ref").is_null()).then(hashed).otherwise(pl.col("source_ref")).alias("source_ref")
            )
        if currency is None and lines.height and lines["currency"].n_unique() == 1:
            currency = lines["currency"][0]
        closing = None
        balance = node.child("LEDGERBAL")
        if balance is not None and balance.leaf("BALAMT") and currency:
            closing = _amount(balance.leaf("BALAMT"), currency, line_of(balance.offset), path)
        start = tranlist.leaf("DTSTART") if tranlist else None
        end = tranlist.leaf("DTEND") if tranlist else None
        return Statement(
            account=account, currency=currency, lines=lines, closing_minor=closing,
            period_start=_day(start, line_of(node.offset), path, "DTSTART") if start else None,
            period_end=_day(end, line_of(node.offset), path, "DTEND") if end else None,
            location=line_of(node.offset),
            warnings=() if node.leaf("CURDEF") else ("CURDEF is empty: the currency is taken from each transaction",),
        )
