"""Backup and restore of an embedded installation: the SQLite database and the artifacts.

A backup folder contains `catalog.db`, a consistent copy made with SQLite's online backup
API, `indexes/` with the folder of every ready or active version, and `models/` with the
folder of every ready model version, since index versions built with one need it. Restoring copies
both into an empty data folder, upgrades the schema and verifies the active version.
PostgreSQL databases are backed up with pg_dump instead (see docs/operations.md).
"""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import structlog
from sqlalchemy import Engine, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from indexer import artifacts, models, versions
from indexer.database import create_database_engine, migrate, session_factory
from indexer.errors import BackupError
from indexer.locking import build_lock
from indexer.schema import IndexVersion, ModelVersion

log = structlog.get_logger(__name__)

DATABASE_FILE = "catalog.db"
INDEX_FOLDER = "indexes"
MODEL_FOLDER = "models"


@dataclass(frozen=True)
class BackupReport:
    folder: Path
    versions: list[int]
    active: int | None


def backup(engine: Engine, sessions: sessionmaker[Session], index_dir: Path, models_dir: Path,
           target: Path) -> BackupReport:
    """Copy the database and the ready versions' folders into `target`, which must be new or empty.

    Holds the build lock, so that no build changes either while they are copied. Raises
    `BackupError` for a non-empty target or a database that is not SQLite.
    """
    database = _sqlite_path(str(engine.url))
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"backup folder {target} is not empty; choose a new folder")

    with build_lock(engine, index_dir.parent):
        with sessions() as session:
            saved = list(session.scalars(select(IndexVersion.id).where(IndexVersion.status == "ready")))
            trained = list(session.scalars(select(ModelVersion.id).where(ModelVersion.status == "ready")))
            active = versions.get_active(session)
        target.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(database) as source, sqlite3.connect(target / DATABASE_FILE) as copy:
            source.backup(copy)
        copy.close()
        for version in saved:
            name = artifacts.version_folder_name(version)
            shutil.copytree(index_dir / name, target / INDEX_FOLDER / name)
        for model_version in trained:
            name = models.folder_name(model_version)
            shutil.copytree(models_dir / name, target / MODEL_FOLDER / name)
    log.info("backup_written", folder=str(target), versions=saved, model_versions=trained)
    return BackupReport(target, sorted(saved), active.version.id if active else None)


def restore(source: Path, database_url: str, index_dir: Path, models_dir: Path) -> BackupReport:
    """Restore a backup folder into an empty data folder and verify the active version.

    Raises `BackupError` when the backup is incomplete or the destination already contains a
    database or versions, and `ArtifactError` when the active version fails verification.
    """
    database = _sqlite_path(database_url)
    if not (source / DATABASE_FILE).is_file():
        raise BackupError(f"{source} is not a backup folder: {DATABASE_FILE} is missing")
    if database.exists() or (index_dir.exists() and any(index_dir.iterdir())):
        raise BackupError(
            f"the destination already contains {database} or versions in {index_dir}; "
            "restore into an empty data folder"
        )

    database.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source / DATABASE_FILE, database)
    if (source / INDEX_FOLDER).is_dir():
        shutil.copytree(source / INDEX_FOLDER, index_dir, dirs_exist_ok=True)
    if (source / MODEL_FOLDER).is_dir():
        shutil.copytree(source / MODEL_FOLDER, models_dir, dirs_exist_ok=True)

    engine = create_database_engine(database_url)
    try:
        migrate(engine)
        with session_factory(engine)() as session:
            restored = [record.id for record in versions.list_versions(session) if record.status == "ready"]
            active = versions.get_active(session)
        if active is not None:
            record = active.version
            artifacts.read_version(index_dir / artifacts.version_folder_name(record.id), record.id,
                                   record.artifact_checksum or "")
    finally:
        engine.dispose()
    log.info("backup_restored", folder=str(source), versions=restored)
    return BackupReport(source, sorted(restored), active.version.id if active else None)


def _sqlite_path(url: str) -> Path:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        raise BackupError(
            "backup and restore copy SQLite databases; back up PostgreSQL with pg_dump and "
            "copy the index folders as docs/operations.md describes"
        )
    return Path(parsed.database)
