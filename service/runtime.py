"""Runtime state of the service: settings, database sessions, the model and the index."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from anyio import to_thread
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from indexer import audit, models, versions
from indexer.build import BuildContext
from indexer.cpus import thread_count
from indexer.database import session_factory
from indexer.embedding import Embedder, TextEncoder
from indexer.errors import CatalogSearchError, IndexNotReadyError, ModelNotReadyError
from indexer.schema import IndexVersion
from indexer.settings import Settings
from service import metrics, ranking
from service.cache import EmbeddingCache
from service.catalog_vectors import CatalogVectors
from service.holder import IndexHolder, ServedIndex
from service.jobs import ReindexJob, ReindexJobs
from service.models import model_pool

log = structlog.get_logger(__name__)

class Runtime:
    """Loads the configured model in the background, then follows the active index version
    and loads the model each version names.

    `/health` responds while the model loads; `/ready` and the search routes report 503
    until it is loaded.
    """

    def __init__(self, settings: Settings, engine: Engine,
                 load_embedder: Callable[[], Embedder],
                 load_model: Callable[[models.ModelChoice], Embedder] | None = None) -> None:
        self.settings = settings
        self.engine = engine
        self.sessions = session_factory(engine)
        self.holder = IndexHolder(self.sessions, settings.index_dir, settings.lexical_language,
                                  settings.hnsw_ef_search)
        ranking.search_thread_count = thread_count(settings.faiss_threads)
        self.cache = EmbeddingCache(settings.embedding_cache_size)
        self.catalog_vectors = CatalogVectors(self.sessions)
        self.jobs = ReindexJobs(settings.catalog_path, settings.catalog_columns,
                                settings.max_removed_fraction)
        self.embedder: Embedder | None = None
        """The configured model, once loaded."""
        self.models = model_pool(settings, load_model)
        self.model_error: str | None = None
        self._load_embedder = load_embedder
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._run()))

    async def stop(self) -> None:
        self.jobs.shutdown()
        await to_thread.run_sync(self.models.close)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def require_embedder(self) -> Embedder:
        if self.embedder is None:
            raise ModelNotReadyError(self.model_error or "the embedding model is still loading")
        return self.embedder

    def require_encoder(self) -> TextEncoder:
        """Return the served version's model, or the configured one while none is served."""
        served = self.holder.current
        if served is not None:
            return served.encoder
        loaded = self.models.get(self.require_embedder().fingerprint)
        if loaded is None:
            raise ModelNotReadyError("the embedding model is being replaced; retry")
        return loaded.encoder

    @property
    def model_name(self) -> str | None:
        """Name of the model that encodes queries now, for `/ready`."""
        served = self.holder.current
        model = self.models.get(served.encoder.fingerprint) if served else None
        if model is not None:
            return model.embedder.name
        return self.embedder.name if self.embedder else None

    def build_model(self) -> Embedder:
        """Return the model a reindex embeds with: the served version's, which is the one
        a build without `--model-version` chooses, or the configured one."""
        configured = self.require_embedder()
        served = self.holder.current
        loaded = self.models.get(served.encoder.fingerprint) if served else None
        return loaded.embedder if loaded else configured

    def require_index(self) -> ServedIndex:
        served = self.holder.current
        if served is None:
            raise IndexNotReadyError(
                "no index version is active; build one with: "
                "python -m indexer build --catalog PATH --activate"
                if not self.holder.active_exists else
                "the active index version is not loaded yet or was rejected; see /api/v1/ready"
            )
        return served

    def move_pointer(self, version: int | None, key_name: str) -> IndexVersion:
        """Activate `version`, or roll back when it is None, and record it in the audit log
        under `key_name`; blocking, returns the new active record."""
        action = "rollback" if version is None else "activate"
        target = "the previously active version" if version is None else f"version {version}"
        with audit.audited(self.sessions, key_name, action, target) as audited:
            if version is None:
                record = versions.rollback(audited.session, source="api")
                audited.target = f"version {record.id}"
            else:
                record = versions.activate(audited.session, version, source="api")
        log.info("version_activated", index_version=record.id, source="api", action=action,
                 key_name=key_name)
        return record

    def start_reindex(self, key_name: str) -> ReindexJob:
        """Queue a reindex with the served version's model and record it in the audit log under
        `key_name`; the holder follows a new activation at once."""
        catalog = self.settings.catalog_path or "no catalog configured"
        with audit.audited(self.sessions, key_name, "reindex", catalog) as audited:
            embedder = self.build_model()
            context = BuildContext(self.engine, self.sessions, lambda: embedder,
                                   self.settings.index_dir, self.settings.text_template,
                                   self.settings.lexical_language, self.settings.index_choice,
                                   self.settings.promotion_rule)

            def on_done() -> None:
                self.holder.refresh(self.models)
                self.export_served_version()

            job = self.jobs.start(context, on_done)
            audited.target = f"{catalog} (job {job.id})"
        return job

    async def _run(self) -> None:
        try:
            embedder = await to_thread.run_sync(self._load_embedder)
        except CatalogSearchError as error:
            # Responses name no file path; the log has the full error.
            self.model_error = ("the embedding model failed to load; "
                                "the service log (model_load_failed) has the reason")
            log.error("model_load_failed", error=str(error))
            return
        self.models.add(embedder, configured=True)
        self.embedder = embedder
        while True:
            await self.refresh()
            await asyncio.sleep(self.settings.poll_interval_seconds)

    async def refresh(self) -> None:
        """Follow the active pointer now; database errors are logged and retried next poll."""
        if self.embedder is None:
            return
        try:
            await to_thread.run_sync(self.holder.refresh, self.models)
            served = self.holder.current
            if served is not None:
                # Loaded here, so that the first ad-hoc request after a swap does not wait for it.
                await to_thread.run_sync(self.catalog_vectors.prepare, served)
        except SQLAlchemyError as error:
            log.error("refresh_failed", error=str(error))
        self.export_served_version()

    def export_served_version(self) -> None:
        """Set the gauges of the served version; the age gauge reads the holder at scrape time."""
        served = self.holder.current
        if served is None:
            return
        metrics.ACTIVE_VERSION.set(served.version)
        metrics.ACTIVE_PRODUCTS.set(served.product_count)
        holder = self.holder
        metrics.ACTIVE_AGE.set_function(
            lambda: (datetime.now(UTC) - holder.current.built_at).total_seconds() if holder.current else 0.0
        )
