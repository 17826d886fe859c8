"""Which routes need which key, and a key check while the database fails."""

from __future__ import annotations

import pytest
from litestar.testing import TestClient
from sqlalchemy import text

from indexer import keys
from indexer.database import create_database_engine, session_factory
from indexer.errors import ModelLoadError
from service.app import create_app
from service.auth import RouteGroup, route_group


@pytest.mark.parametrize("path, group", [
    ("/api/v1/health", RouteGroup.PUBLIC),
    ("/api/v1/ready", RouteGroup.PUBLIC),
    ("/metrics", RouteGroup.PUBLIC),
    ("/docs/openapi.json", RouteGroup.PUBLIC),
    ("/", RouteGroup.PUBLIC),
    ("/api/v1/search", RouteGroup.SEARCH),
    ("/api/v1/similarity", RouteGroup.SEARCH),
    ("/api/v1/products/{product_id}/similar", RouteGroup.SEARCH),
    ("/api/v1/index/versions", RouteGroup.ADMIN),
    ("/api/v1/index/jobs/{job_id}", RouteGroup.ADMIN),
    ("/api/v1/audit", RouteGroup.ADMIN),
    ("/api/v1/indexes", RouteGroup.SEARCH),
    ("/api/v1/auditing", RouteGroup.SEARCH),
])
def test_route_group_by_path(path, group):
    assert route_group(path) is group


def no_model():
    raise ModelLoadError("no model in unit tests")


def test_key_check_during_database_failure_is_503(settings):
    app = create_app(settings, load_model=no_model)
    engine = create_database_engine(settings.database_url)
    with session_factory(engine).begin() as session:
        key = keys.create_key(session, "operator", ["admin"])
    headers = {"X-API-Key": key}

    with TestClient(app) as client:
        before = client.get("/api/v1/index/versions", headers=headers)
        # Injected fault: the table of keys disappears, so the lookup fails in the database.
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE api_keys RENAME TO api_keys_gone"))
        during = client.get("/api/v1/index/versions", headers=headers)
        health = client.get("/api/v1/health", headers=headers)
    engine.dispose()

    assert before.status_code == 200
    assert during.status_code == 503
    assert during.json()["detail"] == (
        "the metadata database is unavailable, so the API key cannot be checked; try again later")
    assert health.status_code == 200
