"""Format detection by content: exactly one parser must claim a file.

The extension is never trusted; two parsers claiming one file is an error,
not a guess. A caller who knows the CSV layout (a card account whose export
inverts signs, say) names the profile instead and detection is skipped.
Known-but-unsupported content (camt.052, investment-only OFX, unknown XML)
is refused with a reason by the parser that recognises it. Whatever parser
read a file, parse_bytes applies the rules every format shares (base.py):
no control characters in text, amounts the ledger can hold, and one distinct
source_ref per transaction.
"""

from __future__ import annotations

from pathlib import Path

from reconcile.core.errors import InputError
from reconcile.parsers.base import (
    ParsedFile,
    ParseOptions,
    Parser,
    check_parsed,
    distinct_source_refs,
)

HEAD_BYTES = 64 * 1024


def _parsers(options: ParseOptions) -> list[Parser]:
    # Imported lazily: parsers/__init__ re-exports this module's functions.
    from reconcile.parsers.formats import available_parsers

    return available_parsers(options)


def _chosen_profile(head: bytes, path: Path, profile: str, options: ParseOptions) -> Parser:
    from reconcile.parsers.csvprofile import profile_parser

    parser = profile_parser(profile, path, options.csv_profiles)
    problem = parser.mismatch(head, path)
    if problem is not None:
        raise InputError(path, None, f"not in the layout of CSV profile {parser.profile.name!r}: {problem}")
    return parser


def detect(data: bytes, path: Path, options: ParseOptions | None = None) -> Parser:
    """The one parser that claims the file; with options.profile, that CSV profile's parser (no detection).

    Without options: the shipped profiles and no time zones (tools and tests); commands pass their own.
    """
    options = options or ParseOptions.builtin()
    head = data[:HEAD_BYTES]
    if head.startswith(b"PK\x03\x04"):
        raise InputError(path, None, "a ZIP archive: unpack it and ingest the statement files inside")
    if options.profile is not None:
        return _chosen_profile(head, path, options.profile, options)
    claims = [p for p in _parsers(options) if p.sniff(head, path)]
    if not claims:
        raise InputError(path, None, "unrecognised statement format (not OFX, CAMT, MT940, BAI2 or a known CSV "
                         f"layout; for a CSV file `reconcile profiles check {path}` says why no profile claims it "
                         f"and `reconcile profiles new {path}` infers one)")
    if len(claims) > 1:
        names = ", ".join(p.name for p in claims)
        raise InputError(path, None, f"ambiguous format: claimed by {names}")
    return claims[0]


def parse_bytes(data: bytes, path: Path, options: ParseOptions | None = None) -> ParsedFile:
    """Detect, parse, then the checks every format shares: what a parser returns is never stored unchecked."""
    parsed = detect(data, path, options).parse(data, path)
    check_parsed(parsed, path)
    return distinct_source_refs(parsed)


def read_statement(path: Path) -> bytes:
    """A statement file's bytes; unreadable or empty files are input errors."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(path, None, f"cannot read file: {exc.strerror or exc}") from None
    if not data or data.isspace():  # not data.strip(): that copies the whole file to look at its first byte
        raise InputError(path, None, "file is empty")
    return data


def parse_file(path: str | Path, options: ParseOptions | None = None) -> ParsedFile:
    path = Path(path)
    return parse_bytes(read_statement(path), path, options)
