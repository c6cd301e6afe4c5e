"""OFX parser throughput: 1.x SGML with 1k/10k/20k transactions, 2.x XML with 20k, and plain ofxparse on 10k.

Run: /work/.venv/bin/python bench/parse/bench_ofx.py   (writes temporary files only; prints figures and the machine)
Target (parsers issue): 20k transactions <= 2 s, time growing linearly with the transaction count
(100k shows the trend).
"""

from __future__ import annotations

import io
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path

from reconcile.parsers import parse_file

SGML_HEADER = "OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\nSECURITY:NONE\nENCODING:USASCII\nCHARSET:1252\n\n"
XML_HEADER = '<?xml version="1.0" encoding="UTF-8"?>\n<?OFX OFXHEADER="200" VERSION="211"?>\n'


def sgml(n: int) -> bytes:
    txn = ("<STMTTRN>\n<TRNTYPE>CREDIT\n<DTPOSTED>20261123000000.000[-5:EST]\n<TRNAMT>{a}.{c:02d}\n<FITID>F{i}\n"
           "<NAME>CUSTOMER {i}\n<MEMO>INV-{i:07d}\n</STMTTRN>\n")
    body = "".join(txn.format(a=i % 999, c=i % 100, i=i) for i in range(n))
    return (SGML_HEADER + "<OFX>\n<SIGNONMSGSRSV1>\n<SONRS>\n<STATUS>\n<CODE>0\n<SEVERITY>INFO\n</STATUS>\n"
            "<DTSERVER>20261130\n<LANGUAGE>ENG\n</SONRS>\n</SIGNONMSGSRSV1>\n<BANKMSGSRSV1>\n<STMTTRNRS>\n<TRNUID>1\n"
            "<STATUS>\n<CODE>0\n<SEVERITY>INFO\n</STATUS>\n<STMTRS>\n<CURDEF>USD\n<BANKACCTFROM>\n<BANKID>1\n"
            "<ACCTID>123\n<ACCTTYPE>CHECKING\n</BANKACCTFROM>\n<BANKTRANLIST>\n<DTSTART>20261101\n<DTEND>20261130\n"
            + body + "</BANKTRANLIST>\n<LEDGERBAL>\n<BALAMT>100.00\n<DTASOF>20261130\n</LEDGERBAL>\n</STMTRS>\n"
            "</STMTTRNRS>\n</BANKMSGSRSV1>\n</OFX>\n").encode("cp1252")


def xml(n: int) -> bytes:
    txn = ("<STMTTRN><TRNTYPE>CREDIT</TRNTYPE><DTPOSTED>20261123000000.000[-5:EST]</DTPOSTED>"
           "<TRNAMT>{a}.{c:02d}</TRNAMT><FITID>F{i}</FITID><NAME>Kunde {i} Müller</NAME>"
           "<MEMO>INV-{i:07d}</MEMO></STMTTRN>\n")
    body = "".join(txn.format(a=i % 999, c=i % 100, i=i) for i in range(n))
    return (XML_HEADER + "<OFX><BANKMSGSRSV1><STMTTRNRS><TRNUID>1</TRNUID><STATUS><CODE>0</CODE>"
            "<SEVERITY>INFO</SEVERITY></STATUS><STMTRS><CURDEF>EUR</CURDEF><BANKACCTFROM><BANKID>1</BANKID>"
            "<ACCTID>123</ACCTID><ACCTTYPE>CHECKING</ACCTTYPE></BANKACCTFROM><BANKTRANLIST>"
            "<DTSTART>20261101</DTSTART><DTEND>20261130</DTEND>\n" + body + "</BANKTRANLIST><LEDGERBAL>"
            "<BALAMT>100.00</BALAMT><DTASOF>20261130</DTASOF></LEDGERBAL></STMTRS></STMTTRNRS>"
            "</BANKMSGSRSV1></OFX>\n").encode("utf-8")


def best_of(runs: int, action) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{platform.system()} (best of 3 runs; ofxparse once)")
    with tempfile.TemporaryDirectory() as tmp:
        cases = [(f"OFX 1.x SGML {n // 1000:>3}k txns", sgml(n), n) for n in (1_000, 10_000, 20_000, 100_000)]
        cases.append(("OFX 2.x XML   20k txns", xml(20_000), 20_000))
        for label, data, n in cases:
            path = Path(tmp) / "bench.ofx"
            path.write_bytes(data)
            parsed = parse_file(path)
            assert parsed.line_count == n, (label, parsed.line_count)
            seconds = best_of(3, lambda path=path: parse_file(path))
            print(f"{label}  {len(data) / 1e6:6.2f} MB  {seconds:6.3f} s  {n / seconds:9,.0f} txns/s  "
                  f"{seconds / n * 1e6:6.1f} us/txn")

        import ofxparse

        data = sgml(10_000)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            reference = ofxparse.OfxParser.parse(io.BytesIO(data))
            seconds = time.perf_counter() - start
        count = len(reference.account.statement.transactions)
        print(f"ofxparse 0.21 SGML  10k txns {len(data) / 1e6:6.2f} MB  {seconds:6.3f} s  "
              f"{count / seconds:9,.0f} txns/s  (for comparison)")


if __name__ == "__main__":
    main()
