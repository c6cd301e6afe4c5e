"""Remittance advices end to end, on both databases: an 820 arriving before or after its payment decides the
allocation; deductions within the limit are written off with the advice's reason code, above it they wait for a
second person; an advice that does not add up sends the line to the queue with the differences; re-importing
and re-running change nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, select

from reconcile.config import load_config
from reconcile.queue.actions import approve
from reconcile.queue.views import get_item
from reconcile.services import daily as service
from reconcile.services import exports as export
from reconcile.services import ledger
from reconcile.services.explain import explain_line
from reconcile.store import db, tables
from tests.builders import bank_line, ingest_lines, write_snapshot

CONFIG = load_config(Path(__file__).resolve().parents[2] / "config")
NOW = datetime(2026, 3, 3, 7, tzinfo=UTC)


def _advice(tmp_path: Path, name: str, trace: str, total: str, rmr: list[str], sep: str = "*", end: str = "~") -> Path:
    """An X12 820 (version 5010) with one transaction: BPR, TRN, N1 payer, then RMR/ADX lines."""
    body = [f"ST{sep}820{sep}0001", f"BPR{sep}C{sep}{total}{sep}C{sep}ACH{sep}CTX" + sep * 11 + "20260302",
            f"TRN{sep}1{sep}{trace}{sep}1512345678", f"N1{sep}PR{sep}ACME TRADING GMBH",
            *[r.replace("*", sep) for r in rmr]]
    body.append(f"SE{sep}{len(body) + 1}{sep}0001")
    isa = (f"ISA{sep}00{sep}          {sep}00{sep}          {sep}ZZ{sep}ACMETRADING    {sep}ZZ{sep}OURCOMPANY     "
           f"{sep}260302{sep}0930{sep}^{sep}00501{sep}000000101{sep}0{sep}P{sep}>")
    segments = [isa, f"GS{sep}RA{sep}ACME{sep}US{sep}20260302{sep}0930{sep}101{sep}X{sep}005010", *body,
                f"GE{sep}1{sep}101", f"IEA{sep}1{sep}000000101"]
    path = tmp_path / name
    path.write_text(end.join(segments) + end + "\n")
    return path


def _book(engine: Engine, tmp_path: Path) -> None:
    service.load_ar(engine, write_snapshot(tmp_path / "ar", [{"customer_id": "C1", "name": "Acme Trading GmbH"}], [
        {"invoice_number": f"INV-{n}", "customer_id": "C1", "amount": amount, "currency": "USD",
         "issue_date": "2026-02-01", "due_date": "2026-03-01"}
        for n, amount in ((1, "1000.00"), (2, "900.00"), (3, "870.00"), (4, "100.00"))
    ]))


def _rows(engine: Engine, ref: str) -> list[tuple]:
    frame = export.allocations_frame(engine)
    return frame.filter(frame["source_ref"] == ref).select("kind", "invoice_number", "amount", "rule").rows()


def _ingest(engine: Engine, path: Path):  # type: ignore[no-untyped-def]
    return service.ingest_file(engine, path, CONFIG.parse_options())


def test_payment_first_then_the_advice_with_a_deduction_within_the_limit(engine: Engine, tmp_path: Path) -> None:
    _book(engine, tmp_path)
    # 1,870.00 that several combinations of open items add up to, and no invoice number in the text
    ingest_lines(engine, [bank_line("P1", "1870.00", currency="USD", name="ACME TRADING GMBH",
                                    remittance="CTX PAYREF778899", booking_date="2026-03-02")], account="US01")
    service.run_posting(engine, config=CONFIG, as_of=NOW.date(), now=NOW)
    queued = export.exceptions_frame(engine, "open").select("source_ref", "reason").rows()
    assert queued == [("P1", "awaiting_advice")]
    advice = _advice(tmp_path, "a.820", "PAYREF778899", "1870", [
        "RMR*IV*INV-1*PI*1000*1000", "RMR*IV*INV-2*PI*870*900", "ADX*-30*01"])
    stored = _ingest(engine, advice)
    assert (stored.format, stored.new_advices) == ("x12_820", 1)
    summary = service.run_posting(engine, config=CONFIG, as_of=NOW.date(), now=NOW)
    assert summary.lines_posted == 1 and summary.violations == []
    # INV-2 settled in full, the 30.00 the payer deducted written off with the advice's reason code
    assert _rows(engine, "P1") == [("invoice", "INV-1", "1000.00", "advice"), ("invoice", "INV-2", "900.00", "advice"),
                                   ("write_off", "INV-2", "-30.00", "01")]
    assert export.exceptions_frame(engine, "open").height == 0
    # re-importing the advice and re-running change nothing
    assert _ingest(engine, advice).already_imported
    assert service.run_posting(engine, config=CONFIG, as_of=NOW.date(), now=NOW).lines_posted == 0
    assert ledger.check(engine) == []
    with db.transaction(engine) as session:
        linked = session.execute(select(tables.Advice.linked_by)).scalars().all()
    assert linked == ["trace"]
    # the explanation of the posted line names the advice and what it listed
    why = explain_line(engine, "P1")
    assert why["advice"]["linked_by"] == "trace"
    assert [(x["invoice_number"], x["paid"]) for x in why["advice"]["lines"]] == [("INV-1", "1000.00"),
                                                                                 ("INV-2", "870.00")]
    assert "remittance advice" in why["summary"] and "INV-2 870.00" in why["summary"]


def test_advice_first_then_the_payment_and_deductions_above_the_limit_wait_for_approval(
        engine: Engine, tmp_path: Path) -> None:
    _book(engine, tmp_path)
    advice = _advice(tmp_path, "b.820", "CHK5531", "1700", [
        "RMR*IV*INV-1*PI*800*1000*200", "RMR*IV*INV-2*PI*900*900"], sep="|", end="\n")
    _ingest(engine, advice)
    service.run_posting(engine, config=CONFIG, as_of=NOW.date(), now=NOW)       # no payment yet
    ingest_lines(engine, [bank_line("P2", "1700.00", currency="USD", name="ACME TRADING GMBH",
                                    remittance="CHK5531", booking_date="2026-03-03")], account="US01")
    service.run_posting(engine, config=CONFIG, as_of=NOW.date(), now=NOW)
    item = export.exceptions_frame(engine, "open").select("source_ref", "reason").rows()
    assert item == [("P2", "advice_deduction")]                  # 200.00 is above the 50.00 approval limit
    with db.transaction(engine) as session:
        key = session.execute(select(tables.ExceptionItem.id).where(tables.ExceptionItem.status == "open")).scalar_one()
    # the person deciding sees the advice beside the payment, and why the line waits
    shown = get_item(engine, key, config=CONFIG.queue)
    assert [(x["invoice_number"], x["paid"], x["discount"]) for x in shown["advice"]["lines"]] == [
        ("INV-1", "800.00", "200.00"), ("INV-2", "900.00", None)]
    assert shown["why"].startswith("queued as advice_deduction")
    done = approve(engine, key, actor="carol", now=NOW, config=CONFIG.queue)
    assert done["status"] == "resolved"
    assert _rows(engine, "P2") == [
        ("invoice", "INV-1", "1000.00", "manual"), ("invoice", "INV-2", "900.00", "manual"),
        ("write_off", "INV-1", "-200.00", "discount")]
    assert ledger.check(engine) == []


def test_an_advice_that_does_not_add_up_sends_the_line_to_a_person(engine: Engine, tmp_path: Path) -> None:
    _book(engine, tmp_path)
    ingest_lines(engine, [bank_line("P3", "1000.00", currency="USD", name="ACME TRADING GMBH",
                                    remittance="EFT 99887766", booking_date="2026-03-02")], account="US01")
    _ingest(engine, _advice(tmp_path, "c.820", "99887766", "1000", ["RMR*IV*INV-1*PI*600*1000",
                                                                     "RMR*IV*INV-99*PI*400*400"]))
    service.run_posting(engine, config=CONFIG, as_of=NOW.date(), now=NOW)
    frame = export.exceptions_frame(engine, "open")
    assert frame.select("source_ref", "reason", "suggestions").rows() == [("P3", "advice_mismatch", "INV-1|INV-99")]
    with db.transaction(engine) as session:
        evidence = session.execute(select(tables.ExceptionItem.evidence)).scalar_one()
    assert "INV-99: no such invoice" in evidence
    assert ledger.check(engine) == []


def test_a_payers_habit_links_its_next_advice_when_the_bank_shows_another_name(engine: Engine, tmp_path: Path) -> None:
    """The first advice links by its trace number and teaches which account the payer pays from; the next one,
    paid from that account under a treasury name with no trace in the text, links by that habit."""
    _book(engine, tmp_path)
    ingest_lines(engine, [bank_line("P1", "1870.00", currency="USD", name="ACME TRADING GMBH", account="US77000111",
                                    remittance="CTX PAYREF778899", booking_date="2026-03-02")], account="US01")
    _ingest(engine, _advice(tmp_path, "a.820", "PAYREF778899", "1870", [
        "RMR*IV*INV-1*PI*1000*1000", "RMR*IV*INV-2*PI*870*900", "ADX*-30*01"]))
    service.run_posting(engine, config=CONFIG, as_of=NOW.date(), now=NOW)
    ingest_lines(engine, [bank_line("P2", "100.00", currency="USD", name="ATG TREASURY SVCS", account="US77000111",
                                    remittance="ACH PAYMENT", booking_date="2026-03-03"),
                          bank_line("P3", "100.00", currency="USD", name="SOMEONE ELSE", account="US55000999",
                                    remittance="ACH PAYMENT", booking_date="2026-03-03")], account="US01")
    _ingest(engine, _advice(tmp_path, "b.820", "SETTLEMENT0002", "100", ["RMR*IV*INV-4*PI*100*100"]))
    service.run_posting(engine, config=CONFIG, as_of=NOW.date(), now=NOW)
    with db.transaction(engine) as session:
        links = session.execute(select(tables.Advice.trace_number, tables.Advice.linked_by)
                                .order_by(tables.Advice.id)).all()
    assert [tuple(r) for r in links] == [("PAYREF778899", "trace"), ("SETTLEMENT0002", "payer_habit")]
    assert _rows(engine, "P2") == [("invoice", "INV-4", "100.00", "advice")]
    assert ledger.check(engine) == []
