"""OFX/QFX/QBO bank and credit-card statements (1.x SGML and 2.x XML) -> ParsedFile.

Maps the tree from parsers/ofx_tree.py (the linear tokenizer) to statements
and bank lines: dates keep the bank's calendar day, amounts are exact, every
bad transaction is reported with its line. Investment statements, account
listings and server error responses are refused with their reason.

ofxparse is not used here: it reads bodies as ASCII, shifts dates to UTC,
guesses amount separators, crashes on empty tags and is super-linear on SGML
(shared/STACK-NOTES.md). The tests use it as an independent cross-check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from reconcile.core import frames
from reconcile.core.errors import InputError
from reconcile.parsers import ofx_tree
from reconcile.parsers.base import ParsedFile, Statement, decimal_minor, lines_frame
from reconcile.parsers.ofx_tree import Node

# Columns hashed into a source_ref when a bank sends an empty FITID.
HASH_COLUMNS = ["booking_date", "amount_minor", "currency", "counterparty_name", "remittance", "reference", "bank_code"]
# OFX allows '.' or ',' as the decimal point and no thousands separators...
PLAIN_AMOUNT = re.compile(r"[+-]?(\d+([.,]\d*)?|[.,]\d+)")
# ...but some banks group thousands anyway; with both marks present the last one is the decimal point.
GROUPED_AMOUNT = re.compile(r"[+-]?\d{1,3}((,\d{3})+\.\d*|(\.\d{3})+,\d*)")
OFX_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})(\d{6}(\.\d{1,6})?)?(\s*\[[^\]]*\])?")
CURRENCY_CODE = re.compile(r"[A-Z]{3}")
HEAD_SCAN = 4096
STATEMENTS = frozenset({"STMTRS", "CCSTMTRS"})  # a malformed file may nest one in another: never read a line twice


@dataclass
class Problems:
    """Every bad transaction of a file, so one error message names the first and counts the rest."""

    path: Path
    found: list[tuple[str, str]] = field(default_factory=list)

    def add(self, where: str, why: str) -> None:
        self.found.append((where, why))

    def raise_if_any(self) -> None:
        if not self.found:
            return
        where, why = self.found[0]
        if len(self.found) > 1:
            why += f" (and {len(self.found) - 1} more problem(s), next at {self.found[1][0]}: {self.found[1][1]})"
        raise InputError(self.path, where, why)


def parse_day(text: str | None, what: str) -> date:
    """The calendar day of an OFX datetime, as the bank wrote it (the timezone is never applied)."""
    if not text:
        raise ValueError(f"{what} is missing")
    match = OFX_DATE.fullmatch(text.strip())
    try:
        if match is None:
            raise ValueError
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise ValueError(f"{what} '{text}' is not a date (YYYYMMDD[HHMMSS[.XXX]][tz])") from None


def parse_amount(text: str | None, currency: str, what: str = "TRNAMT") -> int:
    """An OFX amount as exact minor units; refuses symbols, ambiguity and excess decimals."""
    raw = (text or "").strip()
    if not raw:
        raise ValueError(f"{what} is missing")
    if PLAIN_AMOUNT.fullmatch(raw):
        normal = raw.replace(",", ".")
    elif GROUPED_AMOUNT.fullmatch(raw):
        decimal_mark = raw[max(raw.rfind(","), raw.rfind("."))]
        normal = raw.replace("," if decimal_mark == "." else ".", "").replace(",", ".")
    else:
        raise ValueError(f"{what} '{raw}' is not an amount")
    if normal.endswith("."):
        normal += "0"
    if normal.lstrip("+-").startswith("."):
        normal = normal.replace(".", "0.", 1)
    try:
        return decimal_minor(normal, currency)
    except ValueError as exc:
        raise ValueError(f"{what} '{raw[:30]}': {exc}") from None


def _currency(text: str | None) -> str | None:
    code = (text or "").strip().upper()
    if not code:
        return None
    if not CURRENCY_CODE.fullmatch(code):
        raise ValueError(f"currency '{text}' is not an ISO 4217 code")
    return code


def _refuse_server_errors(doc: ofx_tree.Document, path: Path) -> None:
    for owner in ("SONRS", "STMTTRNRS", "CCSTMTTRNRS"):
        for node in doc.index.get(owner, []):
            code = (node.leaf("STATUS/CODE") or "0").strip()
            severity = (node.leaf("STATUS/SEVERITY") or "").strip().upper()
            if code != "0" and severity != "INFO":
                message = node.leaf("STATUS/MESSAGE") or "no message"
                kind = "sign-on failed" if owner == "SONRS" else "the bank's server answered with an error"
                raise InputError(path, f"line {node.line} ({owner}/STATUS)", f"{kind}: error {code}: {message}")


def _line_record(txn: Node, statement_currency: str | None) -> dict[str, Any]:
    """One STMTTRN as a bank-lines record; raises ValueError with the reason."""
    # CURRENCY: TRNAMT is in CURSYM. ORIGCURRENCY: TRNAMT was already converted into CURDEF
    # from CURSYM (OFX 2.1.1 §5.2), so the line stays in CURDEF and CURSYM is only reported.
    own = _currency(txn.leaf("CURRENCY/CURSYM"))
    original = _currency(txn.leaf("ORIGCURRENCY/CURSYM"))
    currency = own or statement_currency
    if currency is None:
        raise ValueError("no currency: CURDEF is empty and the transaction has no CURRENCY")
    problems = []
    try:
        booking = parse_day(txn.leaf("DTPOSTED"), "DTPOSTED")
    except ValueError as exc:
        problems.append(str(exc))
    try:
        amount = parse_amount(txn.leaf("TRNAMT"), currency)
    except ValueError as exc:
        problems.append(str(exc))
    try:
        value_date = parse_day(txn.leaf("DTAVAIL"), "DTAVAIL") if txn.leaf("DTAVAIL") else None
    except ValueError as exc:
        problems.append(str(exc))
    if problems:
        raise ValueError("; ".join(problems))
    if original and original != currency:
        rate = txn.leaf("ORIGCURRENCY/CURRATE")
    elif own and statement_currency and own != statement_currency:
        rate = txn.leaf("CURRENCY/CURRATE")
    else:
        rate = None
    return {
        "source_ref": txn.leaf("FITID"),
        "booking_date": booking,
        "value_date": value_date,
        "amount_minor": amount,
        "currency": currency,
        "counterparty_name": txn.leaf("NAME") or txn.leaf("PAYEE/NAME"),
        "counterparty_account": txn.leaf("BANKACCTTO/ACCTID") or txn.leaf("CCACCTTO/ACCTID"),
        "remittance": txn.leaf("MEMO"),
        # A check number is the payer's own reference for a check: the best key we have without REFNUM.
        "reference": txn.leaf("REFNUM") or txn.leaf("CHECKNUM"),
        "end_to_end_id": None,
        "bank_code": (txn.leaf("TRNTYPE") or "").upper() or None,
        "is_reversal": False,
        "instructed_currency": original if original and original != currency else None,
        "exchange_rate": rate,
        "location": f"line {txn.line}",
    }


def _with_source_refs(lines: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """Empty FITIDs get a content hash (counting repeats). A FITID the bank reuses for another
    transaction (a card purchase and its foreign-transaction fee, a reward credit) is told apart by
    base.distinct_source_refs in the registry, which also reports it."""
    if lines.height and lines["source_ref"].is_null().any():
        hashed = frames.content_refs(lines, HASH_COLUMNS)
        lines = lines.with_columns(pl.coalesce(pl.col("source_ref"), hashed).alias("source_ref"))
    return lines, []


def _statement(node: Node, path: Path, problems: Problems) -> Statement | None:
    where = f"line {node.line}"
    account = node.leaf("BANKACCTFROM/ACCTID") or node.leaf("CCACCTFROM/ACCTID")
    if not account:
        problems.add(where, f"<{node.name}> has no BANKACCTFROM/ACCTID or CCACCTFROM/ACCTID")
    try:
        currency = _currency(node.leaf("CURDEF"))
    except ValueError as exc:
        problems.add(where, f"CURDEF: {exc}")
        currency = None
    records = []
    for txn in node.find_all("STMTTRN", skip=STATEMENTS):
        try:
            records.append(_line_record(txn, currency))
        except ValueError as exc:
            problems.add(f"line {txn.line}", f"transaction {txn.leaf('FITID') or '(no FITID)'}: {exc}")
    tranlists = node.find_all("BANKTRANLIST", skip=STATEMENTS)
    try:
        starts = [parse_day(t.leaf("DTSTART"), "DTSTART") for t in tranlists if t.leaf("DTSTART")]
        ends = [parse_day(t.leaf("DTEND"), "DTEND") for t in tranlists if t.leaf("DTEND")]
    except ValueError as exc:
        problems.add(where, str(exc))
        starts, ends = [], []
    if problems.found or not account:
        return None

    lines, warnings = _with_source_refs(lines_frame(records))
    if currency is None:
        line_currencies = lines["currency"].unique().to_list()
        currency = line_currencies[0] if len(line_currencies) == 1 else None
        warnings.insert(0, "CURDEF is empty: the currency is taken from each transaction")
    closing = None
    balance = node.child("LEDGERBAL")
    if balance is not None and balance.leaf("BALAMT"):
        if currency is None:
            warnings.append("LEDGERBAL ignored: the statement has no single currency")
        else:
            try:
                closing = parse_amount(balance.leaf("BALAMT"), currency, "LEDGERBAL/BALAMT")
            except ValueError as exc:
                problems.add(f"line {balance.line}", str(exc))
                return None
    return Statement(
        account=account, currency=currency, lines=lines, closing_minor=closing, opening_minor=None,
        period_start=min(starts) if starts else None, period_end=max(ends) if ends else None,
        location=where, warnings=tuple(warnings),
    )


class OfxParser:
    name = "ofx"

    def sniff(self, head: bytes, path: Path) -> bool:
        """OFXHEADER: (1.x), <?xml with <?OFX (2.x), or a bare <OFX> / <?OFX (headerless)."""
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            head = head.decode("utf-16", errors="ignore").encode("utf-8")
        text = head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")[:HEAD_SCAN].upper()
        if text.startswith((b"OFXHEADER", b"<OFX>", b"<?OFX")):
            return True
        return text.startswith(b"<?XML") and b"<?OFX" in text

    def parse(self, data: bytes, path: Path) -> ParsedFile:
        doc = ofx_tree.read(data, path)
        _refuse_server_errors(doc, path)
        nodes = sorted((n for name in STATEMENTS for n in doc.index.get(name, [])), key=lambda n: n.line)
        problems = Problems(path)
        statements = [s for s in (_statement(n, path, problems) for n in nodes) if s is not None]
        problems.raise_if_any()
        if not statements:
            # fidelity-savings.ofx has bank-style STMTTRN inside INVBANKTRAN: they are cash moves of
            # a brokerage account (4-decimal amounts in USD), so the whole file is refused as investment.
            if "INVSTMTRS" in doc.index:
                raise InputError(path, f"line {doc.index['INVSTMTRS'][0].line}",
                                 "investment statements are not bank statements (INVSTMTRS)")
            if "ACCTINFORS" in doc.index:
                raise InputError(path, f"line {doc.index['ACCTINFORS'][0].line}",
                                 "account listing, no statements (ACCTINFORS)")
        elif "INVSTMTRS" in doc.index:
            first = statements[0]
            statements[0] = replace(first, warnings=(
                *first.warnings, "investment statements in this file were skipped (INVSTMTRS)"))
        return ParsedFile("ofx", statements)
