"""Vectorised fast path for CAMT entries of the common shapes; camt.py keeps the exact slow path for the rest.

How it stays exact:
- the whole document is first checked well-formed by libxml2 (xmlsafe.well_formed, no tree kept), so every
  open tag the patterns below see has its matching close tag;
- the text is cut into one string per Ntry; the statement skeleton (everything but the entries, each entry
  replaced by an empty <Ntry/>) is small and goes through the ordinary slow path (xmlsafe.load, balances,
  account, errors with element paths);
- an entry is taken on the fast path only when the whole entry matches GRAMMAR: explicit element names in
  schema order, at most one TxDtls, leaves holding plain text, no attributes but Amt/@Ccy, no character
  references. Each field is then read at a position the grammar makes unique, and every value the slow path
  would refuse (amount, indicator, date) sends the entry back to the slow path, which raises the same error.
Anything else (batches with several TxDtls, amounts in details, AmtDtls, Chrgs, DtTm dates, comments, CDATA,
prefixed tags, other encodings) is parsed by the slow path, entry by entry or for the whole document.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import polars as pl

from reconcile.core import frames
from reconcile.core.money import _EXPONENTS

CHUNK_BYTES = 8 << 20  # entries are cut and matched this many bytes at a time: memory stays flat

W = r"[ \t\r\n]*"  # between elements only XML white space can stand (anything else: slow path)
TEXT = r"[^<]*"
CAP = r"([^<]*)"
CCY = r"""Ccy=(?:"[A-Za-z]{3}"|'[A-Za-z]{3}')"""
ADDRESS_PARTS = ("AdrTp|Dept|SubDept|StrtNm|BldgNb|BldgNm|Flr|PstBx|Room|PstCd|TwnNm|TwnLctnNm|DstrctNm|"
                 "CtrySubDvsn|Ctry|AdrLine")
ADDRESS = rf"(?:<PstlAdr>{W}(?:<(?:{ADDRESS_PARTS})>{TEXT}</(?:{ADDRESS_PARTS})>{W})*</PstlAdr>{W})?"
CODE = rf"<(?:Cd|Prtry)>{TEXT}</(?:Cd|Prtry)>{W}"
SCHEME = rf"(?:<SchmeNm>{W}{CODE}</SchmeNm>{W})?(?:<Issr>{TEXT}</Issr>{W})?"
OTHER_ID = rf"<Othr>{W}<Id>{TEXT}</Id>{W}{SCHEME}</Othr>{W}"
PARTY_ID = (rf"(?:<Id>{W}<(?:OrgId|PrvtId)>{W}"
            rf"(?:<(?:AnyBIC|BICOrBEI|LEI)>{TEXT}</(?:AnyBIC|BICOrBEI|LEI)>{W}|{OTHER_ID})*"
            rf"</(?:OrgId|PrvtId)>{W}</Id>{W})?")


def _leaf(tag: str, capture: bool = False) -> str:
    return rf"(?:<{tag}>{CAP if capture else TEXT}</{tag}>{W})?"


def _bank_code(capture: bool) -> str:
    t = CAP if capture else TEXT
    return (rf"(?:<BkTxCd{W}/>{W}|<BkTxCd>{W}(?:<Domn>{W}<Cd>{t}</Cd>{W}(?:<Fmly>{W}<Cd>{t}</Cd>{W}<SubFmlyCd>{t}"
            rf"</SubFmlyCd>{W}</Fmly>{W})?</Domn>{W})?(?:<Prtry>{W}<Cd>{t}</Cd>{W}(?:<Issr>{TEXT}</Issr>{W})?</Prtry>{W})?"
            rf"</BkTxCd>{W})?")


def _party(role: str, capture: bool) -> str:
    return (rf"(?:<{role}>{W}(?:<Pty>{W})?(?:<Nm>{CAP if capture else TEXT}</Nm>{W})?{ADDRESS}{PARTY_ID}"
            rf"(?:<CtryOfRes>{TEXT}</CtryOfRes>{W})?(?:</Pty>{W})?</{role}>{W})?")


def _account(role: str, capture: bool) -> str:
    t = CAP if capture else TEXT
    return (rf"(?:<{role}Acct>{W}<Id>{W}(?:<IBAN>{t}</IBAN>{W}|<Othr>{W}<Id>{t}</Id>{W}{SCHEME}</Othr>{W})</Id>{W}"
            rf"(?:<Tp>{W}{CODE}</Tp>{W})?(?:<Ccy>{TEXT}</Ccy>{W})?(?:<Nm>{TEXT}</Nm>{W})?</{role}Acct>{W})?")


REF_TAGS = ("MsgId", "AcctSvcrRef", "PmtInfId", "InstrId", "EndToEndId", "UETR", "TxId", "MndtId", "ChqNb",
            "ClrSysRef", "AcctOwnrTxId", "AcctSvcrTxId", "MktInfrstrctrTxId", "PrcgId")


def _refs(capture: bool) -> str:
    inner = "".join(_leaf(t, capture and t in ("AcctSvcrRef", "EndToEndId")) for t in REF_TAGS)
    return rf"(?:<Refs>{W}{inner}</Refs>{W})?"


def _parties(capture: bool) -> str:
    return (rf"<RltdPties>{W}(?:<InitgPty>{W}(?:<Pty>{W})?(?:<Nm>{TEXT}</Nm>{W})?{ADDRESS}{PARTY_ID}(?:</Pty>{W})?"
            rf"</InitgPty>{W})?" + _party("Dbtr", capture) + _account("Dbtr", capture) + _party("UltmtDbtr", capture)
            + _party("Cdtr", capture) + _account("Cdtr", capture) + _party("UltmtCdtr", capture))


AGENTS = "DbtrAgt|CdtrAgt|IntrmyAgt1|IntrmyAgt2|IntrmyAgt3|RcvgAgt|DlvrgAgt|IssgAgt|SttlmPlc"
AGENT = (rf"<(?:{AGENTS})>{W}<FinInstnId>{W}(?:<(?:BICFI|BIC)>{TEXT}</(?:BICFI|BIC)>{W})?"
         rf"(?:<ClrSysMmbId>{W}(?:<ClrSysId>{W}{CODE}</ClrSysId>{W})?<MmbId>{TEXT}</MmbId>{W}</ClrSysMmbId>{W})?"
         rf"(?:<Nm>{TEXT}</Nm>{W})?{ADDRESS}(?:{OTHER_ID})?</FinInstnId>{W}</(?:{AGENTS})>{W}")
REMITTANCE_HEAD = rf"<RmtInf>{W}((?:<Ustrd>{TEXT}</Ustrd>{W})*)"
REMITTANCE = (rf"<RmtInf>{W}(?:<Ustrd>{TEXT}</Ustrd>{W})*"
              + rf"(?:<Strd>{W}(?:<CdtrRefInf>{W}"
              rf"(?:<Tp>{W}<CdOrPrtry>{W}{CODE}</CdOrPrtry>{W}(?:<Issr>{TEXT}</Issr>{W})?"
              rf"</Tp>{W})?(?:<Ref>{TEXT}</Ref>{W})?</CdtrRefInf>{W})?</Strd>{W})?</RmtInf>{W}")
DETAIL = (rf"<TxDtls>{W}" + _refs(False) + _bank_code(False) + rf"(?:{_parties(False)}</RltdPties>{W})?"
          + rf"(?:<RltdAgts>{W}(?:{AGENT})*</RltdAgts>{W})?(?:<Purp>{W}{CODE}</Purp>{W})?(?:{REMITTANCE})?"
          + _leaf("AddtlTxInf") + rf"</TxDtls>{W}")
BATCH = (rf"<Btch>{W}" + _leaf("MsgId") + _leaf("PmtInfId") + _leaf("NbOfTxs")
         + rf"(?:<TtlAmt\s+{CCY}\s*>{TEXT}</TtlAmt>{W})?" + _leaf("CdtDbtInd") + rf"</Btch>{W}")
HEAD = (rf"<Ntry>{W}" + _leaf("NtryRef", True) + r"""<Amt\s+Ccy=["']([A-Za-z]{3})["']\s*>""" + CAP + rf"</Amt>{W}"
        + rf"<CdtDbtInd>{CAP}</CdtDbtInd>{W}" + _leaf("RvslInd", True)
        + rf"(?:<Sts>{W}<Cd>{CAP}</Cd>{W}</Sts>{W}|<Sts>{CAP}</Sts>{W})?"
        + rf"<BookgDt>{W}<Dt>{CAP}</Dt>{W}</BookgDt>{W}(?:<ValDt>{W}<Dt>{CAP}</Dt>{W}</ValDt>{W})?"
        + _leaf("AcctSvcrRef", True) + _bank_code(True))
GRAMMAR = (re.sub(r"\((?!\?)", "(?:", HEAD) + rf"(?:<NtryDtls>{W}(?:{BATCH})?(?:{DETAIL})?</NtryDtls>{W})?"
           + _leaf("AddtlNtryInf") + "$")
DETAIL_HEAD = rf"<TxDtls>{W}" + _refs(True) + _bank_code(True)
DETAIL_HEAD_FIELDS = ["d_ref", "e2e", "d_domn", "d_fmly", "d_sub", "d_prtry"]
PARTIES = _parties(True)
PARTY_FIELDS = ["dbtr", "dbtr_iban", "dbtr_othr", "udbtr", "cdtr", "cdtr_iban", "cdtr_othr", "ucdtr"]
REMITTANCE_FIELDS = (rf"{REMITTANCE_HEAD}(?:<Strd>{W}(?:<CdtrRefInf>{W}"
                     rf"(?:<Tp>{W}<CdOrPrtry>{W}{CODE}</CdOrPrtry>{W}(?:<Issr>{TEXT}</Issr>{W})?</Tp>{W})?"
                     rf"(?:<Ref>{CAP}</Ref>)?)?)?")

_PROLOG_ENCODING = re.compile(rb"""^(?:\xef\xbb\xbf)?<\?xml[^>]*?encoding\s*=\s*["']([^"']*)["']""")
_ENTRY_TAG = re.compile(r"<Ntry[\s/>]")


class Fallback(Exception):
    """The fast path cannot vouch for this document: parse it the exact slow way."""


@dataclass
class Cut:
    skeleton: bytes          # the document with every entry replaced by <Ntry/>
    entries: pl.DataFrame    # one row per entry in document order: fast columns, or fast=False
    slow_texts: dict[int, bytes]  # entry number (0-based, document order) -> its XML, for the slow path


def _norm(expr: pl.Expr) -> pl.Expr:
    """Flat.text / _text: whitespace runs to one space, trimmed, empty -> null."""
    value = expr.str.replace_all(r"\s+", " ").str.strip_chars(" ")
    return pl.when(value == "").then(None).otherwise(value)


def _unescape(expr: pl.Expr) -> pl.Expr:
    for entity, char in (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'"), ("&amp;", "&")):
        expr = expr.str.replace_all(entity, char, literal=True)
    return expr


def cut(data: bytes) -> Cut | None:
    """Cut a document into skeleton and entries; None when it has no entries worth the fast path."""
    if b"<Ntry>" not in data:
        return None
    declared = _PROLOG_ENCODING.match(data)
    if declared and declared.group(1).lower().replace(b"-", b"") != b"utf8":
        raise Fallback("not UTF-8")
    body = declared.end() if declared else 0
    if declared or data.startswith((b"<?xml", b"\xef\xbb\xbf<?xml")):
        body = data.find(b"?>") + 2
    if b"<!--" in data or b"<![CDATA[" in data or b"<?" in data[body:]:
        raise Fallback("comments, CDATA or processing instructions")
    skeleton: list[str] = []
    frames: list[pl.DataFrame] = []
    slow: dict[int, bytes] = {}
    start = 0
    count = 0
    while True:
        end = data.find(b"</Ntry>", start + CHUNK_BYTES)
        end = len(data) if end < 0 else end + len(b"</Ntry>")
        try:
            text = data[start:end].decode("utf-8")
        except UnicodeDecodeError:
            raise Fallback("not UTF-8") from None
        parts = text.split("</Ntry>")
        tail = parts.pop()
        if parts:
            frame = _entries(pl.DataFrame({"p": parts}, schema={"p": pl.String}), "&" in text)
            junk = frame["junk"].to_list()
            for offset in frame.with_row_index("i").filter(~pl.col("fast"))["i"].to_list():
                slow[count + offset] = (parts[offset][len(junk[offset]):] + "</Ntry>").encode("utf-8")
            skeleton.extend(j + "<Ntry/>" for j in junk)
            frames.append(frame.drop("junk"))
            count += len(parts)
        del parts, text
        if end >= len(data):
            if _ENTRY_TAG.search(tail):
                raise Fallback("entry after the last </Ntry>")
            skeleton.append(tail)
            break
        if tail:
            raise Fallback("text after a chunk's last entry")
        start = end
    if not frames:
        raise Fallback("no complete entry")
    return Cut("".join(skeleton).encode("utf-8"), pl.concat(frames), slow)


def _entries(frame: pl.DataFrame, entities: bool) -> pl.DataFrame:
    """The fast columns of a chunk of entries; `entities` is False when the chunk holds no '&' at all."""
    lazy = frame.lazy()
    for stage in _plan(entities):
        lazy = lazy.select(stage)
    found = lazy.collect()
    if (found["tags"] != 1).any() or found["junk"].null_count():
        raise Fallback("an entry that is not a plain <Ntry> element")
    return found.drop("tags")


AMOUNT = (rf"<Ntry>{W}(?:<NtryRef>{TEXT}</NtryRef>{W})?<Amt\s+Ccy=[\"']([A-Za-z]{{3}})[\"']\s*>{CAP}</Amt>{W}"
          rf"<CdtDbtInd>{CAP}</CdtDbtInd>")
ENTRY_BANK_CODE = (rf"</(?:BookgDt|ValDt|AcctSvcrRef)>{W}<BkTxCd>{W}(?:<Domn>{W}<Cd>{CAP}</Cd>{W}"
                   rf"(?:<Fmly>{W}<Cd>{CAP}</Cd>{W}"
                   rf"<SubFmlyCd>{CAP}</SubFmlyCd>{W}</Fmly>{W})?</Domn>{W})?(?:<Prtry>{W}<Cd>{CAP}</Cd>)?")
GROUPS = {  # pattern -> names of its capture groups, each read where the grammar makes it unique
    AMOUNT: ["ccy", "amt", "ind"],
    ENTRY_BANK_CODE: ["e_domn", "e_fmly", "e_sub", "e_prtry"],
    DETAIL_HEAD: DETAIL_HEAD_FIELDS,
    PARTIES: PARTY_FIELDS,
    REMITTANCE_FIELDS: ["ustrd", "ref"],
}
FIELDS = {
    "sts_cd": rf"<Sts>{W}<Cd>{CAP}",
    "sts": rf"<Sts>{CAP}</Sts>",
    "book": rf"<BookgDt>{W}<Dt>{CAP}",
    "val": rf"<ValDt>{W}<Dt>{CAP}",
    "entry_ref": rf"</(?:BookgDt|ValDt)>{W}<AcctSvcrRef>{CAP}",
    "ntry_ref": rf"<Ntry>{W}<NtryRef>{CAP}",
    "rvsl": rf"</CdtDbtInd>{W}<RvslInd>{CAP}",
    "addtl_tx": rf"<AddtlTxInf>{CAP}</AddtlTxInf>{W}</TxDtls>",
    "addtl_entry": rf"<AddtlNtryInf>{CAP}</AddtlNtryInf>{W}$",
}
TEXTS = ["sts_cd", "sts", "entry_ref", "ntry_ref", "rvsl", "addtl_entry", "e_domn", "e_fmly", "e_sub", "e_prtry",
         *DETAIL_HEAD_FIELDS, *PARTY_FIELDS, "ref"]


@functools.cache
def _plan(entities: bool) -> list[list[pl.Expr]]:
    """Selects from the entry strings to the fast columns (built once: building expressions costs too)."""
    p = pl.col("p")
    c = pl.col

    def text(expr: pl.Expr) -> pl.Expr:
        return _norm(_unescape(expr) if entities else expr)

    extract = [
        p.str.count_matches(r"<Ntry[\s/>]").alias("tags"),
        p.str.extract(r"^((?s:.*?))<Ntry>", 1).alias("junk"),
        (p.str.contains(GRAMMAR) & ~p.str.contains("&#", literal=True)).alias("ok"),
        p.str.contains("<TxDtls>", literal=True).alias("has_detail"),
        *(p.str.extract(pattern, 1).alias(name) for name, pattern in FIELDS.items()),
        *(p.str.extract_groups(pattern).struct.rename_fields(names).alias(f"g{n}")
          for n, (pattern, names) in enumerate(GROUPS.items())),
    ]
    unnest = [c("*").exclude([f"g{n}" for n in range(len(GROUPS))]),
              *(c(f"g{n}").struct.unnest() for n in range(len(GROUPS)))]
    ustrd = pl.concat_str([c("ustrd").fill_null("").str.replace_all(r"<[^>]*>", " "), c("addtl_tx").fill_null("")],
                          separator=" ")
    clean = [
        c("tags", "junk", "ok", "has_detail"),
        *(text(c(name)).alias(name) for name in TEXTS),
        c("ccy").str.to_uppercase().alias("currency"),
        c("amt").str.strip_chars().alias("amt"),
        _norm(c("ind")).alias("ind"),
        _norm(c("book")).alias("book"),
        _norm(c("val")).alias("val"),
        text(ustrd).alias("ustrd"),
    ]
    exponents = c("currency").replace_strict(_EXPONENTS, default=2, return_dtype=pl.Int64)
    fraction = c("amt").str.extract(r"^[0-9]{1,15}\.([0-9]+)$", 1).fill_null("")
    minor = (c("amt").str.extract(r"^([0-9]{1,15})(?:\.[0-9]*)?$", 1).cast(pl.Int64, strict=False)
             * pl.lit(10, pl.Int64).pow(exponents)
             + fraction.str.pad_end(4, "0").str.slice(0, exponents).cast(pl.Int64, strict=False).fill_null(0))
    sign = pl.when(c("ind") == "CRDT").then(1).when(c("ind") == "DBIT").then(-1).otherwise(None)
    derive = [
        c("*"),
        (minor * sign).alias("amount_minor"),
        (fraction.str.len_chars() <= exponents).alias("exact"),
        c("book").str.to_date("%Y-%m-%d", strict=False).alias("booking_date"),
        c("val").str.to_date("%Y-%m-%d", strict=False).alias("value_date"),
    ]
    def iso_day(text: str, day: str) -> pl.Expr:  # what date.fromisoformat takes: no year 0, no sign
        return c(text).str.contains(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$") & (c(day).dt.year() >= 1)

    dates_ok = iso_day("book", "booking_date") & (c("val").is_null() | iso_day("val", "value_date"))
    fast = c("ok") & dates_ok & c("amount_minor").is_not_null() & c("exact")
    credit = c("amount_minor") > 0

    def role(debtor: str, creditor: str) -> pl.Expr:
        return pl.when(credit).then(c(debtor)).otherwise(c(creditor))

    def domain(prefix: str) -> pl.Expr:
        joined = pl.concat_str([c(f"{prefix}_domn"), c(f"{prefix}_fmly"), c(f"{prefix}_sub")], separator="/",
                               ignore_nulls=True)
        return pl.when(joined == "").then(None).otherwise(joined)

    final = [
        c("tags", "junk"),
        fast.fill_null(False).alias("fast"),
        pl.coalesce(c("sts_cd"), c("sts")).alias("status"),
        c("amount_minor", "currency"),
        pl.coalesce(c("d_ref"), c("entry_ref"), c("ntry_ref")).alias("source_ref"),
        c("booking_date", "value_date"),
        pl.coalesce(role("dbtr", "cdtr"), role("udbtr", "ucdtr")).alias("counterparty_name"),
        pl.coalesce(role("dbtr_iban", "cdtr_iban"), role("dbtr_othr", "cdtr_othr")).alias("counterparty_account"),
        pl.coalesce(c("ustrd"), c("addtl_entry")).alias("remittance"),
        c("ref").alias("reference"),
        pl.when(c("e2e").str.to_uppercase() == "NOTPROVIDED").then(None).otherwise(c("e2e")).alias("end_to_end_id"),
        pl.coalesce(domain("d"), c("d_prtry"), domain("e"), c("e_prtry")).alias("bank_code"),
        (c("rvsl").str.to_lowercase() == "true").fill_null(False).alias("is_reversal"),
        c("has_detail"),
    ]
    return [extract, unnest, clean, derive, final]


def lines(run: pl.DataFrame, where: str, number: int, statuses: set[str]) -> pl.DataFrame:
    """Bank lines of a run of fast entries; `number` is the first entry's position in its statement."""
    location = pl.concat_str([
        pl.lit(f"{where}/Ntry["), (pl.int_range(pl.len(), dtype=pl.Int64) + number).cast(pl.String), pl.lit("]"),
        pl.when(pl.col("has_detail")).then(pl.lit("/NtryDtls/TxDtls[1]")).otherwise(pl.lit("")),
    ])
    booked = pl.col("status").is_null() | pl.col("status").is_in(sorted(statuses))
    return run.with_columns(location.alias("location")).filter(booked).select(
        pl.col(name) if name in run.columns or name == "location" else pl.lit(None, dtype).alias(name)
        for name, dtype in frames.BANK_LINES.items()
    ).cast(frames.BANK_LINES)  # type: ignore[arg-type]
