"""The embedding cache on the real model: same vectors, bounded size, hit and miss counts."""

from __future__ import annotations

import numpy as np
import pytest

from service import metrics
from service.cache import EmbeddingCache

pytestmark = [pytest.mark.integration, pytest.mark.sqlite_only]


def counted(result: str) -> float:
    return metrics.CACHE_REQUESTS.labels(result)._value.get()


def test_cached_vectors_equal_fresh_ones(embedder):
    cache = EmbeddingCache(100)
    texts = ["circular saw", "claw hammer", "circular saw"]

    first = cache.encode(embedder, texts)
    second = cache.encode(embedder, texts)

    assert first.shape == (3, embedder.dimension)
    assert np.array_equal(first, second)
    assert np.array_equal(first, embedder.encode(texts))


def test_hits_and_misses_are_counted(embedder):
    cache = EmbeddingCache(100)
    hits, misses = counted("hit"), counted("miss")

    cache.encode(embedder, ["tape measure", "level"])
    cache.encode(embedder, ["tape measure", "chisel"])

    assert counted("miss") - misses == 3
    assert counted("hit") - hits == 1


def test_least_recently_used_is_evicted(embedder):
    cache = EmbeddingCache(2)
    cache.encode(embedder, ["a saw", "a drill"])
    cache.encode(embedder, ["a saw"])
    cache.encode(embedder, ["a wrench"])
    misses = counted("miss")

    cache.encode(embedder, ["a saw", "a wrench"])
    cache.encode(embedder, ["a drill"])

    assert counted("miss") - misses == 1


def test_size_zero_keeps_nothing(embedder):
    cache = EmbeddingCache(0)
    cache.encode(embedder, ["pliers"])
    misses = counted("miss")

    cache.encode(embedder, ["pliers"])

    assert counted("miss") - misses == 1


def test_empty_list_gives_empty_array(embedder):
    assert EmbeddingCache(10).encode(embedder, []).shape == (0, embedder.dimension)
