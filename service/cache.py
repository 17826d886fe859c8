"""A bounded LRU cache of text embeddings, shared by queries and ad-hoc products."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from indexer.embedding import TextEncoder
from service import metrics


class EmbeddingCache:
    """Maps (model fingerprint, text) to its vector, evicting the least recently used entry.

    A size of 0 turns caching off. Vectors are read-only views: callers copy before writing.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def encode(self, encoder: TextEncoder, texts: Sequence[str]) -> np.ndarray:
        """Return vectors of shape (len(texts), dimension), float32, encoding only unseen texts."""
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for text in dict.fromkeys(texts):
                vector = self._entries.get((encoder.fingerprint, text))
                if vector is not None:
                    self._entries.move_to_end((encoder.fingerprint, text))
                    found[text] = vector
        missing = [text for text in dict.fromkeys(texts) if text not in found]
        misses = sum(text not in found for text in texts)
        metrics.CACHE_REQUESTS.labels("hit").inc(len(texts) - misses)
        metrics.CACHE_REQUESTS.labels("miss").inc(misses)

        if missing:
            encoded = encoder.encode(missing)
            encoded.setflags(write=False)
            for text, vector in zip(missing, encoded, strict=True):
                found[text] = vector
            self._store(encoder.fingerprint, missing, encoded)
        if not texts:
            return np.zeros((0, encoder.dimension), dtype=np.float32)
        return np.stack([found[text] for text in texts])

    def _store(self, fingerprint: str, texts: list[str], vectors: np.ndarray) -> None:
        if self.size == 0:
            return
        with self._lock:
            for text, vector in zip(texts, vectors, strict=True):
                self._entries[(fingerprint, text)] = vector
                self._entries.move_to_end((fingerprint, text))
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
