"""Model versions: models fine-tuned by `indexer train`, each in its own folder under
`<data_dir>/models/`, and which model a build or a served version uses.

An index version built with the configured model (`CATALOG_SEARCH_MODEL`) names no model
version. A build without `--model-version` keeps the model of the active version, so that
a promoted model stays in use across scheduled rebuilds until an operator rolls back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from indexer import versions
from indexer.embedding import Embedder
from indexer.errors import ModelVersionNotFoundError, ModelVersionNotReadyError
from indexer.schema import IndexVersion, ModelVersion
from indexer.settings import Settings

CARD_FILE = "card.json"


@dataclass(frozen=True)
class ModelChoice:
    """A model folder, and the model version it holds; None for the configured model."""

    path: Path
    model_version: int | None = None
    name: str | None = None
    """Name shown in logs and records; None takes the folder's name."""


def folder_name(model_version: int) -> str:
    return f"m{model_version:06d}"


def model_folder(settings: Settings, model_version: int) -> Path:
    return settings.models_dir / folder_name(model_version)


def configured(settings: Settings) -> ModelChoice:
    return ModelChoice(Path(settings.model))


def get_model_version(session: Session, model_version: int) -> ModelVersion:
    """Return one model version; raises `ModelVersionNotFoundError`."""
    record = session.get(ModelVersion, model_version)
    if record is None:
        raise ModelVersionNotFoundError(model_version)
    return record


def list_model_versions(session: Session) -> list[ModelVersion]:
    """Return every model version, newest first."""
    return list(session.scalars(select(ModelVersion).order_by(ModelVersion.id.desc())))


def ready_choice(session: Session, settings: Settings, model_version: int) -> ModelChoice:
    """Return the folder of a ready model version; raises when it is missing or not ready."""
    record = get_model_version(session, model_version)
    if record.status != "ready":
        raise ModelVersionNotReadyError(model_version, record.status)
    return ModelChoice(model_folder(settings, model_version), model_version, record.name)


def choose_for_build(session: Session, settings: Settings, model_version: int | None) -> ModelChoice:
    """Return the model a build embeds with: `model_version` when given, else the active
    version's model, else the configured one."""
    if model_version is None:
        active = versions.get_active(session)
        model_version = active.version.model_version_id if active else None
    if model_version is None:
        return configured(settings)
    return ready_choice(session, settings, model_version)


def choose_for_version(session: Session, settings: Settings, record: IndexVersion) -> ModelChoice:
    """Return the model an index version was built with, to encode its queries."""
    if record.model_version_id is None:
        return configured(settings)
    return ready_choice(session, settings, record.model_version_id)


def load_model(settings: Settings, choice: ModelChoice) -> Embedder:
    """Load a chosen model with the settings' batch size and backend."""
    return Embedder(choice.path, settings.encode_batch_size, settings.encoder_backend,
                    settings.onnx_dir, settings.encoder_threads, model_version=choice.model_version,
                    name=choice.name)


def start_model_version(sessions: sessionmaker[Session], base: Embedder, data_checksum: str) -> int:
    """Record a `training` model version started from `base`; returns its number."""
    with sessions.begin() as session:
        record = ModelVersion(status="training", created_at=datetime.now(UTC), name="",
                              base_name=base.name, base_fingerprint=base.fingerprint,
                              base_model_version_id=base.model_version, data_checksum=data_checksum)
        session.add(record)
        session.flush()
        root = base.name if base.model_version is None else base.name.rsplit("-ft", 1)[0]
        record.name = f"{root}-ft{record.id}"
        return record.id


def finish_model_version(sessions: sessionmaker[Session], model_version: int, folder: Path,
                         fingerprint: str, card: dict[str, Any], training_seconds: float) -> None:
    with sessions.begin() as session:
        record = get_model_version(session, model_version)
        record.status = "ready"
        record.finished_at = datetime.now(UTC)
        record.fingerprint = fingerprint
        record.path = str(folder.resolve())
        record.card = card
        record.training_seconds = training_seconds


def fail_model_version(sessions: sessionmaker[Session], model_version: int, error: BaseException) -> None:
    with sessions.begin() as session:
        record = get_model_version(session, model_version)
        record.status = "failed"
        record.finished_at = datetime.now(UTC)
        record.error = f"{type(error).__name__}: {error}"[:2000]
