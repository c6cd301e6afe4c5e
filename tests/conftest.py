"""Shared test fixtures: corpus location, databases (SQLite always, PostgreSQL when configured)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from reconcile.store import db

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("RECONCILE_CORPUS", REPO.parent / "shared" / "corpus"))
PG_URL = os.environ.get("RECONCILE_TEST_PG_URL")


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"statement corpus not found at {CORPUS} (set RECONCILE_CORPUS)")
    return CORPUS


def _fresh_pg_schema() -> Iterator[str]:
    """A throwaway PostgreSQL schema per test, so tests never see each other's rows."""
    if not PG_URL:
        pytest.skip("PostgreSQL not configured: set RECONCILE_TEST_PG_URL (CI always does)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(db.resolve_url(PG_URL))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL with an empty database, once for SQLite and once for PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'reconcile.db'}"
    else:
        yield from _fresh_pg_schema()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL schema, for what only a server can do (drop a connection, lock rows)."""
    yield from _fresh_pg_schema()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on a freshly migrated database (both backends)."""
    eng = db.make_engine(db_url)
    db.upgrade(eng)
    yield eng
    eng.dispose()


def pytest_configure(config: pytest.Config) -> None:
    # In CI the PostgreSQL tests must run, never skip silently.
    if os.environ.get("CI") and not PG_URL:
        raise pytest.UsageError("CI is set but RECONCILE_TEST_PG_URL is not: PostgreSQL tests would be skipped")
