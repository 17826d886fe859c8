"""Ranking modes, filters, thresholds, explanations and similar products over HTTP."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from indexer.artifacts import IndexChoice
from indexer.build import BuildContext, BuildRequest, build_version
from indexer.schema import IndexVersion
from tests.conftest import TOOLS

pytestmark = pytest.mark.integration

DRILLS = [
    [f"D-{model}", f"Cordless Drill Driver {model} 18-Volt", "Compact cordless drill with two batteries.",
     "Drills", "Voltex"]
    for model in ("VX1820", "VX1821", "VX1830", "VX2040", "VX2041", "DD-500", "DD-510", "KR-18B")
]


@pytest.fixture
def catalog_client(settings, build, write_csv, serve):
    build(write_csv([*TOOLS, *DRILLS]))
    with serve(settings) as client:
        yield client


@pytest.mark.parametrize("model", ["VX1821", "DD-510", "KR-18B"])
def test_model_number_in_query_ranks_its_product_first(catalog_client, model):
    response = catalog_client.post("/search", json={
        "queries": [f"cordless drill {model}"], "top_k": 5, "mode": "hybrid"})

    assert response.status_code == 200
    assert response.json()["mode"] == "hybrid"
    assert response.json()["results"][0]["matches"][0]["product_id"] == f"D-{model}"


def test_default_mode_is_hybrid(catalog_client):
    body = catalog_client.post("/search", json={"queries": ["hammer"]}).json()

    assert body["mode"] == "hybrid"


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_every_mode_finds_the_saw(catalog_client, mode):
    body = catalog_client.post("/search", json={
        "queries": ["circular saw for wood"], "top_k": 3, "mode": mode}).json()

    assert body["mode"] == mode
    assert body["results"][0]["matches"][0]["product_id"] == "T-1"


def test_explain_adds_score_parts(catalog_client):
    body = catalog_client.post("/search", json={
        "queries": ["cordless drill VX2040"], "top_k": 3, "mode": "hybrid", "explain": True}).json()

    first = body["results"][0]["matches"][0]
    explanation = first["explanation"]
    assert first["product_id"] == "D-VX2040"
    assert explanation["fused_score"] == first["score"]
    assert explanation["lexical_rank"] == 1
    assert explanation["lexical_score"] > 0
    assert 0 < explanation["dense_score"] <= 1
    assert explanation["dense_rank"] >= 1


def test_explain_in_dense_mode_has_no_lexical_parts(catalog_client):
    body = catalog_client.post("/search", json={
        "queries": ["hammer"], "top_k": 1, "mode": "dense", "explain": True}).json()

    first = body["results"][0]["matches"][0]
    assert first["explanation"] == {"dense_score": first["score"], "dense_rank": 1,
                                    "lexical_score": None, "lexical_rank": None,
                                    "fused_score": None}


def test_without_explain_matches_have_no_explanation(catalog_client):
    body = catalog_client.post("/search", json={"queries": ["hammer"], "top_k": 1}).json()

    assert "explanation" not in body["results"][0]["matches"][0]


def test_min_score_is_echoed_with_removed_count(catalog_client):
    everything = catalog_client.post("/search", json={
        "queries": ["circular saw"], "top_k": 5, "mode": "dense"}).json()
    scores = [match["score"] for match in everything["results"][0]["matches"]]
    threshold = scores[1]

    body = catalog_client.post("/search", json={
        "queries": ["circular saw"], "top_k": 5, "mode": "dense", "min_score": threshold}).json()

    kept = body["results"][0]["matches"]
    assert body["min_score"] == threshold
    assert [match["score"] for match in kept] == [score for score in scores if score >= threshold]
    assert body["results"][0]["removed_by_min_score"] == 5 - len(kept)


def test_filters_restrict_category_and_brand(catalog_client):
    body = catalog_client.post("/search", json={
        "queries": ["tool"], "top_k": 10,
        "filters": {"category": ["Saws", "Drills"], "brand": "Acme"}}).json()

    matches = body["results"][0]["matches"]
    assert body["filter_matches"] == len(matches)
    assert matches
    assert {match["category"] for match in matches} <= {"Saws", "Drills"}
    assert {match["brand"] for match in matches} == {"Acme"}


def test_similar_products_exclude_the_product(catalog_client):
    response = catalog_client.get("/products/D-VX1820/similar", params={"top_k": 4})

    assert response.status_code == 200
    body = response.json()
    ids = [match["product_id"] for match in body["matches"]]
    scores = [match["score"] for match in body["matches"]]
    assert body["product_id"] == "D-VX1820"
    assert body["index_version"] == 1
    assert len(ids) == 4
    assert "D-VX1820" not in ids
    assert all(product_id.startswith("D-") for product_id in ids)
    assert scores == sorted(scores, reverse=True)


def test_similar_products_default_to_ten(catalog_client):
    body = catalog_client.get("/products/T-1/similar").json()

    assert len(body["matches"]) == 10


def test_similar_products_of_unknown_id_is_404(catalog_client):
    response = catalog_client.get("/products/NOPE-1/similar")

    assert response.status_code == 404
    assert "NOPE-1" in response.json()["detail"]


@pytest.mark.parametrize("top_k", ["0", "101", "many"])
def test_similar_products_reject_bad_top_k(catalog_client, top_k):
    response = catalog_client.get("/products/T-1/similar", params={"top_k": top_k})

    assert response.status_code in (400, 422)
    assert "top_k" in response.text


@pytest.mark.parametrize(("body", "field"), [
    ({"queries": ["saw"], "mode": "fuzzy"}, "mode"),
    ({"queries": ["saw"], "filters": {"colour": "red"}}, "colour"),
    ({"queries": ["saw"], "filters": {"brand": []}}, "brand"),
    ({"queries": ["saw"], "filters": {"brand": 5}}, "brand"),
    ({"queries": ["saw"], "filters": {"attributes": {"size": {"nested": 1}}}}, "attributes"),
    ({"queries": ["saw"], "filters": {"attributes": {f"a{n}": "x" for n in range(21)}}}, "attributes"),
    ({"queries": ["saw"], "min_score": "high"}, "min_score"),
    ({"queries": ["saw"], "explain": "yes"}, "explain"),
])
def test_invalid_ranking_options_are_422(catalog_client, body, field):
    response = catalog_client.post("/search", json=body)

    assert response.status_code == 422
    assert field in response.text


def test_unknown_mode_lists_the_modes(catalog_client):
    response = catalog_client.post("/search", json={"queries": ["saw"], "mode": "fuzzy"})

    assert response.status_code == 422
    [error] = response.json()["extra"]
    assert error["key"] == "mode"
    assert error["message"] == "Invalid enum value 'fuzzy'; expected one of dense, lexical, hybrid"


@pytest.mark.parametrize(("filters", "key"), [
    ({"category": ""}, "filters.category"),
    ({"category": "  "}, "filters.category"),
    ({"brand": ["Acme", ""]}, "filters.brand[1]"),
    ({"attributes": {"": "x"}}, "filters.attributes"),
    ({"attributes": {"power_source": []}}, "filters.attributes.power_source"),
    ({"attributes": {"power_source": None}}, "filters.attributes.power_source"),
    ({"attributes": {"power_source": [["corded"]]}}, "filters.attributes.power_source[0]"),
    ({"attributes": {"power_source": " "}}, "filters.attributes.power_source"),
])
def test_invalid_filter_values_name_their_key(catalog_client, filters, key):
    response = catalog_client.post("/search", json={"queries": ["drill"], "filters": filters})

    assert response.status_code == 422
    assert response.json()["extra"][0]["key"] == key


def test_similar_top_k_error_names_query_source(catalog_client):
    response = catalog_client.get("/products/T-1/similar", params={"top_k": 0})

    assert response.status_code == 422
    assert response.json()["extra"] == [
        {"key": "top_k", "message": "must be between 1 and 100, got 0", "source": "query"}]


def test_narrow_filter_returns_top_k_matching(settings, build, write_csv, serve):
    # 1,000 products, of which 5 (0.5%) have the filtered brand. None of them is among the
    # unfiltered top 100 for the query, so filtering after retrieval would return nothing.
    rows = [[f"P-{n:04d}", f"Cordless drill model {n}", "Drill for wood and metal.", "Drills", "Common"]
            for n in range(995)]
    rows += [[f"R-{n}", f"Garden hose {n} ft", "Rubber hose for watering.", "Garden", "Rare"]
             for n in range(5)]
    build(write_csv(rows))

    with serve(settings) as client:
        for mode in ("dense", "hybrid"):
            body = client.post("/search", json={
                "queries": ["cordless drill"], "top_k": 5, "mode": mode,
                "filters": {"brand": "Rare"}}).json()

            matches = body["results"][0]["matches"]
            assert body["filter_matches"] == 5, mode
            assert len(matches) == 5, mode
            assert {match["brand"] for match in matches} == {"Rare"}, mode

        # Lexical mode returns only products that contain a query word, filtered or not.
        lexical = client.post("/search", json={
            "queries": ["cordless drill"], "top_k": 5, "mode": "lexical",
            "filters": {"brand": "Rare"}}).json()
        assert lexical["results"][0]["matches"] == []


def test_version_without_bm25_gets_it_at_load(settings, build, write_csv, serve, sessions):
    # A version written before versions stored a BM25 index: no lexical/ folder, and a
    # manifest without it whose checksum the database records.
    report = build(write_csv([*TOOLS, *DRILLS]))
    shutil.rmtree(report.path / "lexical")
    manifest = json.loads((report.path / "manifest.json").read_text())
    del manifest["lexical"]
    manifest["files"] = {name: entry for name, entry in manifest["files"].items()
                         if not name.startswith("lexical/")}
    manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True).encode()
    (report.path / "manifest.json").write_bytes(manifest_bytes)
    with sessions.begin() as session:
        session.get_one(IndexVersion, report.version).artifact_checksum = (
            hashlib.sha256(manifest_bytes).hexdigest())

    with serve(settings) as client:
        body = client.post("/search", json={
            "queries": ["drill DD-500"], "top_k": 1, "mode": "lexical"}).json()

    assert body["results"][0]["matches"][0]["product_id"] == "D-DD-500"


def test_hnsw_version_serves_filtered_search(settings, engine, sessions, embedder, write_csv, serve):
    rows = [[f"P-{n:03d}", f"Cordless drill model {n}", "Drill for wood.", "Drills", "Common"]
            for n in range(300)]
    rows += [[f"R-{n}", f"Garden hose {n} ft", "Rubber hose.", "Garden", "Rare"] for n in range(3)]
    context = BuildContext(engine, sessions, lambda: embedder, settings.index_dir,
                           settings.text_template, index_choice=IndexChoice("hnsw", hnsw_m=8))
    report = build_version(BuildRequest(write_csv(rows), activate=True), context)

    with serve(settings) as client:
        unfiltered = client.post("/search", json={"queries": ["garden hose"], "top_k": 3}).json()
        filtered = client.post("/search", json={
            "queries": ["cordless drill"], "top_k": 3, "mode": "dense",
            "filters": {"brand": "Rare"}}).json()
        similar = client.get("/products/R-1/similar", params={"top_k": 2}).json()

    manifest = json.loads((report.path / "manifest.json").read_text())
    assert manifest["index"]["type"] == "IndexHNSWFlat"
    assert {match["product_id"] for match in unfiltered["results"][0]["matches"]} == {"R-0", "R-1", "R-2"}
    assert {match["product_id"] for match in filtered["results"][0]["matches"]} == {"R-0", "R-1", "R-2"}
    assert {match["product_id"] for match in similar["matches"]} == {"R-0", "R-2"}
