"""The holder of the served index version and its swap.

A request takes `holder.current` once and uses that `ServedIndex` to the end, so it never
mixes two versions, nor encodes with one version's model and searches another's index. A
refresh loads a newly activated version completely beside the old one, with the model it
was built with, verifies it, and then replaces the reference in one assignment.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path

import faiss
import structlog
from sqlalchemy.orm import Session, sessionmaker

from indexer import artifacts, versions
from indexer.embedding import TextEncoder
from indexer.errors import ArtifactError
from indexer.hnsw_tuning import served_ef_search
from indexer.lexical import LexicalIndex
from indexer.schema import IndexVersion
from indexer.versions import StoredProducts
from service.filters import CatalogFilters
from service.models import ModelPool
from service.ranking import Ranked, ScoreParts

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class CatalogHit:
    """One stored product found for a query, with its score in the request's ranking mode,
    and its score parts when the request asked for an explanation."""

    product_id: str
    title: str
    category: str
    brand: str
    score: float
    parts: ScoreParts | None = None


@dataclass(frozen=True)
class ServedIndex:
    """A loaded, verified index version: FAISS and BM25 indexes, the products in FAISS
    position order with their filter groups, and the model that encodes its queries."""

    version: int
    index: faiss.Index
    lexical: LexicalIndex
    products: StoredProducts
    filters: CatalogFilters
    built_at: datetime
    encoder: TextEncoder

    @property
    def product_count(self) -> int:
        return len(self.products.ids)

    @cached_property
    def positions(self) -> dict[str, int]:
        """FAISS position of each product id; built on first use, by similar-product lookups."""
        return {product_id: position for position, product_id in enumerate(self.products.ids)}

    def hit(self, ranked: Ranked) -> CatalogHit:
        """Return the stored product at a ranked position, its score rounded to 4 decimals."""
        stored, p = self.products, ranked.position
        parts = ranked.parts
        if parts is not None:
            parts = ScoreParts(_round(parts.dense_score), parts.dense_rank,
                               _round(parts.lexical_score), parts.lexical_rank)
        return CatalogHit(stored.ids[p], stored.titles[p], stored.categories[p], stored.brands[p],
                          round(ranked.score, 4), parts)


def _round(score: float | None) -> float | None:
    return None if score is None else round(score, 4)


@dataclass(frozen=True)
class Rejection:
    """A version the holder refused to serve, and why."""

    version: int
    reason: str


class IndexHolder:
    """Follows the database's active pointer and keeps the matching `ServedIndex`."""

    def __init__(self, sessions: sessionmaker[Session], index_dir: Path,
                 lexical_language: str = "english", hnsw_ef_search: int = 0) -> None:
        self.sessions = sessions
        self.index_dir = index_dir
        self.lexical_language = lexical_language
        """BM25 language for versions that were stored without a BM25 index."""
        self.hnsw_ef_search = hnsw_ef_search
        self.current: ServedIndex | None = None
        self.rejected: Rejection | None = None
        self.active_exists = False
        self.checked = False
        """Whether a refresh has read the active pointer at least once."""
        self._refresh_lock = threading.Lock()

    def refresh(self, pool: ModelPool) -> None:
        """Load the active version, and its model from `pool`, when it differs from the
        served one; blocking. Then release the models no longer served.

        A version whose artifacts or model fail verification is logged once and recorded
        in `rejected`; the holder keeps serving what it has.
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
                    served = self._load(session, record, pool)
                except ArtifactError as error:
                    self.rejected = Rejection(error.version, error.reason)
                    log.error("version_rejected", index_version=error.version, reason=error.reason,
                              serving=self.current.version if self.current else None)
                    return

            previous = self.current.version if self.current else None
            self.current = served
            self.rejected = None
            log.info("version_swapped", index_version=served.version, previous_version=previous,
                     products=served.product_count, model_version=record.model_version_id)
            pool.release_except({served.encoder.fingerprint})

    def _is_settled(self, version: int) -> bool:
        served = self.current is not None and self.current.version == version
        return served or (self.rejected is not None and self.rejected.version == version)

    def _load(self, session: Session, record: IndexVersion, pool: ModelPool) -> ServedIndex:
        if record.artifact_checksum is None:
            raise ArtifactError(record.id, "the database records no artifact checksum")
        folder = self.index_dir / artifacts.version_folder_name(record.id)
        loaded = artifacts.read_version(folder, record.id, record.artifact_checksum)
        if loaded.manifest["model"]["fingerprint"] != record.model_fingerprint:
            raise ArtifactError(record.id, "manifest names another model than the database")
        model = pool.for_version(session, record)

        if isinstance(loaded.index, faiss.IndexHNSW):
            loaded.index.hnsw.efSearch = served_ef_search(self.hnsw_ef_search, loaded.manifest["index"])
        products = versions.load_products(session, record.id)
        if len(products.ids) != loaded.index.ntotal:
            raise ArtifactError(
                record.id, f"index holds {loaded.index.ntotal} vectors but the database "
                f"{len(products.ids)} products",
            )
        lexical_index = loaded.lexical
        if lexical_index is None:
            # Versions written before versions stored BM25 get it built from their products.
            template = loaded.manifest["catalog"]["text_template"]
            lexical_index = LexicalIndex.build(versions.load_texts(session, record.id, template),
                                               self.lexical_language)
            log.info("lexical_index_built", index_version=record.id, products=len(products.ids))
        filters = CatalogFilters(products.categories, products.brands,
                                 versions.load_attributes(session, record.id))
        return ServedIndex(record.id, loaded.index, lexical_index, products, filters,
                           record.created_at, model.encoder)
