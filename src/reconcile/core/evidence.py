"""Evidence and suggestions as the ledger stores them: the one place that writes and reads that text.

Evidence is the JSON object beside an allocation row or a queue item: why the matcher decided (signals,
runner-up, margin), or what a person, an advice or the receivables system supplied. It is stored as compact
JSON with sorted keys, so the same decision always gives the same bytes (exports and replays compare them).
Suggestions are a queued line's candidate invoice numbers, best first, stored joined by "|" (an invoice
number never holds one: snapshots refuse it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

SUGGESTION_SEPARATOR = "|"


def evidence_text(evidence: Mapping[str, Any]) -> str:
    """Compact JSON with sorted keys; dates and decimals as their text."""
    return json.dumps(evidence, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)


def evidence_of(text: str | None) -> dict[str, Any]:
    """The evidence object stored as `text`: empty when there is none; text that is not a JSON object (written
    by hand or by an old version) is kept under "text" or "value" rather than lost or raised."""
    if not text:
        return {}
    try:
        found = json.loads(text)
    except ValueError:
        return {"text": text}
    return found if isinstance(found, dict) else {"value": found}


def suggestions_text(numbers: Iterable[str | None]) -> str | None:
    """Invoice numbers, best first, as stored; duplicates and blanks dropped; None when there are none."""
    kept = [n for n in dict.fromkeys(numbers) if n]
    return SUGGESTION_SEPARATOR.join(kept) or None


def suggestions_of(text: str | None) -> list[str]:
    """The invoice numbers stored as `text`, best first."""
    return [n for n in (text or "").split(SUGGESTION_SEPARATOR) if n]
