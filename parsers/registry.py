"""Format detection by content: exactly one parser must claim a file.

The extension is never trusted; two parsers claiming one file is an error,
not a guess. Known-but-unsupported content (camt.052, investment-only OFX,
unknown XML) is refused with a reason by the parser that recognises it.
"""

from __future__ import annotations

from pathlib import Path

from reconcile.errors import InputError
from reconcile.parsers.base import ParsedFile, Parser

HEAD_BYTES = 64 * 1024


def _parsers() -> list[Parser]:
    # Imported lazily: parsers/__init__ re-exports this module's functions.
    from reconcile.parsers.formats import available_parsers

    return available_parsers()


def detect(data: bytes, path: Path) -> Parser:
    head = data[:HEAD_BYTES]
    if head.startswith(b"PK\x03\x04"):
        raise InputError(path, None, "a ZIP archive: unpack it and ingest the statement files inside")
    claims = [p for p in _parsers() if p.sniff(head, path)]
    if not claims:
        raise InputError(path, None, "unrecognised statement format (not OFX, CAMT, MT940, BAI2 or a known CSV layout)")
    if len(claims) > 1:
        names = ", ".join(p.name for p in claims)
        raise InputError(path, None, f"ambiguous format: claimed by {names}")
    return claims[0]


def parse_bytes(data: bytes, path: Path) -> ParsedFile:
    return detect(data, path).parse(data, path)


def read_statement(path: Path) -> bytes:
    """A statement file's bytes; unreadable or empty files are input errors."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(path, None, f"cannot read file: {exc.strerror or exc}") from None
    if not data.strip():
        raise InputError(path, None, "file is empty")
    return data


def parse_file(path: str | Path) -> ParsedFile:
    path = Path(path)
    return parse_bytes(read_statement(path), path)
