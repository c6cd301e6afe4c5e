"""Alembic environment: runs migrations on the engine db.upgrade hands over."""

from __future__ import annotations

from alembic import context

from reconcile.store.tables import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        from reconcile.store.db import make_engine

        engine = make_engine(config.get_main_option("sqlalchemy.url") or None)
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()


run()
