"""What staff decisions teach the matcher: learned payer names (aliases) and payer accounts.

A resolution that ties a bank line to a customer stores the line's payer name
and account for that customer (source "learned", who and when); the next run
reads them through repo.aliases / repo.payer_accounts. `forget` deactivates
a learned row (never deletes it: the audit log keeps who taught what).

A payer name is learned only when it would identify this customer and no other
(`name_refusal`): not when it is too generic to tell anyone apart (fewer than
MIN_DISTINCT_LETTERS letters in words of three or more, once legal forms are
folded away: "J SMITH", "SMITH J.", "A & B GMBH"; or initials beside a single
word), not when it already names another customer (its folded words, in any
order, are another customer's name or active alias, learned ones included),
and not when payments under it were posted to other customers before (a
payment service, a parent, a person paying for several). The refusal is kept
in the audit entry.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import polars as pl
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from reconcile.core.codes import Kind
from reconcile.core.errors import NotFoundError, ReconcileError
from reconcile.match.normalise import name_fold
from reconcile.store import db, repo, tables

MIN_ACCOUNT_CHARS = 6   # shorter "accounts" (blank, "0", masked) identify nobody
MIN_NAME_CHARS = 3
MIN_DISTINCT_LETTERS = 6  # letters in the words of 3+ letters of a folded name: "smith" (5) tells nobody apart


def norm_account(text: str | None) -> str:
    """IBANs and account numbers compared without spaces, dashes or case (as the matcher does)."""
    return re.sub(r"[^A-Z0-9]", "", (text or "").upper())


def _name_key(text: str | None) -> str:
    return " ".join(re.sub(r"[^\w]+", " ", (text or "").casefold()).split())


def _learn_row(session: Session, model: type[tables.Base], column: str, customer: str, value: str,
               actor: str, now: datetime) -> dict[str, Any] | None:
    """Store (customer, value) as learned; re-activate a forgotten one; None when already known."""
    table = model.__table__
    existing = session.execute(
        select(table.c.id, table.c.active, table.c.source)
        .where(table.c.customer_id == customer, table.c[column] == value)
    ).first()
    if existing is not None:
        if existing.active:
            return None
        session.execute(update(table).where(table.c.id == existing.id).values(
            active=True, source="learned", created_by=actor, created_at=now))
        return {"kind": column, "id": existing.id, "customer_id": customer, "value": value, "reactivated": True}
    new_id = session.execute(table.insert().values(
        customer_id=customer, **{column: value}, source="learned", created_by=actor, created_at=now, active=True,
    ).returning(table.c.id)).scalar_one()
    return {"kind": column, "id": new_id, "customer_id": customer, "value": value}


REFERENCE_PREFIX = "REF:"  # a learned reference pattern, stored with the payer accounts (never equal to an IBAN)
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-/\.]{2,}[A-Za-z0-9]")


def _token_key(token: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", token.upper())


def repeated_reference_tokens(session: Session, line: Any, customer: str) -> list[str]:
    """Tokens of this line's remittance (a customer number, a contract number) that the same customer's
    earlier payments carried too, and that are not invoice numbers: the customer's own reference pattern."""
    text = " ".join(filter(None, (line.remittance, line.reference)))
    tokens = {_token_key(t): t for t in _TOKEN.findall(text)}
    tokens = {k: t for k, t in tokens.items() if 4 <= len(k) <= 24 and any(c.isdigit() for c in k)}
    if not tokens:
        return []
    inv = tables.Invoice
    invoice_keys = {_token_key(v) for row in session.execute(
        select(inv.invoice_number, inv.payment_reference)).all() for v in row if v}
    tokens = {k: t for k, t in tokens.items() if k not in invoice_keys}
    al, bl = tables.Allocation, tables.BankLine
    repeated = []
    for key, raw in sorted(tokens.items()):
        earlier = session.execute(
            select(bl.id).join(al, al.bank_line_id == bl.id)
            .where(al.customer_id == customer, al.kind != Kind.REVERSAL, bl.id != line.id,
                   bl.remittance.icontains(raw, autoescape=True))
            .limit(1)
        ).first()
        if earlier is not None:
            repeated.append(key)
    return repeated


def folded_key(name: str | None) -> str:
    """A payer name as the matcher compares it (normalise.name_fold), its words in sorted order."""
    folded = pl.DataFrame({"n": [name or ""]}).select(name_fold(pl.col("n"))).item()
    return " ".join(sorted(folded.split()))


def _names_by_key(session: Session) -> dict[str, set[str]]:
    """folded key -> customers whose name or active alias it is; read once per transaction."""
    cached = session.info.get("learning_names")
    if cached is None:
        rows = list(session.execute(select(tables.Customer.customer_id, tables.Customer.name)).all())
        rows += session.execute(select(tables.CustomerAlias.customer_id, tables.CustomerAlias.alias)
                                .where(tables.CustomerAlias.active.is_(True))).all()
        frame = pl.DataFrame({"c": [r[0] for r in rows], "n": [r[1] for r in rows]},
                             schema={"c": pl.String(), "n": pl.String()})
        frame = frame.select("c", name_fold(pl.col("n")).str.split(" ").list.sort().list.join(" ").alias("k"))
        cached = {}
        for customer, key in frame.iter_rows():
            cached.setdefault(key, set()).add(customer)
        session.info["learning_names"] = cached
    return cached


def name_refusal(session: Session, name: str, customer: str, line_id: int | None = None) -> str | None:
    """Why `name` must not be learned as a payer name of `customer`, or None when it may."""
    key = folded_key(name)
    words = key.split()
    long_words = [w for w in words if len(w) >= 3]
    if sum(len(w) for w in long_words) < MIN_DISTINCT_LETTERS:
        return "too generic: too few distinctive letters"
    if len(long_words) == 1 and len(words) > 1:
        return "too generic: initials and one name"
    others = sorted(_names_by_key(session).get(key, set()) - {customer})
    if others:
        return f"already names customer {others[0]}"
    bl, al = tables.BankLine, tables.Allocation
    elsewhere = session.execute(
        select(al.customer_id).join(bl, bl.id == al.bank_line_id)
        .where(bl.counterparty_name == name, al.customer_id != customer, al.kind.in_((Kind.INVOICE, Kind.INSTALLMENT)),
               *([bl.id != line_id] if line_id is not None else []))
        .order_by(al.customer_id).limit(1)
    ).scalar()
    if elsewhere is not None:
        return f"payments under this name were posted to customer {elsewhere}"
    return None


def learn_payer(session: Session, line: Any, customer: str, *, actor: str, now: datetime) -> list[dict[str, Any]]:
    """Remember the line's payer account and name for `customer`; returns what was learned (new rows only)."""
    learned: list[dict[str, Any]] = []
    account = norm_account(line.counterparty_account)
    if len(account) >= MIN_ACCOUNT_CHARS:
        row = _learn_row(session, tables.PayerAccount, "account", customer, account, actor, now)
        if row:
            learned.append(row)
    name = " ".join((line.counterparty_name or "").split())
    refused = None
    if len(_name_key(name)) >= MIN_NAME_CHARS:
        known = {_name_key(n) for n in session.execute(
            select(tables.Customer.name).where(tables.Customer.customer_id == customer)).scalars()}
        known |= {_name_key(a) for a in session.execute(
            select(tables.CustomerAlias.alias).where(tables.CustomerAlias.customer_id == customer,
                                                     tables.CustomerAlias.active.is_(True))).scalars()}
        if _name_key(name) not in known:
            refused = name_refusal(session, line.counterparty_name or "", customer, getattr(line, "id", None))
            row = None if refused else _learn_row(session, tables.CustomerAlias, "alias", customer, name[:255],
                                                  actor, now)
            if row:
                learned.append(row)
                _names_by_key(session).setdefault(folded_key(name), set()).add(customer)
    for token in repeated_reference_tokens(session, line, customer):
        row = _learn_row(session, tables.PayerAccount, "account", customer, REFERENCE_PREFIX + token, actor, now)
        if row:
            learned.append(row)
    if learned or refused:
        session.add(tables.AuditEntry(
            at=now, actor=actor, action="learn", bank_line_id=line.id, reason=f"payer of customer {customer}",
            details=json.dumps({"learned": learned, **({"name_not_learned": f"{name}: {refused}"} if refused else {})}),
        ))
    return learned


def unlearn(session: Session, learned: list[dict[str, Any]], *, actor: str, now: datetime, reason: str) -> int:
    """Deactivate rows a resolution learned (when that resolution is undone); returns how many."""
    count = 0
    for row in learned:
        model = tables.PayerAccount if row["kind"] == "account" else tables.CustomerAlias
        table = model.__table__
        count += repo.changed(session, update(table).where(
            table.c.id == row["id"], table.c.active.is_(True), table.c.source == "learned",
        ).values(active=False))
    if count:
        session.add(tables.AuditEntry(at=now, actor=actor, action="forget", reason=reason,
                                      details=json.dumps({"forgotten": learned})))
    return count


LEARNED_SCHEMA = {
    "kind": pl.String(), "id": pl.Int64(), "customer_id": pl.String(), "value": pl.String(), "source": pl.String(),
    "created_by": pl.String(), "created_at": pl.Datetime(time_zone="UTC"), "active": pl.Boolean(),
}


def list_learned(engine: Engine, *, customer: str | None = None, include_inactive: bool = False) -> pl.DataFrame:
    """Learned aliases and payer accounts, newest first."""
    parts = []
    with db.transaction(engine) as session:
        learned_kinds = (("alias", tables.CustomerAlias, "alias"), ("account", tables.PayerAccount, "account"))
        for kind, model, column in learned_kinds:
            t = model.__table__
            query = select(t.c.id, t.c.customer_id, t.c[column], t.c.source, t.c.created_by, t.c.created_at,
                           t.c.active).where(t.c.source == "learned")
            if customer:
                query = query.where(t.c.customer_id == customer)
            if not include_inactive:
                query = query.where(t.c.active.is_(True))
            frame = repo.frame_of(session, query, {k: v for k, v in LEARNED_SCHEMA.items() if k != "kind"})
            parts.append(frame.with_columns(pl.lit(kind).alias("kind")))
    return pl.concat(parts).select(list(LEARNED_SCHEMA)).sort("created_at", "id", descending=True)


def forget(engine: Engine, *, actor: str, now: datetime, alias: str | None = None, account: str | None = None,
           customer: str | None = None, reason: str | None = None) -> list[dict[str, Any]]:
    """Deactivate learned aliases / payer accounts (of one customer, or of every customer that learned them)."""
    if bool(alias) == bool(account):
        raise ReconcileError("name exactly one of an alias (--alias) or a payer account (--account) to forget")
    model, column, value = (
        (tables.CustomerAlias, "alias", " ".join(alias.split())) if alias
        else (tables.PayerAccount, "account", norm_account(account))
    )
    t = model.__table__
    with db.transaction(engine) as session:
        query = select(t.c.id, t.c.customer_id, t.c.source).where(t.c[column] == value, t.c.active.is_(True))
        if customer:
            query = query.where(t.c.customer_id == customer)
        found = session.execute(query).all()
        learned = [r for r in found if r.source == "learned"]
        if not learned:
            where = f" for customer {customer}" if customer else ""
            if found:
                raise ReconcileError(
                    f"{column} {value!r}{where} comes from the receivables snapshot, not from a decision: "
                    "change it there")
            raise NotFoundError(f"no learned {column} {value!r}{where}")
        rows = [{"kind": column, "id": r.id, "customer_id": r.customer_id, "value": value} for r in learned]
        unlearn(session, rows, actor=actor, now=now, reason=reason or f"forget {column}")
        return rows
