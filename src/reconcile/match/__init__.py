"""Matching: which customer and which open items does each bank line pay?

Pure functions over polars frames; no database, no clock, no Prefect. The
service layer hands in the lines to match and the open book, and gets back
allocation rows (each line's rows add up to its amount), exception rows and
skipped rows (see frames.ALLOCATIONS / EXCEPTIONS / SKIPPED).
"""

from typing import Any

from reconcile.match.book import Book, MatchResult

__all__ = ["Book", "MatchResult", "match_lines"]


def __getattr__(name: str) -> Any:
    # the engine (rapidfuzz, numpy) is loaded when something matches, not by every command that imports a helper
    if name == "match_lines":
        from reconcile.match.engine import match_lines

        return match_lines
    raise AttributeError(name)
