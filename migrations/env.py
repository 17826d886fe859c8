"""Alembic environment: runs revisions on the connection the project hands over, or on
the database named by CATALOG_SEARCH_DATABASE_URL when Alembic is run by hand."""

from __future__ import annotations

from alembic import context

from indexer.database import create_database_engine
from indexer.schema import Base
from indexer.settings import Settings


def run_migrations(connection) -> None:  # type: ignore[no-untyped-def]
    # Batch mode rewrites tables for the ALTERs that SQLite cannot run in place.
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
else:
    engine = create_database_engine(Settings.from_env().database_url)
    with engine.connect() as own_connection:
        run_migrations(own_connection)
        own_connection.commit()
