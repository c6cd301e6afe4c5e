"""ISO 20022 CAMT.053 statements and CAMT.054 notifications, any version (.001.02 onwards).

Matches on local element names, so every namespace version reads the same.
Each booked entry becomes one bank line, or one line per transaction detail
for batch entries; positions are element paths like Stmt[1]/Ntry[3]/NtryDtls/TxDtls[2].
CAMT.052 intraday reports are recognised and refused: they are not statements.
Entries of the common shapes are read vectorised by camt_fast (same results, checked entry by entry
against this module's slow path in tests/parsers/test_camt_fast.py); everything else is read here.

Amounts follow the schema (xs:decimal, at most 18 digits, never negative: CdtDbtInd gives the sign);
a negative amount is refused naming its element, as it would otherwise turn a debit into a credit.
Only a balance without CdtDbtInd may be written negative (some banks do; it is a debit balance).
A booking given as a date-time with an offset is booked on its calendar day in the account's zone:
the configured one, else the zone of the IBAN's country (base.booking_zone); the statement's
FrDtTm/ToDtTm are read in the same zone, so a booking stays inside its statement's period.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from threading import Thread
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl
from lxml import etree

from reconcile.core import frames
from reconcile.core.errors import InputError
from reconcile.parsers import camt_fast
from reconcile.parsers.base import (
    ParsedFile,
    ParseOptions,
    Statement,
    booking_zone,
    decimal_minor,
    lines_frame,
)
from reconcile.parsers.camt_fast import Cut, Fallback
from reconcile.parsers.xmlsafe import (
    _PREFIXED_TAG,
    check,
    fragment,
    load,
    split_documents,
    well_formed,
)

ROOTS = {"BkToCstmrStmt": ("camt053", "Stmt"), "BkToCstmrDbtCdtNtfctn": ("camt054", "Ntfctn")}
REFUSED = {"BkToCstmrAcctRpt": "camt.052 intraday account reports are not statements; import the camt.053 statement"}
NAMESPACE_PREFIX = "urn:iso:std:iso:20022:tech:xsd:camt.05"
DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")  # xs:decimal: no exponent, no NaN/INF
MAX_DIGITS = 18  # ActiveOrHistoricCurrencyAndAmount: totalDigits 18
HASH_COLUMNS = ["booking_date", "amount_minor", "currency", "counterparty_name", "counterparty_account",
                "remittance", "reference", "end_to_end_id", "bank_code"]


def _text(element: etree._Element | None, path: str) -> str | None:
    if element is None:
        return None
    value = element.findtext(path)
    if value is None:
        return None
    value = " ".join(value.split())
    return value or None


class Flat:
    """An element's descendants by relative path ("Refs/EndToEndId"), first occurrence in document order:
    what findtext returns, looked up in a dict (one walk per element instead of one search per field)."""

    __slots__ = ("values",)

    def __init__(self, element: etree._Element | None, skip: str | None = None) -> None:
        self.values: dict[str, str | None] = {}
        if element is not None:
            self._walk(element, "", skip)

    def _walk(self, element: etree._Element, prefix: str, skip: str | None) -> None:
        values = self.values
        for child in element:
            tag = child.tag
            if type(tag) is not str or tag == skip:
                continue
            key = prefix + tag
            if key not in values:
                values[key] = child.text
            if len(child):
                self._walk(child, key + "/", None)

    def text(self, path: str) -> str | None:
        value = self.values.get(path)
        if not value:
            return None
        value = " ".join(value.split())
        return value or None


def _calendar_day(raw: str, zone: ZoneInfo | None) -> date:
    """The calendar day of an ISO date or date-time: in `zone` when the date-time has an offset (a UTC "Z"
    time late in the evening is the next morning in Europe), else as written. Raises ValueError."""
    if zone is not None and "T" in raw and (raw.endswith("Z") or raw[-6] in "+-"):
        return datetime.fromisoformat(raw).astimezone(zone).date()
    return date.fromisoformat(raw[:10])


def _day(element: etree._Element | None, where: str, path: Path, zone: ZoneInfo | None = None) -> date | None:
    """A Dt, or the calendar day of a DtTm in the account's zone (see _calendar_day)."""
    if element is None:
        return None
    raw = _text(element, "Dt") or _text(element, "DtTm")
    if raw is None:
        return None
    try:
        return _calendar_day(raw, zone)
    except (ValueError, IndexError):
        raise InputError(path, where, f"'{raw}' is not a date") from None


def _zone(account: str, path: Path, options: ParseOptions) -> ZoneInfo | None:
    name = booking_zone(options, account)
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(path, None, f"unknown time zone '{name}' configured for account {account}") from None


def _amount(element: etree._Element | None, where: str, path: Path, *, signed: bool = False) -> tuple[int, str]:
    """Exact minor units and currency of an amount element. Refuses what the schema does not allow
    (exponents, NaN, more than 18 digits, a negative amount unless `signed`: a balance without
    CdtDbtInd) and what the ledger cannot hold, naming the element."""
    if element is None:
        raise InputError(path, where, "amount missing")
    currency = (element.get("Ccy") or "").upper()
    raw = (element.text or "").strip()
    if len(currency) != 3:
        raise InputError(path, where, f"amount has no valid Ccy attribute ('{currency}')")
    shown = raw if len(raw) <= 40 else raw[:37] + "..."
    if not DECIMAL.fullmatch(raw):
        raise InputError(path, where, f"'{shown}' is not a valid {currency} amount (a plain decimal number)")
    whole, _, fraction = raw.lstrip("+-").partition(".")
    if len(whole.lstrip("0")) + len(fraction.rstrip("0")) > MAX_DIGITS:
        raise InputError(path, where, f"'{shown}' is not a valid {currency} amount (more than {MAX_DIGITS} digits)")
    try:
        minor = decimal_minor(raw, currency)
    except ValueError as exc:
        raise InputError(path, where, f"'{shown}' is not a valid {currency} amount ({exc})") from None
    if minor < 0 and not signed:
        raise InputError(path, where, f"amount '{shown}' is negative: CAMT amounts are unsigned and CdtDbtInd "
                                      "gives the direction, so the sign cannot be trusted")
    return minor, currency


def _sign(indicator: str | None, where: str, path: Path) -> int:
    if indicator == "CRDT":
        return 1
    if indicator == "DBIT":
        return -1
    raise InputError(path, where, f"CdtDbtInd must be CRDT or DBIT, not '{indicator}'")


def _party(details: Flat, role: str) -> tuple[str | None, str | None]:
    """Name and account of Dbtr/Cdtr in both the old (Dbtr/Nm) and newer (Dbtr/Pty/Nm) shapes."""
    p = "RltdPties/"
    name = details.text(f"{p}{role}/Nm") or details.text(f"{p}{role}/Pty/Nm") or details.text(f"{p}Ultmt{role}/Nm") \
        or details.text(f"{p}Ultmt{role}/Pty/Nm")
    account = details.text(f"{p}{role}Acct/Id/IBAN") or details.text(f"{p}{role}Acct/Id/Othr/Id")
    return name, account


def _remittance(details: etree._Element | None) -> tuple[str | None, str | None]:
    """Unstructured lines joined; structured creditor reference apart; referred document numbers appended."""
    if details is None:
        return None, None
    info = details.find("RmtInf")
    texts: list[str] = []
    reference = None
    if info is not None:
        texts.extend(" ".join(u.text.split()) for u in info.findall("Ustrd") if u.text and u.text.strip())
        for strd in info.findall("Strd"):
            reference = reference or _text(strd, "CdtrRefInf/Ref")
            texts.extend(" ".join(n.text.split()) for n in strd.findall("RfrdDocInf/Nb") if n.text)
            texts.extend(" ".join(n.text.split()) for n in strd.findall("AddtlRmtInf") if n.text)
    addtl = _text(details, "AddtlTxInf")
    if addtl:
        texts.append(addtl)
    return (" ".join(texts) or None), reference


def _bank_code(entry: Flat, details: Flat | None) -> str | None:
    for owner in (details, entry):
        if owner is None or "BkTxCd" not in owner.values:
            continue
        parts = [owner.text("BkTxCd/Domn/Cd"), owner.text("BkTxCd/Domn/Fmly/Cd"),
                 owner.text("BkTxCd/Domn/Fmly/SubFmlyCd")]
        if any(parts):
            return "/".join(p for p in parts if p)
        proprietary = owner.text("BkTxCd/Prtry/Cd")
        if proprietary:
            return proprietary
    return None


def _charges(owner: etree._Element | None, where: str, path: Path) -> int | None:
    if owner is None:
        return None
    charges = owner.find("Chrgs")
    if charges is None:
        return None
    total = charges.find("TtlChrgsAndTaxAmt")
    if total is not None:
        return _amount(total, f"{where}/Chrgs/TtlChrgsAndTaxAmt", path)[0]
    records = charges.findall("Rcrd/Amt") or charges.findall("Amt")
    if not records:
        return None
    return sum(_amount(a, f"{where}/Chrgs", path)[0] for a in records)


def _detail_amount(detail: etree._Element, entry_currency: str, where: str, path: Path) -> int | None:
    """A detail's amount in the account currency, when the bank gives one."""
    for candidate in ("AmtDtls/TxAmt/Amt", "Amt", "AmtDtls/CntrValAmt/Amt"):
        element = detail.find(candidate)
        if element is not None:
            minor, currency = _amount(element, f"{where}/{candidate}", path)
            if currency == entry_currency:
                return minor
    return None


class CamtParser:
    name = "camt"

    def __init__(self, options: ParseOptions | None = None) -> None:
        self.options = options or ParseOptions()

    def sniff(self, head: bytes, path: Path) -> bool:
        if b"<" not in head[:512]:
            return False
        return any(f"<{root}".encode() in head or f":{root}".encode() in head for root in (*ROOTS, *REFUSED))

    def parse(self, data: bytes, path: Path) -> ParsedFile:
        documents = split_documents(data)
        formats: set[str] = set()
        statements: list[Statement] = []
        for number, document in enumerate(documents, start=1):
            prefix = f"document {number}: " if len(documents) > 1 else ""
            fmt, found = self._document(document, path, prefix)
            formats.add(fmt)
            statements.extend(found)
        if len(formats) > 1:
            raise InputError(path, None, "the file mixes camt.053 statements and camt.054 notifications")
        return ParsedFile(formats.pop(), statements)

    def _document(self, data: bytes, path: Path, prefix: str) -> tuple[str, list[Statement]]:
        """Fast path when camt_fast can cut the document (identical results), else the exact slow path."""
        check(data, path)
        if b"<Ntry>" not in data:
            return self._tree(data, path, prefix, None)
        # libxml2 checks the whole document in another thread (it releases the GIL) while the entries are cut
        checked: list[bool] = []
        checker = Thread(target=lambda: checked.append(well_formed(data)), daemon=True)
        checker.start()
        try:
            cut = camt_fast.cut(data)
        except (Fallback, pl.exceptions.PolarsError):
            cut = None
        checker.join()
        if cut is not None and checked == [True]:
            try:
                return self._tree(cut.skeleton, path, prefix, cut)
            except Fallback:
                pass
        return self._tree(data, path, prefix, None)

    def _tree(self, data: bytes, path: Path, prefix: str, cut: Cut | None) -> tuple[str, list[Statement]]:
        root, namespace = load(data, path)
        container = next((child for child in root if child.tag in ROOTS or child.tag in REFUSED), None)
        if root.tag != "Document" or container is None:
            raise InputError(path, f"{prefix}{root.tag}", "not an ISO 20022 CAMT.053/054 document")
        if container.tag in REFUSED:
            raise InputError(path, f"{prefix}{container.tag}", REFUSED[container.tag])
        if not (namespace or "").startswith(NAMESPACE_PREFIX):
            raise InputError(path, f"{prefix}Document",
                             f"unknown namespace '{namespace}': not an ISO 20022 CAMT message")
        fmt, statement_tag = ROOTS[container.tag]
        elements = container.findall(statement_tag)
        if not elements:
            raise InputError(path, f"{prefix}{container.tag}", f"the message holds no {statement_tag} element")
        fallback_day = _text(container, "GrpHdr/CreDtTm")
        statuses = {"BOOK"} if fmt == "camt053" else {"BOOK", "INFO"}
        firsts = [0] * (len(elements) + 1)  # with a cut: where each statement's entries start among all entries
        if cut is not None:  # every entry cut out must be a placeholder directly under a statement
            for n, element in enumerate(elements, start=1):
                firsts[n] = firsts[n - 1] + int(element.xpath("count(Ntry)"))
            if firsts[-1] != cut.entries.height or int(root.xpath("count(//Ntry)")) != cut.entries.height:
                raise Fallback("entries outside the statements")
        return fmt, [
            self._statement(element, f"{prefix}{statement_tag}[{n}]", path, statuses, fallback_day,
                            cut, firsts[n - 1], firsts[n] - firsts[n - 1])
            for n, element in enumerate(elements, start=1)
        ]

    def _statement(self, element: etree._Element, where: str, path: Path, statuses: set[str],
                   message_day: str | None, cut: Cut | None = None, first: int = 0, count: int = 0) -> Statement:
        account = _text(element, "Acct/Id/IBAN") or _text(element, "Acct/Id/Othr/Id")
        if not account:
            raise InputError(path, f"{where}/Acct", "statement names no account (IBAN or Othr/Id)")
        zone = _zone(account, path, self.options)
        currency = _text(element, "Acct/Ccy")
        opening = closing = None
        for n, balance in enumerate(element.findall("Bal"), start=1):
            code = _text(balance, "Tp/CdOrPrtry/Cd")
            bwhere = f"{where}/Bal[{n}]"
            indicator = _text(balance, "CdtDbtInd")
            minor, bal_currency = _amount(balance.find("Amt"), f"{bwhere}/Amt", path, signed=not indicator)
            # some banks leave out the indicator of a balance; such a balance is a credit balance
            minor *= _sign(indicator, f"{bwhere}/CdtDbtInd", path) if indicator else 1
            currency = currency or bal_currency
            if bal_currency != currency:
                continue  # a balance of another currency says nothing about this account's lines
            if code in ("OPBD", "PRCD") and opening is None:
                opening = minor
            elif code == "CLBD":
                closing = minor

        records: list[dict[str, Any]] = []
        booked_total = 0
        default_day = _text(element, "CreDtTm") or message_day
        entries = element.findall("Ntry") if cut is None else []
        pieces: list[pl.DataFrame] = []
        fast = cut.entries.slice(first, count) if cut is not None else None
        flag_column = fast["fast"] if fast is not None else pl.Series([False] * len(entries))
        # where each run of fast entries ends (a run is booked in one go)
        run_ends = {} if fast is None else _run_ends(flag_column)
        flags = flag_column.to_list()
        n = 0
        while n < len(flags):
            if flags[n]:
                end = run_ends[n]
                run = camt_fast.lines(fast.slice(n, end - n), where, n + 1, statuses)  # type: ignore[union-attr]
                if run.height:
                    if records:
                        pieces.append(lines_frame(records))
                        records = []
                    booked_total += int(run["amount_minor"].sum())
                    currency = currency or run["currency"][0]
                    pieces.append(run)
                n = end
                continue
            entry = entries[n] if cut is None else _cut_entry(cut, first + n)
            n += 1
            ewhere = f"{where}/Ntry[{n}]"
            status = _text(entry, "Sts/Cd") or _text(entry, "Sts")
            if status is not None and status not in statuses:
                continue
            entry_minor, entry_currency = _amount(entry.find("Amt"), f"{ewhere}/Amt", path)
            signed_entry = entry_minor * _sign(_text(entry, "CdtDbtInd"), f"{ewhere}/CdtDbtInd", path)
            booked_total += signed_entry
            currency = currency or entry_currency
            records.extend(self._entry_lines(entry, ewhere, signed_entry, entry_currency, path, default_day, zone))

        if records or not pieces:
            pieces.append(lines_frame(records))
        lines = pl.concat(pieces) if len(pieces) > 1 else pieces[0]
        lines = _fill_refs(lines)
        warnings: list[str] = []
        if opening is not None and closing is not None and opening + booked_total != closing:
            warnings.append(
                f"{where}: opening balance {opening} + entries {booked_total} != closing balance {closing} "
                f"(minor units of {currency}); the statement does not add up"
            )
        dates = lines["booking_date"].drop_nulls()
        earliest: Any = dates.min() if dates.len() else None
        latest: Any = dates.max() if dates.len() else None
        first_day = self._period_day(element, "FrDtTm", where, path, zone) or earliest
        last_day = self._period_day(element, "ToDtTm", where, path, zone) or latest
        return Statement(
            account=account, currency=currency, lines=lines, opening_minor=opening, closing_minor=closing,
            period_start=first_day, period_end=last_day, statement_id=_text(element, "Id"), location=where,
            warnings=tuple(warnings),
        )

    @staticmethod
    def _period_day(element: etree._Element, tag: str, where: str, path: Path, zone: ZoneInfo | None) -> date | None:
        """FrToDt/FrDtTm or ToDtTm as a calendar day in the account's zone, as its bookings are. A whole-day
        bound (from 00:00:00, to 23:59[:59.999]) names the day written, whatever its offset: banks put a "Z"
        on their local day bounds ("2024-03-03T23:59:59.999Z" ends the 3rd, not the 4th in Amsterdam)."""
        raw = _text(element, f"FrToDt/{tag}")
        if raw is None:
            return None
        time = raw[11:19]
        try:
            if time == "00:00:00" if tag == "FrDtTm" else time.startswith("23:59"):
                return date.fromisoformat(raw[:10])
            return _calendar_day(raw, zone)
        except (ValueError, IndexError):
            raise InputError(path, f"{where}/FrToDt/{tag}", f"'{raw}' is not a date-time") from None

    def _entry_lines(self, entry: etree._Element, where: str, signed_entry: int, currency: str,
                     path: Path, default_day: str | None, zone: ZoneInfo | None = None) -> list[dict[str, Any]]:
        # Notifications may carry no booking date: value date, then the message's creation day.
        booking = _day(entry.find("BookgDt"), f"{where}/BookgDt", path, zone) \
            or _day(entry.find("ValDt"), f"{where}/ValDt", path, zone)
        if booking is None and default_day:
            try:
                booking = _calendar_day(default_day, zone)
            except (ValueError, IndexError):
                raise InputError(path, f"{where}/BookgDt", f"no booking date, and the creation time "
                                                           f"'{default_day}' is not a date-time") from None
        if booking is None:
            raise InputError(path, f"{where}/BookgDt", "entry has no booking date")
        value = _day(entry.find("ValDt"), f"{where}/ValDt", path, zone)
        details = entry.findall("NtryDtls/TxDtls")
        entry_sign = 1 if signed_entry >= 0 else -1

        amounts: list[int] = []
        detail_amounts = [_detail_amount(d, currency, f"{where}/NtryDtls/TxDtls[{n}]", path)
                          for n, d in enumerate(details, start=1)]
        if len(details) > 1 and None in detail_amounts:
            # Details not expressed in the account currency cannot be split: book the entry as one line.
            return [self._merged_line(entry, where, signed_entry, currency, booking, value, details, path)]
        if len(details) <= 1:
            amounts = [signed_entry]
        else:
            for n, (detail, minor) in enumerate(zip(details, detail_amounts), start=1):
                dwhere = f"{where}/NtryDtls/TxDtls[{n}]"
                indicator = _text(detail, "CdtDbtInd")
                sign = _sign(indicator, f"{dwhere}/CdtDbtInd", path) if indicator else entry_sign
                amounts.append(int(minor or 0) * sign)
            if sum(amounts) != signed_entry:
                raise InputError(
                    path, where,
                    f"transaction details add up to {sum(amounts)} but the entry amount is {signed_entry} "
                    f"(minor units of {currency})",
                )

        return [
            self._line(entry, details[n - 1] if details else None,
                       f"{where}/NtryDtls/TxDtls[{n}]" if details else where,
                       amount, currency, booking, value, n if len(amounts) > 1 else None, path)
            for n, amount in enumerate(amounts, start=1)
        ]

    def _merged_line(self, entry: etree._Element, where: str, amount: int, currency: str, booking: date,
                     value: date | None, details: list[etree._Element], path: Path) -> dict[str, Any]:
        line = self._line(entry, details[0], where, amount, currency, booking, value, None, path)
        texts = [t for t in (_remittance(d)[0] for d in details) if t]
        line["remittance"] = " ".join(dict.fromkeys(texts)) or None
        line["instructed_amount_minor"] = line["instructed_currency"] = line["exchange_rate"] = None
        line["charges_minor"] = _charges(entry, where, path)
        return line

    def _line(self, entry: etree._Element, detail: etree._Element | None, where: str, amount: int,
              currency: str, booking: date, value: date | None, number: int | None, path: Path) -> dict[str, Any]:
        """One bank line; `number` is the detail's position in a batch (None for a single line)."""
        role = "Dbtr" if amount > 0 else "Cdtr"
        flat_entry = Flat(entry, skip="NtryDtls")
        flat_detail = Flat(detail)
        name, account = _party(flat_detail, role)
        remittance, reference = _remittance(detail)
        if remittance is None:
            remittance = flat_entry.text("AddtlNtryInf")
        end_to_end = flat_detail.text("Refs/EndToEndId")
        if end_to_end and end_to_end.upper() == "NOTPROVIDED":
            end_to_end = None
        suffix = f"/{number}" if number is not None else ""
        source_ref = flat_detail.text("Refs/AcctSvcrRef")
        entry_ref = flat_entry.text("AcctSvcrRef")
        ntry_ref = flat_entry.text("NtryRef")
        if source_ref is None and entry_ref:
            source_ref = entry_ref + suffix
        if source_ref is None and ntry_ref:
            source_ref = ntry_ref + suffix
        instructed_minor = instructed_currency = rate = None
        # amount details sit on the transaction detail, or on the entry when it has one detail
        for owner, flat in ((detail, flat_detail), (entry if number is None else None, flat_entry)):
            if owner is None or "AmtDtls" not in flat.values:
                continue
            instructed = owner.find("AmtDtls/InstdAmt/Amt")
            if instructed is not None:
                instructed_minor, instructed_currency = _amount(instructed, f"{where}/AmtDtls/InstdAmt/Amt", path)
            rate = next((r.text.strip() for r in owner.iterfind("AmtDtls/*/CcyXchg/XchgRate") if r.text), None)
            break
        reversal = ((flat_entry.text("RvslInd") or "").lower() == "true"
                    or (flat_detail.text("RvslInd") or "").lower() == "true")
        return {
            "source_ref": source_ref,
            "booking_date": booking,
            "value_date": value,
            "amount_minor": amount,
            "currency": currency,
            "counterparty_name": name,
            "counterparty_account": account,
            "remittance": remittance,
            "reference": reference,
            "end_to_end_id": end_to_end,
            "bank_code": _bank_code(flat_entry, flat_detail if detail is not None else None),
            "is_reversal": reversal,
            "instructed_amount_minor": instructed_minor,
            "instructed_currency": instructed_currency,
            "exchange_rate": rate,
            "charges_minor": _charges(detail, where, path) if detail is not None else _charges(entry, where, path),
            "location": where,
        }


def _run_ends(flags: pl.Series) -> dict[int, int]:
    """{start: end} of each run of True in `flags`."""
    if flags.all():
        return {0: flags.len()} if flags.len() else {}
    ends: dict[int, int] = {}
    start = None
    for n, flag in enumerate([*flags.to_list(), False]):
        if flag and start is None:
            start = n
        elif not flag and start is not None:
            ends[start] = n
            start = None
    return ends


def _cut_entry(cut: Cut, number: int) -> etree._Element:
    """An entry the fast path left alone, parsed on its own exactly as inside the whole document."""
    text = cut.slow_texts[number]
    if b"xmlns" in text or _PREFIXED_TAG.search(text):
        raise Fallback("namespaces inside an entry")
    try:
        return fragment(text)
    except etree.XMLSyntaxError:
        raise Fallback("entry does not parse on its own") from None


def _fill_refs(lines: pl.DataFrame) -> pl.DataFrame:
    """Lines without any bank reference get a content hash counting repeats (CONTRACTS.md §2)."""
    missing = lines["source_ref"].is_null()
    if not missing.any():
        return lines
    hashed = frames.content_refs(lines, HASH_COLUMNS)
    return lines.with_columns(
        pl.when(pl.col("source_ref").is_null()).then(hashed).otherwise(pl.col("source_ref")).alias("source_ref")
    )
