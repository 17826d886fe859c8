"""Prometheus metrics and request ids, over HTTP."""

from __future__ import annotations

import dataclasses
import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import TOOLS, settings_environment

pytestmark = pytest.mark.integration

REPOSITORY = Path(__file__).resolve().parents[2]


def metric_value(text: str, name: str, labels: str = "") -> float:
    """Sum the samples of `name` whose label set contains `labels`."""
    pattern = re.compile(rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$", re.MULTILINE)
    return sum(float(value) for label_set, value in pattern.findall(text) if labels in (label_set or ""))


def read_metrics(client: httpx.Client) -> str:
    """Return the Prometheus exposition of the service behind `client`."""
    response = client.get(str(client.base_url).rstrip("/").removesuffix("/api/v1") + "/metrics")
    assert response.status_code == 200
    return response.text


def test_metrics_after_searches_and_a_build(settings, build, write_csv, serve, api_key):
    build(write_csv(TOOLS, name="first.csv"))
    key = api_key("operator", "admin")
    feed = write_csv([*TOOLS, ["T-7", "Pipe Wrench 14 in.", "Wrench for pipes", "", ""]], name="feed.csv")
    configured = dataclasses.replace(settings, catalog_path=str(feed),
                                     low_score_threshold=0.99)

    with serve(configured) as client:
        client.post("/search", json={"queries": ["What can I use to cut wood?", "zzzz qqqq"]})
        client.post("/similarity", json={"text": ["saw"], "products": ["circular saw", "hammer"]})
        client.post("/similarity", json={"text": ["saw"], "products": ["circular saw", "hammer"]})
        job = client.post("/index/reindex", headers={"X-API-Key": key}).json()
        for _ in range(600):
            state = client.get(f"/index/jobs/{job['job_id']}", headers={"X-API-Key": key}).json()["state"]
            if state == "succeeded":
                break
            time.sleep(0.1)
        response = client.get(str(client.base_url).rstrip("/").removesuffix("/api/v1") + "/metrics")

    text = response.text
    assert response.status_code == 200
    assert metric_value(text, "catalog_search_http_requests_total", 'path="/api/v1/search"') >= 1
    assert metric_value(text, "catalog_search_http_request_duration_seconds_count",
                        'path="/api/v1/similarity"') >= 1
    assert metric_value(text, "catalog_search_encode_batch_size_count") >= 2
    assert metric_value(text, "catalog_search_encode_seconds_sum") > 0
    assert metric_value(text, "catalog_search_active_index_version") == 2
    assert metric_value(text, "catalog_search_active_index_products") == len(TOOLS) + 1
    assert metric_value(text, "catalog_search_active_index_age_seconds") > 0
    assert metric_value(text, "catalog_search_build_stage_seconds_count", 'stage="encode"') >= 1
    assert metric_value(text, "catalog_search_builds_total", 'outcome="activated"') >= 1
    assert metric_value(text, "catalog_search_queries_total") >= 2
    assert metric_value(text, "catalog_search_low_score_queries_total") >= 2
    assert metric_value(text, "catalog_search_best_score_count") >= 2
    assert metric_value(text, "catalog_search_embedding_cache_requests_total", 'result="hit"') >= 3
    assert metric_value(text, "catalog_search_embedding_cache_requests_total", 'result="miss"') >= 3


def test_response_carries_request_id(settings, serve):
    with serve(settings) as client:
        echoed = client.get("/health", headers={"X-Request-ID": "order-4711"})
        fresh = client.get("/health")
        unusable = client.get("/health", headers={"X-Request-ID": "bad id with spaces"})

    assert echoed.headers["x-request-id"] == "order-4711"
    assert re.fullmatch(r"[0-9a-f]{32}", fresh.headers["x-request-id"])
    assert re.fullmatch(r"[0-9a-f]{32}", unusable.headers["x-request-id"])


def test_log_lines_of_a_request_share_its_id(settings, build, write_csv, api_key):
    build(write_csv(TOOLS, name="first.csv"))
    key = api_key("operator", "admin")
    build(write_csv(TOOLS[:4], name="second.csv"), activate=False)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**settings_environment(settings), "CATALOG_SEARCH_PORT": str(port)}
    server = subprocess.Popen([sys.executable, "-m", "service"], cwd=REPOSITORY, env=env,
                              stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=60) as client:
            for _ in range(600):
                try:
                    if client.get("/ready").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            response = client.post("/index/activate", json={"version": 2},
                                   headers={"X-API-Key": key, "X-Request-ID": "activate-2"})
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=30)

    assert response.status_code == 200
    lines = [json.loads(line) for line in errors.splitlines() if line.startswith("{")]
    tagged = [line["event"] for line in lines if line.get("request_id") == "activate-2"]
    assert tagged == ["version_activated", "version_swapped", "catalog_digests_loaded", "request_finished"]
    assert all(key not in json.dumps(line) for line in lines)
