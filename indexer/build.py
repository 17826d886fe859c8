"""The build job: catalog file in, verified index version out.

Steps: load and validate the catalog, record a `building` version, encode, write the
version folder atomically, record the products and mark the version `ready` in one
transaction, and activate it when asked. A failure after the version is recorded marks
it `failed` and removes its folder, so nothing half-written can be activated.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import structlog
from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from indexer import artifacts, versions
from indexer.catalog import Catalog, ColumnMap, RowProblem, load_catalog
from indexer.embedding import Embedder
from indexer.errors import CatalogError, InvalidCatalogError
from indexer.schema import IndexVersion, Product

log = structlog.get_logger(__name__)

INSERT_BATCH = 5000
"""Product rows per INSERT statement; keeps statements well under driver parameter limits."""


@dataclass(frozen=True)
class BuildRequest:
    """Build input: a catalog file and how to read it."""

    catalog: Path
    columns: ColumnMap = field(default_factory=ColumnMap)
    format: str | None = None
    skip_invalid: bool = False
    activate: bool = False
    progress: bool = False


@dataclass(frozen=True)
class BuildContext:
    """Shared build dependencies: the database, the model, the version folder, the text template."""

    sessions: sessionmaker[Session]
    load_embedder: Callable[[], Embedder]
    """Returns the model; called only once the catalog is valid, since loading takes seconds."""
    index_dir: Path
    template: str


@dataclass(frozen=True)
class BuildReport:
    """What a successful build published."""

    version: int
    path: Path
    product_count: int
    skipped: list[RowProblem]
    truncated_count: int
    timings: dict[str, float]
    activated: bool

    @property
    def seconds(self) -> float:
        return sum(self.timings.values())


def build_version(request: BuildRequest, context: BuildContext) -> BuildReport:
    """Build, publish and optionally activate a new index version.

    Raises `CatalogError` when the file cannot be read or has no valid product, and
    `InvalidCatalogError` when rows are invalid and `skip_invalid` is off; in both cases
    nothing is written. Other failures mark the version `failed` and re-raise.
    """
    started = time.perf_counter()
    template, sessions = context.template, context.sessions
    catalog = load_catalog(request.catalog, request.columns, template, request.format)
    if catalog.problems and not request.skip_invalid:
        raise InvalidCatalogError(str(request.catalog), catalog.problems)
    if not catalog.products:
        raise CatalogError(f"{request.catalog} has no valid products")
    texts = [product.text(template) for product in catalog.products]
    timings = {"load_seconds": time.perf_counter() - started}

    step = time.perf_counter()
    embedder = context.load_embedder()
    truncated = embedder.count_truncated(texts)
    timings["model_seconds"] = time.perf_counter() - step

    version = _start_version(sessions, embedder, str(request.catalog.resolve()), catalog.checksum)
    log.info("build_started", index_version=version, products=len(texts),
             skipped=len(catalog.problems), catalog=str(request.catalog))
    try:
        path = _publish(version, catalog, texts, truncated, request, context, timings)
    except BaseException as error:
        _fail_version(context, version, error)
        raise

    if request.activate:
        with sessions.begin() as session:
            versions.activate(session, version)
        log.info("version_activated", index_version=version)
    return BuildReport(version, path, len(texts), catalog.problems, truncated, timings,
                       request.activate)


def _publish(version: int, catalog: Catalog, texts: list[str], truncated: int,
             request: BuildRequest, context: BuildContext, timings: dict[str, float]) -> Path:
    """Encode, write the version folder, then record products and `ready` in one transaction."""
    embedder = context.load_embedder()
    step = time.perf_counter()
    vectors = embedder.encode(texts, progress=request.progress)
    timings["encode_seconds"] = time.perf_counter() - step

    step = time.perf_counter()
    index, index_description = artifacts.build_flat_index(vectors)
    manifest = {
        "model": {"name": embedder.name, "path": str(embedder.path),
                  "fingerprint": embedder.fingerprint, "dimension": embedder.dimension,
                  "max_seq_length": embedder.max_seq_length},
        "embedding": {"normalized": True, "metric": "inner_product", "dtype": "float32"},
        "index": index_description,
        "products": {"count": len(texts), "skipped": len(catalog.problems), "truncated": truncated},
        "catalog": {"path": str(request.catalog.resolve()), "format": catalog.format,
                    "sha256": catalog.checksum, "text_template": context.template},
    }
    path, manifest_checksum = artifacts.write_version(context.index_dir, version, index, manifest)
    timings["write_seconds"] = time.perf_counter() - step

    step = time.perf_counter()
    with context.sessions.begin() as session:
        rows = [
            {"version_id": version, "position": position, "product_id": product.id,
             "title": product.title, "description": product.description,
             "category": product.category, "brand": product.brand,
             "attributes": product.attributes,
             "text_sha256": hashlib.sha256(text.encode()).hexdigest()}
            for position, (product, text) in enumerate(zip(catalog.products, texts))
        ]
        for start in range(0, len(rows), INSERT_BATCH):
            session.execute(insert(Product), rows[start:start + INSERT_BATCH])
        record = session.get_one(IndexVersion, version)
        timings["record_seconds"] = time.perf_counter() - step
        record.status = "ready"
        record.finished_at = datetime.now(UTC)
        record.index_type = index_description["type"]
        record.product_count = len(texts)
        record.skipped_count = len(catalog.problems)
        record.truncated_count = truncated
        record.artifact_path = str(path.resolve())
        record.artifact_checksum = manifest_checksum
        record.build_seconds = sum(timings.values())
    log.info("build_finished", index_version=version, products=len(texts),
             duration_ms=round(record.build_seconds * 1000), path=str(path))
    return path


def _start_version(sessions: sessionmaker[Session], embedder: Embedder, source: str,
                   checksum: str) -> int:
    with sessions.begin() as session:
        record = IndexVersion(
            status="building", created_at=datetime.now(UTC), model_name=embedder.name,
            model_fingerprint=embedder.fingerprint, dimension=embedder.dimension,
            source_path=source, source_checksum=checksum, skipped_count=0,
        )
        session.add(record)
        session.flush()
        return record.id


def _fail_version(context: BuildContext, version: int, error: BaseException) -> None:
    artifacts.remove_version_folder(context.index_dir, version)
    reason = f"{type(error).__name__}: {error}"
    with context.sessions.begin() as session:
        record = session.get_one(IndexVersion, version)
        record.status = "failed"
        record.finished_at = datetime.now(UTC)
        record.error = reason[:2000]
    log.error("build_failed", index_version=version, error=reason)
