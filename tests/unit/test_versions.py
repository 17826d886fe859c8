from __future__ import annotations

from datetime import UTC, datetime

import pytest

from indexer import catalog, versions
from indexer.database import create_database_engine, migrate, session_factory
from indexer.errors import VersionNotActivatableError, VersionNotFoundError
from indexer.schema import IndexVersion

pytestmark = pytest.mark.both_databases


@pytest.fixture
def sessions(settings):
    engine = create_database_engine(settings.database_url)
    migrate(engine)
    yield session_factory(engine)
    engine.dispose()


def add_version(sessions, status: str) -> int:
    with sessions.begin() as session:
        record = IndexVersion(
            status=status, created_at=datetime.now(UTC), model_name="m", model_fingerprint="f",
            dimension=8, source_path="catalog.csv", source_checksum="c", skipped_count=0,
        )
        session.add(record)
        session.flush()
        return record.id


def test_no_active_version_at_first(sessions):
    with sessions() as session:
        assert versions.get_active(session) is None


def test_activation_moves_the_pointer(sessions):
    first, second = add_version(sessions, "ready"), add_version(sessions, "ready")

    for target in (first, second, first):
        with sessions.begin() as session:
            versions.activate(session, target, source="test")
        with sessions() as session:
            assert versions.get_active(session).version.id == target


@pytest.mark.parametrize("status", ["building", "failed", "retired"])
def test_unready_version_is_not_activated(sessions, status):
    ready, other = add_version(sessions, "ready"), add_version(sessions, status)
    with sessions.begin() as session:
        versions.activate(session, ready, source="test")

    with pytest.raises(VersionNotActivatableError, match=f"is {status}; only a ready version"):
        with sessions.begin() as session:
            versions.activate(session, other, source="test")
    with sessions() as session:
        assert versions.get_active(session).version.id == ready


def test_unknown_version_is_not_found(sessions):
    with pytest.raises(VersionNotFoundError, match="index version 99 does not exist"):
        with sessions.begin() as session:
            versions.activate(session, 99, source="test")


def test_versions_listed_newest_first_with_active_shown(sessions):
    first, second = add_version(sessions, "ready"), add_version(sessions, "failed")
    with sessions.begin() as session:
        versions.activate(session, first, source="test")

    with sessions() as session:
        records = versions.list_versions(session)
        active_id = versions.get_active(session).version.id

    assert [record.id for record in records] == [second, first]
    assert [versions.shown_status(record, active_id) for record in records] == ["failed", "active"]


def test_migration_is_idempotent(settings):
    engine = create_database_engine(settings.database_url)
    migrate(engine)
    migrate(engine)
    engine.dispose()


def test_activating_active_version_changes_nothing(sessions):
    first, second = add_version(sessions, "ready"), add_version(sessions, "ready")
    for target in (first, second, second):
        with sessions.begin() as session:
            versions.activate(session, target, source="test")

    with sessions.begin() as session:
        back = versions.rollback(session, source="test")

    assert back.id == first


def test_products_recorded_in_batches_and_deleted(sessions, monkeypatch):
    monkeypatch.setattr(versions, "RECORD_BATCH", 2)
    building, other = add_version(sessions, "building"), add_version(sessions, "ready")
    products = [catalog.Product(f"P-{n}", f"Product {n}", attributes={"size": n}) for n in range(5)]
    versions.record_products(sessions, other, products[:1], ["h"])

    recorded = versions.record_products(sessions, building, products[:3], ["a", "b", "c"])
    recorded += versions.record_products(sessions, building, products[3:], ["d", "e"], first_position=3)

    with sessions() as session:
        stored = versions.load_products(session, building)
    assert recorded == 5
    assert stored.ids == [f"P-{n}" for n in range(5)]
    assert stored.titles[4] == "Product 4"

    versions.delete_products(sessions, building)

    with sessions() as session:
        assert versions.load_products(session, building).ids == []
        assert versions.load_products(session, other).ids == ["P-0"]
