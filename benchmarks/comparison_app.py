"""The HTTP front of the comparison servers: the baseline and txtai behind our API's shapes.

`create_app` serves `POST /api/v1/search` and `POST /api/v1/similarity` with the request
and response bodies of `service.schemas` and the same limits, so `http_load.py` drives
these servers as it drives the service. A `Backend` does the work: encoding, ranking and
matching. The catalog is the active index version of a data folder: its vectors are read
from the version's `index.faiss` and its product rows from the metadata database, so no
server encodes the catalog again.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import uvicorn
from litestar import Litestar, get, post
from litestar.exceptions import ValidationException
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK
from sqlalchemy import select

from indexer import artifacts, versions
from indexer.database import create_database_engine, session_factory
from indexer.schema import Product
from indexer.settings import Settings
from service.schemas import (
    Health,
    Match,
    QueryMatches,
    SearchMatch,
    SearchRequest,
    SearchResponse,
    SearchResult,
    SimilarityRequest,
    SimilarityResponse,
    check_texts,
    check_top_k,
)

Ranking = list[list[tuple[int, float]]]
"""Per query, (row, cosine score) pairs, best first: rows of the catalog or of the posted products."""


class Backend(Protocol):
    def search(self, queries: list[str], top_k: int) -> Ranking: ...

    def match(self, queries: list[str], products: list[str], top_k: int) -> Ranking: ...


@dataclass(frozen=True)
class CatalogSnapshot:
    """The active version: vectors of shape (n, d), float32, and product rows in FAISS order."""

    version: int
    vectors: np.ndarray
    products: list[Product]


def load_active_catalog(settings: Settings) -> CatalogSnapshot:
    """Read the active version's verified vectors and its product rows.

    Raises `SystemExit` when no version is active.
    """
    engine = create_database_engine(settings.database_url)
    try:
        with session_factory(engine)() as session:
            active = versions.get_active(session)
            if active is None:
                raise SystemExit(f"no active index version in {settings.database_url}; activate one with "
                                 "`python -m indexer build --activate` or synthetic_catalog.py")
            record = active.version
            loaded = artifacts.read_version(Path(record.artifact_path), record.id,
                                            record.artifact_checksum)
            products = list(session.scalars(
                select(Product).where(Product.version_id == record.id).order_by(Product.position)))
            session.expunge_all()
    finally:
        engine.dispose()
    vectors = loaded.index.reconstruct_n(0, loaded.index.ntotal)
    return CatalogSnapshot(record.id, np.ascontiguousarray(vectors, dtype=np.float32), products)


def top_rows(scores: np.ndarray, top_k: int) -> Ranking:
    """Rank each row of a (queries, candidates) score matrix: best `top_k`, ties by lower row."""
    ranking = []
    for row in scores:
        count = min(top_k, len(row))
        chosen = np.argpartition(-row, count - 1)[:count]
        ordered = chosen[np.lexsort((chosen, -row[chosen]))]
        ranking.append([(int(position), round(float(row[position]), 4)) for position in ordered])
    return ranking


def create_app(backend: Backend, catalog: CatalogSnapshot, settings: Settings) -> Litestar:
    """Build the app; the backend's methods run in worker threads, one per request."""

    @get("/api/v1/health", sync_to_thread=False)
    def health() -> Health:
        return Health("healthy")

    @get("/api/v1/ready", sync_to_thread=False)
    def ready() -> Health:
        # The model and the catalog are loaded before the server listens.
        return Health("ready")

    @post("/api/v1/search", status_code=HTTP_200_OK, sync_to_thread=True)
    def search(data: JSONBody[SearchRequest]) -> SearchResponse:
        check_texts("queries", data.queries, settings.max_queries, settings)
        check_top_k(data.top_k, settings)
        if data.mode not in (None, "dense"):
            _reject("mode", "must be dense: this server ranks by embeddings only")
        if data.filters is not None or data.min_score is not None or data.explain:
            _reject("filters", "filters, min_score and explain are not supported by this server")

        ranking = backend.search(data.queries, data.top_k)
        results = [SearchResult(query, [_search_match(catalog.products[row], score) for row, score in hits])
                   for query, hits in zip(data.queries, ranking, strict=True)]
        return SearchResponse(catalog.version, "dense", results)

    @post("/api/v1/similarity", status_code=HTTP_200_OK, sync_to_thread=True)
    def similarity(data: JSONBody[SimilarityRequest]) -> SimilarityResponse:
        check_texts("text", data.text, settings.max_queries, settings)
        check_top_k(data.top_k, settings)
        if data.products is None:
            ranking = backend.search(data.text, data.top_k)
            matched = [[Match(catalog.products[row].title, score, catalog.products[row].product_id)
                        for row, score in hits] for hits in ranking]
        else:
            check_texts("products", data.products, settings.max_products, settings)
            products = data.products
            ranking = backend.match(data.text, products, data.top_k)
            matched = [[Match(products[row], score) for row, score in hits] for hits in ranking]

        results = [QueryMatches(query, matches) for query, matches in zip(data.text, matched, strict=True)]
        version = catalog.version if data.products is None else None
        return SimilarityResponse(results[0].query, results[0].matches, results, version)

    return Litestar(route_handlers=[health, ready, search, similarity])


def _search_match(product: Product, score: float) -> SearchMatch:
    return SearchMatch(product.product_id, product.title, product.category, product.brand, score)


def _reject(key: str, message: str) -> None:
    raise ValidationException(detail=f"Invalid request: {key} {message}",
                              extra=[{"key": key, "message": message, "source": "body"}])


def run_server(description: str, name: str,
               make_backend: Callable[[str, CatalogSnapshot, int, int], Backend]) -> None:
    """Parse `--port` and `--data-dir`, load the active catalog and the backend, and serve
    on 127.0.0.1 until the process is stopped."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=8000, help="TCP port on 127.0.0.1")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="data folder of the index versions (default: CATALOG_SEARCH_DATA_DIR)")
    arguments = parser.parse_args()
    settings = Settings.from_env(**({"data_dir": arguments.data_dir} if arguments.data_dir else {}))

    catalog = load_active_catalog(settings)
    backend = make_backend(settings.model, catalog, settings.encode_batch_size, settings.faiss_threads)
    print(f"{name} serving version {catalog.version} ({len(catalog.products):,} products) "
          f"on 127.0.0.1:{arguments.port}", flush=True)
    uvicorn.run(create_app(backend, catalog, settings), host="127.0.0.1", port=arguments.port,
                log_level="warning")
