"""Ranking of a served version without the model: vectors are given, texts are indexed by BM25."""

from __future__ import annotations

from datetime import UTC, datetime

import faiss
import numpy as np
import pytest

from indexer.lexical import LexicalIndex
from indexer.settings import Settings
from indexer.versions import StoredProducts
from service.filters import CatalogFilters, Filter
from service.holder import ServedIndex
from service.search import SearchOptions, rank_catalog

SETTINGS = Settings(model="unused")


def served_with(vectors: list[list[float]], ids: list[str], titles: list[str] | None = None,
                brands: list[str] | None = None,
                attributes: list[dict] | None = None) -> ServedIndex:
    array = np.asarray(vectors, dtype=np.float32)
    array /= np.linalg.norm(array, axis=1, keepdims=True)
    index = faiss.IndexFlatIP(array.shape[1])
    index.add(array)
    titles = titles or [f"title {i}" for i in ids]
    brands = brands or ["Acme"] * len(ids)
    products = StoredProducts(ids, titles, ["Saws"] * len(ids), brands)
    filters = CatalogFilters(products.categories, products.brands,
                             attributes or [{} for _ in ids])
    return ServedIndex(1, index, LexicalIndex.build(titles, "english"), products, filters,
                       datetime.now(UTC), NoEncoder())


class NoEncoder:
    """These tests pass query vectors in; a call to encode would be a bug in the test."""

    fingerprint = "none"
    dimension = 0

    def encode(self, texts):
        raise AssertionError("ranking tests give query vectors; nothing may encode")


def query(*rows: list[float]) -> np.ndarray:
    array = np.asarray(rows, dtype=np.float32)
    return array / np.linalg.norm(array, axis=1, keepdims=True)


def ids_of(result) -> list[str]:
    return [hit.product_id for hit in result.hits]


def dense(top_k: int, **options) -> SearchOptions:
    return SearchOptions(top_k, "dense", **options)


def test_top_k_above_count_returns_all_without_padding():
    served = served_with([[1, 0], [0, 1], [1, 1]], ["a", "b", "c"])

    found = rank_catalog(served, ["q"], query([1, 0]), dense(10), SETTINGS)

    assert ids_of(found.results[0]) == ["a", "c", "b"]


def test_scores_are_rounded_cosines():
    served = served_with([[1, 0], [0, 1]], ["a", "b"])

    found = rank_catalog(served, ["q"], query([1, 0]), dense(2), SETTINGS)

    assert [hit.score for hit in found.results[0].hits] == [1.0, 0.0]


def test_negative_scores_are_returned():
    served = served_with([[1, 0], [-1, 0]], ["a", "b"])

    found = rank_catalog(served, ["q"], query([1, 0]), dense(2), SETTINGS)

    assert found.results[0].hits[1].score == -1.0


def test_ties_are_ordered_by_product_id():
    served = served_with([[1, 0], [1, 0], [1, 0]], ["c", "a", "b"])

    found = rank_catalog(served, ["q"], query([1, 0]), dense(3), SETTINGS)

    assert ids_of(found.results[0]) == ["a", "b", "c"]


def test_one_result_list_per_query():
    served = served_with([[1, 0], [0, 1]], ["a", "b"])

    found = rank_catalog(served, ["q1", "q2"], query([1, 0], [0, 1]), dense(1), SETTINGS)

    assert [ids_of(result) for result in found.results] == [["a"], ["b"]]


def test_hits_carry_category_and_brand():
    served = served_with([[1, 0]], ["a"])

    hit = rank_catalog(served, ["q"], query([1, 0]), dense(1), SETTINGS).results[0].hits[0]

    assert (hit.title, hit.category, hit.brand) == ("title a", "Saws", "Acme")


def test_dense_ranking_needs_vectors():
    served = served_with([[1, 0]], ["a"])

    with pytest.raises(ValueError, match="dense ranking needs the query vectors"):
        rank_catalog(served, ["q"], None, dense(1), SETTINGS)


def test_lexical_ranks_by_bm25_without_vectors():
    served = served_with([[1, 0], [0, 1], [1, 1]], ["a", "b", "c"],
                         titles=["Circular saw 7-1/4 in.", "Claw hammer 16 oz.", "Saw blade"])

    found = rank_catalog(served, ["saw"], None, SearchOptions(10, "lexical"), SETTINGS)

    assert set(ids_of(found.results[0])) == {"a", "c"}
    assert all(hit.score > 0 for hit in found.results[0].hits)


def test_lexical_without_known_token_finds_nothing():
    served = served_with([[1, 0]], ["a"], titles=["Circular saw"])

    found = rank_catalog(served, ["zzz"], None, SearchOptions(5, "lexical"), SETTINGS)

    assert found.results[0].hits == []


def test_hybrid_fuses_cosine_and_scaled_bm25():
    # "b" is far from the query vector but the only title with the query's words.
    served = served_with([[1, 0], [0, 1], [1, 0.2]], ["a", "b", "c"],
                         titles=["Hammer", "Drill WM624", "Hammer drill"])
    options = SearchOptions(3, "hybrid", explain=True)

    hits = rank_catalog(served, ["WM624"], query([1, 0]), options, SETTINGS).results[0].hits

    by_id = {hit.product_id: hit for hit in hits}
    parts = {product_id: hit.parts for product_id, hit in by_id.items()}
    assert set(by_id) == {"a", "b", "c"}
    assert parts["b"].lexical_rank == 1
    assert parts["b"].lexical_score > 0
    assert parts["b"].dense_score == pytest.approx(0.0, abs=1e-4)
    assert by_id["b"].score == pytest.approx(0.5 * parts["b"].dense_score + 0.5 * 1.0, abs=1e-4)
    assert parts["a"].lexical_score == 0.0
    assert parts["a"].lexical_rank is None
    assert by_id["a"].score == pytest.approx(0.5 * 1.0, abs=1e-4)
    assert parts["a"].dense_rank == 1


def test_hybrid_weight_is_a_setting():
    served = served_with([[1, 0], [0, 1]], ["a", "b"], titles=["Hammer", "Drill WM624"])
    lexical_only = Settings(model="unused", hybrid_dense_weight=0.0)

    hits = rank_catalog(served, ["WM624"], query([1, 0]), SearchOptions(2, "hybrid"),
                        lexical_only).results[0].hits

    assert [hit.product_id for hit in hits] == ["b", "a"]
    assert [hit.score for hit in hits] == [1.0, 0.0]


def test_explain_off_leaves_parts_empty():
    served = served_with([[1, 0]], ["a"], titles=["Hammer"])

    hit = rank_catalog(served, ["hammer"], query([1, 0]), SearchOptions(1, "hybrid"),
                       SETTINGS).results[0].hits[0]

    assert hit.parts is None


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_narrow_filter_still_returns_top_k(mode):
    count = 1000
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((count, 16)).tolist()
    ids = [f"P{number:04d}" for number in range(count)]
    brands = ["Rare" if number % 200 == 0 else "Common" for number in range(count)]
    served = served_with(vectors, ids, titles=[f"cordless drill {i}" for i in ids], brands=brands)

    found = rank_catalog(served, ["cordless drill"], query(vectors[1]),
                         SearchOptions(5, mode, Filter(brands=["Rare"])), SETTINGS)

    assert found.filter_matches == 5
    assert len(found.results[0].hits) == 5
    assert {hit.brand for hit in found.results[0].hits} == {"Rare"}


def test_filter_fields_combine_and_values_alternate():
    served = served_with(
        [[1, 0]] * 4, ["a", "b", "c", "d"], brands=["X", "Y", "X", "Z"],
        attributes=[{"volts": "18"}, {"volts": 18}, {"volts": "12"}, {"volts": ["18", "20"]}],
    )
    wanted = Filter(brands=["X", "Z"], attributes={"volts": [18]})

    found = rank_catalog(served, ["q"], query([1, 0]), dense(10, filter=wanted), SETTINGS)

    assert ids_of(found.results[0]) == ["a", "d"]
    assert found.filter_matches == 2


def test_filter_without_match_returns_nothing():
    served = served_with([[1, 0]], ["a"])

    found = rank_catalog(served, ["q"], query([1, 0]),
                         dense(5, filter=Filter(categories=["Nails"])), SETTINGS)

    assert found.filter_matches == 0
    assert found.results[0].hits == []


def test_unfiltered_search_reports_no_filter_count():
    served = served_with([[1, 0]], ["a"])

    found = rank_catalog(served, ["q"], query([1, 0]), dense(1), SETTINGS)

    assert found.filter_matches is None


def test_min_score_removes_and_counts():
    served = served_with([[1, 0], [1, 1], [0, 1]], ["a", "b", "c"])

    result = rank_catalog(served, ["q"], query([1, 0]), dense(3, min_score=0.5),
                          SETTINGS).results[0]

    assert ids_of(result) == ["a", "b"]
    assert result.removed == 1
