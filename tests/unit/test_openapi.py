"""The OpenAPI schema states the request limits, the key scheme and every error status."""

from __future__ import annotations

import dataclasses

from litestar.testing import TestClient

from indexer.errors import ModelLoadError
from service.app import create_app

ERROR_BODY = {"$ref": "#/components/schemas/ErrorBody"}


def no_model():
    raise ModelLoadError("no model in unit tests")


def served_schema(settings) -> dict:
    with TestClient(create_app(settings, load_model=no_model)) as client:
        return client.get("/docs/openapi.json").json()


def test_request_limits_follow_settings(settings):
    limited = dataclasses.replace(settings, max_queries=5, max_products=7, max_text_chars=30, max_top_k=9)

    schemas = served_schema(limited)["components"]["schemas"]

    queries = schemas["SearchRequest"]["properties"]["queries"]
    assert (queries["minItems"], queries["maxItems"]) == (1, 5)
    assert queries["items"] == {"type": "string", "minLength": 1, "maxLength": 30, "pattern": r"\S"}
    products = schemas["SimilarityRequest"]["properties"]["products"]["oneOf"][0]
    assert products["maxItems"] == 7
    top_k = schemas["SimilarityRequest"]["properties"]["top_k"]
    assert (top_k["minimum"], top_k["maximum"]) == (1, 9)


def test_error_statuses_documented_per_route_group(settings):
    paths = served_schema(settings)["paths"]

    search = paths["/api/v1/search"]["post"]
    admin = paths["/api/v1/index/rollback"]["post"]
    health = paths["/api/v1/health"]["get"]
    assert {"401", "403", "413", "422", "429", "503"} <= set(search["responses"])
    assert search["responses"]["429"]["headers"]["Retry-After"]["required"] is True
    assert search["responses"]["413"]["content"]["application/json"]["schema"] == ERROR_BODY
    assert {"401", "403", "429", "503"} <= set(admin["responses"])
    assert "401" not in health["responses"]
    assert "security" not in health


def test_security_follows_open_search(settings):
    closed = dataclasses.replace(settings, open_search=False, rate_limit_admin_per_minute=0)

    open_paths = served_schema(settings)["paths"]
    closed_paths = served_schema(closed)["paths"]

    assert open_paths["/api/v1/search"]["post"]["security"] == [{"apiKey": []}, {}]
    assert closed_paths["/api/v1/search"]["post"]["security"] == [{"apiKey": []}]
    assert closed_paths["/api/v1/audit"]["get"]["security"] == [{"apiKey": []}]
    assert "429" not in closed_paths["/api/v1/audit"]["get"]["responses"]
    assert "/metrics" not in open_paths
