"""Retention: delete old versions' artifacts and mark them retired."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from indexer import artifacts, versions
from indexer.locking import build_lock
from indexer.schema import IndexVersion

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class PruneReport:
    retired: list[int]
    kept: list[int]


def prune(engine: Engine, sessions: sessionmaker[Session], index_dir: Path, keep: int) -> PruneReport:
    """Retire every ready version except the active one and the newest `keep` others.

    A retired version loses its folder and its product rows; its record stays. Runs under
    the build lock, so that no build reads vectors from a folder while it is deleted.
    """
    if keep < 0:
        raise ValueError("keep must be 0 or more")
    with build_lock(engine, index_dir.parent):
        with sessions.begin() as session:
            active = versions.get_active(session)
            active_id = active.version.id if active else None
            ready = list(session.scalars(
                select(IndexVersion).where(IndexVersion.status == "ready")
                .order_by(IndexVersion.id.desc())
            ))
            others = [record for record in ready if record.id != active_id]
            retire = others[keep:]
            for record in retire:
                record.status = "retired"
                record.finished_at = record.finished_at or datetime.now(UTC)
        # Nothing reads a retired version's rows, so they are deleted after the status
        # change, one batch per transaction, and SQLite's write lock is free between batches.
        for record in retire:
            versions.delete_products(sessions, record.id)
            artifacts.remove_version_folder(index_dir, record.id)
            log.info("version_retired", index_version=record.id)
    remaining = [record.id for record in ready if record not in retire]
    return PruneReport([record.id for record in retire], remaining)
