"""The Alembic revisions build exactly the schema tables.py describes, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from reconcile.store.migrations.references import compared
from reconcile.store.tables import Base


def test_migrations_match_the_models(engine) -> None:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True,
                                                   "include_object": compared(conn.dialect.name)})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []
