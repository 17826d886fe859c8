"""The micro-batcher with a stand-in encoder whose calls the test controls."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from service.batching import EncodeBatcher


class ControlledEncoder:
    """Encodes a text as a one-hot vector of its length. The first call waits for `release`,
    and a text "fail" raises, as a model failure would."""

    fingerprint = "f" * 64
    dimension = 8

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.started = threading.Event()
        self.release = threading.Event()

    def encode(self, texts):
        self.calls.append(list(texts))
        self.started.set()
        self.release.wait(timeout=10)
        if "fail" in texts:
            raise RuntimeError("injected model failure")
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            vectors[row, len(text) % self.dimension] = 1
        return vectors


@pytest.fixture
def encoder():
    return ControlledEncoder()


def submit_while_busy(batcher, encoder, requests):
    """Occupy the worker with one request, queue `requests`, then let the model run."""
    with ThreadPoolExecutor(max_workers=len(requests) + 1) as pool:
        first = pool.submit(batcher.encode, ["first"])
        assert encoder.started.wait(timeout=10)
        queued = [pool.submit(batcher.encode, texts) for texts in requests]
        while batcher._queue.qsize() < len(requests):
            threading.Event().wait(0.01)
        encoder.release.set()
        return first, queued


def test_queued_requests_share_one_model_call(encoder):
    batcher = EncodeBatcher(encoder, max_wait_seconds=0, max_texts=100)

    first, queued = submit_while_busy(batcher, encoder, [["a", "bb"], ["bb", "ccc"]])

    assert first.result().shape == (1, 8)
    assert [future.result().shape for future in queued] == [(2, 8), (2, 8)]
    assert encoder.calls == [["first"], ["a", "bb", "ccc"]]
    batcher.close()


def test_lone_request_does_not_wait_for_neighbours(encoder):
    # A wait of an hour would hold a lone request that long if the batcher waited for company.
    batcher = EncodeBatcher(encoder, max_wait_seconds=3600, max_texts=100)
    encoder.release.set()
    with ThreadPoolExecutor(max_workers=1) as pool:
        vectors = pool.submit(batcher.encode, ["alone"]).result(timeout=30)

    assert vectors.shape == (1, 8)
    assert encoder.calls == [["alone"]]
    batcher.close()


def test_queued_requests_wait_for_more(encoder):
    # Two requests queue while the model runs: their batch waits, and a third request that
    # arrives during that wait joins it.
    batcher = EncodeBatcher(encoder, max_wait_seconds=3600, max_texts=3)
    with ThreadPoolExecutor(max_workers=4) as pool:
        first = pool.submit(batcher.encode, ["first"])
        assert encoder.started.wait(timeout=10)
        queued = [pool.submit(batcher.encode, texts) for texts in (["a"], ["bb"])]
        while batcher._queue.qsize() < 2:
            threading.Event().wait(0.01)
        encoder.release.set()
        first.result(timeout=30)
        while len(encoder.calls) < 1 or batcher._queue.qsize():
            threading.Event().wait(0.01)
        late = pool.submit(batcher.encode, ["ccc"])

        results = [future.result(timeout=30) for future in [*queued, late]]

    assert [vectors.shape for vectors in results] == [(1, 8)] * 3
    assert encoder.calls == [["first"], ["a", "bb", "ccc"]]
    batcher.close()


def test_rows_follow_each_request_order(encoder):
    batcher = EncodeBatcher(encoder, max_wait_seconds=0, max_texts=100)

    _, queued = submit_while_busy(batcher, encoder, [["ccc", "a"], ["a"]])

    assert queued[0].result().argmax(axis=1).tolist() == [3, 1]
    assert queued[1].result().argmax(axis=1).tolist() == [1]
    batcher.close()


def test_failing_request_spares_batch_neighbours(encoder):
    batcher = EncodeBatcher(encoder, max_wait_seconds=0, max_texts=100)

    _, queued = submit_while_busy(batcher, encoder, [["a"], ["fail"], ["bb"]])

    assert queued[0].result().shape == (1, 8)
    assert queued[2].result().shape == (1, 8)
    with pytest.raises(RuntimeError, match="injected model failure"):
        queued[1].result()
    assert ["a", "fail", "bb"] in encoder.calls
    batcher.close()


def test_text_limit_splits_batches(encoder):
    batcher = EncodeBatcher(encoder, max_wait_seconds=0, max_texts=2)

    _, queued = submit_while_busy(batcher, encoder, [["a", "bb"], ["ccc"]])

    assert [future.result().shape for future in queued] == [(2, 8), (1, 8)]
    assert encoder.calls == [["first"], ["a", "bb"], ["ccc"]]
    batcher.close()


def test_empty_request_needs_no_model_call(encoder):
    batcher = EncodeBatcher(encoder, max_wait_seconds=0, max_texts=100)

    assert batcher.encode([]).shape == (0, 8)
    assert encoder.calls == []
    batcher.close()


def test_closed_batcher_still_encodes(encoder):
    """A request that took a released model's encoder still gets its vectors."""
    encoder.release.set()
    batcher = EncodeBatcher(encoder, max_wait_seconds=0.0, max_texts=64)
    batcher.close()

    vectors = batcher.encode(["abc", "de"])

    assert vectors.shape == (2, encoder.dimension)
    assert encoder.calls == [["abc", "de"]]
