from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import OperationalError

from indexer import versions
from indexer.database import MIGRATIONS_DIR, create_database_engine, migrate, session_factory
from indexer.schema import Base

pytestmark = pytest.mark.both_databases


@pytest.mark.sqlite_only
def test_upgrade_keeps_existing_versions(settings):
    engine = create_database_engine(settings.database_url)
    migrate(engine, "0001")
    now = datetime.now(UTC).isoformat()
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO index_versions (id, status, created_at, model_name, model_fingerprint, "
            "dimension, skipped_count, source_path, source_checksum) "
            "VALUES (1, 'ready', :now, 'm', 'f', 8, 0, 'catalog.csv', 'c')"), {"now": now})
        connection.execute(text(
            "INSERT INTO products (version_id, position, product_id, title, description, category, "
            "brand, attributes, text_sha256) VALUES (1, 0, 'A', 'Saw', '', '', '', '{}', 'h')"))
        connection.execute(text(
            "INSERT INTO active_index (id, version_id, activated_at) VALUES (1, 1, :now)"), {"now": now})

    migrate(engine)

    with session_factory(engine)() as session:
        assert versions.get_active(session).version.id == 1
        assert versions.load_products(session, 1).ids == ["A"]
    assert "activations" in inspect(engine).get_table_names()
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


@pytest.mark.sqlite_only
def test_failed_upgrade_changes_nothing(settings):
    engine = create_database_engine(settings.database_url)
    migrate(engine, "0001")
    with engine.begin() as connection:
        # A leftover of batch mode's table copy makes the second revision fail part-way.
        connection.execute(text("CREATE TABLE _alembic_tmp_index_versions (id INTEGER)"))

    with pytest.raises(OperationalError, match="_alembic_tmp_index_versions already exists"):
        migrate(engine)

    tables = inspect(engine).get_table_names()
    assert "activations" not in tables
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0001"
    engine.dispose()


def test_models_match_migrations(settings):
    engine = create_database_engine(settings.database_url)
    migrate(engine)

    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)

    assert differences == []
    engine.dispose()


def test_downgrade_to_base_and_upgrade_again(settings):
    engine = create_database_engine(settings.database_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    migrate(engine)

    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    remaining = set(inspect(engine).get_table_names()) - {"alembic_version"}
    migrate(engine)

    assert remaining == set()
    tables = set(inspect(engine).get_table_names())
    assert {"index_versions", "products", "active_index", "activations", "api_keys", "audit_log"} <= tables
    engine.dispose()
