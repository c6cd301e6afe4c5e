"""People who sign in to the web workspace: roles, argon2 password hashes, what each role may do.

Hashing is slow on purpose: the web layer calls authenticate() in a worker thread, never on the
event loop. Sessions and sign-in throttling live in sessions.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, delete, select, update

from reconcile.core.errors import NotFoundError, ReconcileError
from reconcile.store import db, repo, tables

ROLES = ("accountant", "approver", "collector", "admin")

# what each permission needs; admin may do everything
PERMISSIONS: dict[str, frozenset[str]] = {
    "view": frozenset(ROLES),
    "note": frozenset({"accountant", "approver", "collector", "admin"}),
    "resolve": frozenset({"accountant", "admin"}),     # claim, release, decide a line
    "approve": frozenset({"approver", "admin"}),       # approve or reject a write-off above the limit
}

_hasher = PasswordHasher()


@dataclass(frozen=True)
class WebUser:
    name: str
    role: str

    def may(self, permission: str) -> bool:
        return self.role in PERMISSIONS[permission]


def add_user(engine: Engine, name: str, role: str, password: str, *, now: datetime) -> WebUser:
    name = (name or "").strip()
    if not name or len(name) > 64:
        raise ReconcileError("a user name is 1 to 64 characters")
    if role not in ROLES:
        raise ReconcileError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    if len(password or "") < 8:
        raise ReconcileError("a password needs at least 8 characters")
    with db.transaction(engine) as session:
        if session.execute(select(tables.User.id).where(tables.User.name == name)).first():
            raise ReconcileError(f"user {name} already exists")
        session.add(tables.User(name=name, role=role, password_hash=_hasher.hash(password), created_at=now))
    return WebUser(name, role)


def remove_user(engine: Engine, name: str, *, now: datetime | None = None) -> None:
    """Remove a user; their sessions are revoked at once."""
    from reconcile.web.sessions import revoke_user

    with db.transaction(engine) as session:
        if repo.changed(session, delete(tables.User).where(tables.User.name == name)) != 1:
            raise NotFoundError(f"no user {name}")
    revoke_user(engine, name, now=now or datetime.now(UTC), why="removed")


def set_password(engine: Engine, name: str, password: str, *, now: datetime) -> int:
    """A new password for a user: every session of theirs is revoked; returns how many were live."""
    from reconcile.web.sessions import revoke_user

    if len(password or "") < 8:
        raise ReconcileError("a password needs at least 8 characters")
    with db.transaction(engine) as session:
        done = repo.changed(session, update(tables.User).where(tables.User.name == name)
                               .values(password_hash=_hasher.hash(password)))
        if done != 1:
            raise NotFoundError(f"no user {name}")
        session.add(tables.AuditEntry(at=now, actor=name, action="password_changed"))
    return revoke_user(engine, name, now=now, why="password")


def list_users(engine: Engine) -> list[WebUser]:
    with db.transaction(engine) as session:
        return [WebUser(n, r) for n, r in session.execute(
            select(tables.User.name, tables.User.role).order_by(tables.User.name)).all()]


def authenticate(engine: Engine, name: str, password: str) -> WebUser | None:
    """The user when the password is right, else None (the same answer for an unknown name)."""
    with db.transaction(engine) as session:
        row = session.execute(select(tables.User.name, tables.User.role, tables.User.password_hash)
                              .where(tables.User.name == (name or "").strip())).first()
    if row is None:
        _hasher.hash(password or "")  # same cost either way: no timing hint that the name exists
        return None
    try:
        _hasher.verify(row.password_hash, password or "")
    except (VerificationError, InvalidHashError):
        return None
    return WebUser(row.name, row.role)


def find_user(engine: Engine, name: str) -> WebUser | None:
    with db.transaction(engine) as session:
        row = session.execute(select(tables.User.name, tables.User.role).where(tables.User.name == name)).first()
    return WebUser(row.name, row.role) if row else None
