from __future__ import annotations

import dataclasses
import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from indexer import versions
from tests.conftest import TOOLS

pytestmark = pytest.mark.integration

README_PRODUCTS = [
    "Circular Saw 7-1/4 in. 15 Amp: corded saw for cutting wood, plywood and lumber",
    "Claw Hammer 16 oz: steel hammer for driving and pulling nails",
    "Tape Measure 25 ft: measuring tape with a magnetic hook",
    "Ratchet Screwdriver with 12 Bits: screwdriver with a ratcheting handle",
]


@pytest.fixture
def catalog_client(settings, build, write_csv, serve):
    build(write_csv(TOOLS))
    with serve(settings) as client:
        yield client


def test_health(catalog_client):
    response = catalog_client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "healthy"}


def test_ready_names_version_and_count(catalog_client):
    body = catalog_client.get("/ready").json()

    assert body["status"] == "ready"
    assert body["index_version"] == 1
    assert body["products"] == len(TOOLS)


def test_search_finds_saw_for_cutting_wood(catalog_client):
    response = catalog_client.post("/search", json={"queries": ["What can I use to cut wood?"],
                                                    "top_k": 3})

    assert response.status_code == 200
    body = response.json()
    assert body["index_version"] == 1
    first = body["results"][0]["matches"][0]
    assert first["product_id"] == "T-1"
    assert first["title"] == "Circular Saw 7-1/4 in."
    assert first["category"] == "Saws"
    assert first["brand"] == "Acme"
    assert -1 <= first["score"] <= 1
    assert len(body["results"][0]["matches"]) == 3


def test_search_answers_every_query(catalog_client):
    queries = ["cut wood", "drive nails", "measure a distance"]

    body = catalog_client.post("/search", json={"queries": queries, "top_k": 1}).json()

    assert [result["query"] for result in body["results"]] == queries
    assert [result["matches"][0]["product_id"] for result in body["results"]] == ["T-1", "T-2", "T-3"]


def test_top_k_above_candidates_returns_all(catalog_client):
    response = catalog_client.post("/search", json={"queries": ["tool"], "top_k": 100})
    assert response.status_code == 200, response.text
    body = response.json()

    ids = [match["product_id"] for match in body["results"][0]["matches"]]
    assert sorted(ids) == sorted(row[0] for row in TOOLS)
    scores = [match["score"] for match in body["results"][0]["matches"]]
    assert scores == sorted(scores, reverse=True)


def test_similarity_ad_hoc_puts_circular_saw_first(catalog_client):
    response = catalog_client.post("/similarity", json={
        "text": ["What can I use to cut wood?"], "products": README_PRODUCTS, "top_k": 2})

    assert response.status_code == 200
    body = response.json()
    assert body["query"] == "What can I use to cut wood?"
    assert body["matches"][0]["product"] == README_PRODUCTS[0]
    assert len(body["matches"]) == 2
    assert body["results"] == [{"query": body["query"], "matches": body["matches"]}]
    assert "index_version" not in body
    assert all(round(match["score"], 4) == match["score"] for match in body["matches"])


def test_similarity_returns_every_query(catalog_client):
    body = catalog_client.post("/similarity", json={
        "text": ["cut wood", "drive nails"], "products": README_PRODUCTS, "top_k": 1}).json()

    assert [result["matches"][0]["product"] for result in body["results"]] == README_PRODUCTS[:2]
    assert body["matches"] == body["results"][0]["matches"]


def test_similarity_top_k_above_products_returns_all(catalog_client):
    body = catalog_client.post("/similarity", json={
        "text": ["hammer"], "products": ["claw hammer", "claw hammer", "saw"], "top_k": 10}).json()

    assert [match["product"] for match in body["matches"]] == ["claw hammer", "claw hammer", "saw"]


def test_similarity_without_products_searches_catalog(catalog_client):
    body = catalog_client.post("/similarity", json={"text": ["What can I use to cut wood?"]}).json()

    assert body["index_version"] == 1
    assert body["matches"][0] == {**body["matches"][0], "product_id": "T-1",
                                  "product": "Circular Saw 7-1/4 in."}
    assert len(body["matches"]) == 2


def test_activation_of_another_version_is_served(settings, build, write_csv, serve, sessions):
    build(write_csv(TOOLS, name="first.csv"))
    second = build(write_csv([["N-1", "Pipe Wrench 14 in.", "Wrench for pipes", "", ""]],
                             name="second.csv"), activate=False)

    with serve(settings) as client:
        assert client.post("/search", json={"queries": ["wrench"]}).json()["index_version"] == 1
        with sessions.begin() as session:
            versions.activate(session, second.version, source="test")
        body = poll_until(client, lambda b: b.get("index_version") == second.version)

    (match,) = body["results"][0]["matches"]
    assert (match["product_id"], match["title"]) == ("N-1", "Pipe Wrench 14 in.")


def poll_until(client, condition, attempts: int = 200):
    """Send the same search until the response body satisfies `condition`."""
    import time

    for _ in range(attempts):
        body = client.post("/search", json={"queries": ["wrench"]}).json()
        if condition(body):
            return body
        time.sleep(0.05)
    pytest.fail(f"condition never held; last body: {body}")


def test_no_active_index_returns_503(settings, serve):
    with serve(settings) as client:
        search = client.post("/search", json={"queries": ["saw"]})
        similarity = client.post("/similarity", json={"text": ["saw"]})
        ready = client.get("/ready")
        ad_hoc = client.post("/similarity", json={"text": ["saw"], "products": ["circular saw"]})

    assert search.status_code == 503
    assert "python -m indexer build" in search.json()["detail"]
    assert similarity.status_code == 503
    assert ready.status_code == 200
    assert ad_hoc.status_code == 200


def test_rejected_version_is_reported(settings, build, write_csv, serve):
    report = build(write_csv(TOOLS))
    (report.path / "index.faiss").write_bytes(b"corrupt")

    with serve(settings, until=lambda response: "rejected_version" in response.json()) as client:
        ready = client.get("/ready")
        search = client.post("/search", json={"queries": ["saw"]})

    assert ready.status_code == 503
    assert ready.json()["rejected_version"] == report.version
    assert "index.faiss checksum or size does not match" in ready.json()["rejected_reason"]
    assert search.status_code == 503


INVALID_BODIES = [
    ("empty query list", "/search", {"queries": []}, "queries"),
    ("blank query", "/search", {"queries": ["saw", "  "]}, "queries[1]"),
    ("query list not a list", "/search", {"queries": "saw"}, "queries"),
    ("number as query", "/search", {"queries": [5]}, "queries[0]"),
    ("top_k zero", "/search", {"queries": ["saw"], "top_k": 0}, "top_k"),
    ("top_k above maximum", "/search", {"queries": ["saw"], "top_k": 101}, "top_k"),
    ("top_k not a number", "/search", {"queries": ["saw"], "top_k": "three"}, "top_k"),
    ("top_k fraction", "/search", {"queries": ["saw"], "top_k": 2.5}, "top_k"),
    ("unknown field", "/search", {"queries": ["saw"], "limit": 3}, "data"),
    ("too many queries", "/search", {"queries": ["saw"] * 65}, "queries"),
    ("query too long", "/search", {"queries": ["x" * 2001]}, "queries[0]"),
    ("missing text", "/similarity", {"products": ["saw"]}, "data"),
    ("empty products", "/similarity", {"text": ["saw"], "products": []}, "products"),
    ("blank product", "/similarity", {"text": ["saw"], "products": [""]}, "products[0]"),
    ("too many products", "/similarity", {"text": ["saw"], "products": ["saw"] * 1001}, "products"),
    ("null top_k", "/similarity", {"text": ["saw"], "top_k": None}, "top_k"),
]


@pytest.mark.parametrize("route, body, key", [case[1:] for case in INVALID_BODIES],
                         ids=[case[0] for case in INVALID_BODIES])
def test_invalid_body_is_422_naming_field(catalog_client, route, body, key):
    response = catalog_client.post(route, json=body)

    assert response.status_code == 422
    problem = response.json()["extra"][0]
    assert problem["key"] == key
    assert problem["message"]


def test_malformed_json_is_400(catalog_client):
    response = catalog_client.post("/search", content=b'{"queries": [',
                                   headers={"content-type": "application/json"})

    assert response.status_code == 400
    assert response.json()["detail"] == "the request body is not valid JSON: Input data was truncated"
    assert response.json()["extra"][0]["key"] == "body"


@pytest.mark.parametrize("path", ["/search", "/similarity"])
def test_deeply_nested_json_is_400(catalog_client, path):
    body = '{"queries": ' + "[" * 5000 + "]" * 5000 + "}"

    response = catalog_client.post(path, content=body.encode(),
                                   headers={"content-type": "application/json"})

    assert response.status_code == 400
    assert response.json()["detail"] == "the request body is not valid JSON: it is nested too deeply"
    assert response.json()["extra"][0]["key"] == "body"


def test_missing_body_is_422(catalog_client):
    response = catalog_client.post("/search")

    assert response.status_code == 422
    assert response.json()["extra"][0]["message"] == "the request body is missing; send a JSON object"


def test_oversized_body_is_413(settings, build, write_csv, serve):
    build(write_csv(TOOLS))
    small = dataclasses.replace(settings, max_body_bytes=1000)

    with serve(small) as client:
        response = client.post("/search", content=json.dumps({"queries": ["x" * 2000]}),
                               headers={"content-type": "application/json"})

    assert response.status_code == 413
    assert response.json()["detail"] == (
        "the request body is larger than the maximum of 1000 bytes (CATALOG_SEARCH_MAX_BODY_BYTES)")


def test_health_answers_during_large_encode(catalog_client):
    products = [f"product number {n} with a description of its use" for n in range(1000)]

    answered_while_encoding = []

    with ThreadPoolExecutor(max_workers=1) as pool:
        large = pool.submit(catalog_client.post, "/similarity",
                            json={"text": ["saw"], "products": products, "top_k": 1})
        while not large.done():
            status = catalog_client.get("/health").status_code
            if not large.done():
                answered_while_encoding.append(status)

    # A blocked event loop would serve at most the one check sent before encoding began.
    assert len(answered_while_encoding) >= 3
    assert set(answered_while_encoding) == {200}
    assert large.result().status_code == 200


def test_concurrent_encodes_all_succeed(catalog_client):
    def ask(number: int):
        return catalog_client.post("/similarity", json={
            "text": [f"query {number}"], "products": [f"product {number}", "saw"], "top_k": 1})

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(ask, range(32)))

    assert [response.status_code for response in responses] == [200] * 32


def test_openapi_schema_lists_routes(catalog_client):
    schema = catalog_client.get(f"http://127.0.0.1:{catalog_client.base_url.port}/docs/openapi.json").json()

    assert {"/api/v1/search", "/api/v1/similarity", "/api/v1/health", "/api/v1/ready"} <= set(schema["paths"])
