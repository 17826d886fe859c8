"""Ranking quality on judged queries: nDCG@10 and Recall@100, measured through the service's
own search function, so that an evaluation ranks exactly as `/search` does.

`benchmarks/evaluate.py` scores the served catalog with it, and `indexer train` scores a
model before and after fine-tuning on the queries that training never saw.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import faiss
import numpy as np

from indexer.embedding import TextEncoder
from indexer.lexical import LexicalIndex
from indexer.settings import Settings
from indexer.versions import StoredProducts
from service.cache import EmbeddingCache
from service.filters import CatalogFilters
from service.holder import ServedIndex
from service.search import SearchOptions, search_catalog

NDCG_DEPTH = 10
RECALL_DEPTH = 100
QUERIES_PER_CALL = 64
"""Queries per search call, as a client would send them; the default request maximum."""


@dataclass(frozen=True)
class Judgments:
    """Per query key: the gain of each judged product, and the products that count as relevant."""

    gains: dict[str, dict[str, float]]
    relevant: dict[str, set[str]]


@dataclass(frozen=True)
class Scores:
    """Mean nDCG@10 and Recall@100, and how many queries each mean covers."""

    ndcg_at_10: float
    recall_at_100: float
    ndcg_queries: int
    recall_queries: int

    def as_dict(self) -> dict[str, float | int]:
        return {key: round(value, 4) if isinstance(value, float) else value
                for key, value in asdict(self).items()}


def judgments_from(rows: Iterable[tuple[str, str, float, float]], relevant_from: float) -> Judgments:
    """Collect `(query key, product id, gain, relevance)` rows; a product is relevant for
    Recall@100 when its relevance is at least `relevant_from`."""
    gains: dict[str, dict[str, float]] = {}
    relevant: dict[str, set[str]] = {}
    for query, product, gain, relevance in rows:
        gains.setdefault(query, {})[product] = gain
        if relevance >= relevant_from:
            relevant.setdefault(query, set()).add(product)
    return Judgments(gains, relevant)


def ndcg_at_10(ranked: Sequence[str], gains: dict[str, float]) -> float | None:
    """Return nDCG@10 with linear gains, or None when every judged gain is 0."""
    ideal = sorted(gains.values(), reverse=True)[:NDCG_DEPTH]
    ideal_dcg = sum(gain / math.log2(rank + 2) for rank, gain in enumerate(ideal))
    if ideal_dcg == 0:
        return None
    dcg = sum(gains.get(product, 0.0) / math.log2(rank + 2)
              for rank, product in enumerate(ranked[:NDCG_DEPTH]))
    return dcg / ideal_dcg


def recall_at_100(ranked: Sequence[str], relevant: set[str]) -> float | None:
    """Return the share of relevant products in the top 100, or None when none is relevant."""
    if not relevant:
        return None
    return len(relevant.intersection(ranked[:RECALL_DEPTH])) / len(relevant)


def score(rankings: dict[str, list[str]], judgments: Judgments) -> Scores:
    """Average both measures over the ranked queries, skipping queries they do not cover."""
    ndcgs, recalls = [], []
    for query, ranked in rankings.items():
        ndcg = ndcg_at_10(ranked, judgments.gains.get(query, {}))
        recall = recall_at_100(ranked, judgments.relevant.get(query, set()))
        if ndcg is not None:
            ndcgs.append(ndcg)
        if recall is not None:
            recalls.append(recall)
    return Scores(sum(ndcgs) / max(len(ndcgs), 1), sum(recalls) / max(len(recalls), 1),
                  len(ndcgs), len(recalls))


def rank_queries(encoder: TextEncoder, cache: EmbeddingCache, served: ServedIndex,
                 queries: Sequence[tuple[str, str]], mode: str,
                 settings: Settings) -> dict[str, list[str]]:
    """Return the top 100 product ids of each `(key, text)` query, ranked as `/search` ranks."""
    rankings = {}
    for start in range(0, len(queries), QUERIES_PER_CALL):
        batch = queries[start:start + QUERIES_PER_CALL]
        found = search_catalog(encoder, cache, served, [text for _, text in batch],
                               SearchOptions(RECALL_DEPTH, mode), settings)
        for (key, _), result in zip(batch, found.results, strict=True):
            rankings[key] = [hit.product_id for hit in result.hits]
    return rankings


def evaluate(encoder: TextEncoder, served: ServedIndex, queries: Sequence[tuple[str, str]],
             judgments: Judgments, settings: Settings, modes: Sequence[str]) -> dict[str, Scores]:
    """Score each ranking mode on the judged queries; each query is encoded once."""
    cache = EmbeddingCache(len(queries))
    return {mode: score(rank_queries(encoder, cache, served, queries, mode, settings), judgments)
            for mode in modes}


def catalog_in_memory(encoder: TextEncoder, vectors: np.ndarray, products: StoredProducts,
                      lexical: LexicalIndex) -> ServedIndex:
    """Return an unsaved catalog for evaluation: an exact index over `vectors` (rows in
    `products` order, L2-normalised, encoded by `encoder`) and the given BM25 index,
    without filter values."""
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    filters = CatalogFilters(products.categories, products.brands, [{} for _ in products.ids])
    return ServedIndex(0, index, lexical, products, filters, datetime.now(UTC), encoder)
