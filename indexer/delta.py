"""Delta planning: which products changed since the active version, and which vectors
can be reused instead of encoded again.

A stored vector is reused when its text's SHA-256 and the model fingerprint both match,
whatever product id it was stored under. Vectors come from the active version when it
was built with the same model, else from the newest ready version that was.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from indexer import artifacts, versions
from indexer.errors import ArtifactError
from indexer.schema import IndexVersion, Product

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class DeltaPlan:
    """Change counts against the base version, and the stored vectors to reuse."""

    base_version: int | None
    """The version that was active when the build started; None for the first build."""
    new: int
    changed: int
    unchanged: int
    removed: int
    reused: dict[str, np.ndarray] = field(repr=False)
    """Stored vectors keyed by text SHA-256, each of shape (dimension,), float32."""
    missing: list[int]
    """Catalog positions whose text has no stored vector and must be encoded."""


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def plan_delta(session: Session, index_dir: Path, ids: list[str], hashes: list[str],
               fingerprint: str) -> DeltaPlan:
    """Compare a catalog (ids and text hashes in catalog order) with the stored versions."""
    active = versions.get_active(session)
    base = active.version if active else None
    stored = _stored_hashes(session, base.id) if base else {}

    new = sum(product_id not in stored for product_id in ids)
    unchanged = sum(stored.get(product_id) == digest for product_id, digest in zip(ids, hashes, strict=True))
    changed = len(ids) - new - unchanged
    removed = len(set(stored) - set(ids))

    source = base if base and base.model_fingerprint == fingerprint else _newest_ready(session, fingerprint)
    reused = _load_vectors(session, index_dir, source, set(hashes)) if source else {}
    missing = [position for position, digest in enumerate(hashes) if digest not in reused]
    return DeltaPlan(base.id if base else None, new, changed, unchanged, removed, reused, missing)


def _stored_hashes(session: Session, version: int) -> dict[str, str]:
    rows = session.execute(
        select(Product.product_id, Product.text_sha256).where(Product.version_id == version)
    )
    return {product_id: digest for product_id, digest in rows}


def _newest_ready(session: Session, fingerprint: str) -> IndexVersion | None:
    return session.scalars(
        select(IndexVersion)
        .where(IndexVersion.status == "ready", IndexVersion.model_fingerprint == fingerprint)
        .order_by(IndexVersion.id.desc()).limit(1)
    ).first()


def _load_vectors(session: Session, index_dir: Path, source: IndexVersion,
                  needed: set[str]) -> dict[str, np.ndarray]:
    """Read the source version's vectors for the needed hashes; empty when its files fail checks."""
    try:
        loaded = artifacts.read_version(index_dir / artifacts.version_folder_name(source.id),
                                        source.id, source.artifact_checksum or "")
    except ArtifactError as error:
        log.warning("delta_source_rejected", index_version=source.id, reason=error.reason)
        return {}
    rows = session.execute(
        select(Product.text_sha256, Product.position).where(Product.version_id == source.id)
    )
    matches = {digest: position for digest, position in rows if digest in needed}
    if not matches:
        return {}
    vectors = loaded.index.reconstruct_n(0, loaded.index.ntotal)
    return {digest: vectors[position] for digest, position in matches.items()}
