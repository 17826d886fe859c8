"""The admin API over HTTP, and hot swaps under concurrent search load."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from tests.conftest import TOOLS

pytestmark = pytest.mark.integration

def renamed(prefix: str) -> list[list[str]]:
    """TOOLS with ids under another prefix, so that each version's ids are recognisable."""
    return [[f"{prefix}-{n}", *row[1:]] for n, row in enumerate(TOOLS)]


@pytest.fixture
def headers(api_key) -> dict[str, str]:
    return {"X-API-Key": api_key("operator", "admin")}


@pytest.fixture
def three_versions(build, write_csv):
    """Versions 1, 2 and 3 with ids A-*, B-* and C-*; version 1 active."""
    build(write_csv(renamed("A"), name="a.csv"))
    build(write_csv(renamed("B"), name="b.csv"), activate=False)
    build(write_csv(renamed("C"), name="c.csv"), activate=False)


def test_versions_listed_with_active(settings, serve, headers, three_versions):
    with serve(settings) as client:
        body = client.get("/index/versions", headers=headers).json()

    assert [(item["version"], item["status"]) for item in body] == [(3, "ready"), (2, "ready"), (1, "active")]
    assert body[2]["product_count"] == len(TOOLS)
    assert body[1]["new_count"] == len(TOOLS)


def test_activate_and_rollback_are_served_at_once(settings, serve, headers, three_versions):
    with serve(settings) as client:
        activated = client.post("/index/activate", json={"version": 2}, headers=headers)
        after_activate = client.post("/search", json={"queries": ["saw"], "top_k": 1}).json()
        rolled_back = client.post("/index/rollback", headers=headers)
        after_rollback = client.post("/search", json={"queries": ["saw"], "top_k": 1}).json()

    assert activated.status_code == 200
    assert activated.json()["status"] == "active"
    assert after_activate["index_version"] == 2
    assert after_activate["results"][0]["matches"][0]["product_id"] == "B-0"
    assert rolled_back.json()["version"] == 1
    assert after_rollback["index_version"] == 1


@pytest.mark.parametrize("body, status, detail", [
    ({"version": 99}, 404, "index version 99 does not exist"),
    ({"version": "two"}, 422, None),
    ({"version": 0}, 422, None),
    ({"version": 2**63}, 422, None),
    ({}, 422, None),
])
def test_activate_rejects_bad_requests(settings, serve, headers, three_versions, body, status, detail):
    with serve(settings) as client:
        response = client.post("/index/activate", json=body, headers=headers)

    assert response.status_code == status
    if detail:
        assert response.json()["detail"] == detail


def test_rollback_of_first_version_is_409(settings, serve, headers, build, write_csv):
    build(write_csv(TOOLS))

    with serve(settings) as client:
        response = client.post("/index/rollback", headers=headers)

    assert response.status_code == 409
    assert "first active version" in response.json()["detail"]


def test_reindex_without_catalog_is_409(settings, serve, headers):
    with serve(settings) as client:
        response = client.post("/index/reindex", headers=headers)

    assert response.status_code == 409
    assert "CATALOG_SEARCH_CATALOG_PATH" in response.json()["detail"]


def test_reindex_job_builds_and_activates(settings, serve, headers, build, write_csv):
    build(write_csv(renamed("A"), name="a.csv"))
    source = write_csv([*renamed("A")[:5], ["A-9", "Pipe Wrench 14 in.", "Wrench for pipes", "", ""]],
                       name="feed.csv")
    configured = dataclasses.replace(settings, catalog_path=str(source))

    with serve(configured) as client:
        started = client.post("/index/reindex", headers=headers)
        job = poll_job(client, started.json()["job_id"], headers)
        search = client.post("/search", json={"queries": ["pipe wrench"], "top_k": 1}).json()
        unknown = client.get("/index/jobs/0000", headers=headers)

    assert started.status_code == 202
    assert job["state"] == "succeeded"
    assert job["outcome"] == "activated"
    assert job["version"] == 2
    assert search["index_version"] == 2
    assert search["results"][0]["matches"][0]["product_id"] == "A-9"
    assert unknown.status_code == 404


def poll_job(client, job_id: str, headers: dict[str, str], attempts: int = 600) -> dict:
    for _ in range(attempts):
        body = client.get(f"/index/jobs/{job_id}", headers=headers).json()
        if body["state"] in ("succeeded", "failed"):
            return body
        time.sleep(0.1)
    pytest.fail(f"job never finished: {body}")


LOAD_SECONDS = 60
CLIENTS = 8


def test_swaps_under_load_answer_every_request(settings, serve, headers, three_versions):
    """Eight clients search for a minute while versions are activated and rolled back."""
    # The clients send more than the default search rate limit allows one address.
    settings = dataclasses.replace(settings, rate_limit_search_per_minute=0)
    # Per version, the spans during which this replica may have served it: a span opens
    # when the admin call that activates it is sent and closes when the next one returns.
    spans: dict[int, list[list[float]]] = {1: [[0.0, float("inf")]]}
    responses: list[tuple[float, float, int, dict]] = []
    errors: list[str] = []
    stop = threading.Event()

    def search_loop(client_factory):
        with client_factory() as client:
            while not stop.is_set():
                started = time.monotonic()
                response = client.post("/search", json={"queries": ["saw", "tape"], "top_k": 3})
                finished = time.monotonic()
                if response.status_code != 200:
                    errors.append(f"{response.status_code}: {response.text}")
                    continue
                responses.append((started, finished, response.json()["index_version"], response.json()))

    def move(client, path, body, old, new):
        before = time.monotonic()
        response = client.post(path, json=body, headers=headers)
        after = time.monotonic()
        assert response.status_code == 200, response.text
        spans[old][-1][1] = after
        spans.setdefault(new, []).append([before, float("inf")])

    with serve(settings) as client:
        import httpx

        def factory():
            return httpx.Client(base_url=client.base_url, timeout=60)

        threads = [threading.Thread(target=search_loop, args=(factory,)) for _ in range(CLIENTS)]
        for thread in threads:
            thread.start()
        steps = [("/index/activate", {"version": 2}, 1, 2), ("/index/rollback", None, 2, 1),
                 ("/index/activate", {"version": 3}, 1, 3), ("/index/rollback", None, 3, 1)]
        for path, body, old, new in steps:
            time.sleep(LOAD_SECONDS / (len(steps) + 1))
            move(client, path, body, old, new)
        time.sleep(LOAD_SECONDS / (len(steps) + 1))
        stop.set()
        for thread in threads:
            thread.join()

    assert errors == []
    assert len(responses) > 100
    prefixes = {1: "A-", 2: "B-", 3: "C-"}
    for started, finished, version, body in responses:
        assert any(since <= finished and until >= started for since, until in spans[version]), (
            f"version {version} answered a request from {started} to {finished}, outside {spans}")
        ids = [match["product_id"] for result in body["results"] for match in result["matches"]]
        assert all(product_id.startswith(prefixes[version]) for product_id in ids), body
    assert {version for _, _, version, _ in responses} == {1, 2, 3}
