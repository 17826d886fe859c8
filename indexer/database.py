"""Engine creation and schema migration for the metadata database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite writer waits for another writer's lock; builds write in short batches."""


def create_database_engine(url: str) -> Engine:
    """Create an engine; for SQLite, create the file's folder and turn on WAL and foreign keys."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)

    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _configure(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database to an Alembic revision, the newest by default; a no-op when current.

    On SQLite all revisions run in one explicit transaction with foreign keys off. Batch
    mode rebuilds a table by dropping it, which foreign keys forbid. Python's sqlite3 module
    would otherwise commit each DDL statement on its own, so a failure half-way would leave
    a half-migrated schema.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.connect() as connection:
        if connection.dialect.name != "sqlite":
            with connection.begin():
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
            return

        driver: Any = connection.connection.driver_connection
        isolation = driver.isolation_level
        # PRAGMA foreign_keys is ignored inside a transaction, so it comes before BEGIN.
        driver.execute("PRAGMA foreign_keys=OFF")
        driver.isolation_level = None
        driver.execute("BEGIN")
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
        finally:
            driver.isolation_level = isolation
            driver.execute("PRAGMA foreign_keys=ON")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
