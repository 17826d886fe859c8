"""The build job: catalog file in, verified index version out.

Steps: load and validate the catalog, then take the build lock and plan the delta
against the active version. Record a `building` version and encode only the texts
without a stored vector. Write the version folder (FAISS and BM25 indexes) atomically,
then record the products in short transactions, mark the version `ready`, and activate
it when asked.

A failure after the version is recorded marks it `failed` and removes its folder and
product rows, so nothing half-written can be activated. The next build cleans up after a
build that was killed outright.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import structlog
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from indexer import artifacts, hnsw_tuning, versions
from indexer.catalog import Catalog, ColumnMap, RowProblem, load_catalog
from indexer.delta import DeltaPlan, plan_delta, text_sha256
from indexer.embedding import Embedder
from indexer.errors import CatalogError, InvalidCatalogError
from indexer.gate import check_model_change
from indexer.lexical import LexicalIndex
from indexer.locking import build_lock
from indexer.schema import IndexVersion
from indexer.settings import PromotionRule

log = structlog.get_logger(__name__)

DRY_RUN_SAMPLE = 64
"""Texts a dry run encodes to measure the model's speed; one batch at the default size."""


@dataclass(frozen=True)
class BuildRequest:
    """Build input: a catalog file and how to read it."""

    catalog: Path
    columns: ColumnMap = field(default_factory=ColumnMap)
    format: str | None = None
    skip_invalid: bool = False
    activate: bool = False
    progress: bool = False
    dry_run: bool = False
    source: str = "build"
    """Source of the activation (`cli`, `build`, ...), recorded in the activation history."""


@dataclass(frozen=True)
class BuildContext:
    """Shared build dependencies: the database, the model, the version folder, the text template."""

    engine: Engine
    sessions: sessionmaker[Session]
    load_embedder: Callable[[], Embedder]
    """Returns the model; called only once the catalog is valid, since loading takes seconds."""
    index_dir: Path
    template: str
    lexical_language: str = "english"
    """Stemmer and stop-word language of the BM25 index."""
    index_choice: artifacts.IndexChoice = field(default_factory=artifacts.IndexChoice)
    promotion: PromotionRule = field(default_factory=PromotionRule)
    """Gate of an activation that changes the model."""


@dataclass(frozen=True)
class DryRunReport:
    """Dry-run result: change counts and the estimated encoding time."""

    plan: DeltaPlan
    product_count: int
    estimated_encode_seconds: float


@dataclass(frozen=True)
class BuildReport:
    """Result of a successful build."""

    version: int
    path: Path
    product_count: int
    skipped: list[RowProblem]
    truncated_count: int
    timings: dict[str, float]
    activated: bool
    plan: DeltaPlan
    held: list[str] = field(default_factory=list)
    """Reasons of the promotion gate for not activating the version, when activation was requested."""

    @property
    def seconds(self) -> float:
        return sum(self.timings.values())


def build_version(request: BuildRequest, context: BuildContext) -> BuildReport | DryRunReport:
    """Build, publish and optionally activate a new index version.

    Holds the build lock throughout, and first cleans up what a killed build left. With
    `request.dry_run` it only plans and returns a `DryRunReport`. Nothing is written when
    it raises `CatalogError` (the file cannot be read or has no valid product),
    `InvalidCatalogError` (invalid rows and `skip_invalid` off) or `BuildLockedError`
    (another build runs). Other failures mark the version `failed` and re-raise.
    """
    started = time.perf_counter()
    catalog = load_catalog(request.catalog, request.columns, context.template, request.format)
    if catalog.problems and not request.skip_invalid:
        raise InvalidCatalogError(str(request.catalog), catalog.problems)
    if not catalog.products:
        raise CatalogError(f"{request.catalog} has no valid products")
    texts = [product.text(context.template) for product in catalog.products]
    hashes = [text_sha256(text) for text in texts]
    timings = {"load_seconds": time.perf_counter() - started}

    with build_lock(context.engine, context.index_dir.parent):
        if not request.dry_run:
            clean_abandoned_builds(context)

        step = time.perf_counter()
        embedder = context.load_embedder()
        with context.sessions() as session:
            plan = plan_delta(session, context.index_dir, [p.id for p in catalog.products], hashes,
                              embedder.fingerprint)
        timings["plan_seconds"] = time.perf_counter() - step
        if request.dry_run:
            return _dry_run(plan, texts, embedder)

        truncated = embedder.count_truncated([texts[position] for position in plan.missing])
        version = _start_version(context, embedder, request, catalog, plan)
        log.info("build_started", index_version=version, products=len(texts),
                 skipped=len(catalog.problems), encode=len(plan.missing),
                 base_version=plan.base_version, catalog=str(request.catalog))
        try:
            path = _publish(version, catalog, texts, hashes, plan, truncated, request, context, timings)
        except BaseException as error:
            _fail_version(context, version, error)
            raise

        held = _activate(context, version, embedder, request) if request.activate else []
    return BuildReport(version, path, len(texts), catalog.problems, truncated, timings,
                       request.activate and not held, plan, held)


def _activate(context: BuildContext, version: int, embedder: Embedder, request: BuildRequest) -> list[str]:
    """Activate the new version unless it changes the model without passing the promotion
    gate. Then the version stays ready, its note records the reasons, and they are returned."""
    with context.sessions.begin() as session:
        reasons = check_model_change(session, embedder, context.promotion)
        if reasons:
            session.get_one(IndexVersion, version).note = "; ".join(reasons)
        else:
            versions.activate(session, version, source=request.source)
    if reasons:
        log.warning("promotion_rejected", index_version=version, reasons=reasons)
    else:
        log.info("version_activated", index_version=version, source=request.source)
    return reasons


def _dry_run(plan: DeltaPlan, texts: list[str], embedder: Embedder) -> DryRunReport:
    """Estimate the encoding time from a sample of the texts that would be encoded."""
    sample = [texts[position] for position in plan.missing[:DRY_RUN_SAMPLE]]
    started = time.perf_counter()
    embedder.encode(sample)
    per_text = (time.perf_counter() - started) / max(len(sample), 1)
    return DryRunReport(plan, len(texts), per_text * len(plan.missing))


def _publish(version: int, catalog: Catalog, texts: list[str], hashes: list[str], plan: DeltaPlan,
             truncated: int, request: BuildRequest, context: BuildContext,
             timings: dict[str, float]) -> Path:
    """Encode what is missing, write the version folder, record the products in short
    transactions, then mark the version `ready`."""
    embedder = context.load_embedder()
    step = time.perf_counter()
    encoded = embedder.encode([texts[position] for position in plan.missing], progress=request.progress)
    vectors = np.empty((len(texts), embedder.dimension), dtype=np.float32)
    for row, digest in enumerate(hashes):
        if digest in plan.reused:
            vectors[row] = plan.reused[digest]
    vectors[plan.missing] = encoded
    timings["encode_seconds"] = time.perf_counter() - step

    step = time.perf_counter()
    text_queries = None
    if context.index_choice.resolve(len(texts)) == "hnsw":
        text_queries = embedder.encode(hnsw_tuning.query_like_texts(texts))
    index, index_description = artifacts.build_index(vectors, context.index_choice, text_queries)
    lexical_index = LexicalIndex.build(texts, context.lexical_language)
    manifest = {
        **embedder.manifest_sections(),
        "index": index_description,
        "products": {"count": len(texts), "skipped": len(catalog.problems), "truncated": truncated,
                     "encoded": len(plan.missing), "reused": len(texts) - len(plan.missing)},
        "catalog": {"path": str(request.catalog.resolve()), "format": catalog.format,
                    "sha256": catalog.checksum, "text_template": context.template},
    }
    path, manifest_checksum = artifacts.write_version(context.index_dir, version, index,
                                                         lexical_index, manifest)
    timings["write_seconds"] = time.perf_counter() - step

    step = time.perf_counter()
    versions.record_products(context.sessions, version, catalog.products, hashes)
    timings["record_seconds"] = time.perf_counter() - step
    with context.sessions.begin() as session:
        record = session.get_one(IndexVersion, version)
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
             encoded=len(plan.missing), duration_ms=round(record.build_seconds * 1000), path=str(path))
    return path


def clean_abandoned_builds(context: BuildContext) -> None:
    """Mark versions left `building` by a dead build as failed and delete their folders.

    Call only while holding the build lock: then no live build owns a `building` version.
    """
    with context.sessions.begin() as session:
        abandoned = list(session.scalars(select(IndexVersion).where(IndexVersion.status == "building")))
        for record in abandoned:
            record.status = "failed"
            record.finished_at = datetime.now(UTC)
            record.error = "the build process ended before the version was ready"
    for record in abandoned:
        artifacts.remove_version_folder(context.index_dir, record.id)
        versions.delete_products(context.sessions, record.id)
        log.warning("abandoned_build_cleaned", index_version=record.id)
    for leftover in context.index_dir.glob(".tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)
        log.warning("temporary_folder_removed", path=str(leftover))


def _start_version(context: BuildContext, embedder: Embedder, request: BuildRequest,
                   catalog: Catalog, plan: DeltaPlan) -> int:
    with context.sessions.begin() as session:
        record = IndexVersion(
            status="building", created_at=datetime.now(UTC), model_name=embedder.name,
            model_fingerprint=embedder.fingerprint, model_version_id=embedder.model_version,
            dimension=embedder.dimension,
            source_path=str(request.catalog.resolve()), source_checksum=catalog.checksum,
            skipped_count=0, base_version_id=plan.base_version, new_count=plan.new,
            changed_count=plan.changed, unchanged_count=plan.unchanged,
            removed_count=plan.removed, encoded_count=len(plan.missing),
        )
        session.add(record)
        session.flush()
        return record.id


def _fail_version(context: BuildContext, version: int, error: BaseException) -> None:
    artifacts.remove_version_folder(context.index_dir, version)
    versions.delete_products(context.sessions, version)
    reason = f"{type(error).__name__}: {error}"
    with context.sessions.begin() as session:
        record = session.get_one(IndexVersion, version)
        record.status = "failed"
        record.finished_at = datetime.now(UTC)
        record.error = reason[:2000]
    log.error("build_failed", index_version=version, error=reason)
