"""One posting run at a time per database, released even if the process dies.

PostgreSQL: a session-level advisory lock (freed when the connection closes), keyed by
the schema the tables live in, so two ledgers in two schemas of one database never wait on each other.
SQLite: an OS file lock beside the database file (freed when the process exits).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

LOCK_KEY = 0x5EC0_0001  # arbitrary, constant: "the posting run"
# the two-key form: (the posting run, this ledger's schema)
PG_LOCK = "SELECT pg_advisory_lock(:k, hashtext(current_schema()))"
PG_UNLOCK = "SELECT pg_advisory_unlock(:k, hashtext(current_schema()))"


@contextmanager
def posting_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text(PG_LOCK), {"k": LOCK_KEY})
            conn.commit()
            try:
                yield
            finally:
                try:
                    conn.execute(text(PG_UNLOCK), {"k": LOCK_KEY})
                    conn.commit()
                except DBAPIError:
                    pass  # the connection is gone, and the server freed the lock with it
        return
    database = engine.url.database or ""
    path = (database if database and database != ":memory:" else "reconcile") + ".runlock"
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
