"""One posting run at a time per database, released even if the process dies.

PostgreSQL: a session-level advisory lock (freed when the connection closes), keyed by
the schema the tables live in, so two ledgers in two schemas of one database never wait on each other.
SQLite: an OS file lock beside the database file (freed when the process exits).
The holder calls `RunLock.verify()` before each chunk it starts and again inside the chunk's transaction
just before it commits: a PostgreSQL lock whose
connection was terminated is gone, and unless it can be taken back safely the run must stop.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from reconcile.core.errors import ReconcileError

LOCK_KEY = 0x5EC0_0001  # arbitrary, constant: "the posting run"
# the two-key form: (the posting run, this ledger's schema)
PG_LOCK = "SELECT pg_advisory_lock(:k, hashtext(current_schema()))"
PG_UNLOCK = "SELECT pg_advisory_unlock(:k, hashtext(current_schema()))"
# Is the two-key lock still granted to this very session? (objid is the key as an unsigned oid)
PG_HELD = (
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()"
    " AND objsubid = 2 AND classid::bigint = :k"
    " AND objid::bigint = (hashtext(current_schema())::bigint & 4294967295)"
)
# Who holds it (tests and operators: the backend to look at, or to terminate)
PG_HOLDER = (
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2"
    " AND classid::bigint = :k AND objid::bigint = (hashtext(current_schema())::bigint & 4294967295)"
)


class LockLost(ReconcileError):
    """The run's lock went away under it (its database connection ended) and may be another's now."""


PG_TRY_LOCK = "SELECT pg_try_advisory_lock(:k, hashtext(current_schema()))"
RUNS = "SELECT count(*) FROM posting_runs"


class RunLock:
    """The held lock: `verify()` raises LockLost unless it is still this run's.

    A lock whose connection dropped (a failover, a killed backend) is taken again on a new
    connection only when that is provably safe: it is free, and no other posting run has begun
    since this one took it (another run that took the lock meanwhile records itself in
    posting_runs before it posts anything). Otherwise the run must stop.
    """

    def __init__(self, engine: Engine | None = None, conn: Connection | None = None) -> None:
        self._engine = engine
        self._conn = conn
        self.backend_pid: int | None = None
        self.retaken = 0
        self._runs = 0
        self._one_at_a_time = threading.Lock()  # chunks posted at once verify from their own threads
        if conn is not None:
            self.backend_pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            self._runs = conn.execute(text(RUNS)).scalar_one()  # before this run's own row
            conn.commit()

    def verify(self) -> None:
        if self._conn is None:
            return  # the file lock lives as long as this process
        with self._one_at_a_time:
            self._verify()

    def _verify(self) -> None:
        assert self._conn is not None
        why = "no longer held"
        try:
            held = self._conn.execute(text(PG_HELD), {"k": LOCK_KEY}).scalar_one()
            self._conn.commit()
        except DBAPIError as exc:
            held, why = 0, f"the lock's database connection ended: {type(exc.orig).__name__}"
            with suppress(SQLAlchemyError):
                self._conn.rollback()  # so that asking again (another chunk's check) gets the same answer
        except SQLAlchemyError as exc:  # asked again after the connection ended
            held, why = 0, f"the lock's database connection ended: {type(exc).__name__}"
        if held or self._retake():
            return
        raise LockLost(f"the posting run lost its run lock ({why}) and another run may hold it now; "
                       "it stopped before posting more (committed chunks stay; run again to post the rest)")

    def _retake(self) -> bool:
        assert self._engine is not None
        try:
            conn = self._engine.connect()
        except DBAPIError:
            return False
        try:
            if conn.execute(text(PG_TRY_LOCK), {"k": LOCK_KEY}).scalar_one():
                # this run's own row is the one more since it took the lock; any other means another run
                if conn.execute(text(RUNS)).scalar_one() == self._runs + 1:
                    conn.commit()
                    old, self._conn = self._conn, conn
                    self.backend_pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
                    conn.commit()
                    self.retaken += 1
                    with suppress(SQLAlchemyError):
                        old.invalidate()  # type: ignore[union-attr]
                    return True
                conn.execute(text(PG_UNLOCK), {"k": LOCK_KEY})
            conn.commit()
        except DBAPIError:
            pass
        conn.close()
        return False

    def release(self) -> None:
        if self._conn is None:
            return
        try:
            self._conn.execute(text(PG_UNLOCK), {"k": LOCK_KEY})
            self._conn.commit()
        except SQLAlchemyError:
            with suppress(SQLAlchemyError):
                self._conn.invalidate()  # the connection is gone, and the server freed the lock with it
        finally:
            with suppress(SQLAlchemyError):
                self._conn.close()


def lock_holder(engine: Engine) -> int | None:
    """The PostgreSQL backend holding this ledger's run lock, or None (always None on SQLite)."""
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as conn:
        return conn.execute(text(PG_HOLDER), {"k": LOCK_KEY}).scalar()


@contextmanager
def posting_lock(engine: Engine) -> Iterator[RunLock]:
    if engine.dialect.name == "postgresql":
        conn = engine.connect()
        try:
            conn.execute(text(PG_LOCK), {"k": LOCK_KEY})
            conn.commit()
            lock = RunLock(engine, conn)
        except BaseException:
            conn.close()
            raise
        try:
            yield lock
        finally:
            lock.release()
        return
    database = engine.url.database or ""
    path = (database if database and database != ":memory:" else "reconcile") + ".runlock"
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield RunLock()
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
