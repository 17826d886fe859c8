"""Back up an installation and restore it into an empty folder, following docs/operations.md."""

from __future__ import annotations

import dataclasses

import pytest

from indexer.errors import BackupError
from tests.conftest import TOOLS
from tests.integration.test_build import run_cli

pytestmark = [pytest.mark.integration, pytest.mark.sqlite_only]


def test_restored_backup_serves_active_version(settings, build, write_csv, serve, tmp_path):
    build(write_csv(TOOLS, name="first.csv"))
    build(write_csv([["N-1", "Pipe Wrench 14 in.", "Wrench for pipes", "", ""]], name="second.csv"))
    backup_folder = tmp_path / "backup"
    restored = dataclasses.replace(settings, data_dir=tmp_path / "restored" / "var", database_url="")

    saved = run_cli(settings, "backup", "--to", str(backup_folder))
    loaded = run_cli(restored, "restore", "--from", str(backup_folder))
    with serve(restored) as client:
        body = client.post("/search", json={"queries": ["wrench"], "top_k": 1}).json()

    assert saved.returncode == 0, saved.stderr
    assert f"Backed up the database and versions 1, 2 (active: 2) to {backup_folder}" in saved.stdout
    assert loaded.returncode == 0, loaded.stderr
    assert "Restored versions 1, 2 (active: 2)" in loaded.stdout
    assert body["index_version"] == 2
    assert body["results"][0]["matches"][0]["product_id"] == "N-1"


def test_restore_refuses_to_overwrite(settings, build, write_csv, tmp_path):
    build(write_csv(TOOLS))
    run_cli(settings, "backup", "--to", str(tmp_path / "backup"))

    result = run_cli(settings, "restore", "--from", str(tmp_path / "backup"))

    assert result.returncode == 1
    assert "restore into an empty data folder" in result.stderr


def test_backup_refuses_non_empty_folder(settings, build, write_csv, tmp_path):
    build(write_csv(TOOLS))
    target = tmp_path / "occupied"
    target.mkdir()
    (target / "notes.txt").write_text("keep me", encoding="utf-8")

    result = run_cli(settings, "backup", "--to", str(target))

    assert result.returncode == 1
    assert "is not empty; choose a new folder" in result.stderr
    assert (target / "notes.txt").read_text(encoding="utf-8") == "keep me"


def test_backup_of_postgresql_points_to_pg_dump(settings, engine, sessions):
    from indexer.backup import restore

    with pytest.raises(BackupError, match="pg_dump"):
        restore(settings.data_dir, "postgresql+psycopg://localhost/catalog", settings.index_dir,
                settings.models_dir)
