"""Micro-batching of concurrent encode calls into one model call.

On a CPU, one forward pass over 16 short texts costs less than 16 passes over one
text, but each request brings only its own few texts. `EncodeBatcher` queues the texts
of concurrent requests: one worker thread takes the first request, waits at most
`max_wait_seconds` for more (or until `max_texts` texts are queued), encodes every
distinct text of the batch once, and hands each request its rows.

The wait pays off only while requests arrive together. A request that finds the queue
empty after a batch of one is encoded at once, so a lone client waits only once, for
the first request after a batch of several. Requests that queue while the model runs, or
a previous batch of several, turn the wait on again.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np
import structlog

from indexer.embedding import TextEncoder
from service import metrics

log = structlog.get_logger(__name__)


@dataclass
class _Request:
    texts: Sequence[str]
    result: Future[np.ndarray] = field(default_factory=Future)


_STOP = object()


class EncodeBatcher:
    """Encodes texts like `Embedder.encode`, gathering concurrent calls into one batch.

    A failed batch is retried request by request, so one request's failure never fails
    the others that shared its batch.
    """

    def __init__(self, embedder: TextEncoder, max_wait_seconds: float, max_texts: int) -> None:
        self.embedder = embedder
        self.fingerprint = embedder.fingerprint
        self.dimension = embedder.dimension
        self.max_wait_seconds = max_wait_seconds
        self.max_texts = max_texts
        self._queue: queue.Queue[_Request | object] = queue.Queue()
        self._closed = False
        self._closing = threading.Lock()
        """Orders `encode`'s put against `close`'s stop, so that no request queues after it."""
        self._thread = threading.Thread(target=self._work, name="encode-batcher", daemon=True)
        self._thread.start()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Return the vectors of `texts`; blocks until the batch that contains them is encoded."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        request = _Request(texts)
        with self._closing:
            queued = not self._closed
            if queued:
                self._queue.put(request)
        if not queued:
            # A request that took the model before it was released finishes without batching.
            return metrics.timed_encode(self.embedder, list(texts))
        return request.result.result()

    def close(self) -> None:
        """Stop the worker after the queued requests; later calls encode without batching."""
        with self._closing:
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join(timeout=30)

    def _work(self) -> None:
        concurrent = False
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            assert isinstance(first, _Request)
            batch = [first]
            wait = self.max_wait_seconds if concurrent or not self._queue.empty() else 0.0
            stop = self._gather(batch, wait)
            concurrent = len(batch) > 1
            self._encode(batch)
            if stop:
                return

    def _gather(self, batch: list[_Request], wait_seconds: float) -> bool:
        """Add queued requests to `batch` until `wait_seconds` or the text limit ends; returns
        True when a stop request was taken."""
        deadline = time.monotonic() + wait_seconds
        count = len(batch[0].texts)
        while count < self.max_texts:
            try:
                remaining = deadline - time.monotonic()
                item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                return False
            if item is _STOP:
                return True
            assert isinstance(item, _Request)
            batch.append(item)
            count += len(item.texts)
        return False

    def _encode(self, batch: list[_Request]) -> None:
        unique = list(dict.fromkeys(text for request in batch for text in request.texts))
        try:
            vectors = metrics.timed_encode(self.embedder, unique)
        except Exception as error:
            if len(batch) == 1:
                log.error("encode_failed", error=repr(error), texts=len(unique))
                batch[0].result.set_exception(error)
                return
            log.warning("encode_batch_failed", error=repr(error), requests=len(batch), texts=len(unique))
            for request in batch:
                self._encode([request])
            return

        row = {text: number for number, text in enumerate(unique)}
        for request in batch:
            request.result.set_result(vectors[[row[text] for text in request.texts]])
