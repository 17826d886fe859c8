from __future__ import annotations

from datetime import UTC, datetime

import faiss
import numpy as np

from indexer.versions import StoredProducts
from service.holder import ServedIndex


def served_with(vectors: list[list[float]], ids: list[str]) -> ServedIndex:
    array = np.asarray(vectors, dtype=np.float32)
    array /= np.linalg.norm(array, axis=1, keepdims=True)
    index = faiss.IndexFlatIP(array.shape[1])
    index.add(array)
    products = StoredProducts(ids, [f"title {i}" for i in ids], ["Saws"] * len(ids), ["Acme"] * len(ids))
    return ServedIndex(1, index, products, datetime.now(UTC))


def test_top_k_above_count_returns_all_without_padding():
    served = served_with([[1, 0], [0, 1], [1, 1]], ["a", "b", "c"])

    hits = served.search(np.asarray([[1, 0]], dtype=np.float32), top_k=10)[0]

    assert [hit.product_id for hit in hits] == ["a", "c", "b"]


def test_scores_are_rounded_cosines():
    served = served_with([[1, 0], [0, 1]], ["a", "b"])

    hits = served.search(np.asarray([[1, 0]], dtype=np.float32), top_k=2)[0]

    assert [hit.score for hit in hits] == [1.0, 0.0]


def test_negative_scores_are_returned():
    served = served_with([[1, 0], [-1, 0]], ["a", "b"])

    hits = served.search(np.asarray([[1, 0]], dtype=np.float32), top_k=2)[0]

    assert hits[1].score == -1.0


def test_ties_are_ordered_by_product_id():
    served = served_with([[1, 0], [1, 0], [1, 0]], ["c", "a", "b"])

    hits = served.search(np.asarray([[1, 0]], dtype=np.float32), top_k=3)[0]

    assert [hit.product_id for hit in hits] == ["a", "b", "c"]


def test_one_result_list_per_query():
    served = served_with([[1, 0], [0, 1]], ["a", "b"])

    results = served.search(np.asarray([[1, 0], [0, 1]], dtype=np.float32), top_k=1)

    assert [[hit.product_id for hit in hits] for hits in results] == [["a"], ["b"]]


def test_hits_carry_category_and_brand():
    served = served_with([[1, 0]], ["a"])

    hit = served.search(np.asarray([[1, 0]], dtype=np.float32), top_k=1)[0][0]

    assert (hit.title, hit.category, hit.brand) == ("title a", "Saws", "Acme")
