"""The efSearch a build chooses from measured recall@10."""

import numpy as np
import pytest

from indexer import artifacts
from indexer.hnsw_tuning import (
    EF_SEARCH_LADDER,
    UNMEASURED_EF_SEARCH,
    choose_ef_search,
    sample_queries,
    served_ef_search,
)


@pytest.mark.parametrize(("recalls", "expected_ef", "expected_recall"), [
    ({16: 0.99}, 16, 0.99),
    ({16: 0.90, 32: 0.97, 64: 0.98}, 64, 0.98),
    ({16: 0.5, 32: 0.6, 64: 0.7, 128: 0.8, 256: 0.9, 512: 0.95, 1024: 0.97}, 1024, 0.97),
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

    assert description["recall_at_10"] >= 0.98
    assert description["recall_target"] == 0.98
    assert description["recall_queries"] == 200
    assert index.hnsw.efSearch == description["ef_search"]
    assert description["recall_by_ef_search"][str(description["ef_search"])] == description["recall_at_10"]
    smaller = [ef for ef in EF_SEARCH_LADDER if ef < description["ef_search"]]
    assert all(description["recall_by_ef_search"][str(ef)] < 0.98 for ef in smaller)


@pytest.mark.parametrize(("setting", "description", "expected"), [
    (0, {"type": "IndexHNSWFlat", "ef_search": 64}, 64),
    (300, {"type": "IndexHNSWFlat", "ef_search": 64}, 300),
    (0, {"type": "IndexHNSWFlat"}, UNMEASURED_EF_SEARCH),
    (40, {"type": "IndexHNSWFlat"}, 40),
])
def test_served_ef_search(setting, description, expected):
    assert served_ef_search(setting, description) == expected
