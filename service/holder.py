"""The holder of the served index version and its swap.

A request takes `holder.current` once and uses that `ServedIndex` to the end, so it never
mixes two versions. A refresh loads a newly activated version completely beside the old
one, verifies it, and then replaces the reference in one assignment.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import faiss
import numpy as np
import structlog
from sqlalchemy.orm import Session, sessionmaker

from indexer import artifacts, versions
from indexer.embedding import Embedder
from indexer.errors import ArtifactError
from indexer.schema import IndexVersion
from indexer.versions import StoredProducts

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class CatalogHit:
    """One stored product found for a query; `score` is the cosine similarity."""

    product_id: str
    title: str
    category: str
    brand: str
    score: float


@dataclass(frozen=True)
class ServedIndex:
    """A loaded, verified index version with its products in FAISS position order."""

    version: int
    index: faiss.Index
    products: StoredProducts
    built_at: datetime

    @property
    def product_count(self) -> int:
        return len(self.products.ids)

    def search(self, vectors: np.ndarray, top_k: int) -> list[list[CatalogHit]]:
        """Return up to `top_k` hits per query row of `vectors` (shape (n, d), normalised float32).

        Scores are rounded to 4 decimals and ties are ordered by product id, so output is
        stable. Fewer than `top_k` hits come back only when the index contains fewer products.
        """
        k = min(top_k, self.product_count)
        if k == 0:
            return [[] for _ in range(len(vectors))]
        scores, positions = self.index.search(vectors, k)
        stored = self.products
        results = []
        for row_scores, row_positions in zip(scores, positions, strict=True):
            # FAISS pads missing results with position -1, which would index the last product.
            hits = [
                CatalogHit(stored.ids[p], stored.titles[p], stored.categories[p], stored.brands[p],
                           round(float(s), 4))
                for s, p in zip(row_scores, row_positions, strict=True) if p >= 0
            ]
            hits.sort(key=lambda hit: (-hit.score, hit.product_id))
            results.append(hits)
        return results


@dataclass(frozen=True)
class Rejection:
    """A version the holder refused to serve, and why."""

    version: int
    reason: str


class IndexHolder:
    """Follows the database's active pointer and keeps the matching `ServedIndex`."""

    def __init__(self, sessions: sessionmaker[Session], index_dir: Path) -> None:
        self.sessions = sessions
        self.index_dir = index_dir
        self.current: ServedIndex | None = None
        self.rejected: Rejection | None = None
        self.active_exists = False
        self.checked = False
        """Whether a refresh has read the active pointer at least once."""
        self._refresh_lock = threading.Lock()

    def refresh(self, embedder: Embedder) -> None:
        """Load the active version when it differs from the served one; blocking.

        A version whose artifacts fail verification is logged once and recorded in
        `rejected`; the holder keeps serving what it has.
        """
        with self._refresh_lock:
            with self.sessions() as session:
                active = versions.get_active(session)
                self.active_exists = active is not None
                self.checked = True
                if active is None or self._is_settled(active.version.id):
                    return
                record = active.version
                try:
                    served = self._load(session, record, embedder)
                except ArtifactError as error:
                    self.rejected = Rejection(error.version, error.reason)
                    log.error("version_rejected", index_version=error.version, reason=error.reason,
                              serving=self.current.version if self.current else None)
                    return

            previous = self.current.version if self.current else None
            self.current = served
            self.rejected = None
            log.info("version_swapped", index_version=served.version, previous_version=previous,
                     products=served.product_count)

    def _is_settled(self, version: int) -> bool:
        served = self.current is not None and self.current.version == version
        return served or (self.rejected is not None and self.rejected.version == version)

    def _load(self, session: Session, record: IndexVersion, embedder: Embedder) -> ServedIndex:
        if record.model_fingerprint != embedder.fingerprint or record.dimension != embedder.dimension:
            raise ArtifactError(
                record.id, f"built with model {record.model_name} ({record.model_fingerprint[:12]}, "
                f"{record.dimension} dimensions), but the service runs {embedder.name} "
                f"({embedder.fingerprint[:12]}, {embedder.dimension} dimensions)",
            )
        if record.artifact_checksum is None:
            raise ArtifactError(record.id, "the database records no artifact checksum")
        folder = self.index_dir / artifacts.version_folder_name(record.id)
        loaded = artifacts.read_version(folder, record.id, record.artifact_checksum)
        if loaded.manifest["model"]["fingerprint"] != embedder.fingerprint:
            raise ArtifactError(record.id, "manifest names another model than the database")

        products = versions.load_products(session, record.id)
        if len(products.ids) != loaded.index.ntotal:
            raise ArtifactError(
                record.id, f"index holds {loaded.index.ntotal} vectors but the database "
                f"{len(products.ids)} products",
            )
        return ServedIndex(record.id, loaded.index, products, record.created_at)
