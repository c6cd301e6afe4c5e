"""Server-side sign-in sessions and sign-in throttling of the web workspace.

The browser's cookie carries a random token; the database keeps only its SHA-256 with the user,
the times and whether it was revoked (sign-out, password change, user removed), so a cookie copied
before sign-out is refused afterwards. Wrong passwords are counted per account and per address
within [web] login_window_seconds; past [web] login_failures a sign-in is refused without checking
the password, and every failure or refusal is audited. Checking passwords is left to users.py.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, func, select, update

from reconcile.config import WebConfig
from reconcile.store import db, repo, tables

ADDRESS_FACTOR = (
    4  # one address may fail this many times an account's allowance (an office behind NAT)
)


@dataclass(frozen=True)
class SessionRecord:
    user_name: str
    created_at: datetime
    last_seen_at: datetime


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(at: datetime) -> datetime:
    """SQLite hands back naive UTC, PostgreSQL aware datetimes."""
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def open_session(engine: Engine, user_name: str, *, now: datetime, address: str, role: str) -> str:
    """A new session for a user who just signed in (audited); returns the token for the cookie."""
    token = secrets.token_urlsafe(32)
    with db.transaction(engine) as session:
        session.add(
            tables.WebSession(
                id=_digest(token),
                user_name=user_name,
                created_at=now,
                last_seen_at=now,
                address=address[:64],
            )
        )
        session.add(tables.LoginAttempt(at=now, name=user_name[:64], address=address[:64], ok=True))
        session.add(
            tables.AuditEntry(
                at=now,
                actor=user_name,
                action="web_login",
                details=json.dumps({"role": role, "address": address}),
            )
        )
    return token


def current(
    engine: Engine, token: str | None, *, now: datetime, web: WebConfig
) -> SessionRecord | None:
    """The live session of a cookie's token, or None (unknown, revoked, idle or too old)."""
    if not token:
        return None
    key = _digest(token)
    s = tables.WebSession
    with db.transaction(engine) as session:
        row = session.execute(
            select(s.user_name, s.created_at, s.last_seen_at, s.revoked_at).where(s.id == key)
        ).first()
        if row is None or row.revoked_at is not None:
            return None
        created, seen = _aware(row.created_at), _aware(row.last_seen_at)
        if now - seen > timedelta(minutes=web.session_idle_minutes) or now - created > timedelta(
            hours=web.session_absolute_hours
        ):
            session.execute(
                update(s)
                .where(s.id == key, s.revoked_at.is_(None))
                .values(revoked_at=now, revoked_why="expired")
            )
            return None
        if now - seen > timedelta(seconds=30):  # one write a half-minute, not one per request
            session.execute(update(s).where(s.id == key).values(last_seen_at=now))
        return SessionRecord(row.user_name, created, seen)


def revoke(engine: Engine, token: str | None, *, now: datetime, why: str = "logout") -> None:
    if not token:
        return
    s = tables.WebSession
    with db.transaction(engine) as session:
        session.execute(
            update(s)
            .where(s.id == _digest(token), s.revoked_at.is_(None))
            .values(revoked_at=now, revoked_why=why)
        )


def revoke_user(engine: Engine, user_name: str, *, now: datetime, why: str) -> int:
    """End every session of a user (password changed, user removed); returns how many were live."""
    s = tables.WebSession
    with db.transaction(engine) as session:
        return repo.changed(session, 
            update(s)
            .where(s.user_name == user_name, s.revoked_at.is_(None))
            .values(revoked_at=now, revoked_why=why)
        )


def throttled(engine: Engine, name: str, address: str, *, now: datetime, web: WebConfig) -> int:
    """Seconds to wait before this account or address may try again (0: go ahead)."""
    a = tables.LoginAttempt
    since = now - timedelta(seconds=web.login_window_seconds)
    with db.transaction(engine) as session:
        per_name = session.execute(
            select(func.count(), func.min(a.at)).where(
                a.name == name[:64], a.ok.is_(False), a.at >= since
            )
        ).one()
        per_address = session.execute(
            select(func.count(), func.min(a.at)).where(
                a.address == address[:64], a.ok.is_(False), a.at >= since
            )
        ).one()
    waits = [0]
    for (count, first), allowed in (
        (per_name, web.login_failures),
        (per_address, web.login_failures * ADDRESS_FACTOR),
    ):
        if count >= allowed and first is not None:
            waits.append(max(1, int((_aware(first) - since).total_seconds()) + 1))
    return max(waits)


def record_failure(
    engine: Engine, name: str, address: str, *, now: datetime, refused: bool
) -> None:
    """A wrong password (or a sign-in refused while throttled): counted and audited."""
    with db.transaction(engine) as session:
        if not refused:
            session.add(tables.LoginAttempt(at=now, name=name[:64], address=address[:64], ok=False))
        session.add(
            tables.AuditEntry(
                at=now,
                actor=name[:64] or "(empty)",
                action="web_login_refused" if refused else "web_login_failed",
                details=json.dumps({"address": address, "throttled": refused}),
            )
        )


def prune(engine: Engine, *, now: datetime) -> None:
    """Forget attempts older than a day and sessions that ended more than a month ago."""
    with db.transaction(engine) as session:
        session.execute(
            delete(tables.LoginAttempt).where(tables.LoginAttempt.at < now - timedelta(days=1))
        )
        session.execute(
            delete(tables.WebSession).where(tables.WebSession.revoked_at < now - timedelta(days=31))
        )
