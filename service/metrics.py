"""The service's own Prometheus metrics, beside Litestar's request metrics.

Metrics live in prometheus_client's process-wide registry, so they are defined once here
and shared by every app instance of the process.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
from prometheus_client import Counter, Gauge, Histogram

from indexer.embedding import TextEncoder

ENCODE_BATCH_SIZE = Histogram(
    "catalog_search_encode_batch_size", "Texts per call to the embedding model",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048),
)
ENCODE_SECONDS = Histogram(
    "catalog_search_encode_seconds", "Time per call to the embedding model, including its queue",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
ACTIVE_VERSION = Gauge("catalog_search_active_index_version", "Index version this replica serves")
ACTIVE_PRODUCTS = Gauge("catalog_search_active_index_products", "Products in the served version")
ACTIVE_AGE = Gauge("catalog_search_active_index_age_seconds",
                   "Seconds since the served version's build started")
BUILD_STAGE_SECONDS = Histogram(
    "catalog_search_build_stage_seconds", "Duration of each stage of builds run by this process",
    ["stage"], buckets=(0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600),
)
BUILDS = Counter("catalog_search_builds_total",
                 "Builds run by this process, by outcome (activated, held, skipped, failed)",
                 ["outcome"])
CACHE_REQUESTS = Counter(
    "catalog_search_embedding_cache_requests_total",
    "Texts looked up in the embedding cache, by result (hit, miss)", ["result"],
)
CATALOG_VECTOR_REQUESTS = Counter(
    "catalog_search_catalog_vector_requests_total",
    "Ad-hoc product texts looked up among the served version's product texts, by result "
    "(hit: the stored vector was reused, miss)", ["result"],
)
QUERIES = Counter("catalog_search_queries_total", "Queries searched in the catalog index")
LOW_SCORE_QUERIES = Counter(
    "catalog_search_low_score_queries_total",
    "Catalog queries whose best score was under CATALOG_SEARCH_LOW_SCORE_THRESHOLD",
)
BEST_SCORE = Histogram(
    "catalog_search_best_score", "Best cosine score per catalog query",
    buckets=(-0.5, 0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
)

RATE_LIMIT_STORE_ERRORS = Counter(
    "catalog_search_rate_limit_store_errors_total",
    "Rate-limit store calls that failed; the requests concerned were served without a limit",
)


def timed_encode(encoder: TextEncoder, texts: Sequence[str]) -> np.ndarray:
    """Encode with the model and record the batch size and the time it took."""
    started = time.perf_counter()
    vectors = encoder.encode(texts)
    ENCODE_SECONDS.observe(time.perf_counter() - started)
    ENCODE_BATCH_SIZE.observe(len(texts))
    return vectors


def record_best_scores(best_scores: Sequence[float | None], threshold: float) -> None:
    """Count catalog queries and those whose best score is under `threshold` (None: no hit)."""
    for score in best_scores:
        QUERIES.inc()
        if score is None or score < threshold:
            LOW_SCORE_QUERIES.inc()
        if score is not None:
            BEST_SCORE.observe(score)
