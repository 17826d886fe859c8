"""Metadata schema: model versions, index versions, their products, the single active
pointer, API keys and the audit log.

Alembic owns this schema (see `migrations/`); a change here needs a new revision.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

STATUSES = ("building", "ready", "failed", "retired")
"""Stored statuses. `active` is not stored: it is the status shown for the version that
the active pointer names, so the two can never disagree."""

SCOPES = ("search", "admin")
"""API key scopes. `search` opens the search routes; `admin` opens the admin routes and search."""

MODEL_STATUSES = ("training", "ready", "failed")

AUDIT_ACTIONS = ("activate", "rollback", "reindex", "key_created", "key_revoked")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every database; SQLite returns naive values."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ModelVersion(Base):
    """A model fine-tuned by `indexer train`, with its card: data, split, settings, evaluation.

    Index versions built with the configured model name no model version.
    """

    __tablename__ = "model_versions"
    __table_args__ = (
        CheckConstraint(f"status IN {MODEL_STATUSES}", name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="training")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    name: Mapped[str] = mapped_column(String(200))
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    """SHA-256 of the trained weights; index versions built with the model record it too."""
    base_name: Mapped[str] = mapped_column(String(200))
    base_fingerprint: Mapped[str] = mapped_column(String(64))
    base_model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    """The model version training started from; none when it started from the configured model."""
    data_checksum: Mapped[str] = mapped_column(String(64))
    """SHA-256 over the judgment and product texts the training and evaluation read."""
    path: Mapped[str | None] = mapped_column(Text)
    """Folder the training wrote, for operators. Readers look for the folder named after the
    model version in their own models folder."""
    card: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """The model card: base model, data, split, hyper-parameters, timings, library versions
    and the evaluation before and after; the same JSON as `card.json` in the folder."""
    training_seconds: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)


class IndexVersion(Base):
    """One build of the catalog index and what it was built from."""

    __tablename__ = "index_versions"
    __table_args__ = (
        CheckConstraint(f"status IN {STATUSES}", name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="building")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    model_name: Mapped[str] = mapped_column(String(200))
    model_fingerprint: Mapped[str] = mapped_column(String(64))
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    """The trained model version the version was embedded with; none for the configured model."""
    dimension: Mapped[int] = mapped_column(Integer)
    index_type: Mapped[str | None] = mapped_column(String(64))
    product_count: Mapped[int | None] = mapped_column(Integer)
    skipped_count: Mapped[int] = mapped_column(Integer, default=0)
    """Invalid catalog rows skipped because the build was run with `--skip-invalid`."""
    truncated_count: Mapped[int | None] = mapped_column(Integer)
    """Products whose text was longer than the model reads and was cut by the tokenizer."""
    source_path: Mapped[str] = mapped_column(Text)
    source_checksum: Mapped[str] = mapped_column(String(64))
    artifact_path: Mapped[str | None] = mapped_column(Text)
    """Folder path the build wrote, for operators. Readers look for the folder named
    after the version in their own index folder, so that a restored or remounted data
    folder works wherever it lies."""
    artifact_checksum: Mapped[str | None] = mapped_column(String(64))
    """SHA-256 of the manifest, which itself contains the checksum of every artifact file."""
    build_seconds: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    base_version_id: Mapped[int | None] = mapped_column(ForeignKey("index_versions.id"))
    """The version the change counts compare against: the active one when the build started."""
    new_count: Mapped[int | None] = mapped_column(Integer)
    changed_count: Mapped[int | None] = mapped_column(Integer)
    unchanged_count: Mapped[int | None] = mapped_column(Integer)
    removed_count: Mapped[int | None] = mapped_column(Integer)
    encoded_count: Mapped[int | None] = mapped_column(Integer)
    """Texts the model encoded; the others reused a stored vector of the same text and model."""
    note: Mapped[str | None] = mapped_column(Text)
    """Reason a ready version was not activated, e.g. the promotion gate's verdict."""


class Product(Base):
    """A product as stored with one index version; `position` is its row in the FAISS index."""

    __tablename__ = "products"
    __table_args__ = (UniqueConstraint("version_id", "product_id"),)

    version_id: Mapped[int] = mapped_column(
        ForeignKey("index_versions.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(200), default="")
    brand: Mapped[str] = mapped_column(String(200), default="")
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    text_sha256: Mapped[str] = mapped_column(String(64))
    """SHA-256 of the embedded text; with the model fingerprint it identifies the vector."""


class Activation(Base):
    """One move of the active pointer, kept so that a rollback can find what was active before."""

    __tablename__ = "activations"
    __table_args__ = (CheckConstraint("action IN ('activate', 'rollback')", name="action"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("index_versions.id"))
    previous_version_id: Mapped[int | None] = mapped_column(ForeignKey("index_versions.id"))
    action: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(32))
    """Source of the move: `cli`, `api`, `build` or `scheduler`."""
    activated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ActiveIndex(Base):
    """The single active pointer: at most one row, with id 1."""

    __tablename__ = "active_index"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, default=1)
    version_id: Mapped[int] = mapped_column(ForeignKey("index_versions.id"))
    activated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiKey(Base):
    """An API key, stored as the SHA-256 of the key; the key itself is shown once, at creation."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    """Names the holder in the audit log and the rate limiter; a revoked key keeps its name."""
    key_id: Mapped[str] = mapped_column(String(16), unique=True)
    """Random public part of the key that finds its row; the rest of the key is secret."""
    key_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(String(64))
    """Space-separated scopes, as OAuth 2.0 writes them."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditEntry(Base):
    """One admin action: who requested it, what it changed and how it ended."""

    __tablename__ = "audit_log"
    __table_args__ = (CheckConstraint(f"action IN {AUDIT_ACTIONS}", name="action"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    key_name: Mapped[str] = mapped_column(String(100))
    """Name of the API key that requested the action, or `cli` for the indexer command line."""
    action: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(Text)
    result: Mapped[str] = mapped_column(Text)
    """`ok`, or `failed: ` and the error."""
