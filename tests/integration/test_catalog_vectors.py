"""Ad-hoc products whose text is a catalog product's text reuse the stored vector."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tests.conftest import TOOLS
from tests.integration.test_observability import metric_value, read_metrics

pytestmark = pytest.mark.integration

QUERIES = ["What can I use to cut wood?", "something to measure a room"]


def catalog_text(row: list[str]) -> str:
    """Render a TOOLS row as the default template `{title}\\n{description}` renders it."""
    return f"{row[1]}\n{row[2]}"


def test_catalog_texts_reuse_stored_vectors(settings, build, write_csv, serve, embedder):
    build(write_csv(TOOLS))
    products = [catalog_text(TOOLS[0]), "Pipe wrench for plumbing", catalog_text(TOOLS[2]),
                TOOLS[4][1], catalog_text(TOOLS[0])]
    # No cache, so that every vector not read from the index is encoded and counted as a miss.
    uncached = dataclasses.replace(settings, embedding_cache_size=0)

    with serve(uncached) as client:
        before = read_metrics(client)
        body = client.post("/similarity", json={"text": QUERIES, "products": products,
                                                "top_k": len(products)}).json()
        after = read_metrics(client)

    def counted(text: str, name: str, result: str) -> float:
        return metric_value(text, name, f'result="{result}"')

    reuse = "catalog_search_catalog_vector_requests_total"
    cache = "catalog_search_embedding_cache_requests_total"
    # Two distinct posted texts are catalog texts. The bare title and the wrench are not.
    assert counted(after, reuse, "hit") - counted(before, reuse, "hit") == 2
    assert counted(after, reuse, "miss") - counted(before, reuse, "miss") == 2
    assert counted(after, cache, "miss") - counted(before, cache, "miss") == len(QUERIES) + 2

    fresh = np.round((embedder.encode(QUERIES) @ embedder.encode(products).T).astype(np.float64), 4)
    for row, result in enumerate(body["results"]):
        scores = {match["product"]: match["score"] for match in result["matches"]}
        for column, text in enumerate(products):
            assert scores[text] == pytest.approx(fresh[row, column], abs=1e-4)
    assert body["results"][0]["matches"][0]["product"] == catalog_text(TOOLS[0])


def test_without_active_version_products_are_encoded(settings, serve, embedder):
    products = [catalog_text(TOOLS[0]), catalog_text(TOOLS[1])]

    with serve(settings) as client:
        before = read_metrics(client)
        response = client.post("/similarity", json={"text": QUERIES[:1], "products": products})
        after = read_metrics(client)

    assert response.status_code == 200
    assert response.json()["matches"][0]["product"] == catalog_text(TOOLS[0])
    assert metric_value(after, "catalog_search_catalog_vector_requests_total") == \
        metric_value(before, "catalog_search_catalog_vector_requests_total")
