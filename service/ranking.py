"""Ranking modes over one served index version: dense, lexical and hybrid.

- `dense`: cosine similarity of the query and product embeddings (FAISS).
- `lexical`: BM25 over the product texts.
- `hybrid`: both rankings retrieve `depth` candidates each. Every candidate then gets
  both scores exactly (its vector is read back from FAISS, its BM25 score from the
  query's score array), and the fused score is
  `dense_weight * cosine + (1 - dense_weight) * bm25 / max_bm25`, where `max_bm25` is the
  query's best BM25 score. Dividing by the best score puts BM25 on the 0..1 scale of
  cosine similarity without letting one outlier stretch the rest.

A filter restricts each ranking to the allowed positions before retrieval, so a filter
that matches few products still yields `top_k` results whenever that many match.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import faiss
import numpy as np

MODES = ("dense", "lexical", "hybrid")

_search_threads = threading.local()
search_thread_count = 1
"""OpenMP threads per FAISS search; the runtime sets it from `CATALOG_SEARCH_FAISS_THREADS`."""


BLAS_FROM_QUERIES = 3
"""Queries per call from which an exact search multiplies matrices with BLAS. faiss-cpu
1.15 scans query by query until the query count times the dimension reaches
`distance_compute_blas_threshold` (default 128,000, so 333 queries at 384 dimensions).
Measured on one thread at 100,000 products: one query scans in 16 ms against 34 ms with
BLAS, and 32 queries take 500 ms scanned against 52 ms with BLAS."""


def use_blas_from(dimension: int) -> None:
    """Let exact searches of `BLAS_FROM_QUERIES` or more queries use BLAS; process-wide."""
    threshold = BLAS_FROM_QUERIES * dimension
    if faiss.cvar.distance_compute_blas_threshold != threshold:
        faiss.cvar.distance_compute_blas_threshold = threshold


def use_search_threads() -> None:
    """Apply `search_thread_count` in the calling thread.

    OpenMP keeps the thread count per thread, so a count set once at start-up does not
    reach the worker threads that serve requests. Each sets it on its first search."""
    if getattr(_search_threads, "count", None) != search_thread_count:
        faiss.omp_set_num_threads(search_thread_count)
        _search_threads.count = search_thread_count


@dataclass(frozen=True)
class ScoreParts:
    """Scores and ranks of the rankings a mode used, None for a ranking it did not use.

    Ranks are 1-based positions in each ranking's candidate list, None when the product
    was not among that ranking's candidates.
    """

    dense_score: float | None = None
    dense_rank: int | None = None
    lexical_score: float | None = None
    lexical_rank: int | None = None


@dataclass(frozen=True)
class Ranked:
    """One product position with its final score, and its score parts when explained."""

    position: int
    score: float
    parts: ScoreParts | None = None


@dataclass(frozen=True)
class Candidates:
    """Positions and scores of one ranking, best first."""

    positions: np.ndarray
    scores: np.ndarray

    @classmethod
    def empty(cls) -> Candidates:
        return cls(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32))

    def ranks(self) -> dict[int, int]:
        return {int(position): rank for rank, position in enumerate(self.positions, start=1)}


def dense_candidates(index: faiss.Index, vectors: np.ndarray, k: int,
                     allowed: np.ndarray | None) -> list[Candidates]:
    """Return the `k` nearest products per query row of `vectors`, among `allowed` positions
    when given (sorted int64). Returns min(k, allowed products) results for every query.
    """
    use_search_threads()
    use_blas_from(index.d)
    limit = index.ntotal if allowed is None else len(allowed)
    k = min(k, limit)
    if k == 0:
        return [Candidates.empty() for _ in range(len(vectors))]
    params = selector = None
    if allowed is not None:
        # `params.sel` does not keep the selector alive; the local `selector` does.
        selector = faiss.IDSelectorBatch(allowed)
        params = faiss.SearchParameters()
        params.sel = selector
    scores, positions = index.search(vectors, k, params=params)
    del selector

    results = []
    for row, (row_scores, row_positions) in enumerate(zip(scores, positions, strict=True)):
        # FAISS pads missing results with position -1.
        found = row_positions >= 0
        if found.sum() < k and allowed is not None:
            # An approximate index can miss allowed products under a narrow filter; an
            # exact scan of the allowed vectors cannot.
            results.append(_exact_scan(index, vectors[row], k, allowed))
        else:
            results.append(Candidates(row_positions[found], row_scores[found]))
    return results


def _exact_scan(index: faiss.Index, vector: np.ndarray, k: int, allowed: np.ndarray) -> Candidates:
    scores = index.reconstruct_batch(allowed) @ vector
    order = _top(scores, k)
    return Candidates(allowed[order], scores[order])


def lexical_candidates(scores: np.ndarray | None, k: int, allowed: np.ndarray | None) -> Candidates:
    """Return up to `k` products with a positive BM25 score, best first, among `allowed`
    positions when given. `scores` is the query's score per product, or None when no
    query token occurs in the catalog."""
    if scores is None:
        return Candidates.empty()
    positions = np.flatnonzero(scores > 0) if allowed is None else allowed[scores[allowed] > 0]
    order = _top(scores[positions], k)
    return Candidates(positions[order], scores[positions][order])


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Return the indexes of the `k` highest scores, highest first; ties keep index order."""
    if k < len(scores):
        part = np.argpartition(-scores, k - 1)[:k]
        part.sort()
    else:
        part = np.arange(len(scores))
    return part[np.argsort(-scores[part], kind="stable")]


def rank_dense(dense: Candidates, explain: bool) -> list[Ranked]:
    return [
        Ranked(int(p), float(s), ScoreParts(float(s), rank) if explain else None)
        for rank, (p, s) in enumerate(zip(dense.positions, dense.scores, strict=True), start=1)
    ]


def rank_lexical(lexical: Candidates, explain: bool) -> list[Ranked]:
    return [
        Ranked(int(p), float(s), ScoreParts(lexical_score=float(s), lexical_rank=rank) if explain else None)
        for rank, (p, s) in enumerate(zip(lexical.positions, lexical.scores, strict=True), start=1)
    ]


def rank_hybrid(index: faiss.Index, vector: np.ndarray, dense: Candidates,
                lexical: Candidates, lexical_scores: np.ndarray | None, top_k: int,
                dense_weight: float, explain: bool) -> list[Ranked]:
    """Fuse two candidate lists into the best `top_k`, scoring every candidate on both."""
    union = np.union1d(dense.positions, lexical.positions).astype(np.int64)
    if len(union) == 0:
        return []
    cosine = index.reconstruct_batch(union) @ vector
    bm25 = lexical_scores[union] if lexical_scores is not None else np.zeros(len(union), np.float32)
    best_bm25 = float(bm25.max())
    normalized = bm25 / best_bm25 if best_bm25 > 0 else bm25
    fused = dense_weight * cosine + (1.0 - dense_weight) * normalized

    order = _top(fused, top_k)
    if not explain:
        return [Ranked(int(union[i]), float(fused[i])) for i in order]
    dense_ranks, lexical_ranks = dense.ranks(), lexical.ranks()
    return [
        Ranked(int(union[i]), float(fused[i]),
               ScoreParts(float(cosine[i]), dense_ranks.get(int(union[i])), float(bm25[i]),
                          lexical_ranks.get(int(union[i]))))
        for i in order
    ]

