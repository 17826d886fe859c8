"""API keys, scopes, the audit log and response hardening, over HTTP."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
from sqlalchemy import select

from indexer import keys
from indexer.schema import ApiKey, IndexVersion
from tests.conftest import TOOLS, settings_environment
from tests.integration.test_admin import poll_job, renamed

pytestmark = pytest.mark.integration

UNAUTHENTICATED = {"status_code": 401, "detail": "missing or invalid X-API-Key header"}
SEARCH = ("/search", {"queries": ["saw"], "top_k": 1})
SIMILARITY = ("/similarity", {"text": ["saw"], "products": ["circular saw"]})


@pytest.fixture
def closed(settings):
    """Settings whose search routes need a key, as on a host other than the loopback address."""
    return dataclasses.replace(settings, open_search=False)


@pytest.fixture
def keys_by_role(api_key, sessions):
    """A search key, an admin key, a revoked search key and a well-formed key that was never issued."""
    keys_made = {"search": api_key("storefront", "search"), "admin": api_key("operator", "admin"),
                 "revoked": api_key("old-storefront", "search")}
    with sessions.begin() as session:
        keys.revoke_key(session, "old-storefront")
    issued = keys_made["search"]
    keys_made["unknown"] = issued[:3] + "0" * 12 + issued[15:]
    keys_made["wrong secret"] = issued[:-4] + ("AAAA" if not issued.endswith("AAAA") else "BBBB")
    keys_made["malformed"] = "not-a-key"
    return keys_made


def call(client, route: tuple[str, dict], key: str | None):
    path, body = route
    return client.post(path, json=body, headers={"X-API-Key": key} if key is not None else {})


@pytest.mark.parametrize("role", ["no key", "unknown", "wrong secret", "malformed", "revoked"])
def test_search_without_valid_key_is_401(closed, build, write_csv, serve, keys_by_role, role):
    build(write_csv(TOOLS))

    with serve(closed) as client:
        responses = [call(client, route, keys_by_role.get(role)) for route in (SEARCH, SIMILARITY)]

    for response in responses:
        assert response.status_code == 401
        assert response.json() == UNAUTHENTICATED


# Every key has the search or the admin scope, and admin includes search, so no key can lack
# the scope of a search route; the 403 case exists for admin routes only.
@pytest.mark.parametrize("role", ["search", "admin"])
def test_search_with_scope_is_served(closed, build, write_csv, serve, keys_by_role, role):
    build(write_csv(TOOLS))

    with serve(closed) as client:
        search = call(client, SEARCH, keys_by_role[role])
        similarity = call(client, SIMILARITY, keys_by_role[role])

    assert search.status_code == 200
    assert search.json()["results"][0]["matches"][0]["product_id"] == "T-1"
    assert similarity.status_code == 200


@pytest.mark.parametrize("role", ["no key", "unknown", "wrong secret", "malformed", "revoked"])
def test_admin_without_valid_key_is_401(settings, serve, keys_by_role, role):
    key = keys_by_role.get(role)

    with serve(settings) as client:
        headers = {"X-API-Key": key} if key is not None else {}
        responses = [client.get("/index/versions", headers=headers),
                     client.post("/index/rollback", headers=headers),
                     client.get("/audit", headers=headers)]

    for response in responses:
        assert response.status_code == 401
        assert response.json() == UNAUTHENTICATED


def test_admin_with_search_key_is_403(settings, serve, keys_by_role):
    headers = {"X-API-Key": keys_by_role["search"]}

    with serve(settings) as client:
        responses = [client.get("/index/versions", headers=headers),
                     client.post("/index/activate", json={"version": 1}, headers=headers),
                     client.get("/audit", headers=headers)]

    for response in responses:
        assert response.status_code == 403
        assert response.json()["detail"] == "the API key lacks the admin scope that this route needs"


def test_admin_with_admin_key_is_served(settings, serve, keys_by_role):
    with serve(settings) as client:
        response = client.get("/index/versions", headers={"X-API-Key": keys_by_role["admin"]})

    assert response.status_code == 200
    assert response.json() == []


def test_open_search_needs_no_key(settings, build, write_csv, serve, keys_by_role):
    build(write_csv(TOOLS))

    with serve(settings) as client:
        anonymous = call(client, SEARCH, None)
        revoked = call(client, SEARCH, keys_by_role["revoked"])

    assert settings.search_is_open
    assert anonymous.status_code == 200
    # A key that is sent must be valid, also where none is needed.
    assert revoked.status_code == 401


def test_public_routes_need_no_key(closed, serve):
    with serve(closed) as client:
        root = str(client.base_url).rstrip("/").removesuffix("/api/v1")
        statuses = {path: client.get(root + path).status_code
                    for path in ("/api/v1/health", "/api/v1/ready", "/metrics", "/docs/openapi.json",
                                 "/playground", "/static/playground/playground.js")}

    assert statuses == dict.fromkeys(statuses, 200)


def test_audit_records_admin_actions(settings, serve, build, write_csv, keys_by_role):
    build(write_csv(renamed("A"), name="a.csv"))
    build(write_csv(renamed("B"), name="b.csv"), activate=False)
    headers = {"X-API-Key": keys_by_role["admin"]}

    with serve(settings) as client:
        client.post("/index/activate", json={"version": 2}, headers=headers)
        client.post("/index/activate", json={"version": 99}, headers=headers)
        client.post("/index/rollback", headers=headers)
        client.post("/index/reindex", headers=headers)
        listed = client.get("/audit", headers=headers)
        newest = client.get("/audit", params={"limit": 1}, headers=headers).json()

    assert listed.status_code == 200
    entries = [(entry["key_name"], entry["action"], entry["target"], entry["result"])
               for entry in listed.json()]
    assert entries == [
        ("operator", "reindex", "no catalog configured",
         "failed: reindex is not configured: set CATALOG_SEARCH_CATALOG_PATH to the catalog file"),
        ("operator", "rollback", "version 1", "ok"),
        ("operator", "activate", "version 99", "failed: index version 99 does not exist"),
        ("operator", "activate", "version 2", "ok"),
    ]
    assert [entry["action"] for entry in newest] == ["reindex"]


def test_audit_limit_out_of_range_is_422(settings, serve, keys_by_role):
    with serve(settings) as client:
        response = client.get("/audit", params={"limit": 0}, headers={"X-API-Key": keys_by_role["admin"]})

    assert response.status_code == 422
    assert response.json()["extra"][0]["key"] == "limit"


def test_reindex_ignores_path_in_body(settings, serve, build, write_csv, keys_by_role, sessions, tmp_path):
    build(write_csv(renamed("A"), name="a.csv"))
    configured_feed = write_csv([*renamed("A"), ["A-9", "Pipe Wrench", "Wrench for pipes", "", ""]],
                                name="feed.csv")
    other = write_csv([["X-1", "Other catalog", "", "", ""]], name="other.csv")
    configured = dataclasses.replace(settings, catalog_path=str(configured_feed))
    headers = {"X-API-Key": keys_by_role["admin"]}

    with serve(configured) as client:
        started = client.post("/index/reindex", headers=headers,
                              json={"catalog": str(other), "catalog_path": str(other), "path": str(other)})
        job = poll_job(client, started.json()["job_id"], headers)
        audit = client.get("/audit", headers=headers).json()

    assert started.status_code == 202
    assert job["state"] == "succeeded"
    with sessions() as session:
        assert session.get(IndexVersion, job["version"]).source_path == str(configured_feed)
    assert audit[0]["target"] == f"{configured_feed} (job {job['job_id']})"


def run_cli(settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "indexer", *args], capture_output=True, text=True,
                          env=settings_environment(settings), timeout=120)


def test_cli_keys_work_over_http(closed, build, write_csv, serve, sessions):
    build(write_csv(TOOLS))

    created = run_cli(closed, "keys", "create", "--name", "erp", "--scope", "search")
    key = created.stdout.strip()
    duplicate = run_cli(closed, "keys", "create", "--name", "erp", "--scope", "admin")
    with serve(closed) as client:
        before = call(client, SEARCH, key)
        revoked = run_cli(closed, "keys", "revoke", "erp")
        after = call(client, SEARCH, key)
    listing = run_cli(closed, "keys", "list")
    audit = run_cli(closed, "audit", "--limit", "10")

    assert created.returncode == 0, created.stderr
    assert key.startswith("cs_")
    assert duplicate.returncode == 1
    assert "an API key named 'erp' already exists" in duplicate.stderr
    assert before.status_code == 200
    assert revoked.returncode == 0, revoked.stderr
    assert after.status_code == 401
    with sessions() as session:
        stored = session.scalars(select(ApiKey)).one()
    assert stored.key_hash != key
    assert key not in listing.stdout
    assert stored.key_hash not in listing.stdout
    assert "erp" in listing.stdout
    lines = audit.stdout.splitlines()[1:]
    assert [line.split()[2:5] for line in lines] == [
        ["cli", "key_revoked", "erp"], ["cli", "key_created", "erp"], ["cli", "key_created", "erp"]]
    assert lines[0].endswith("ok")
    assert "failed: an API key named 'erp' already exists" in lines[1]


def test_cli_activation_is_audited(settings, build, write_csv):
    build(write_csv(renamed("A"), name="a.csv"))
    build(write_csv(renamed("B"), name="b.csv"), activate=False)

    activated = run_cli(settings, "activate", "2")
    rolled_back = run_cli(settings, "rollback")
    audit = run_cli(settings, "audit")

    assert activated.returncode == 0, activated.stderr
    assert rolled_back.returncode == 0, rolled_back.stderr
    rows = [line.split()[2:6] for line in audit.stdout.splitlines()[1:]]
    assert rows == [["cli", "rollback", "version", "1"], ["cli", "activate", "version", "2"]]


def test_rejected_version_reveals_no_path(settings, build, write_csv, serve):
    report = build(write_csv(TOOLS))
    (report.path / "manifest.json").unlink()

    with serve(settings, until=lambda response: "rejected_version" in response.json()) as client:
        ready = client.get("/ready")
        search = client.post("/search", json={"queries": ["saw"]})

    assert ready.json()["rejected_reason"] == "cannot read manifest.json: No such file or directory"
    for response in (ready, search):
        assert str(settings.data_dir) not in response.text
        assert "Traceback" not in response.text


def test_cors_allows_configured_origin_only(settings, serve):
    configured = dataclasses.replace(settings, cors_allow_origins="https://shop.example")
    preflight_headers = {"Access-Control-Request-Method": "POST",
                         "Access-Control-Request-Headers": "content-type, x-api-key"}

    with serve(configured) as client:
        allowed = client.options("/search", headers={"Origin": "https://shop.example", **preflight_headers})
        other = client.options("/search", headers={"Origin": "https://other.example", **preflight_headers})
        simple = client.get("/health", headers={"Origin": "https://shop.example"})

    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
    assert "x-api-key" in allowed.headers["access-control-allow-headers"].lower()
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers
    assert simple.headers["access-control-allow-origin"] == "https://shop.example"


def test_no_cors_headers_by_default(settings, serve):
    with serve(settings) as client:
        response = client.get("/health", headers={"Origin": "https://shop.example"})

    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


def test_unknown_host_is_rejected(settings, serve):
    configured = dataclasses.replace(settings, allowed_hosts="search.example,*.catalog.example")

    with serve(configured, until=lambda response: response.status_code == 400) as client:
        unknown = client.get("/health")
        named = client.get("/health", headers={"Host": "search.example"})
        subdomain = client.get("/health", headers={"Host": "eu.catalog.example"})

    assert unknown.status_code == 400
    assert named.status_code == 200
    assert subdomain.status_code == 200
