"""SWIFT MT940 statements and MT942 interim reports -> one Statement per :20: block.

Reads the text however banks wrap it: a SWIFT FIN envelope ({1:..}{2:..}{4: .. -}; Swedish banks
write it in the 7-bit national character set, "ä4:" .. "-å"), control
bytes (SOH/ETX), header lines before a message (ABN AMRO's "ABNANL2A" / "940" / "ABNANL2A", other
banks' BIC or message-type line, ":940:", ING's "0000 01INGB.."), fields continued over several lines,
a ":" tag split from its number (Sparkasse), a "-" line inside details (ING). Tags split the
text into fields in one pass; each :20: block becomes a Statement with its :25: account,
:60F:/:60M: opening and :62F:/:62M: closing balance (MT942 has none: the currency then comes
from :34F:). Matching and storage are left to the neighbours.

Per :61: line (SWIFT 6!n[4!n]2a[1!a]15d1!a3!c[16x][//16x][34x]): value date, optional entry date
(the booking date; Citi and ASN write four spaces when there is none), R?C/D mark (RC/RD are
reversals: RC is a debit, RD a credit), optional funds code, amount with a decimal comma,
transaction type (N/F/S + 3 characters; "S   " with a blank message type occurs), customer
reference (padding spaces before it or before "//" are not part of it), "//" bank reference,
supplementary details. The :86:
details are read in the German ?xx dialect (GV code, ?00 posting text, ?20-?29/?60-?63
purpose with SEPA EREF+/MREF+/SVWZ+, ?30 bank, ?31/?38 account, ?32/?33 name; Triodos uses
">" instead of "?"), the Dutch /CODE/ dialect (/EREF/ /ORDP//NAME/ /CNTP/ /REMI/ ...), mBank's
"Z RACH.: ..; OD: ..; TYT.: .." and Knab's "REK: ../NAAM: .."; anything else is remittance text.

source_ref: the bank reference when present (not NONREF); otherwise a content hash of the
:61:/:86: text plus an occurrence number counted per account across the file
(frames.content_refs), so repeated identical lines stay separate. A bank reference the file
repeats for different transactions is told apart by base.distinct_source_refs (the registry).
bank_code: the GV code of German details, else the :61: transaction type (NTRF, N062, ...).
Impossible dates are refused naming the line, never moved; a balance that does not add up
is a statement warning. Fragments without :20:/:25: are refused: a line needs an account.
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
from reconcile.core.money import format_minor
from reconcile.parsers.base import ParsedFile, Statement, decimal_minor, lines_frame

LINE_BREAK = re.compile(r"\r\n|\r|\n")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
TAG = re.compile(r":([0-9A-Z]{1,5}):")
KNOWN_TAGS = frozenset({
    "20", "21", "25", "25P", "28", "28C", "13", "13D", "34F", "60F", "60M", "61", "86",
    "62F", "62M", "64", "65", "90D", "90C", "NS",
})
TEXT_TAGS = frozenset({"86", "NS"})           # free text: an unknown ":26:" inside is wrapped text
IGNORED_TAGS = frozenset({"21", "13", "13D", "64", "65", "90D", "90C", "NS", "25P"})
# Lines some banks put before each message: ING "0000 01INGBNL2AXXXX00001", "940 00", a message type
# ("940", "MT940", "942"), a sender/receiver BIC (ABN AMRO "ABNANL2A"; 8 or 11 characters).
HEADER_LINE = re.compile(r"\d{4} \d\d[A-Z0-9]{4,}|(?:MT)?9[45][02](\s+\d+)?"
                         r"|[A-Z]{6}[A-Z2-9][A-NP-Z0-9](?:[A-Z0-9]{3})?")
SWEDISH_ENVELOPE = re.compile(r"ä[1-5]:|-å")  # ISO 646-SE: "{" is "ä" and "}" is "å"
TERMINATOR = re.compile(r"-(\}.*|XXX)?")
STATEMENT_LINE = re.compile(
    r"(?P<value>\d{6})(?P<entry>\d{4})? *(?P<mark>R?[CD])(?P<funds>[A-Z])?[ \n]?"
    r"(?P<amount>\d+(?:,\d*)?|,\d+) ?(?P<type>[A-Z](?:[A-Z0-9]{3}| {3}))"  # Commerzbank: "12,35 NRTI"
)
CUSTOMER_WIDTH = 16    # :61: customer reference, 16x
BALANCE = re.compile(r"(?P<mark>[CD])(?P<date>\d{6})(?P<currency>[A-Z]{3})?(?P<amount>\d+(?:,\d*)?|,\d+)")
FLOOR_LIMIT = re.compile(r"([A-Z]{3})[CD]?\d*(,\d*)?")
IBAN_LIKE = re.compile(r"[A-Z]{2}\d{2}[A-Z0-9]{8,30}")
OWN_ACCOUNT_REFERENCE = re.compile(r"[A-Z]{2}\d{2}[A-Z0-9]{8,30}|\d{9,10}")  # IBAN or old Dutch account number
ACCOUNT_CURRENCY = re.compile(r"(.*[0-9])[ /]?([A-Z]{3})")
GERMAN = re.compile(r"\s*(\d{3})([?>])(?=\d\d)")
SUBFIELDS = {"?": re.compile(r"\?(\d\d)"), ">": re.compile(r">(\d\d)")}
PURPOSE_CODES = frozenset(str(n) for n in (*range(20, 30), *range(60, 64)))  # ?20-?29, ?60-?63
SEPA_KEYS = re.compile(r"(EREF|KREF|MREF|CRED|DEBT|SVWZ|ABWA|ABWE|IBAN|BIC|COAM|OAMT|SQTP|PURP)\+")
DUTCH_CODES = (
    "EREF|ORDP|BENM|NAME|ADDR|REMI|CNTP|MARF|CSID|IBAN|BIC|ISDT|RTRN|PREF|TRCD|PURP|ULTC|ULTD|ULTB|"
    "BUSP|SUM|CDTRREFTP|CDTRREF|CD|TP|ISSR|FX|EXCH|CHGS|OCMT|ORIG|NRTX|ID|ACCW|BENF|ORDA|ORDB|SVCL"
)
DUTCH_START = re.compile(rf"\s*/({DUTCH_CODES})/")
DUTCH_SPLIT = re.compile(rf"/({DUTCH_CODES})/")
MBANK_KEY = re.compile(r"\s*(Z RACH\.|NA RACH\.|OD|DO|TYT\.)\s*:\s*(.*)", re.DOTALL)
KNAB = re.compile(r"(?P<before>.*?)\s*REK:\s*(?P<account>[A-Z0-9]+)\s*/\s*NAAM:\s*(?P<name>.+)", re.DOTALL)
SWIFT_WIDTH = 65       # a :86: line is 65 characters: a full line was cut, a shorter one ended on purpose
SUBFIELD_WIDTH = 27    # a German ?2x subfield holds 27 characters
NO_REFERENCE = {"", "NONREF", "NOTPROVIDED"}


@dataclass
class Field:
    tag: str
    line: int
    lines: list[str]

    @property
    def where(self) -> str:
        return f"line {self.line}"

    def flat(self) -> str:
        return "".join(part.strip() for part in self.lines)


@dataclass
class Block:
    """One :20: block's fields while it is read."""

    reference: Field
    account: Field | None = None
    number: str | None = None
    opening: Field | None = None
    closing: Field | None = None
    floor_currency: str | None = None
    transactions: list[tuple[Field, list[Field]]] = field(default_factory=list)


def _decode(data: bytes) -> str:
    """UTF-8, else Windows-1252, else DOS Central European (cp852: Hungarian, Czech, Polish banks).

    cp852 decodes every byte, so it is the last resort; latin-1 would turn its letters (0x81 u-umlaut,
    0x94 o-umlaut) into C1 control characters, which no text field may hold (base.check_parsed).
    """
    data = data.removeprefix(b"\xef\xbb\xbf")
    for encoding in ("utf-8", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("cp852")


def _fields(text: str, path: Path) -> list[Field]:
    """Split the text into tagged fields, in one pass over its lines."""
    lines = [CONTROL.sub("", line) for line in LINE_BREAK.split(text)]
    fields: list[Field] = []
    current: Field | None = None
    index = 0
    while index < len(lines):
        number, line = index + 1, lines[index]
        index += 1
        stripped = line.strip()
        if SWEDISH_ENVELOPE.match(stripped):
            line = line.replace("ä", "{").replace("å", "}")
            stripped = line.strip()
        if stripped.startswith("{"):
            start = line.find("{4:")
            current = None
            if start < 0:
                continue  # {1:..}{2:..}{3:..} on a line of their own, or a {5:..} trailer
            line = line[start + 3:]
            stripped = line.strip()
            if not stripped:
                continue
        if stripped == ":" and index < len(lines) and TAG.match(":" + lines[index]):
            line = ":" + lines[index]  # Sparkasse: ":" and "86:..." on two lines
            stripped = line.strip()
            index += 1
        if TERMINATOR.fullmatch(stripped):
            if current is not None and stripped == "-" and not _ends_message(lines, index):
                current.lines.append(line)  # "MND\n-\nEV01": a dash inside wrapped details
            else:
                current = None
            continue
        tag = TAG.match(line)
        if tag and tag[1] in KNOWN_TAGS:
            current = Field(tag[1], number, [line[tag.end():]])
            fields.append(current)
        elif tag and current is not None and current.tag in TEXT_TAGS:
            current.lines.append(line)
        elif tag and tag[1] == "940":
            current = None
        elif tag:
            raise InputError(path, f"line {number}", f"unknown tag ':{tag[1]}:' (not an MT940/MT942 field)")
        elif current is not None:
            current.lines.append(line)
        elif stripped and not HEADER_LINE.fullmatch(stripped):
            raise InputError(path, f"line {number}", f"text outside any MT940 field: {stripped[:40]!r}")
    return fields


def _ends_message(lines: list[str], index: int) -> bool:
    """After a "-" line: does the next line that is neither blank nor a header line start something
    new (or is there none)? A header line alone is not enough: wrapped details may hold a word that
    looks like a BIC, but a message header is always followed by a field or an envelope."""
    while index < len(lines):
        following = lines[index].strip()
        if following and not HEADER_LINE.fullmatch(following):
            return following.startswith((":", "{"))
        index += 1
    return True


def _blocks(fields: list[Field], path: Path) -> list[Block]:
    blocks: list[Block] = []
    block: Block | None = None
    details_open = False  # may a :86: still attach to the last :61:?
    for f in fields:
        if f.tag == "20":
            block = Block(reference=f)
            blocks.append(block)
            details_open = False
            continue
        if block is None:
            raise InputError(path, f.where, f":{f.tag}: outside a statement: a statement starts with :20: "
                                            "(its reference) and :25: (the account); this looks like a fragment")
        if f.tag == "25":
            if block.account is not None:
                raise InputError(path, f.where, f"a second :25: account in the statement that starts at "
                                                f"{block.reference.where}: {f.flat()[:40]!r}")
            block.account = f
        elif f.tag in ("28", "28C"):
            block.number = f.flat() or None
        elif f.tag in ("60F", "60M"):
            if block.opening is not None:
                raise InputError(path, f.where, f"a second opening balance in the statement that starts at "
                                                f"{block.reference.where}")
            block.opening = f
        elif f.tag in ("62F", "62M"):
            if block.closing is not None:
                raise InputError(path, f.where, f"a second closing balance in the statement that starts at "
                                                f"{block.reference.where}")
            block.closing = f
        elif f.tag == "34F":
            floor = FLOOR_LIMIT.fullmatch(f.flat())
            if floor is None:
                raise InputError(path, f.where, f":34F: floor limit {f.flat()[:30]!r} does not start with a currency")
            block.floor_currency = block.floor_currency or floor[1]
        elif f.tag == "61":
            block.transactions.append((f, []))
            details_open = True
            continue
        elif f.tag == "86" and details_open:
            block.transactions[-1][1].append(f)
            continue
        if f.tag != "NS":  # Postbank's :NS: may sit between a :61: and its :86:
            details_open = False
    return blocks


def _date(text: str, where: str, what: str, path: Path) -> date:
    year = int(text[:2])
    try:
        return date(1900 + year if year >= 80 else 2000 + year, int(text[2:4]), int(text[4:6]))
    except ValueError:
        raise InputError(path, where, f"{what} '{text}' is not a real date (YYMMDD)") from None


def _amount(text: str, currency: str, where: str, what: str, path: Path) -> int:
    whole, _, fraction = text.partition(",")
    try:
        return decimal_minor(f"{whole or '0'}.{fraction}", currency)
    except ValueError as exc:
        raise InputError(path, where, f"{what}: {exc}") from None


@dataclass(frozen=True)
class Balance:
    minor: int
    day: date
    currency: str | None


def _balance(f: Field, currency: str | None, path: Path) -> Balance:
    match = BALANCE.fullmatch(f.flat())
    if match is None:
        raise InputError(path, f.where, f":{f.tag}: balance {f.flat()[:40]!r} is not C/D, YYMMDD, currency, amount")
    day = _date(match["date"], f.where, f":{f.tag}: date", path)
    own = match["currency"]
    if own and currency and own != currency:
        raise InputError(path, f.where, f":{f.tag}: balance is in {own}, the statement in {currency}")
    code = own or currency
    if code is None:
        raise InputError(path, f.where, f":{f.tag}: balance has no currency and the statement names none")
    minor = _amount(match["amount"], code, f.where, f":{f.tag}: amount", path)
    return Balance(-minor if match["mark"] == "D" else minor, day, code)


def _text(details: list[Field], structured: bool) -> str:
    """The :86: lines as one text.

    Structured details (German ?xx, Dutch /CODE/) are cut wherever the line ended: joined as
    they are. Free text keeps a break after a line shorter than the SWIFT width (the bank
    ended it there) and joins a full-width line to the next (the bank cut it there).
    """
    out = []
    for f in details:
        for raw in f.lines:
            if structured:
                out.append(raw.rstrip())
            elif len(raw) >= SWIFT_WIDTH:
                out.append(raw)
            else:
                out.append(raw.rstrip() + "\n")
        if not structured:
            out.append("\n")
    return "".join(out)


def _clean(text: str | None) -> str | None:
    if text is None:
        return None
    cleaned = " ".join(text.split())
    return cleaned or None


def _sepa(purpose: str) -> dict[str, str]:
    """SEPA keywords in German purpose text. An identifier (EREF+, MREF+, ...) ends at the next
    keyword or where a subfield ended short ("\n"); the SVWZ+ text runs on to the next keyword."""
    parts = SEPA_KEYS.split(purpose)
    found: dict[str, str] = {}
    for key, value in zip(parts[1::2], parts[2::2]):
        found.setdefault(key, value if key == "SVWZ" else value.split("\n")[0])
    return found


def _german(text: str, start: re.Match[str]) -> dict[str, Any]:
    gv, separator = start[1], start[2]
    body = text[start.end() - 1:].replace("\n", "")
    parts = SUBFIELDS[separator].split(body)
    subfields = list(zip(parts[1::2], parts[2::2]))

    def joined(codes: frozenset[str] | set[str]) -> str:
        # a full subfield (27 characters) was cut mid-text; a shorter one ended on purpose
        out, full = "", True
        for code, value in subfields:
            if code in codes:
                out += value if full else "\n" + value
                full = len(value) >= SUBFIELD_WIDTH
        return out

    purpose = joined(PURPOSE_CODES)
    values = dict(subfields)
    sepa = _sepa(purpose)
    return {
        "bank_code": gv,
        "counterparty_name": _clean(joined({"32", "33"})),
        "counterparty_account": _clean(values.get("38")) or _clean(values.get("31")),
        "remittance": _clean(sepa.get("SVWZ") or purpose) or _clean(values.get("00")),
        "end_to_end_id": _reference(sepa.get("EREF")),
    }


def _reference(text: str | None) -> str | None:
    value = _clean(text)
    return None if value is None or value.upper() in NO_REFERENCE else value


def _dutch(text: str) -> dict[str, Any]:
    parts = DUTCH_SPLIT.split(text.replace("\n", "").strip())
    codes: dict[str, str] = {}
    for code, value in zip(parts[1::2], parts[2::2]):
        codes.setdefault(code, value)
    out: dict[str, Any] = {"end_to_end_id": _reference((codes.get("EREF") or "").rstrip("/"))}
    if "CNTP" in codes:
        account, _bic, name, *_ = [*codes["CNTP"].split("/"), "", "", ""]
        out["counterparty_account"] = _clean(account)
        out["counterparty_name"] = _clean(name)
    else:
        out["counterparty_name"] = _clean((codes.get("NAME") or "").rstrip("/"))
        out["counterparty_account"] = _clean((codes.get("IBAN") or "").rstrip("/"))
    remi = (codes.get("REMI") or "").rstrip("/")
    if remi.startswith("STRD/"):
        out["reference"] = _clean(remi.rsplit("/", 1)[-1])
        out["remittance"] = out["reference"]
    else:
        out["remittance"] = _clean(remi.removeprefix("USTD//").removeprefix("USTD/"))
    return out


def _mbank(text: str) -> dict[str, Any] | None:
    flat = _clean(text) or ""
    values: dict[str, str] = {}
    for part in flat.split(";"):
        match = MBANK_KEY.fullmatch(part)
        if match:
            values.setdefault(match[1], match[2].strip())
    if "TYT." not in values:
        return None
    return {
        "counterparty_account": _clean(values.get("Z RACH.") or values.get("NA RACH.")),
        "counterparty_name": _clean(values.get("OD") or values.get("DO")),
        "remittance": _clean(values["TYT."]),
    }


def _details(details: list[Field]) -> dict[str, Any]:
    """What the :86: details say, in whichever dialect they are written."""
    if not details:
        return {}
    hard = _text(details, structured=True)
    german = GERMAN.match(hard)
    if german:
        return _german(hard, german)
    if DUTCH_START.match(hard):
        return _dutch(hard)
    text = _text(details, structured=False)
    mbank = _mbank(text)
    if mbank is not None:
        return mbank
    knab = KNAB.fullmatch(text.strip())
    if knab:
        return {"counterparty_account": knab["account"], "counterparty_name": _clean(knab["name"]),
                "remittance": _clean(knab["before"])}
    return {"remittance": _clean(text)}


@dataclass
class Line:
    record: dict[str, Any]
    bank_reference: str | None
    content: str


def _transaction(f: Field, details: list[Field], currency: str, path: Path) -> Line:
    text = "\n".join(part.rstrip() for part in f.lines)
    match = STATEMENT_LINE.match(text.lstrip())
    if match is None:
        shown = text.strip().split("\n")[0][:40]
        raise InputError(path, f.where, f":61: {shown!r} is not a statement line "
                                        "(value date, D/C mark, amount, transaction type)")
    value_date = _date(match["value"], f.where, ":61: value date", path)
    booking_date = value_date
    if match["entry"]:
        month = int(match["entry"][:2])
        year = value_date.year + (1 if month == 1 and value_date.month == 12 else 0) \
            - (1 if month == 12 and value_date.month == 1 else 0)
        try:
            booking_date = date(year, month, int(match["entry"][2:]))
        except ValueError:
            raise InputError(path, f.where, f":61: entry date '{match['entry']}' is not a real date (MMDD)") from None
    amount = _amount(match["amount"], currency, f.where, ":61: amount", path)
    mark = match["mark"]
    signed = -amount if mark in ("D", "RC") else amount

    first, _, more = text.lstrip()[match.end():].partition("\n")
    customer, inline, bank_ref = _references(first)
    extra = _clean(" ".join([inline, *more.split("\n")]))

    info = _details(details)
    name, account = info.get("counterparty_name"), info.get("counterparty_account")
    remittance = info.get("remittance")
    if extra and IBAN_LIKE.fullmatch(extra):
        account = account or extra  # Rabobank: the counterparty's IBAN as supplementary details
    elif extra and OWN_ACCOUNT_REFERENCE.fullmatch(customer):
        # SNS/ASN/Rabobank: the counterparty's account as customer reference, its name as supplementary details
        account = account or customer
        if not name:
            name = extra
            lead = f"{customer} {extra}".lower()
            if remittance and remittance.lower().startswith(lead):
                remittance = _clean(remittance[len(lead):])
    elif inline and not name:
        name = inline  # Rabobank legacy: the name after a 16-character customer reference

    record = {
        "booking_date": booking_date,
        "value_date": value_date,
        "amount_minor": signed,
        "currency": currency,
        "counterparty_name": name,
        "counterparty_account": account,
        "remittance": remittance,
        "reference": info.get("reference"),
        "end_to_end_id": info.get("end_to_end_id"),
        "bank_code": info.get("bank_code") or match["type"].strip(),
        "is_reversal": mark.startswith("R"),
        "location": f.where,
    }
    content = " ".join([*text.split(), "\x1f", *(word for d in details for part in d.lines for word in part.split())])
    return Line(record, bank_ref, content)


def _references(first: str) -> tuple[str, str, str | None]:
    """Customer reference, text after it on the line, bank reference: the rest of a :61: first line.

    Padding spaces before the customer reference or before "//" are not part of it. Without "//",
    Rabobank writes a fixed-width layout: a 16-character reference padded with spaces, then a name
    (and a reference that is all padding is empty).
    """
    customer, has_bank, bank = first.partition("//")
    inline = ""
    if not has_bank:
        body = customer.lstrip()
        if len(customer) - len(body) >= CUSTOMER_WIDTH:
            customer, inline = "", body.strip()
        elif len(body) > CUSTOMER_WIDTH and "  " in body:
            customer, inline = body[:CUSTOMER_WIDTH], body[CUSTOMER_WIDTH:].strip()
    return customer.strip(), inline, _reference(bank) if has_bank else None


def _account(block: Block, currency: str | None, path: Path) -> str:
    if block.account is None:
        raise InputError(path, block.reference.where, "the statement has no :25: account identification")
    account = " ".join(" ".join(block.account.lines).split())
    if not account:
        raise InputError(path, block.account.where, ":25: account identification is empty")
    suffix = ACCOUNT_CURRENCY.fullmatch(account)
    if suffix and suffix[2] == currency:
        account = suffix[1].strip()  # "NL34RABO0142623393 EUR", "1526.89.184EUR": the currency is not the account
    return account


def _statement(block: Block, path: Path) -> tuple[Statement, list[Line]]:
    """The statement's metadata and its lines (source_refs are given per file, see _source_refs)."""
    currency = None
    for f in (block.opening, block.closing):
        match = BALANCE.fullmatch(f.flat()) if f is not None else None
        if match and match["currency"]:
            currency = match["currency"]
            break
    currency = currency or block.floor_currency
    opening = _balance(block.opening, currency, path) if block.opening else None
    closing = _balance(block.closing, currency, path) if block.closing else None
    account = _account(block, currency, path)
    if currency is None and block.transactions:
        raise InputError(path, block.reference.where, "the statement names no currency (no :60F:/:62F: balance "
                                                      "with a currency and no :34F: floor limit)")
    lines = [_transaction(f, details, currency or "", path) for f, details in block.transactions]
    warnings = []
    if opening and closing and block.closing:
        total = opening.minor + sum(line.record["amount_minor"] for line in lines)
        if total != closing.minor:
            code = currency or "XXX"
            warnings.append(f"balances do not add up: opening {format_minor(opening.minor, code)} + lines "
                            f"{format_minor(total - opening.minor, code)} = {format_minor(total, code)}, "
                            f"but the closing balance ({block.closing.where}) is {format_minor(closing.minor, code)}")
    statement_id = " ".join(filter(None, (block.reference.flat(), block.number)))
    statement = Statement(
        account=account, currency=currency, lines=frames.empty(frames.BANK_LINES),
        opening_minor=opening.minor if opening else None, closing_minor=closing.minor if closing else None,
        period_start=opening.day if opening else None, period_end=closing.day if closing else None,
        statement_id=statement_id or None, location=block.reference.where, warnings=tuple(warnings),
    )
    return statement, lines


def _source_refs(accounts: list[str], lines: list[Line]) -> list[str]:
    """Per line: its bank reference, else content hash + occurrence counted per account across the file
    (a repeated bank reference is the registry's to tell apart: base.distinct_source_refs)."""
    refs = [line.bank_reference or "" for line in lines]
    by_account: dict[str, list[int]] = {}
    for index, account in enumerate(accounts):
        if not refs[index]:
            by_account.setdefault(account, []).append(index)
    for positions in by_account.values():
        hashed = frames.content_refs(pl.DataFrame({"k": [lines[i].content for i in positions]}), ["k"])
        for index, ref in zip(positions, hashed.to_list()):
            refs[index] = ref
    return refs


class Mt940Parser:
    name = "mt940"

    def sniff(self, head: bytes, path: Path) -> bool:
        """MT940/942 tags at line starts (also right after "{4:"); never XML, OFX or BAI2."""
        text = CONTROL.sub("", head.removeprefix(b"\xef\xbb\xbf").decode("latin-1")).lstrip()
        if text.startswith(("<", "01,", "OFXHEADER")):
            return False
        tags = set(re.findall(r"(?m)^(?:\{1:[^\n]*\{4:)?[ \t]*:(20|25|60F|60M|61|62F|62M|86|28C?):", text))
        if "20" in tags and tags & {"25", "60F", "60M", "61"}:
            return True
        # a fragment (no :20:) is still MT940: claim it so it is refused with its reason
        first = re.match(r":(60F|60M|61|62F|62M|25|28C|86):", text)
        return first is not None

    def parse(self, data: bytes, path: Path) -> ParsedFile:
        blocks = _blocks(_fields(_decode(data), path), path)
        if not blocks:
            raise InputError(path, None, "no MT940/MT942 statement in the file (no :20: field)")
        parsed = [_statement(block, path) for block in blocks]
        accounts = [statement.account for statement, lines in parsed for _ in lines]
        refs = _source_refs(accounts, [line for _, lines in parsed for line in lines])
        statements = []
        start = 0
        for statement, lines in parsed:
            records = [{**line.record, "source_ref": ref} for line, ref in zip(lines, refs[start:start + len(lines)])]
            start += len(lines)
            statements.append(replace(statement, lines=lines_frame(records)))
        return ParsedFile("mt940", statements)
