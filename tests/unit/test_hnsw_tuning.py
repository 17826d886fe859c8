"""The efSearch a build chooses from measured recall@10."""

import faiss
import numpy as np
import pytest

from indexer import artifacts
from indexer.hnsw_tuning import (
    EF_SEARCH_LADDER,
    QUERY_WORDS,
    UNMEASURED_EF_SEARCH,
    choose_ef_search,
    query_like_texts,
    recall_lower_bound,
    sample_queries,
    served_ef_search,
    tune_ef_search,
)


@pytest.mark.parametrize(("recalls", "expected_ef", "expected_recall"), [
    ({16: 0.99}, 16, 0.99),
    ({16: 0.90, 32: 0.97, 64: 0.98}, 64, 0.98),
    ({16: 0.5, 32: 0.6, 64: 0.7, 128: 0.8, 256: 0.9, 512: 0.95, 1024: 0.97, 2048: 0.975}, 2048, 0.975),
])
def test_smallest_passing_ef_search_is_chosen(recalls, expected_ef, expected_recall):
    tried = []

    def recall_at(ef: int) -> float:
        tried.append(ef)
        return recalls.get(ef, 1.0)

    choice = choose_ef_search(recall_at, 0.98)

    assert choice.ef_search == expected_ef
    assert choice.recall_at_10 == expected_recall
    assert tried == list(EF_SEARCH_LADDER[:len(tried)])
    assert tried[-1] == expected_ef


def test_sample_queries_are_near_but_not_equal():
    vectors = np.random.default_rng(1).normal(size=(1000, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)

    queries = sample_queries(vectors)

    assert queries.shape == (200, 64)
    assert queries.dtype == np.float32
    assert np.allclose(np.linalg.norm(queries, axis=1), 1, atol=1e-5)
    best = (queries @ vectors.T).max(axis=1)
    assert (best < 0.9).all()
    assert np.median(best) > 0.3


def test_hnsw_build_records_measured_recall():
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(40, 32))
    vectors = (centres[rng.integers(0, 40, 4000)] + rng.normal(scale=0.5, size=(4000, 32))).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)

    index, description = artifacts.build_index(vectors, artifacts.IndexChoice("hnsw", hnsw_m=8))

    assert description["recall_at_10"] >= 0.99
    assert description["recall_target"] == 0.98
    assert description["sample_recall_required"] == 0.99
    assert description["recall_queries"] == 200
    assert index.hnsw.efSearch == description["ef_search"]
    assert description["recall_by_ef_search"][str(description["ef_search"])] == description["recall_at_10"]
    smaller = [ef for ef in EF_SEARCH_LADDER if ef < description["ef_search"]]
    assert all(description["recall_by_ef_search"][str(ef)] < 0.99 for ef in smaller)


def test_recall_lower_bound_subtracts_two_standard_errors():
    truth = np.array([[1, 2], [3, 4]])
    found = np.array([[1, 2], [3, 9]])  # recall 1.0 and 0.5: mean 0.75, standard error 0.25

    assert recall_lower_bound(found, truth) == pytest.approx(0.25)
    assert recall_lower_bound(truth, truth) == 1.0
    assert recall_lower_bound(found[:1], truth[:1]) == 1.0


def test_query_like_texts_are_short_distinct_and_repeatable():
    texts = [f"Cordless Drill {n % 7} Kit\nWith battery and case" for n in range(100)] + ["", "Saw"]

    queries = query_like_texts(texts, count=5)

    assert len(queries) == 5
    assert len(set(queries)) == 5
    assert all(query == query.lower() and 0 < len(query.split()) <= QUERY_WORDS for query in queries)
    assert set(queries) <= {f"cordless drill {n % 7} kit" for n in range(100)} | {"saw"}
    assert query_like_texts(texts, count=5) == queries
    assert len(query_like_texts(texts, count=50)) == 8  # 7 drills and the saw; the empty text makes none


class GraphMissingTextNeighbours:
    """A real HNSW graph with an injected fault: below efSearch `needed` it returns wrong
    neighbours for the text sample, as navigation among near ties does."""

    def __init__(self, graph: faiss.IndexHNSWFlat, text_queries: np.ndarray, needed: int) -> None:
        self.graph, self.text_queries, self.needed = graph, text_queries, needed
        self.hnsw = graph.hnsw

    def search(self, queries: np.ndarray, k: int):
        distances, ids = self.graph.search(queries, k)
        if np.array_equal(queries, self.text_queries) and self.hnsw.efSearch < self.needed:
            ids = (ids + 1) % self.graph.ntotal
        return distances, ids


def test_text_queries_count_with_the_lower_recall():
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(2000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    texts = np.ascontiguousarray(vectors[:25] + 0.01, dtype=np.float32)
    texts /= np.linalg.norm(texts, axis=1, keepdims=True)
    graph = faiss.IndexHNSWFlat(32, 16, faiss.METRIC_INNER_PRODUCT)
    graph.add(vectors)

    alone, alone_queries = tune_ef_search(graph, vectors, 0.98)
    faulty = GraphMissingTextNeighbours(graph, texts, needed=512)
    both, both_queries = tune_ef_search(faulty, vectors, 0.98, text_queries=texts)

    assert alone.ef_search < 512
    assert both.ef_search == 512
    assert graph.hnsw.efSearch == 512
    assert both_queries == alone_queries + len(texts)
    assert both.tried[256] < 0.98 <= both.recall_at_10


@pytest.mark.parametrize(("setting", "description", "expected"), [
    (0, {"type": "IndexHNSWFlat", "ef_search": 64}, 64),
    (300, {"type": "IndexHNSWFlat", "ef_search": 64}, 300),
    (0, {"type": "IndexHNSWFlat"}, UNMEASURED_EF_SEARCH),
    (40, {"type": "IndexHNSWFlat"}, 40),
])
def test_served_ef_search(setting, description, expected):
    assert served_ef_search(setting, description) == expected
