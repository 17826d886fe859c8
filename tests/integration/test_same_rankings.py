"""The ONNX encoder and micro-batched encoding rank the catalog as the plain PyTorch path does.

The plain path calls `service.search.search_catalog` with the PyTorch model and no cache
or batcher. The other paths are the running service over HTTP.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest

from service.cache import EmbeddingCache
from service.holder import IndexHolder
from service.search import SearchOptions, search_catalog
from tests.conftest import pool_with
from tests.integration.test_observability import metric_value, read_metrics

pytestmark = [pytest.mark.integration, pytest.mark.sqlite_only]

SAMPLE_CATALOG = Path(__file__).parents[2] / "data" / "sample_catalog.csv"
QUERIES = [
    "What can I use to cut wood?", "cordless drill", "something to measure a room",
    "protect my eyes", "tighten bolts", "paint the fence", "fix a leaking pipe",
    "sand a table top", "hang a picture", "cut metal pipe", "level a shelf",
    "Akkuschrauber", "ladder for the roof", "glue for wood", "dig a hole in the garden",
    "light for a dark basement",
]
MODES = ("dense", "hybrid")
TOP_K = 10


def ranked_ids(body: dict) -> list[list[str]]:
    return [[match["product_id"] for match in result["matches"]] for result in body["results"]]


@pytest.fixture
def plain_rankings(settings, build, sessions, embedder) -> dict[str, list[list[str]]]:
    """Build the sample catalog with PyTorch and rank every query in each mode without the service."""
    build(SAMPLE_CATALOG)
    holder = IndexHolder(sessions, settings.index_dir)
    holder.refresh(pool_with(embedder))
    assert holder.current is not None
    rankings = {}
    for mode in MODES:
        found = search_catalog(embedder, EmbeddingCache(0), holder.current, QUERIES,
                               SearchOptions(TOP_K, mode), settings)
        rankings[mode] = [[hit.product_id for hit in result.hits] for result in found.results]
    return rankings


def test_onnx_ranks_like_pytorch(settings, serve, onnx_embedder, plain_rankings):
    configured = dataclasses.replace(settings, encoder_backend="onnx", embedding_cache_size=0)

    with serve(configured, embedder=onnx_embedder) as client:
        bodies = {mode: client.post("/search", json={"queries": QUERIES, "top_k": TOP_K, "mode": mode})
                  for mode in MODES}

    for mode in MODES:
        assert bodies[mode].status_code == 200
        assert ranked_ids(bodies[mode].json()) == plain_rankings[mode], mode


def test_micro_batched_requests_rank_like_plain_path(settings, serve, plain_rankings):
    # A long wait, so that the concurrent requests below share encoding batches.
    configured = dataclasses.replace(settings, encode_batch_wait_ms=200, embedding_cache_size=0)
    responses: dict[tuple[str, int], dict] = {}
    start = threading.Barrier(len(QUERIES))

    with serve(configured) as client:
        before = read_metrics(client)
        for mode in MODES:
            def send(number: int, mode: str = mode) -> None:
                start.wait()
                response = client.post("/search", json={"queries": [QUERIES[number]], "top_k": TOP_K,
                                                         "mode": mode})
                responses[mode, number] = response.json()

            threads = [threading.Thread(target=send, args=(number,)) for number in range(len(QUERIES))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        after = read_metrics(client)

    for mode in MODES:
        served = [ranked_ids(responses[mode, number])[0] for number in range(len(QUERIES))]
        assert served == plain_rankings[mode], mode
    calls = (metric_value(after, "catalog_search_encode_batch_size_count")
             - metric_value(before, "catalog_search_encode_batch_size_count"))
    texts = (metric_value(after, "catalog_search_encode_batch_size_sum")
             - metric_value(before, "catalog_search_encode_batch_size_sum"))
    assert texts == len(MODES) * len(QUERIES)
    assert calls < texts, "no two concurrent queries shared an encoding batch"
