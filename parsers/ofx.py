"""ofx statements (placeholder until the parsers issue lands: claims nothing)."""

from __future__ import annotations

from pathlib import Path

from reconcile.errors import InputError
from reconcile.parsers.base import ParsedFile


class OfxParser:
    name = "ofx"

    def sniff(self, head: bytes, path: Path) -> bool:
        return False

    def parse(self, data: bytes, path: Path) -> ParsedFile:
        raise InputError(path, None, "ofx is not supported yet")
