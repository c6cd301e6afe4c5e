"""Alembic environment: runs migrations on the engine db.upgrade hands over."""

from __future__ import annotations

from alembic import context

from reconcile.store.migrations.references import compared
from reconcile.store.tables import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        from reconcile.store.db import make_engine

        engine = make_engine(config.get_main_option("sqlalchemy.url") or None)
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if sqlite:
            # SQLite alters a table by copying it and dropping the old one: foreign keys pointing at it must
            # not fire meanwhile (the pragma works only outside a transaction); checked again at the end
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        with connection.begin():
            context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=sqlite,
                              include_object=compared(engine.dialect.name))
            with context.begin_transaction():
                context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migration left broken foreign keys: {broken[:5]}")
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()


run()
