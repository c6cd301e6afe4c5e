"""OFX bytes -> a tree of aggregates and leaves, in one linear pass.

Decodes the body (UTF-8, else cp1252, whatever the header claims), drops
XML comments, and reads SGML (unclosed leaves) and XML (closed, empty and
self-closing leaves) as one token stream. It knows nothing of statements:
parsers/ofx.py maps the tree to bank lines.
"""

from __future__ import annotations

import codecs
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

from reconcile.core.errors import InputError

TOKEN = re.compile(r"<(/?)([A-Za-z][\w.:-]*)[^<>]*?(/?)>([^<]*)")
CLOSER = re.compile(r"</([A-Za-z][\w.:-]*)")
OFX_START = re.compile(r"<OFX\s*>", re.IGNORECASE)
OFX_END = "</OFX>"
MAX_DEPTH = 64  # real OFX nests ~8 deep; the bound keeps hostile nesting linear

# Aggregates of the OFX 1.x/2.x specs that we read or must recognise. A known
# aggregate is never taken for a leaf, even with stray text after its tag, and
# never nests inside itself (an unclosed one is closed by the next of its kind),
# so a malformed file cannot silently swallow a transaction.
AGGREGATES = frozenset([
    "OFX", "SIGNONMSGSRSV1", "SONRS", "STATUS", "FI", "BANKMSGSRSV1", "STMTTRNRS", "STMTRS",
    "BANKACCTFROM", "BANKACCTTO", "CCACCTFROM", "CCACCTTO", "BANKTRANLIST", "STMTTRN", "PAYEE",
    "CURRENCY", "ORIGCURRENCY", "LEDGERBAL", "AVAILBAL", "BALLIST", "BAL", "CREDITCARDMSGSRSV1",
    "CCSTMTTRNRS", "CCSTMTRS", "INVSTMTMSGSRSV1", "INVSTMTTRNRS", "INVSTMTRS", "INVACCTFROM",
    "INVTRANLIST", "INVBANKTRAN", "INVPOSLIST", "INVBAL", "SECLISTMSGSRSV1", "SECLIST",
    "SIGNUPMSGSRSV1", "ACCTINFOTRNRS", "ACCTINFORS", "ACCTINFO", "BANKACCTINFO", "CCACCTINFO",
    "INVACCTINFO", "STMTENDTRNRS", "STMTENDRS", "CCSTMTENDTRNRS", "CCSTMTENDRS",
])

# Where the aggregates that matter may sit. SGML files omit end tags (a real
# credit-card file never closes BANKTRANLIST): opening one of these closes
# whatever is open below its nearest possible parent, as SGML's implied end tags do.
PARENTS = {
    "STMTTRN": frozenset({"BANKTRANLIST", "INVBANKTRAN"}),
    "BANKTRANLIST": frozenset({"STMTRS", "CCSTMTRS"}),
    "LEDGERBAL": frozenset({"STMTRS", "CCSTMTRS"}),
    "AVAILBAL": frozenset({"STMTRS", "CCSTMTRS"}),
    "BALLIST": frozenset({"STMTRS", "CCSTMTRS", "INVSTMTRS"}),
    "STMTRS": frozenset({"STMTTRNRS"}),
    "CCSTMTRS": frozenset({"CCSTMTTRNRS"}),
    "STMTTRNRS": frozenset({"BANKMSGSRSV1"}),
    "CCSTMTTRNRS": frozenset({"CREDITCARDMSGSRSV1"}),
}

# Leaves that can be written empty and unclosed (<NAME> then the next tag):
# without this list such a tag could be mistaken for an aggregate.
LEAVES = frozenset([
    "CODE", "SEVERITY", "MESSAGE", "DTSERVER", "LANGUAGE", "ORG", "FID", "TRNUID", "CURDEF",
    "BANKID", "BRANCHID", "ACCTID", "ACCTTYPE", "ACCTKEY", "DTSTART", "DTEND", "TRNTYPE",
    "DTPOSTED", "DTUSER", "DTAVAIL", "TRNAMT", "FITID", "CORRECTFITID", "CORRECTACTION",
    "SRVRTID", "CHECKNUM", "REFNUM", "SIC", "PAYEEID", "NAME", "EXTDNAME", "MEMO",
    "INV401KSOURCE", "CURRATE", "CURSYM", "BALAMT", "DTASOF", "MKTGINFO", "BROKERID",
])


@dataclass
class Node:
    """One aggregate: its leaves (first value wins) and child aggregates, with its line."""

    name: str
    line: int
    leaves: dict[str, str] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)

    def child(self, name: str) -> Node | None:
        return next((c for c in self.children if c.name == name), None)

    def find_all(self, name: str, skip: frozenset[str] = frozenset()) -> list[Node]:
        """Descendants named `name`, in document order, not looking inside a match or a `skip` node."""
        found: list[Node] = []
        pending = list(reversed(self.children))
        while pending:
            node = pending.pop()
            if node.name == name:
                found.append(node)
            elif node.name not in skip:
                pending.extend(reversed(node.children))
        return found

    def leaf(self, path: str) -> str | None:
        """The value at 'AGG/.../LEAF' below this node; None when absent or empty."""
        *aggregates, last = path.split("/")
        node: Node | None = self
        for name in aggregates:
            node = node.child(name) if node else None
        value = node.leaves.get(last) if node else None
        return value or None


@dataclass
class Document:
    root: Node
    index: dict[str, list[Node]]  # every aggregate by name, in document order


def decode(data: bytes, path: Path) -> str:
    """The file as text: UTF-16 when it has that BOM, UTF-8 when it is, else cp1252.

    Headers are not trusted (banks write ENCODING:USASCII over cp1252 bytes,
    or CHARSET values nobody knows); valid UTF-8 is practically never cp1252.
    """
    try:
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return data.decode("utf-16")
        return data.removeprefix(codecs.BOM_UTF8).decode("utf-8")
    except UnicodeDecodeError:
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise InputError(path, None, "UTF-16 byte-order mark but the body is not UTF-16") from None
        return data.decode("cp1252", errors="replace")


def _blank_out(text: str, opener: str, closer: str, path: Path, keep_inner: bool) -> str:
    """Remove <!-- --> (or unwrap CDATA) keeping newlines, so line numbers stay true. Linear."""
    if opener not in text:
        return text
    parts: list[str] = []
    pos = 0
    while (begin := text.find(opener, pos)) >= 0:
        finish = text.find(closer, begin + len(opener))
        if finish < 0:
            line = text.count("\n", 0, begin) + 1
            raise InputError(path, f"line {line}", f"'{opener}' is never closed by '{closer}'")
        inner = text[begin + len(opener):finish]
        parts.append(text[pos:begin])
        parts.append(html.escape(inner, quote=False) if keep_inner else "\n" * inner.count("\n"))
        pos = finish + len(closer)
    parts.append(text[pos:])
    return "".join(parts)


def _closes_next(tokens: list[re.Match[str]], index: int, name: str) -> bool:
    following = tokens[index + 1] if index + 1 < len(tokens) else None
    return bool(following and following.group(1) and following.group(2).upper() == name)


def read(data: bytes, path: Path) -> Document:
    """Tokenize the <OFX>...</OFX> part of a file (header and trailing text ignored)."""
    text = decode(data, path)
    if "\n" not in text and "\r" in text:
        text = text.replace("\r", "\n")  # classic Mac line ends: keep line numbers meaningful
    text = _blank_out(text, "<!--", "-->", path, keep_inner=False)
    text = _blank_out(text, "<![CDATA[", "]]>", path, keep_inner=True)
    found = OFX_START.search(text)
    if found is None:
        raise InputError(path, None, "no <OFX> element: not an OFX file")
    end = text.upper().rfind(OFX_END)
    end = end + len(OFX_END) if end > found.start() else len(text)
    tokens = list(TOKEN.finditer(text, found.start(), end))
    closers = {name.upper() for name in CLOSER.findall(text, found.start(), end)}

    root = Node("#root", 1)
    stack = [root]
    index: dict[str, list[Node]] = {}
    line, counted = 1, 0
    for position, match in enumerate(tokens):
        closing, raw_name, selfclose, raw_text = match.groups()
        name = raw_name.upper()
        if closing:
            # tolerant close: pop to the open aggregate of that name; a leaf's close is a no-op
            for depth in range(len(stack) - 1, 0, -1):
                if stack[depth].name == name:
                    del stack[depth:]
                    break
            continue
        value = raw_text.strip()
        if name in AGGREGATES:
            parents = PARENTS.get(name)
            for depth in range(len(stack) - 1, 0, -1):
                if parents is not None and stack[depth].name in parents:
                    del stack[depth + 1:]
                    break
                if stack[depth].name == name:
                    del stack[depth:]
                    break
        elif name in LEAVES or value or selfclose or name not in closers or _closes_next(tokens, position, name):
            leaves = stack[-1].leaves
            if name not in leaves:
                leaves[name] = html.unescape(value) if "&" in value else value
            continue
        line += text.count("\n", counted, match.start())
        counted = match.start()
        node = Node(name, line)
        stack[-1].children.append(node)
        index.setdefault(name, []).append(node)
        if not selfclose:
            stack.append(node)
            if len(stack) > MAX_DEPTH:
                raise InputError(path, f"line {line}", f"aggregates nested more than {MAX_DEPTH} deep")
    if len(stack) > 1:
        unclosed = stack[-1]
        raise InputError(path, f"line {unclosed.line}",
                         f"<{unclosed.name}> is never closed: the file looks truncated")
    return Document(root, index)
