"""Digest lookup of catalog texts and vector reads from flat and HNSW indexes."""

import hashlib

import numpy as np
import pytest

from indexer.artifacts import IndexChoice, build_index
from service.catalog_vectors import TextDigests


def digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def digests_of(texts: list[str]) -> TextDigests:
    keys = np.array([digest(text) for text in texts], dtype="S32")
    order = np.argsort(keys, kind="stable")
    return TextDigests(1, keys[order], np.arange(len(texts), dtype=np.int64)[order])


def test_find_returns_positions_of_known_texts():
    stored = digests_of(["saw", "hammer", "drill", "level"])
    requested = np.array([digest(text) for text in ["drill", "wrench", "saw", "drill"]], dtype="S32")

    found, positions = stored.find(requested)

    assert found.tolist() == [True, False, True, True]
    assert positions.tolist() == [2, 0, 2]


def test_find_in_empty_version():
    found, positions = digests_of([]).find(np.array([digest("saw")], dtype="S32"))

    assert found.tolist() == [False]
    assert positions.size == 0


def test_digest_with_trailing_zero_byte_is_exact():
    # `S32` strips trailing zero bytes, which must not make two digests equal.
    with_zero = b"\x01" * 31 + b"\x00"
    stored = TextDigests(1, np.array([with_zero], dtype="S32"), np.array([7]))

    found, positions = stored.find(np.array([with_zero, b"\x01" * 31 + b"\x02"], dtype="S32"))

    assert found.tolist() == [True, False]
    assert positions.tolist() == [7]


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_reconstruct_batch_returns_added_vectors(kind):
    vectors = np.random.default_rng(3).normal(size=(50, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index, _ = build_index(vectors, IndexChoice(kind, hnsw_m=8))

    read = index.reconstruct_batch(np.array([4, 0, 49], dtype=np.int64))

    assert np.array_equal(read, vectors[[4, 0, 49]])
