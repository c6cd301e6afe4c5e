"""explain_line and the allocations export's evidence columns: why a line was posted or queued, readable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine

from reconcile.config import load_config
from reconcile.core.errors import NotFoundError
from reconcile.services import daily
from reconcile.services import exports as export
from reconcile.services.explain import explain_line
from tests.builders import bank_line, ingest_lines, write_snapshot

CONFIG = load_config(Path(__file__).resolve().parents[2] / "config")
ACCOUNT = "DE89370400440532013000"


@pytest.fixture
def day(engine: Engine, tmp_path: Path) -> Engine:
    daily.load_ar(engine, write_snapshot(
        tmp_path / "ar",
        customers=[{"customer_id": "C1", "name": "Meyer Bau GmbH", "accounts": ACCOUNT},
                   {"customer_id": "C2", "name": "Meyer Bau AG"},
                   {"customer_id": "C3", "name": "Nordlicht GmbH"}],
        invoices=[
            {"invoice_number": "INV-1001", "customer_id": "C1", "amount": "120.00"},
            {"invoice_number": "INV-1002", "customer_id": "C1", "amount": "80.00"},
            {"invoice_number": "INV-1003", "customer_id": "C1", "amount": "200.00"},
            {"invoice_number": "INV-1004", "customer_id": "C1", "amount": "55.00"},
            {"invoice_number": "INV-2001", "customer_id": "C2", "amount": "55.00"},
            {"invoice_number": "INV-3001", "customer_id": "C3", "amount": "55.00"},
            {"invoice_number": "INV-3002", "customer_id": "C3", "amount": "30.00"},
        ],
    ))
    ingest_lines(engine, [
        bank_line("P1", "80.00", name="MEYER BAU GMBH", account=ACCOUNT, remittance="thanks"),
        bank_line("P2", "120.00", remittance="Invoice INV-1001"),
        bank_line("Q1", "55.00", name="MEYER BAU", remittance="payment"),
        bank_line("Q2", "999.00", name="SOMEONE", remittance="donation"),
    ])
    daily.run_posting(engine, config=CONFIG)
    return engine


def test_a_posted_line_says_which_rule_on_which_signals(day: Engine) -> None:
    found = explain_line(day, "P1")
    assert found["decision"] == "posted" and found["rule"] == "amount_unique"
    assert found["signals"]["payer"]["by"] == "account"
    # INV-1001 went to P2, which names it (lines that name invoices are decided first): the nearest other
    # open item is INV-1004
    assert found["runner_up"] == "INV-1004" and found["margin"] == 2500
    assert [a["invoice_number"] for a in found["allocations"]] == ["INV-1002"]
    assert "amount_unique" in found["summary"] and "account is on file" in found["summary"]
    by_reference = explain_line(day, "P2", "NL91ABNA0417164300")
    assert by_reference["rule"] == "reference" and by_reference["signals"]["references"] == {"INV-1001": "exact"}


def test_a_queued_line_names_every_candidate_within_the_margin(day: Engine) -> None:
    found = explain_line(day, "Q1")
    assert found["decision"] == "queued" and found["reason"] == "ambiguous"
    assert set(found["suggestions"][:2]) == {"INV-1004", "INV-2001"}  # one of each namesake, never one picked
    assert found["signals"]["customers"] == ["C1", "C2"] and found["customer_id"] is None
    assert "queued as ambiguous" in found["summary"]
    nothing = explain_line(day, "Q2")
    assert nothing["reason"] == "no_candidate" and nothing["suggestions"] == []
    with pytest.raises(NotFoundError):
        explain_line(day, "NOPE")


def test_the_allocations_export_carries_compact_evidence_runner_up_and_margin(day: Engine) -> None:
    frame = export.allocations_frame(day)
    assert frame.columns[-3:] == ["evidence", "runner_up", "margin"]
    row = frame.filter(source_ref="P1").row(0, named=True)
    evidence = json.loads(row["evidence"])
    assert row["evidence"] == json.dumps(evidence, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert (row["runner_up"], row["margin"]) == ("INV-1004", "2500")
