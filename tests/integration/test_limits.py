"""Request limits (413, 422) and rate limits (429), over HTTP; shared counts through Redis."""

from __future__ import annotations

import dataclasses
import re
import socket
import uuid

import pytest
import redis

from tests.conftest import TOOLS

pytestmark = pytest.mark.integration

REDIS_URL = "redis://127.0.0.1:6379/0"
SEARCH = {"queries": ["saw"], "top_k": 1}

LIMIT_CASES = [
    ("queries per search", "/search", {"queries": ["saw"] * 65}, "queries",
     "has 65 items; the maximum is 64"),
    ("queries per similarity", "/similarity", {"text": ["saw"] * 65, "products": ["saw"]}, "text",
     "has 65 items; the maximum is 64"),
    ("ad-hoc products", "/similarity", {"text": ["saw"], "products": ["saw"] * 1001}, "products",
     "has 1001 items; the maximum is 1000"),
    ("query length", "/search", {"queries": ["x" * 2001]}, "queries[0]",
     "has 2001 characters; the maximum is 2000"),
    ("product length", "/similarity", {"text": ["saw"], "products": ["saw", "x" * 2001]}, "products[1]",
     "has 2001 characters; the maximum is 2000"),
    ("top_k above maximum", "/search", {"queries": ["saw"], "top_k": 101}, "top_k",
     "must be between 1 and 100, got 101"),
    ("top_k below minimum", "/similarity", {"text": ["saw"], "top_k": 0}, "top_k",
     "must be between 1 and 100, got 0"),
]


@pytest.fixture
def catalog(build, write_csv):
    build(write_csv(TOOLS))


@pytest.mark.parametrize("route, body, key, message", [case[1:] for case in LIMIT_CASES],
                         ids=[case[0] for case in LIMIT_CASES])
def test_request_limit_is_422_naming_limit(settings, catalog, serve, route, body, key, message):
    with serve(settings) as client:
        response = client.post(route, json=body)

    assert response.status_code == 422
    assert response.json()["detail"] == f"Invalid request: {key} {message}"
    assert response.json()["extra"] == [{"key": key, "message": message, "source": "body"}]


def test_default_body_limit_is_413(settings, catalog, serve):
    # 1,000 products of 2,000 four-byte characters pass the text limits but not 4 MiB.
    products = ["\U0001f528" * 2000] * 1000

    with serve(settings) as client:
        response = client.post("/similarity", json={"text": ["hammer"], "products": products})

    assert response.status_code == 413
    assert response.json()["detail"] == (
        "the request body is larger than the maximum of 4194304 bytes (CATALOG_SEARCH_MAX_BODY_BYTES)")


def assert_rate_limited(response, limit: int, setting: str) -> None:
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["ratelimit-limit"] == str(limit)
    assert "x-request-id" in response.headers
    detail = response.json()["detail"]
    assert re.fullmatch(rf"too many requests: the limit is {limit} \w+ requests per minute per API key "
                        rf"or client address \(CATALOG_SEARCH_{setting}\); retry after \d+ s", detail), detail


def test_burst_over_limit_is_429_per_key(settings, catalog, serve, api_key):
    limited = dataclasses.replace(settings, open_search=False, rate_limit_search_per_minute=3)
    first = {"X-API-Key": api_key("storefront-a", "search")}
    second = {"X-API-Key": api_key("storefront-b", "search")}

    with serve(limited) as client:
        burst = [client.post("/search", json=SEARCH, headers=first) for _ in range(4)]
        other_key = client.post("/search", json=SEARCH, headers=second)

    assert [response.status_code for response in burst[:3]] == [200, 200, 200]
    assert_rate_limited(burst[3], 3, "RATE_LIMIT_SEARCH_PER_MINUTE")
    assert other_key.status_code == 200


def rejected_similarity_requests(client) -> float:
    """Return the request metrics' count of 429s on /similarity; the registry spans the process."""
    text = client.get(str(client.base_url).rstrip("/").removesuffix("/api/v1") + "/metrics").text
    pattern = (r'^catalog_search_http_requests_total\{[^}]*path="/api/v1/similarity"[^}]*'
               r'status_code="429"[^}]*\} (\S+)$')
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_open_routes_limited_per_address(settings, catalog, serve):
    limited = dataclasses.replace(settings, rate_limit_search_per_minute=2)

    with serve(limited) as client:
        rejected_before = rejected_similarity_requests(client)
        burst = [client.post("/similarity", json={"text": ["saw"]}) for _ in range(3)]
        health = [client.get("/health").status_code for _ in range(5)]
        rejected_after = rejected_similarity_requests(client)

    assert [response.status_code for response in burst[:2]] == [200, 200]
    assert_rate_limited(burst[2], 2, "RATE_LIMIT_SEARCH_PER_MINUTE")
    assert health == [200] * 5
    assert rejected_after - rejected_before == 1


def test_admin_limit_is_separate(settings, catalog, serve, api_key):
    limited = dataclasses.replace(settings, rate_limit_admin_per_minute=2)
    headers = {"X-API-Key": api_key("operator", "admin")}

    with serve(limited) as client:
        admin = [client.get("/index/versions", headers=headers) for _ in range(3)]
        search = client.post("/search", json=SEARCH, headers=headers)

    assert [response.status_code for response in admin[:2]] == [200, 200]
    assert_rate_limited(admin[2], 2, "RATE_LIMIT_ADMIN_PER_MINUTE")
    assert search.status_code == 200


@pytest.fixture
def redis_namespace():
    """A namespace of its own in the local Redis; its keys are deleted afterwards."""
    namespace = f"catalog-search-test-{uuid.uuid4().hex}"
    client = redis.Redis.from_url(REDIS_URL)
    yield namespace
    for key in client.scan_iter(match=f"{namespace}:*"):
        client.delete(key)
    client.close()


def test_two_apps_share_count_through_redis(settings, catalog, serve, api_key, redis_namespace):
    shared = dataclasses.replace(settings, open_search=False, rate_limit_search_per_minute=3,
                                 rate_limit_redis_url=REDIS_URL, rate_limit_namespace=redis_namespace)
    headers = {"X-API-Key": api_key("storefront", "search")}

    with serve(shared) as first, serve(shared) as second:
        statuses = [first.post("/search", json=SEARCH, headers=headers).status_code,
                    second.post("/search", json=SEARCH, headers=headers).status_code,
                    first.post("/search", json=SEARCH, headers=headers).status_code]
        over = second.post("/search", json=SEARCH, headers=headers)

    assert statuses == [200, 200, 200]
    assert_rate_limited(over, 3, "RATE_LIMIT_SEARCH_PER_MINUTE")
    stored = list(redis.Redis.from_url(REDIS_URL).scan_iter(match=f"{redis_namespace}:*"))
    # One counter, under this test's namespace, named after the key and not the address.
    assert len(stored) == 1
    assert stored[0].decode().startswith(f"{redis_namespace}:")
    assert stored[0].decode().endswith("::search:key:storefront")


def test_unreachable_redis_serves_without_limit(settings, catalog, serve):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    unreachable = dataclasses.replace(settings, rate_limit_search_per_minute=1,
                                      rate_limit_redis_url=f"redis://127.0.0.1:{closed_port}/0")

    with serve(unreachable) as client:
        statuses = [client.post("/search", json=SEARCH).status_code for _ in range(3)]
        metrics = client.get(str(client.base_url).rstrip("/").removesuffix("/api/v1") + "/metrics").text

    assert statuses == [200, 200, 200]
    errors = re.search(r"^catalog_search_rate_limit_store_errors_total (\S+)$", metrics, re.MULTILINE)
    assert errors is not None
    assert float(errors.group(1)) >= 3
