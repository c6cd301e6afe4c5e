"""The database schema: SQLAlchemy 2 typed mapping, the only definition of tables.

Money columns are BigInteger minor units (SQLite stores Numeric as a float);
the database enforces what must never happen: a bank line stored twice
(unique account + source_ref), a line posted twice (unique line + generation
on postings), an open amount below zero (check constraints). Migrations in
reconcile/migrations mirror this module.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    # every model here maps one Table (SQLAlchemy types it as the wider FromClause)
    __table__: ClassVar[Table]  # type: ignore[misc]


Money = BigInteger  # integer minor units of the row's currency


# --- receivables -----------------------------------------------------------


class Customer(Base):
    __tablename__ = "customers"

    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CustomerAlias(Base):
    """Other names a customer pays under: from the snapshot or learned from staff decisions."""

    __tablename__ = "customer_aliases"
    __table_args__ = (UniqueConstraint("customer_id", "alias", name="uq_customer_aliases_customer_alias"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.customer_id"), index=True)
    alias: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(16))  # snapshot | learned
    created_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class PayerAccount(Base):
    """Bank accounts a customer is known to pay from (snapshot or learned)."""

    __tablename__ = "payer_accounts"
    __table_args__ = (UniqueConstraint("customer_id", "account", name="uq_payer_accounts_customer_account"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.customer_id"), index=True)
    account: Mapped[str] = mapped_column(String(64), index=True)  # normalised: upper case, no spaces
    source: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


# An invoice's open amount has the sign of its amount: positive for an invoice, negative (or zero) for a
# credit note. Never beyond zero: a posting that would over-apply an item is refused by the database.
SAME_SIGN = "(amount_minor >= 0 AND {0} >= 0) OR (amount_minor < 0 AND {0} <= 0)"

# PostgreSQL: half of each page is left free in the tables whose rows every run rewrites (a line's status,
# an item's open amount), so the new version fits beside the old one: a HOT update, with no new index
# entries. A day's lines and the items they pay lie together on disk and are rewritten in the same run, so
# the room must hold a new version of every row on the page (migration 0010; about twice the disk).
ROOM_FOR_UPDATES = {"postgresql_with": {"fillfactor": 50}}


class Invoice(Base):
    """An open item of the receivables system: an invoice, or a credit note (negative amount).

    open = snapshot_open - what reconcile posted that the snapshot does not include yet (batches after
    basis_seq, or in no batch), kept within [0, snapshot side]: when the receivables system leaves less
    open than reconcile's own postings take (it closed the item some other way), open stays at zero and
    the difference is `excess_minor` (open - excess = snapshot_open - not-included postings, always),
    shown to a person as `closed_elsewhere`.
    """

    __tablename__ = "invoices"
    __table_args__ = (
        CheckConstraint(SAME_SIGN.format("open_amount_minor"), name="open_sign"),
        CheckConstraint(SAME_SIGN.format("snapshot_open_minor"), name="snapshot_open_sign"),
        CheckConstraint("excess_minor = 0 OR open_amount_minor = 0", name="excess_only_when_settled"),
        ROOM_FOR_UPDATES,
    )

    invoice_number: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.customer_id"), index=True)
    issue_date: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(Money)
    # open amount in the last loaded snapshot, before anything this ledger posted
    snapshot_open_minor: Mapped[int] = mapped_column(Money)
    # snapshot open minus this ledger's net allocations: kept by posting only
    open_amount_minor: Mapped[int] = mapped_column(Money)
    payment_reference: Mapped[str | None] = mapped_column(String(64), index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # the last posting batch the receivables system had imported when its snapshot gave snapshot_open
    basis_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # what reconcile's not-yet-included postings take beyond the snapshot's open amount (see above)
    excess_minor: Mapped[int] = mapped_column(Money, default=0, server_default="0")
    # open | closed: closed when a full snapshot no longer lists it (paid, cancelled or credited there)
    erp_status: Mapped[str] = mapped_column(String(16), default="open", server_default="open")
    closed_on: Mapped[date | None] = mapped_column(Date)
    snapshot_id: Mapped[int | None] = mapped_column(Integer)  # the snapshot load that last set this row


class PaymentPlan(Base):
    __tablename__ = "payment_plans"

    plan_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    invoice_number: Mapped[str] = mapped_column(ForeignKey("invoices.invoice_number"), index=True)


class Installment(Base):
    __tablename__ = "installments"
    __table_args__ = (
        UniqueConstraint("plan_id", "installment_no", name="uq_installments_plan_no"),
        CheckConstraint("open_amount_minor >= 0", name="open_not_negative"),
        CheckConstraint("installment_no >= 1", name="number_positive"),
        CheckConstraint("excess_minor = 0 OR open_amount_minor = 0", name="excess_only_when_settled"),
        ROOM_FOR_UPDATES,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    plan_id: Mapped[str] = mapped_column(ForeignKey("payment_plans.plan_id"))
    invoice_number: Mapped[str] = mapped_column(ForeignKey("invoices.invoice_number"), index=True)
    installment_no: Mapped[int] = mapped_column(Integer)
    due_date: Mapped[date] = mapped_column(Date)
    amount_minor: Mapped[int] = mapped_column(Money)
    snapshot_paid_minor: Mapped[int] = mapped_column(Money, default=0)
    open_amount_minor: Mapped[int] = mapped_column(Money)
    basis_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    excess_minor: Mapped[int] = mapped_column(Money, default=0, server_default="0")


# --- bank side -------------------------------------------------------------


class StatementFile(Base):
    """A statement file as received: identified by its content hash."""

    __tablename__ = "statement_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    filename: Mapped[str] = mapped_column(String(512))
    format: Mapped[str] = mapped_column(String(32))
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    line_count: Mapped[int] = mapped_column(Integer)
    new_line_count: Mapped[int] = mapped_column(Integer)


class Statement(Base):
    __tablename__ = "statements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("statement_files.id"), index=True)
    account: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str | None] = mapped_column(String(3))
    statement_ref: Mapped[str | None] = mapped_column(String(128))
    period_start: Mapped[date | None] = mapped_column(Date)
    period_end: Mapped[date | None] = mapped_column(Date)
    opening_minor: Mapped[int | None] = mapped_column(Money)
    closing_minor: Mapped[int | None] = mapped_column(Money)
    warnings: Mapped[str | None] = mapped_column(Text)


class BankLine(Base):
    __tablename__ = "bank_lines"
    __table_args__ = (
        UniqueConstraint("account", "source_ref", name="uq_bank_lines_account_source_ref"),
        Index("ix_bank_lines_account_amount", "account", "amount_minor"),  # bank returns (0002)
        ROOM_FOR_UPDATES,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(String(64))
    source_ref: Mapped[str] = mapped_column(String(255))
    statement_id: Mapped[int] = mapped_column(ForeignKey("statements.id"))
    booking_date: Mapped[date] = mapped_column(Date)
    value_date: Mapped[date | None] = mapped_column(Date)
    amount_minor: Mapped[int] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    direction: Mapped[str] = mapped_column(String(6))  # credit | debit
    counterparty_name: Mapped[str | None] = mapped_column(String(255))
    counterparty_account: Mapped[str | None] = mapped_column(String(140))
    remittance: Mapped[str | None] = mapped_column(Text)
    reference: Mapped[str | None] = mapped_column(String(140))
    end_to_end_id: Mapped[str | None] = mapped_column(String(140))
    bank_code: Mapped[str | None] = mapped_column(String(140))
    is_reversal: Mapped[bool] = mapped_column(Boolean, default=False)
    instructed_amount_minor: Mapped[int | None] = mapped_column(Money)
    instructed_currency: Mapped[str | None] = mapped_column(String(3))
    exchange_rate: Mapped[str | None] = mapped_column(String(32))
    charges_minor: Mapped[int | None] = mapped_column(Money)
    location: Mapped[str | None] = mapped_column(Text)
    # unmatched -> posted | exception | skipped; a reversal returns posted -> unmatched. Not indexed, so a
    # change of status rewrites the row in place (see ROOM_FOR_UPDATES); the lines a run may still decide
    # are found through open_lines
    status: Mapped[str] = mapped_column(String(16), default="unmatched")
    # bumped by every reversal, so a line can be posted again exactly once more
    generation: Mapped[int] = mapped_column(Integer, default=0)
    ingested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OpenLine(Base):
    """The id of every bank line a run may still decide (status unmatched or exception), kept by triggers on
    bank_lines (migration 0010): the day's work, found without an index on status. No foreign key: only
    those triggers write it, from the lines' own rows; `reconcile check` compares it with the statuses."""

    __tablename__ = "open_lines"

    bank_line_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)


# --- ledger ----------------------------------------------------------------


class PostingRun(Base):
    __tablename__ = "posting_runs"

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    as_of: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))  # running | completed | failed
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    actor: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str | None] = mapped_column(Text)  # JSON


class Posting(Base):
    """One bank line posted once: the unique (line, generation) is the exactly-once guard."""

    __tablename__ = "postings"
    __table_args__ = (UniqueConstraint("bank_line_id", "generation", name="uq_postings_line_generation"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    bank_line_id: Mapped[int] = mapped_column(ForeignKey("bank_lines.id"))
    generation: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[str | None] = mapped_column(ForeignKey("posting_runs.run_id"), index=True)
    posted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    posted_by: Mapped[str] = mapped_column(String(64))
    reversed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Allocation(Base):
    __tablename__ = "allocations"
    __table_args__ = (
        CheckConstraint(
            "kind in ('invoice', 'installment', 'on_account', 'write_off', 'reversal', 'fx')",
            name="kind_known",
        ),
        Index("ix_allocations_invoice", "invoice_number"),
        Index("ix_allocations_customer", "customer_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # not indexed: a posting's rows are found by their line (bank_line_id, then posting_id)
    posting_id: Mapped[int] = mapped_column(ForeignKey("postings.id"))
    bank_line_id: Mapped[int] = mapped_column(ForeignKey("bank_lines.id"), index=True)
    run_id: Mapped[str | None] = mapped_column(ForeignKey("posting_runs.run_id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customers.customer_id"))
    invoice_number: Mapped[str | None] = mapped_column(ForeignKey("invoices.invoice_number"))
    installment_id: Mapped[int | None] = mapped_column(ForeignKey("installments.id"))
    installment_no: Mapped[int | None] = mapped_column(Integer)
    amount_minor: Mapped[int] = mapped_column(Money)  # reversal rows carry the negated amount
    currency: Mapped[str] = mapped_column(String(3))
    rule: Mapped[str] = mapped_column(String(64))
    confidence: Mapped[float] = mapped_column(Float)
    evidence: Mapped[str | None] = mapped_column(Text)  # JSON
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("allocations.id"))
    reason: Mapped[str | None] = mapped_column(String(64))  # write-off / reversal reason code
    posted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # the business day the row belongs to: the run's as-of date, or the day a person decided
    business_date: Mapped[date | None] = mapped_column(Date, index=True)
    # the posting batch (posting_batches.seq) the row was handed to the receivables system in; null: not yet
    batch_seq: Mapped[int | None] = mapped_column(Integer, index=True)
    # a payment in another currency than the invoice: what the row settles on the item, in the item's
    # currency (amount_minor stays in the bank line's currency, so a line's rows still add up to it)
    settled_amount_minor: Mapped[int | None] = mapped_column(Money)
    settled_currency: Mapped[str | None] = mapped_column(String(3))


# --- manual review ---------------------------------------------------------


class ExceptionItem(Base):
    __tablename__ = "exception_items"
    __table_args__ = (
        # one item per line, generation and reason: a posted line may also be queued as closed_elsewhere
        UniqueConstraint("bank_line_id", "generation", "reason", name="uq_exception_items_line_generation"),
        Index("ix_exception_items_status_reason", "status", "reason"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    bank_line_id: Mapped[int] = mapped_column(ForeignKey("bank_lines.id"))
    generation: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[str | None] = mapped_column(ForeignKey("posting_runs.run_id"))
    reason: Mapped[str] = mapped_column(String(32))
    suggestions: Mapped[str | None] = mapped_column(Text)  # invoice numbers, best first, "|"-separated
    customer_id: Mapped[str | None] = mapped_column(String(64))  # best guess of the payer
    evidence: Mapped[str | None] = mapped_column(Text)  # JSON
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | resolved
    assignee: Mapped[str | None] = mapped_column(String(64))
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolution: Mapped[str | None] = mapped_column(String(32))
    resolution_batch: Mapped[str | None] = mapped_column(String(64), index=True)
    # write-off reason code or not-a-receivable category of the resolution (0003)
    category: Mapped[str | None] = mapped_column(String(32))
    # a decision waiting for a second person's approval (JSON); the item stays open meanwhile
    proposal: Mapped[str | None] = mapped_column(Text)
    proposed_by: Mapped[str | None] = mapped_column(String(64))
    proposed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    approved_by: Mapped[str | None] = mapped_column(String(64))
    # payer aliases / accounts this resolution taught the matcher (JSON), deactivated when it is undone
    learned: Mapped[str | None] = mapped_column(Text)
    # business days it was queued and settled on (balances as of a past day count it while it was open)
    opened_on: Mapped[date | None] = mapped_column(Date)
    closed_on: Mapped[date | None] = mapped_column(Date)


class ExceptionNote(Base):
    __tablename__ = "exception_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    exception_id: Mapped[int] = mapped_column(ForeignKey("exception_items.id"), index=True)
    author: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    text: Mapped[str] = mapped_column(Text)


class AuditEntry(Base):
    """Append-only: database triggers refuse UPDATE and DELETE (see migrations)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))  # post | reverse | write_off | resolve | learn | ...
    bank_line_id: Mapped[int | None] = mapped_column(Integer, index=True)
    invoice_number: Mapped[str | None] = mapped_column(String(64), index=True)
    run_id: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[str | None] = mapped_column(Text)  # JSON: amounts, rule, evidence


# --- the daily loop with the receivables system (CONTRACTS section 5) ---------------------------


class PostingBatch(Base):
    """A numbered file of postings handed to the receivables system; once written it never changes."""

    __tablename__ = "posting_batches"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    batch_id: Mapped[str] = mapped_column(String(16), unique=True)  # B000001: sorts in the order made
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(64))
    row_count: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))  # of the file's bytes, so a lost file is rewritten identically


class Snapshot(Base):
    """One load of the receivables snapshot, kept: balances as of a past day use the snapshot of that day."""

    __tablename__ = "snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    loaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    loaded_by: Mapped[str] = mapped_column(String(64))
    taken_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    business_date: Mapped[date] = mapped_column(Date, index=True)
    kind: Mapped[str] = mapped_column(String(8))  # full | delta
    includes_through_seq: Mapped[int] = mapped_column(Integer)  # 0: none of reconcile's postings
    content_sha256: Mapped[str] = mapped_column(String(64), index=True)
    source: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[str | None] = mapped_column(Text)  # JSON: counts


class InvoiceVersion(Base):
    """What a snapshot said of an invoice, stored when it changed (new, changed, closed)."""

    __tablename__ = "invoice_versions"
    __table_args__ = (Index("ix_invoice_versions_number_snapshot", "invoice_number", "snapshot_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("snapshots.id"), index=True)
    invoice_number: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(64))
    issue_date: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(Money)
    snapshot_open_minor: Mapped[int] = mapped_column(Money)
    basis_seq: Mapped[int] = mapped_column(Integer)
    erp_status: Mapped[str] = mapped_column(String(16))


class InstallmentVersion(Base):
    """What a snapshot said of a plan installment, stored when it changed."""

    __tablename__ = "installment_versions"
    __table_args__ = (Index("ix_installment_versions_key", "plan_id", "installment_no", "snapshot_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("snapshots.id"), index=True)
    plan_id: Mapped[str] = mapped_column(String(64))
    installment_no: Mapped[int] = mapped_column(Integer)
    invoice_number: Mapped[str] = mapped_column(String(64))
    due_date: Mapped[date] = mapped_column(Date)
    amount_minor: Mapped[int] = mapped_column(Money)
    snapshot_paid_minor: Mapped[int] = mapped_column(Money)
    basis_seq: Mapped[int] = mapped_column(Integer)


# --- remittance advices (CONTRACTS section 2) ---------------------------------------------------


class Advice(Base):
    """A payer's list of what one payment pays, received apart from the payment; linked to its bank line."""

    __tablename__ = "advices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    advice_ref: Mapped[str] = mapped_column(String(255), unique=True)  # stable across re-imports
    file_id: Mapped[int] = mapped_column(ForeignKey("statement_files.id"), index=True)
    format: Mapped[str] = mapped_column(String(32))
    payer_name: Mapped[str | None] = mapped_column(String(255))
    payer_id: Mapped[str | None] = mapped_column(String(140))
    payee_name: Mapped[str | None] = mapped_column(String(255))
    payment_method: Mapped[str | None] = mapped_column(String(32))
    payment_amount_minor: Mapped[int] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    payment_date: Mapped[date | None] = mapped_column(Date)
    trace_number: Mapped[str | None] = mapped_column(String(140), index=True)
    end_to_end_id: Mapped[str | None] = mapped_column(String(140), index=True)
    remittance: Mapped[str | None] = mapped_column(Text)
    balanced: Mapped[bool] = mapped_column(Boolean)
    location: Mapped[str | None] = mapped_column(Text)
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # the bank line it explains; null while no payment has been found for it
    bank_line_id: Mapped[int | None] = mapped_column(ForeignKey("bank_lines.id"), index=True)
    # how: end_to_end | trace | payer_habit | amount_payer, or the name of the person who linked it
    linked_by: Mapped[str | None] = mapped_column(String(64))
    linked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AdviceLine(Base):
    """One remitted document (or an advice-level adjustment) of an advice."""

    __tablename__ = "advice_lines"
    __table_args__ = (UniqueConstraint("advice_id", "line_no", name="uq_advice_lines_advice_line"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    advice_id: Mapped[int] = mapped_column(ForeignKey("advices.id"), index=True)
    line_no: Mapped[int] = mapped_column(Integer)
    line_kind: Mapped[str] = mapped_column(String(16))  # item | adjustment
    reference_qualifier: Mapped[str | None] = mapped_column(String(16))
    invoice_number: Mapped[str | None] = mapped_column(String(64), index=True)
    document_date: Mapped[date | None] = mapped_column(Date)
    amount_paid_minor: Mapped[int | None] = mapped_column(Money)
    invoice_total_minor: Mapped[int | None] = mapped_column(Money)
    discount_minor: Mapped[int | None] = mapped_column(Money)
    adjustment_minor: Mapped[int | None] = mapped_column(Money)
    adjustment_reasons: Mapped[str | None] = mapped_column(String(255))  # codes, "|"-separated
    description: Mapped[str | None] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(Text)


class User(Base):
    """A person who signs in to the web workspace (reconcile.web): the role decides what they may do."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # accountant | approver | collector | admin
    password_hash: Mapped[str] = mapped_column(String(255))  # argon2id, never the password
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# --- the web workspace's sessions and sign-in attempts (reconcile.web) -------------------------


class WebSession(Base):
    """A signed-in browser session: the cookie carries only a random token, stored here as its hash.

    Revoked at sign-out, on a password change and when the user is removed; a request with a revoked,
    idle or too old session is sent to sign in again ([web] session_idle_minutes / _absolute_hours).
    """

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of the cookie token
    user_name: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_why: Mapped[str | None] = mapped_column(String(32))  # logout | password | removed
    address: Mapped[str | None] = mapped_column(String(64))


class LoginAttempt(Base):
    """One sign-in attempt (right or wrong password), counted per account and per address to throttle."""

    __tablename__ = "web_login_attempts"
    __table_args__ = (
        Index("ix_web_login_attempts_name_at", "name", "at"),
        Index("ix_web_login_attempts_address_at", "address", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    name: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64))
    ok: Mapped[bool] = mapped_column(Boolean)
