"""Format detection by content: exactly one parser must claim a file.

The extension is never trusted; two parsers claiming one file is an error,
not a guess. A caller who knows the CSV layout (a card account whose export
inverts signs, say) names the profile instead and detection is skipped.
Known-but-unsupported content (camt.052, investment-only OFX, unknown XML)
is refused with a reason by the parser that recognises it.
"""

from __future__ import annotations

from pathlib import Path

from reconcile.parsers.base import ParsedFile, Parser

from reconcile.core.errors import InputError

HEAD_BYTES = 64 * 1024


def _parsers() -> list[Parser]:
    # Imported lazily: parsers/__init__ re-exports this module's functions.
    from reconcile.parsers.formats import available_parsers

    return available_parsers()


def _chosen_profile(head: bytes, path: Path, profile: str) -> Parser:
    from reconcile.parsers.csvprofile import profile_parser

    parser = profile_parser(profile, path)
    problem = parser.mismatch(head, path)
    if problem is not None:
        raise InputError(path, None, f"not in the layout of CSV profile {parser.profile.name!r}: {problem}")
    return parser


def detect(data: bytes, path: Path, *, profile: str | None = None) -> Parser:
    """The one parser that claims the file; with profile, that CSV profile's parser (no detection)."""
    head = data[:HEAD_BYTES]
    if head.startswith(b"PK\x03\x04"):
        raise InputError(path, None, "a ZIP archive: unpack it and ingest the statement files inside")
    if profile is not None:
        return _chosen_profile(head, path, profile)
    claims = [p for p in _parsers() if p.sniff(head, path)]
    if not claims:
        raise InputError(path, None, "unrecognised statement format (not OFX, CAMT, MT940, BAI2 or a known CSV layout)")
    if len(claims) > 1:
        names = ", ".join(p.name for p in claims)
        raise InputError(path, None, f"ambiguous format: claimed by {names}")
    return claims[0]


def parse_bytes(data: bytes, path: Path, *, profile: str | None = None) -> ParsedFile:
    return detect(data, path, profile=profile).parse(data, path)


def read_statement(path: Path) -> bytes:
    """A statement file's bytes; unreadable or empty files are input errors."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(path, None, f"cannot read file: {exc.strerror or exc}") from None
    if not data.strip():
        raise InputError(path, None, "file is empty")
    return data


def parse_file(path: str | Path, *, profile: str | None = None) -> ParsedFile:
    path = Path(path)
    return parse_bytes(read_statement(path), path, profile=profile)
