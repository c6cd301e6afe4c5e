"""Engines, sessions and schema creation: the one place that opens a database.

`--db URL`, else $RECONCILE_DB_URL, else embedded SQLite ./reconcile.db.
The schema is created and upgraded by Alembic (reconcile/migrations), never by
metadata.create_all, so a database made by any release can be upgraded.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

if TYPE_CHECKING:
    from alembic.config import Config

DEFAULT_URL = "sqlite:///reconcile.db"


def resolve_url(url: str | None = None) -> str:
    url = url or os.environ.get("RECONCILE_DB_URL") or DEFAULT_URL
    # Plain postgresql:// URLs get the psycopg 3 driver we ship.
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


SQLITE_CACHE_KIB = 65536  # per connection; pages are allocated as they are used


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    # a page cache of up to 64 MiB (default 2 MiB): a posting run rewrites pages of invoices and bank lines
    # all over the file, and with the small cache each statement spills and rereads them (-5 % on a run)
    cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    cursor.close()


def make_engine(url: str | None = None) -> Engine:
    resolved = resolve_url(url)
    if resolved.startswith("sqlite"):
        engine = create_engine(resolved)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(resolved, pool_pre_ping=True)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work: commits on success, rolls back on any error."""
    with session_factory(engine).begin() as session:
        yield session


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config  # imported when the schema changes, not by every command

    cfg = Config()
    cfg.set_main_option("script_location", "reconcile.store:migrations")
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the schema to `revision`."""
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


def lost_connection(exc: BaseException) -> bool:
    """True when a database error means the connection dropped (server restart, network, killed backend)."""
    return isinstance(exc, DBAPIError) and (
        exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)
    )


def rolled_back_by_conflict(exc: BaseException) -> bool:
    """True when PostgreSQL rolled the transaction back to resolve a conflict (a deadlock's victim, a
    serialization failure): the work was not applied and can simply be done again."""
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return isinstance(exc, DBAPIError) and sqlstate in ("40P01", "40001")


def is_initialised(engine: Engine) -> bool:
    return inspect(engine).has_table("alembic_version")
