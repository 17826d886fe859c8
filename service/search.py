"""Search operations behind the routes: encode queries, rank catalog or ad-hoc products,
find similar products.

These functions block while the model runs on the CPU. The routes therefore run them in
a worker thread, so that the event loop keeps serving other requests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from indexer.embedding import TextEncoder
from indexer.errors import ProductNotFoundError
from indexer.settings import Settings
from service import metrics, ranking
from service.cache import EmbeddingCache
from service.filters import Filter
from service.holder import CatalogHit, ServedIndex


@dataclass(frozen=True)
class AdHocHit:
    """One posted product text matched to a query; `position` is its index in the request."""

    text: str
    position: int
    score: float


@dataclass(frozen=True)
class SearchOptions:
    """Ranking options of one `/search` request: mode, result count, filter, threshold, explanation."""

    top_k: int
    mode: str
    filter: Filter = field(default_factory=Filter)
    min_score: float | None = None
    explain: bool = False


@dataclass(frozen=True)
class QueryResult:
    """The hits of one query, best first, and how many `min_score` removed from the top `k`."""

    hits: list[CatalogHit]
    removed: int = 0


@dataclass(frozen=True)
class CatalogSearch:
    """Results per query; `filter_matches` counts the products the filter allowed, if any."""

    results: list[QueryResult]
    filter_matches: int | None


def search_catalog(encoder: TextEncoder, cache: EmbeddingCache, served: ServedIndex,
                   queries: Sequence[str], options: SearchOptions,
                   settings: Settings) -> CatalogSearch:
    """Encode the queries unless the mode is lexical, then rank them with `rank_catalog`."""
    vectors = None if options.mode == "lexical" else cache.encode(encoder, queries)
    return rank_catalog(served, queries, vectors, options, settings)


def rank_catalog(served: ServedIndex, queries: Sequence[str], vectors: np.ndarray | None,
                 options: SearchOptions, settings: Settings) -> CatalogSearch:
    """Rank the stored products of one served version for each query.

    `vectors` contains the normalised query embeddings, one row per query; lexical mode
    needs none. Ties in the rounded score are ordered by product id, so output is stable.
    An unfiltered query's best cosine score feeds the drift metrics.
    """
    if vectors is None and options.mode != "lexical":
        raise ValueError(f"{options.mode} ranking needs the query vectors")
    allowed = served.filters.allowed(options.filter)
    filter_matches = None if allowed is None else len(allowed)
    depth = options.top_k if options.mode == "dense" else max(options.top_k, settings.hybrid_depth)

    dense: list[ranking.Candidates] = []
    if vectors is not None:
        dense = ranking.dense_candidates(served.index, vectors, depth, allowed)
        if allowed is None:
            metrics.record_best_scores(
                [float(found.scores[0]) if len(found.scores) else None for found in dense],
                settings.low_score_threshold,
            )

    results = []
    for row, query in enumerate(queries):
        if options.mode == "dense":
            ranked = ranking.rank_dense(dense[row], options.explain)
        else:
            scores = served.lexical.scores(query)
            lexical = ranking.lexical_candidates(scores, depth, allowed)
            if options.mode == "lexical":
                ranked = ranking.rank_lexical(lexical, options.explain)[:options.top_k]
            else:
                assert vectors is not None
                ranked = ranking.rank_hybrid(served.index, vectors[row], dense[row], lexical, scores,
                                             options.top_k, settings.hybrid_dense_weight,
                                             options.explain)
        results.append(_threshold([served.hit(item) for item in ranked], options.min_score))
    return CatalogSearch(results, filter_matches)


def _threshold(hits: list[CatalogHit], min_score: float | None) -> QueryResult:
    hits.sort(key=lambda hit: (-hit.score, hit.product_id))
    if min_score is None:
        return QueryResult(hits)
    kept = [hit for hit in hits if hit.score >= min_score]
    return QueryResult(kept, len(hits) - len(kept))


def similar_products(served: ServedIndex, product_id: str, top_k: int) -> list[CatalogHit]:
    """Return the `top_k` stored products nearest to a stored product's vector, without it.

    Raises `ProductNotFoundError` when the served version has no product `product_id`.
    """
    position = served.positions.get(product_id)
    if position is None:
        raise ProductNotFoundError(product_id, served.version)
    vector = np.asarray(served.index.reconstruct(position)).reshape(1, -1)
    found = ranking.dense_candidates(served.index, vector, top_k + 1, None)[0]
    ranked = [ranking.Ranked(int(p), float(s))
              for p, s in zip(found.positions, found.scores, strict=True) if p != position]
    hits = [served.hit(item) for item in ranked[:top_k]]
    hits.sort(key=lambda hit: (-hit.score, hit.product_id))
    return hits


def match_products(encoder: TextEncoder, cache: EmbeddingCache, queries: Sequence[str],
                   products: Sequence[str], top_k: int,
                   find_stored: Callable[[Sequence[str]], dict[str, np.ndarray]] | None = None,
                   ) -> list[list[AdHocHit]]:
    """Rank posted product texts for each query by cosine similarity.

    `find_stored` returns the stored vectors of those product texts that are catalog
    product texts; they are not encoded. Texts the cache has seen are not encoded again;
    the others are encoded in one call, each distinct text once. Ties keep the products'
    order in the request.
    """
    stored = find_stored(list(dict.fromkeys(products))) if find_stored else {}
    unique = [text for text in dict.fromkeys([*queries, *products]) if text not in stored]
    vectors = {**dict(zip(unique, cache.encode(encoder, unique), strict=True)), **stored}
    query_vectors = np.stack([vectors[text] for text in queries])
    product_vectors = np.stack([vectors[text] for text in products])

    # Rounded in float64: float32 cannot hold 4-decimal values exactly.
    scores = np.round((query_vectors @ product_vectors.T).astype(np.float64), 4)
    k = min(top_k, len(products))
    results = []
    for query_scores in scores:
        order = np.argsort(-query_scores, kind="stable")[:k]
        results.append([AdHocHit(products[p], int(p), float(query_scores[p])) for p in order])
    return results
