"""Golden-file helper: parse a corpus file and compare with the stored JSON beside the tests.

Regenerate on purpose with `UPDATE_GOLDEN=1 pytest tests/parsers`, then review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from reconcile.parsers import parse_file
from reconcile.statements.parse_json import parsed_to_json

GOLDEN_DIR = Path(__file__).parent / "golden"


def golden_path(relative: str) -> Path:
    return GOLDEN_DIR / (relative.replace("/", "__") + ".json")


def check_golden(corpus: Path, relative: str) -> dict:
    """Parse corpus/relative, compare with its golden JSON (or write it when UPDATE_GOLDEN=1)."""
    actual = parsed_to_json(parse_file(corpus / relative))
    path = golden_path(relative)
    if os.environ.get("UPDATE_GOLDEN") == "1" or not path.exists():
        path.write_text(json.dumps(actual, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
        if os.environ.get("UPDATE_GOLDEN") != "1":
            raise AssertionError(f"golden file {path.name} was missing and has been written: review it")
    expected = json.loads(path.read_text())
    assert actual == expected, f"{relative} no longer parses to {path.name}"
    return actual
