"""Evidence and suggestions as the ledger stores them: stable bytes, nothing lost on the way back."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from reconcile.core.evidence import evidence_of, evidence_text, suggestions_of, suggestions_text

pytestmark = pytest.mark.unit


def test_the_same_evidence_gives_the_same_bytes_whatever_the_key_order() -> None:
    one = evidence_text({"runner_up": "INV-2", "margin": 12.5, "references": {"INV-1": "exact"}})
    other = evidence_text({"references": {"INV-1": "exact"}, "margin": 12.5, "runner_up": "INV-2"})
    assert one == other == '{"margin":12.5,"references":{"INV-1":"exact"},"runner_up":"INV-2"}'
    assert evidence_of(one) == {"margin": 12.5, "references": {"INV-1": "exact"}, "runner_up": "INV-2"}


def test_dates_decimals_and_non_ascii_names_are_written_as_text() -> None:
    text = evidence_text({"on": date(2026, 3, 2), "rate": Decimal("1.0850"), "payer": "Černý & Dvořák"})
    assert text == '{"on":"2026-03-02","payer":"Černý & Dvořák","rate":"1.0850"}'


def test_reading_never_loses_or_raises() -> None:
    assert evidence_of(None) == {} and evidence_of("") == {}
    assert evidence_of("typed by hand") == {"text": "typed by hand"}
    assert evidence_of("[1, 2]") == {"value": [1, 2]}


def test_suggestions_keep_their_order_once_each() -> None:
    stored = suggestions_text(["INV-3", "INV-1", None, "INV-3", ""])
    assert stored == "INV-3|INV-1"
    assert suggestions_of(stored) == ["INV-3", "INV-1"]
    assert suggestions_text([]) is None and suggestions_of(None) == []
