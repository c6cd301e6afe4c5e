"""Every SQLite connection reconcile opens is set up the same way: references enforced, write-ahead log, a
wait for the writer instead of an error, and a page cache large enough for a posting run."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from reconcile.store import db

pytestmark = pytest.mark.integration


def test_each_pooled_connection_gets_the_settings(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        with engine.connect() as first, engine.connect() as second:  # two connections, each set up on connect
            for connection in (first, second):
                settings = {name: connection.execute(text(f"PRAGMA {name}")).scalar_one()
                            for name in ("foreign_keys", "journal_mode", "busy_timeout", "cache_size")}
                assert settings == {"foreign_keys": 1, "journal_mode": "wal", "busy_timeout": 30000,
                                    "cache_size": -db.SQLITE_CACHE_KIB}
    finally:
        engine.dispose()
