"""Shared test fixtures: corpus location, databases (SQLite always, PostgreSQL when configured)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from reconcile.store import db

REPO = Path(__file__).resolve().parents[1]
CORPUS_IN_REPO = REPO / "tests" / "corpus"  # the permissively licensed files (tests/corpus/README.md)
CORPUS = Path(os.environ.get("RECONCILE_CORPUS", REPO.parent / "shared" / "corpus"))
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"  # the server a fresh machine here has (README)


def _pg_url() -> str | None:
    """$RECONCILE_TEST_PG_URL (empty: no PostgreSQL tests), else the default server when it answers within
    two seconds, so `pytest -q` on a fresh machine runs the PostgreSQL tests without any setting."""
    configured = os.environ.get("RECONCILE_TEST_PG_URL")
    if configured is not None:
        return configured or None
    probe = create_engine(db.resolve_url(DEFAULT_PG_URL), connect_args={"connect_timeout": 2})
    try:
        with probe.connect() as connection:
            connection.execute(text("select 1"))
    except Exception:  # noqa: BLE001 - any failure means: no server here
        return None
    finally:
        probe.dispose()
    return DEFAULT_PG_URL


PG_URL = _pg_url()


class Corpus:
    """The statement corpus as a test sees it: `corpus / "mt940/x.sta"` is the file in tests/corpus/
    when it is there, else the one in the external corpus ($RECONCILE_CORPUS or ../shared/corpus).
    A file in neither (a copyleft file, which stays outside the repository, with no external corpus)
    skips the test with that reason. Listing a folder (rglob) needs the external corpus: only it
    holds every file."""

    def __init__(self, inside: Path, outside: Path, relative: PurePosixPath | None = None) -> None:
        self.inside, self.outside, self.relative = inside, outside, relative or PurePosixPath()

    def __truediv__(self, part: str | Path) -> Any:
        relative = self.relative / str(part)
        inner, outer = self.inside / relative, self.outside / relative
        if inner.is_file():
            return inner
        if outer.is_file():
            return outer
        if inner.is_dir() or outer.is_dir():
            return Corpus(self.inside, self.outside, relative)
        if self.outside.is_dir():
            return outer  # missing from a present corpus: let the test fail on it
        pytest.skip(f"corpus file {relative} is not in tests/corpus/ (copyleft files stay outside the "
                    f"repository) and the external corpus is not at {self.outside} (set RECONCILE_CORPUS)")

    def __fspath__(self) -> str:
        root = self.outside if self.outside.is_dir() else self.inside
        return str(root / self.relative)

    def __str__(self) -> str:
        return self.__fspath__()

    def rglob(self, pattern: str) -> Iterator[Path]:
        folder = self.outside / self.relative
        if not folder.is_dir():
            pytest.skip(f"listing {self.relative} needs the whole corpus, not found at {self.outside} "
                        "(set RECONCILE_CORPUS)")
        return folder.rglob(pattern)


@pytest.fixture(scope="session")
def corpus() -> Corpus:
    return Corpus(CORPUS_IN_REPO, CORPUS)


def _fresh_pg_schema() -> Iterator[str]:
    """A throwaway PostgreSQL schema per test, so tests never see each other's rows."""
    if not PG_URL:
        pytest.skip(f"no PostgreSQL: RECONCILE_TEST_PG_URL is empty, or unset and nothing answers at "
                    f"{DEFAULT_PG_URL} (CI always sets it)")
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


TIERS = {"unit": "unit", "parsers": "unit", "integration": "integration", "e2e": "e2e", "flows": "e2e",
         "web": "e2e", "static": "static"}
SLOW_TIERS = {"e2e", "static"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test carries its tier (the folder it lives in): `pytest -m unit` runs the fast tier alone,
    `pytest -m "not slow"` everything but the processes, browsers and static checks; CI runs them all."""
    for item in items:
        path = Path(str(item.fspath))
        if not path.is_relative_to(REPO / "tests"):
            continue  # bench/matching's test marks itself (e2e, slow)
        parts = path.relative_to(REPO / "tests").parts
        tier = TIERS.get(parts[0]) if len(parts) > 1 else None
        if tier:
            item.add_marker(getattr(pytest.mark, tier))
        if tier in SLOW_TIERS:
            item.add_marker(pytest.mark.slow)
