"""Stored vectors of catalog products, found by their embedded text, for ad-hoc `/similarity`.

A posted product text that equals the embedded text of a product in the served version
(the text the build rendered with its template) gets that product's vector from the
FAISS index instead of being encoded. Texts are matched by SHA-256, the digest that the
build stores per product, so the lookup needs no product texts in memory: 40 bytes per
product (32 MB and 8 MB at 1,000,000 products), loaded once per served version.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from indexer.schema import Product
from service import metrics
from service.holder import ServedIndex

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class TextDigests:
    """The products of one version by text: sorted SHA-256 digests, shape (n,), dtype `S32`,
    and the FAISS position of each, shape (n,), int64."""

    version: int
    digests: np.ndarray
    positions: np.ndarray

    def find(self, digests: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return a boolean mask of the `digests` found and the FAISS positions of those found."""
        if len(self.digests) == 0:
            return np.zeros(len(digests), dtype=bool), np.zeros(0, dtype=np.int64)
        at = np.minimum(np.searchsorted(self.digests, digests), len(self.digests) - 1)
        found = self.digests[at] == digests
        return found, self.positions[at[found]]


class CatalogVectors:
    """Reads the vectors of catalog products whose embedded text equals a posted text.

    Keeps the digests of the last version requested. A request for another version loads
    that version's digests from the database.
    """

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._digests: TextDigests | None = None
        self._lock = threading.Lock()

    def prepare(self, served: ServedIndex) -> TextDigests:
        """Load the digests of `served` unless they are loaded already; blocking."""
        with self._lock:
            if self._digests is None or self._digests.version != served.version:
                self._digests = self._load(served.version)
            return self._digests

    def find(self, served: ServedIndex, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Return the stored vector of each text in `texts` that is a product text of `served`.

        Vectors are float32 of shape (dimension,), as the build encoded them. Every text
        looked up counts as a hit or a miss in `catalog_search_catalog_vector_requests_total`.
        """
        digests = self.prepare(served)
        keys = np.array([hashlib.sha256(text.encode()).digest() for text in texts], dtype="S32")
        found, positions = digests.find(keys)
        metrics.CATALOG_VECTOR_REQUESTS.labels("hit").inc(int(found.sum()))
        metrics.CATALOG_VECTOR_REQUESTS.labels("miss").inc(len(texts) - int(found.sum()))
        if not len(positions):
            return {}

        # Flat and HNSW indexes both keep the full vectors (HNSW in its flat storage), so
        # `reconstruct_batch` returns exactly what the build added.
        vectors = served.index.reconstruct_batch(positions)
        matched = [text for text, hit in zip(texts, found, strict=True) if hit]
        return dict(zip(matched, vectors, strict=True))

    def _load(self, version: int) -> TextDigests:
        with self._sessions() as session:
            rows = session.execute(
                select(Product.text_sha256, Product.position).where(Product.version_id == version)
            ).all()
        digests = np.array([bytes.fromhex(digest) for digest, _ in rows], dtype="S32")
        positions = np.array([position for _, position in rows], dtype=np.int64)
        # NumPy compares `S32` values with trailing zero bytes stripped on both sides, and
        # every digest is 32 bytes long, so equal values still mean equal digests.
        order = np.argsort(digests, kind="stable")
        log.info("catalog_digests_loaded", index_version=version, products=len(rows))
        return TextDigests(version, digests[order], positions[order])
