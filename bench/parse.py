"""Parser throughput: CAMT.053 with 100k entries, OFX SGML with 1k/10k/20k transactions, generic CSV with 1M lines.

Run: python bench/parse.py   (prints figures and the machine; writes temporary files only)
Targets (issue 3): CAMT >= 50 MB/s and peak memory < 4x the file; OFX 20k <= 2 s; CSV 1M <= 3 s.
CSV against polars: reading the 1M-line generic CSV costs at most 3x a bare `polars.read_csv` of the same
file. Both are timed in one process, alternately, best of 5 (wall and CPU time, so a busy machine shows).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path


def camt(n: int) -> bytes:
    entry = ('<Ntry><Amt Ccy="EUR">{a}.{c:02d}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>'
             "<BookgDt><Dt>2026-11-23</Dt></BookgDt><ValDt><Dt>2026-11-23</Dt></ValDt><AcctSvcrRef>R{i}</AcctSvcrRef>"
             "<NtryDtls><TxDtls><Refs><EndToEndId>E2E{i}</EndToEndId></Refs><RltdPties><Dbtr><Nm>Customer {i} GmbH</Nm>"
             "</Dbtr><DbtrAcct><Id><IBAN>DE89370400440532013{i:03d}</IBAN></Id></DbtrAcct></RltdPties>"
             "<RmtInf><Ustrd>Invoice INV-{i:07d} thank you</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>\n")
    body = "".join(entry.format(a=100 + i % 900, c=i % 100, i=i) for i in range(n))
    return ('<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt>'
            "<GrpHdr><MsgId>B</MsgId><CreDtTm>2026-11-23T18:00:00Z</CreDtTm></GrpHdr><Stmt><Id>S</Id>"
            "<Acct><Id><IBAN>NL91ABNA0417164300</IBAN></Id><Ccy>EUR</Ccy></Acct>" + body +
            "</Stmt></BkToCstmrStmt></Document>").encode()


def ofx(n: int) -> bytes:
    txn = ("<STMTTRN>\n<TRNTYPE>CREDIT\n<DTPOSTED>20261123120000[-5:EST]\n<TRNAMT>{a}.{c:02d}\n<FITID>F{i}\n"
           "<NAME>CUSTOMER {i}\n<MEMO>INV-{i:07d}\n</STMTTRN>\n")
    body = "".join(txn.format(a=i % 999, c=i % 100, i=i) for i in range(n))
    return ("OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\nCHARSET:1252\n\n<OFX>\n<BANKMSGSRSV1>\n<STMTTRNRS>\n<STMTRS>\n"
            "<CURDEF>USD\n<BANKACCTFROM>\n<BANKID>1\n<ACCTID>123\n<ACCTTYPE>CHECKING\n</BANKACCTFROM>\n<BANKTRANLIST>\n"
            "<DTSTART>20261101\n<DTEND>20261130\n" + body
            + "</BANKTRANLIST>\n</STMTRS>\n</STMTTRNRS>\n</BANKMSGSRSV1>\n</OFX>\n").encode()


def csv(n: int) -> bytes:
    rows = ["id,booking_date,value_date,amount,currency,counterparty_name,counterparty_account,remittance"]
    rows += [f"L{i},2026-11-23,2026-11-23,{i % 9999}.{i % 100:02d},EUR,Customer {i % 5000},"
             f"DE89370400440532013000,INV-{i:07d}"
             for i in range(n)]
    return ("\n".join(rows) + "\n").encode()


CHILD = """
import resource, sys, time
from pathlib import Path
from reconcile.parsers import parse_file
t = time.perf_counter(); parsed = parse_file(Path(sys.argv[1])); dt = time.perf_counter() - t
print(dt, parsed.line_count, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


CSV_RATIO = """
import sys, time
from pathlib import Path
import polars as pl
from reconcile.parsers import parse_file
from reconcile.parsers.csv_profiles import builtin_profiles
from reconcile.parsers.csvprofile import parse_csv
path = Path(sys.argv[1]); data = path.read_bytes()
generic = next(p for p in builtin_profiles() if p.name == "generic")
runs = {"polars.read_csv": lambda: pl.read_csv(path), "csv parser": lambda: parse_csv(data, path, generic),
        "parse_file": lambda: parse_file(path)}
best = {k: (9e9, 9e9) for k in runs}
for _ in range(5):
    for name, run in runs.items():
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
for name, (wall, cpu) in best.items():
    print(name, wall, cpu)
"""


def csv_against_polars(data: bytes, folder: Path) -> None:
    """The generic CSV read by reconcile and by a bare polars.read_csv: both figures and the ratio."""
    path = folder / "bench_ratio.csv"
    path.write_bytes(data)
    out = subprocess.run([sys.executable, "-c", CSV_RATIO, str(path)], capture_output=True, text=True, check=True)
    figures = {}
    for line in out.stdout.splitlines():
        name, wall, cpu = line.rsplit(" ", 2)
        figures[name] = (float(wall), float(cpu))
    base_wall, base_cpu = figures["polars.read_csv"]
    for name, (wall, cpu) in figures.items():
        print(f"  {name:<16} {wall:6.3f} s wall {cpu:6.3f} s CPU   "
              f"{wall / base_wall:4.2f}x / {cpu / base_cpu:4.2f}x polars.read_csv")


def measure(label: str, data: bytes, suffix: str, folder: Path) -> None:
    path = folder / f"bench{suffix}"
    path.write_bytes(data)
    base = subprocess.run([sys.executable, "-c", ("import resource, reconcile.parsers.formats, polars, lxml.etree;"
                                                  "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")],
                          capture_output=True, text=True, check=True)
    out = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, check=True)
    seconds, lines, rss_kb = out.stdout.split()
    mb = len(data) / 1e6
    extra_mb = (int(rss_kb) - int(base.stdout)) / 1024
    print(f"{label:<28} {mb:8.1f} MB {int(lines):>9} lines {float(seconds):7.2f} s {mb / float(seconds):8.1f} MB/s "
          f"peak +{extra_mb:7.0f} MB over the interpreter ({extra_mb / mb:4.1f}x file)")


def main() -> None:
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{platform.system()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        measure("camt.053, 100k entries", camt(100_000), ".xml", folder)
        for n in (1_000, 10_000, 20_000):
            measure(f"OFX SGML, {n // 1000}k transactions", ofx(n), ".ofx", folder)
        generic = csv(1_000_000)
        measure("generic CSV, 1M lines", generic, ".csv", folder)
        print("generic CSV, 1M lines, against a bare polars.read_csv (parse_file adds the checks every format "
              "shares, parsers/base.py):")
        csv_against_polars(generic, folder)


if __name__ == "__main__":
    main()
