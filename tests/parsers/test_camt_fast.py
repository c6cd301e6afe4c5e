"""The vectorised CAMT fast path (parsers/camt_fast.py) gives exactly what the slow path gives.

Every corpus CAMT file and generated statements (batches, foreign currency, entities, odd shapes, bad
values) are parsed twice, once with the fast path and once with it switched off, and compared in full:
statement metadata, every line with its location, and the error (element path and reason) when refused.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from reconcile.core.errors import InputError
from reconcile.parsers import camt_fast, parse_bytes

CORPUS_CAMT = ["camt053", "camt054"]


def _outcome(data: bytes, name: str = "x.xml") -> Any:
    try:
        parsed = parse_bytes(data, Path(name))
    except InputError as exc:
        return ("refused", exc.where, exc.why)
    return (parsed.format, [
        (s.account, s.currency, s.opening_minor, s.closing_minor, s.period_start, s.period_end, s.statement_id,
         s.location, s.warnings, s.lines.schema, s.lines.rows())
        for s in parsed.statements
    ])


def _both(data: bytes, monkeypatch: pytest.MonkeyPatch, name: str = "x.xml") -> tuple[Any, Any]:
    fast = _outcome(data, name)
    with monkeypatch.context() as patch:
        patch.setattr(camt_fast, "cut", lambda data: None)
        slow = _outcome(data, name)
    return fast, slow


def _fast_entries(data: bytes) -> int:
    try:
        cut = camt_fast.cut(data)
    except camt_fast.Fallback:
        return 0
    return 0 if cut is None else int(cut.entries["fast"].sum())


def _corpus_files() -> list[Path]:
    """Every CAMT file of the corpus: the in-repository copy, plus the external files it lacks."""
    from tests.conftest import CORPUS, CORPUS_IN_REPO

    found: dict[str, Path] = {}
    for root in (CORPUS_IN_REPO, CORPUS):
        for kind in CORPUS_CAMT:
            for path in sorted((root / kind).rglob("*")) if (root / kind).is_dir() else []:
                if path.is_file():
                    found.setdefault(str(path.relative_to(root)), path)
    return [found[name] for name in sorted(found)]


@pytest.mark.parametrize("path", _corpus_files(), ids=lambda p: "/".join(p.parts[-3:]))
def test_every_corpus_camt_file_parses_the_same_fast_and_slow(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fast, slow = _both(path.read_bytes(), monkeypatch, path.name)
    assert fast == slow


# --- generated statements -------------------------------------------------------------------------------

def _pick(rng: random.Random, *options: str) -> str:
    return rng.choice(options)


def _party(rng: random.Random, role: str, name: str) -> str:
    address = _pick(rng, "",
                    "<PstlAdr><StrtNm>Main &amp; Co St</StrtNm><AdrLine>1</AdrLine><AdrLine>Town</AdrLine></PstlAdr>")
    ident = _pick(rng, "", "<Id><OrgId><Othr><Id>X1</Id><SchmeNm><Cd>BANK</Cd></SchmeNm></Othr></OrgId></Id>")
    inner = f"<Nm>{name}</Nm>{address}{ident}" if rng.random() < 0.85 else address
    return f"<{role}><Pty>{inner}</Pty></{role}>" if rng.random() < 0.4 else f"<{role}>{inner}</{role}>"


def _account(rng: random.Random, role: str, n: int) -> str:
    return _pick(rng, "", f"<{role}Acct><Id><IBAN>DE89370400440532013{n:03d}</IBAN></Id></{role}Acct>",
                 (f"<{role}Acct><Id><Othr><Id> 12 34 </Id><SchmeNm><Cd>BBAN</Cd></SchmeNm></Othr></Id>"
                  f"<Ccy>EUR</Ccy></{role}Acct>"),
                 f"<{role}Acct><Id><IBAN>  </IBAN></Id></{role}Acct>")


def _bank_code(rng: random.Random) -> str:
    return _pick(rng, "", "<BkTxCd/>",
                 "<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd>",
                 "<BkTxCd><Prtry><Cd>NTRF+166</Cd><Issr>ZKA</Issr></Prtry></BkTxCd>",
                 ("<BkTxCd><Domn><Cd> </Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd></SubFmlyCd></Fmly></Domn>"
                  "<Prtry><Cd>P</Cd></Prtry></BkTxCd>"))


NAMES = ["Customer GmbH", "Müller AG", "Smith &amp; Sons", "  spaced\n\tout  name ",
         "&lt;tag&gt; &quot;q&quot; &apos;a&apos;", "Bäckerei Ölmühle", "", " ", "Café\u00a0Nbsp"]


def _detail(rng: random.Random, n: int, amount: str | None = None, currency: str = "EUR") -> str:
    refs = "".join(part for part in (
        _pick(rng, "", "<MsgId>M1</MsgId>"),
        _pick(rng, "", f"<AcctSvcrRef>D{n}</AcctSvcrRef>", "<AcctSvcrRef> </AcctSvcrRef>"),
        _pick(rng, "", f"<EndToEndId>E2E-{n}</EndToEndId>", "<EndToEndId>NOTPROVIDED</EndToEndId>",
              "<EndToEndId>notprovided</EndToEndId>"),
        _pick(rng, "", f"<TxId>T{n}</TxId>"),
    ))
    parts = [f"<Refs>{refs}</Refs>" if refs or rng.random() < 0.3 else ""]
    if amount is not None:
        parts.append(f'<Amt Ccy="{currency}">{amount}</Amt>')
    parts.append(_bank_code(rng))
    if rng.random() < 0.8:
        parts.append("<RltdPties>" + _party(rng, "Dbtr", rng.choice(NAMES)) * (rng.random() < 0.8)
                     + _account(rng, "Dbtr", n)
                     + _party(rng, "UltmtDbtr", rng.choice(NAMES)) * (rng.random() < 0.3)
                     + _party(rng, "Cdtr", rng.choice(NAMES)) * (rng.random() < 0.6) + _account(rng, "Cdtr", n + 500)
                     + "</RltdPties>")
    if rng.random() < 0.3:
        parts.append("<RltdAgts><DbtrAgt><FinInstnId><BICFI>ABCDEFGH</BICFI></FinInstnId></DbtrAgt></RltdAgts>")
    if rng.random() < 0.8:
        ustrd = "".join(f"<Ustrd>{rng.choice(['INV-1', ' INV-2  and ', '', '  ', 'a&amp;b', 'INV-3'])}</Ustrd>"
                        for _ in range(rng.randint(0, 3)))
        strd = _pick(rng, "",
                     ("<Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry></Tp>"
                      "<Ref>RF18 5390</Ref></CdtrRefInf></Strd>"),
                     "<Strd><RfrdDocInf><Nb>DOC-9</Nb></RfrdDocInf></Strd>")
        parts.append(f"<RmtInf>{ustrd}{strd}</RmtInf>")
    parts.append(_pick(rng, "", "<AddtlTxInf>more text</AddtlTxInf>", "<AddtlTxInf> </AddtlTxInf>"))
    if rng.random() < 0.05 and amount is None:  # amount details in a foreign currency: the slow path's business
        parts.insert(1, '<AmtDtls><InstdAmt><Amt Ccy="USD">12.00</Amt></InstdAmt><TxAmt><Amt Ccy="EUR">10.00</Amt>'
                        '<CcyXchg><SrcCcy>USD</SrcCcy><XchgRate>0.83</XchgRate></CcyXchg></TxAmt></AmtDtls>')
    sep = _pick(rng, "", "\n    ", " ")
    return "<TxDtls>" + sep.join(parts) + "</TxDtls>"


def _entry(rng: random.Random, n: int, clean: bool) -> str:
    currency = _pick(rng, "EUR", "EUR", "eur", "JPY", "BHD")
    whole = rng.randint(0, 5000)
    amount = _pick(rng, f"{whole}.{rng.randint(0, 99):02d}", f"{whole}", f" {whole}.5 ", f"{whole}.", f"{whole}.1")
    if rng.random() < 0.1:
        amount = _pick(rng, f"{whole}.500", f"{whole}.123", f"{whole}.1234")
    if rng.random() < 0.01:
        amount = _pick(rng, "12,5", "", "1e3", "-5.00")
    if clean:  # only amounts every currency takes
        amount = _pick(rng, f"{whole}", f" {whole} ", f"{whole}.",
                       f"{whole}.000"[: 4 + len(str(whole)) - 4 * (currency == "JPY")])
    indicator = _pick(rng, "CRDT", "DBIT", " CRDT ") if rng.random() > 0.005 or clean else "XXXX"
    status = _pick(rng, "<Sts><Cd>BOOK</Cd></Sts>", "<Sts>BOOK</Sts>", "", "<Sts><Cd>PDNG</Cd></Sts>",
                   "<Sts>\n<Cd>BOOK</Cd>\n</Sts>")
    booking = _pick(rng, "<BookgDt><Dt>2026-11-23</Dt></BookgDt>", "<BookgDt><Dt> 2026-11-24 </Dt></BookgDt>")
    if rng.random() < 0.1:
        booking = "<BookgDt><DtTm>2026-11-23T23:30:00+01:00</DtTm></BookgDt>"
    if rng.random() < 0.005 and not clean:
        booking = _pick(rng, "<BookgDt><Dt>2026-02-30</Dt></BookgDt>", "<BookgDt><Dt>20261123</Dt></BookgDt>", "",
                        "<BookgDt><Dt>0000-11-23</Dt></BookgDt>", "<BookgDt><Dt>-001-11-23</Dt></BookgDt>",
                        "<BookgDt><Dt>+026-11-23</Dt></BookgDt>")
    value = _pick(rng, "", "<ValDt><Dt>2026-11-25</Dt></ValDt>")
    if rng.random() < 0.1:
        value = _pick(rng, "<ValDt><DtTm>2026-11-25T10:00:00</DtTm></ValDt>",
                      "<ValDt><Dt>2026-11-2&#54;</Dt></ValDt>" if clean else "<ValDt><Dt>M&#252;</Dt></ValDt>")
    parts = [
        _pick(rng, "", f"<NtryRef>N{n}</NtryRef>"),
        f'<Amt Ccy="{currency}">{amount}</Amt>' if rng.random() > 0.3 else f"<Amt Ccy='{currency}'>{amount}</Amt>",
        f"<CdtDbtInd>{indicator}</CdtDbtInd>",
        _pick(rng, "", "", "<RvslInd>true</RvslInd>", "<RvslInd>TRUE</RvslInd>", "<RvslInd>false</RvslInd>"),
        status, booking, value,
        _pick(rng, "", f"<AcctSvcrRef>R{n}</AcctSvcrRef>", f"<AcctSvcrRef>R{n % 7}</AcctSvcrRef>"),
        _bank_code(rng),
    ]
    if rng.random() < 0.03:
        parts.append('<Chrgs><TtlChrgsAndTaxAmt Ccy="EUR">1.00</TtlChrgsAndTaxAmt></Chrgs>')
    shape = rng.random()
    if shape < 0.15:
        details = ""
    elif shape < 0.85:
        btch = _pick(rng, "", "<Btch><NbOfTxs>1</NbOfTxs></Btch>")
        details = f"<NtryDtls>{btch}{_detail(rng, n)}</NtryDtls>"
    else:  # a batch: several details, amounts in the account currency or not
        count = rng.randint(2, 3)
        split = [rng.randint(1, 100) for _ in range(count)]
        amount = f"{sum(split)}.00"
        parts[1] = f'<Amt Ccy="EUR">{amount}</Amt>'
        ccy = "EUR" if rng.random() < 0.8 else "CHF"
        details = ("<NtryDtls>" + "".join(_detail(rng, n * 10 + k, f"{a}.00", ccy) for k, a in enumerate(split))
                   + "</NtryDtls>")
    parts.append(details)
    parts.append(_pick(rng, "", "<AddtlNtryInf>entry info</AddtlNtryInf>", "<AddtlNtryInf>  </AddtlNtryInf>"))
    sep = _pick(rng, "", "\n  ", "\r\n\t")
    return "<Ntry>" + sep + sep.join(parts) + sep + "</Ntry>"


def _statement(rng: random.Random, entries: int, number: int, clean: bool) -> str:
    balances = ('<Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">100.00</Amt>'
                "<CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2026-11-22</Dt></Dt></Bal>")
    body = "\n".join(_entry(rng, number * 1000 + n, clean) for n in range(entries))
    return (f"<Stmt><Id>S{number}</Id><CreDtTm>2026-11-23T18:00:00</CreDtTm>"
            f"<Acct><Id><IBAN>NL91ABNA041716430{number}</IBAN></Id>"
            f"{_pick(rng, '<Ccy>EUR</Ccy>', '')}</Acct>{balances}\n{body}\n</Stmt>")


def _document(seed: int, entries: int = 60, statements: int = 2, kind: str = "053", clean: bool = False) -> bytes:
    rng = random.Random(seed)
    root, tag = ("BkToCstmrStmt", "Stmt") if kind == "053" else ("BkToCstmrDbtCdtNtfctn", "Ntfctn")
    body = "".join(_statement(rng, entries, n, clean).replace("<Stmt>", f"<{tag}>").replace("</Stmt>", f"</{tag}>")
                   for n in range(1, statements + 1))
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.{kind}.001.08">'
            f"<{root}><GrpHdr><MsgId>G</MsgId><CreDtTm>2026-11-23T18:00:00Z</CreDtTm></GrpHdr>{body}</{root}></Document>"
            ).encode()


@pytest.mark.parametrize("seed", range(40))
def test_generated_statements_parse_the_same_fast_and_slow(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _document(seed, kind="053" if seed % 4 else "054", clean=seed % 5 != 0)
    fast, slow = _both(data, monkeypatch)
    assert fast == slow
    if seed % 5:
        assert fast[0] != "refused" and sum(len(s[-1]) for s in fast[1]) >= 80


def test_generated_statements_mostly_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Guard for the comparison above: it must really compare fast lines, not two slow parses."""
    taken = sum(_fast_entries(_document(seed)) for seed in range(10))
    assert taken > 10 * 2 * 60 * 0.3


def test_clean_generated_statements_parse_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    # without the rare bad values the whole file parses, so every line is compared, not just the first error
    for seed in range(100, 140):
        data = _document(seed, entries=8, statements=1)
        fast, slow = _both(data, monkeypatch)
        assert fast == slow
    outcomes = [_outcome(_document(seed, entries=8, statements=1))[0] for seed in range(100, 140)]
    assert outcomes.count("camt053") >= 10


def test_a_bad_entry_after_fast_ones_names_its_own_path(monkeypatch: pytest.MonkeyPatch) -> None:
    good = '<Ntry><Amt Ccy="EUR">1.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><BookgDt><Dt>2026-11-23</Dt></BookgDt></Ntry>'
    bad = good.replace("1.00", "1.005")
    data = (f'<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt>'
            f"<Stmt><Acct><Id><IBAN>NL91ABNA0417164300</IBAN></Id></Acct>{good * 3}{bad}{good}</Stmt></BkToCstmrStmt>"
            f"</Document>").encode()
    assert _fast_entries(data) == 4
    fast, slow = _both(data, monkeypatch)
    assert fast == slow
    assert fast[:2] == ("refused", "Stmt[1]/Ntry[4]/Amt")


@pytest.mark.parametrize("variant", [
    "<!-- a comment -->", "<Ntry/>", "<x:Ntry xmlns:x='urn:x'/>", "<Ntry><![CDATA[x]]></Ntry>", "<?pi x?>",
    "<Ntry xmlns='urn:other'><Amt Ccy='EUR'>1</Amt><CdtDbtInd>CRDT</CdtDbtInd></Ntry>", "<Oops>", "&bogus;",
])
def test_unusual_documents_fall_back_to_the_slow_path(variant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    good = '<Ntry><Amt Ccy="EUR">1.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><BookgDt><Dt>2026-11-23</Dt></BookgDt></Ntry>'
    data = (f'<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt>'
            f"<Stmt><Acct><Id><IBAN>NL91ABNA0417164300</IBAN></Id></Acct>{good}{variant}{good}</Stmt></BkToCstmrStmt>"
            f"</Document>").encode()
    fast, slow = _both(data, monkeypatch)
    assert fast == slow


@pytest.mark.parametrize("day", ["0000-11-23", "-001-11-23", "+026-11-23", "2026-02-29", "20261123", "2026-11-23Z",
                                 "2026-11-23+01:00", "2026-W48-1"])
def test_dates_only_python_takes_are_taken(day: str, monkeypatch: pytest.MonkeyPatch) -> None:
    entry = (f'<Ntry><Amt Ccy="EUR">1.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><BookgDt><Dt>2026-11-23</Dt></BookgDt>'
             f"<ValDt><Dt>{day}</Dt></ValDt></Ntry>")
    data = (f'<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt>'
            f"<Stmt><Acct><Id><IBAN>NL91ABNA0417164300</IBAN></Id></Acct>{entry}"
            f"{entry.replace('ValDt', 'BookgDt', 2).replace('<BookgDt><Dt>2026-11-23</Dt></BookgDt>', '', 1)}"
            f"</Stmt></BkToCstmrStmt></Document>").encode()
    fast, slow = _both(data, monkeypatch)
    assert fast == slow
