"""The models a service process holds, by weights fingerprint.

At start the process loads the configured model. When the active index version names a
trained model version, the holder requests that model from the pool, which loads it beside
the models already held. After the swap, models that no served version uses are closed. A
request that still references the old version keeps its model object until it finishes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from sqlalchemy.orm import Session

from indexer import models
from indexer.embedding import Embedder
from indexer.errors import ArtifactError, CatalogSearchError
from indexer.schema import IndexVersion
from indexer.settings import Settings
from service.batching import EncodeBatcher

log = structlog.get_logger(__name__)

BATCH_TEXTS_PER_MODEL_BATCH = 4
"""A micro-batch stops gathering at this many times `encode_batch_size` texts, so that one
batch does not delay its first request by several forward passes."""


@dataclass(frozen=True)
class LoadedModel:
    """A model, and the micro-batcher that the search routes encode through."""

    embedder: Embedder
    encoder: EncodeBatcher


class ModelPool:
    """Loads each model once and hands out its encoder; safe to call from several threads."""

    def __init__(self, load: Callable[[models.ModelChoice], Embedder],
                 choose: Callable[[Session, IndexVersion], models.ModelChoice],
                 batcher: Callable[[Embedder], EncodeBatcher]) -> None:
        self._load = load
        self._choose = choose
        self._batcher = batcher
        self._held: dict[str, LoadedModel] = {}
        self._configured: Embedder | None = None
        self._lock = threading.Lock()

    def add(self, embedder: Embedder, configured: bool = False) -> LoadedModel:
        """Hold an already loaded model; `configured` marks the one `CATALOG_SEARCH_MODEL`
        names, loaded at start."""
        with self._lock:
            if configured:
                self._configured = embedder
            if embedder.fingerprint not in self._held:
                self._held[embedder.fingerprint] = LoadedModel(embedder, self._batcher(embedder))
            return self._held[embedder.fingerprint]

    def get(self, fingerprint: str) -> LoadedModel | None:
        with self._lock:
            return self._held.get(fingerprint)

    def for_version(self, session: Session, record: IndexVersion) -> LoadedModel:
        """Return the model `record` was built with, loading it when it is not held.

        Raises `ArtifactError` when that model is missing, unusable or has other weights
        than the build recorded, so that the holder rejects the version.
        """
        held = self.get(record.model_fingerprint)
        if held is not None:
            _check_model(record, held.embedder)
            return held
        if record.model_version_id is None and self._configured is not None:
            # The configured model is already known: a version built with another one fails.
            _check_model(record, self._configured)
        try:
            choice = self._choose(session, record)
            embedder = self._load(choice)
        except CatalogSearchError as error:
            raise ArtifactError(record.id, f"its model cannot be loaded: {error}") from error
        _check_model(record, embedder)
        log.info("version_model_loaded", index_version=record.id, model=embedder.name,
                 model_version=record.model_version_id)
        return self.add(embedder)

    def release_except(self, keep: set[str]) -> None:
        """Close the models whose fingerprints are not in `keep`; requests that hold one
        still finish, since a closed encoder encodes without batching."""
        with self._lock:
            dropped = [self._held.pop(fp) for fp in list(self._held) if fp not in keep]
        for loaded in dropped:
            loaded.encoder.close()
            log.info("model_released", model=loaded.embedder.name,
                     model_version=loaded.embedder.model_version)

    def close(self) -> None:
        self.release_except(set())


def model_pool(settings: Settings,
               load: Callable[[models.ModelChoice], Embedder] | None = None) -> ModelPool:
    """Return a pool that loads models with the settings' backend and batch size and
    micro-batches their encodes."""
    return ModelPool(
        load or (lambda choice: models.load_model(settings, choice)),
        lambda session, record: models.choose_for_version(session, settings, record),
        lambda embedder: EncodeBatcher(embedder, settings.encode_batch_wait_ms / 1000,
                                       BATCH_TEXTS_PER_MODEL_BATCH * settings.encode_batch_size),
    )


def _check_model(record: IndexVersion, embedder: Embedder) -> None:
    """Raise `ArtifactError` unless `embedder` is the model `record` was built with."""
    if embedder.fingerprint != record.model_fingerprint or embedder.dimension != record.dimension:
        raise ArtifactError(
            record.id, f"built with model {record.model_name} ({record.model_fingerprint[:12]}, "
            f"{record.dimension} dimensions), but the service runs {embedder.name} "
            f"({embedder.fingerprint[:12]}, {embedder.dimension} dimensions)",
        )
