"""Search operations behind the routes: encode queries, rank catalog or ad-hoc products.

These functions block while the model runs on the CPU. The routes therefore run them in
a worker thread, so that the event loop keeps serving other requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from indexer.embedding import Embedder
from service import metrics
from service.cache import EmbeddingCache
from service.holder import CatalogHit, ServedIndex


@dataclass(frozen=True)
class AdHocHit:
    """One posted product text matched to a query; `position` is its index in the request."""

    text: str
    position: int
    score: float


def search_catalog(embedder: Embedder, cache: EmbeddingCache, served: ServedIndex,
                   queries: Sequence[str], top_k: int,
                   low_score_threshold: float) -> list[list[CatalogHit]]:
    """Return the `top_k` best stored products per query, from one served version.

    Each query's best score feeds the drift metrics, with `low_score_threshold`.
    """
    results = served.search(cache.encode(embedder, queries), top_k)
    metrics.record_best_scores([hits[0].score if hits else None for hits in results],
                               low_score_threshold)
    return results


def match_products(embedder: Embedder, cache: EmbeddingCache, queries: Sequence[str],
                   products: Sequence[str], top_k: int) -> list[list[AdHocHit]]:
    """Rank posted product texts for each query by cosine similarity.

    Texts the cache has seen are not encoded again; the others are encoded in one call,
    each distinct text once. Ties keep the products' order in the request.
    """
    unique = list(dict.fromkeys([*queries, *products]))
    vectors = cache.encode(embedder, unique)
    row = {text: number for number, text in enumerate(unique)}
    query_vectors = vectors[[row[text] for text in queries]]
    product_vectors = vectors[[row[text] for text in products]]

    # Rounded in float64: float32 cannot hold 4-decimal values exactly.
    scores = np.round((query_vectors @ product_vectors.T).astype(np.float64), 4)
    k = min(top_k, len(products))
    results = []
    for query_scores in scores:
        order = np.argsort(-query_scores, kind="stable")[:k]
        results.append([AdHocHit(products[p], int(p), float(query_scores[p])) for p in order])
    return results
