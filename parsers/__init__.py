"""Statement parsers: one module per format behind parsers.base.Parser.

`parse_file(path)` detects the format from content (exactly one parser must
claim a file) and returns a ParsedFile.
"""

from reconcile.parsers.registry import detect, parse_bytes, parse_file, read_statement

__all__ = ["detect", "parse_bytes", "parse_file", "read_statement"]
