"""A build killed at any stage, or an altered artifact, never disturbs the active version."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert

from indexer import versions
from indexer.errors import VersionNotActivatableError
from indexer.schema import Product
from tests.conftest import TOOLS, settings_environment

pytestmark = pytest.mark.integration

REPOSITORY = Path(__file__).resolve().parents[2]
SECOND = [[f"N-{n}", f"Pipe Wrench {n} in.", "Wrench for gripping pipes.", "", ""] for n in range(8, 16)]


def crash_build(settings, stage: str, catalog: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tests.integration.crash_build", stage, str(catalog)],
                          cwd=REPOSITORY, env=settings_environment(settings), capture_output=True,
                          text=True, timeout=600)


def active_id(sessions) -> int:
    with sessions() as session:
        return versions.get_active(session).version.id


@pytest.mark.parametrize("stage", ["encoding", "writing", "recording", "activating"])
def test_killed_build_leaves_active_version(stage, settings, build, write_csv, sessions, serve):
    first = build(write_csv(TOOLS, name="first.csv"))

    result = crash_build(settings, stage, write_csv(SECOND, name="second.csv"))

    assert result.returncode == -signal.SIGKILL, result.stderr
    assert active_id(sessions) == first.version
    with sessions() as session:
        crashed = versions.get_version(session, first.version + 1)
    if stage == "activating":
        assert crashed.status == "ready"
    else:
        assert crashed.status == "building"
        with pytest.raises(VersionNotActivatableError):
            with sessions.begin() as session:
                versions.activate(session, crashed.id, source="test")

    with serve(settings) as client:
        body = client.post("/search", json={"queries": ["saw"], "top_k": 1}).json()
    assert body["index_version"] == first.version
    assert body["results"][0]["matches"][0]["product_id"] == "T-1"


@pytest.mark.parametrize("stage", ["encoding", "writing", "recording"])
def test_next_build_cleans_up_killed_one(stage, settings, build, write_csv, sessions):
    build(write_csv(TOOLS, name="first.csv"))
    crash_build(settings, stage, write_csv(SECOND, name="second.csv"))

    third = build(write_csv(SECOND, name="third.csv"), activate=False)

    with sessions() as session:
        crashed = versions.get_version(session, 2)
    assert crashed.status == "failed"
    assert crashed.error == "the build process ended before the version was ready"
    assert product_rows(sessions, crashed.id) == 0
    assert third.version == 3
    assert sorted(entry.name for entry in settings.index_dir.iterdir()) == ["v000001", "v000003"]


def product_rows(sessions, version: int) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(Product).where(Product.version_id == version))


def test_failed_recording_deletes_recorded_rows(build, write_csv, sessions, monkeypatch):
    first = build(write_csv(TOOLS, name="first.csv"))
    monkeypatch.setattr(versions, "RECORD_BATCH", 2)
    original_execute = Session.execute
    inserts = []
    committed_before_failure = []

    def execute(self, statement, *args, **kwargs):
        if isinstance(statement, Insert) and statement.table.name == Product.__tablename__:
            inserts.append(statement)
            if len(inserts) == 2:
                committed_before_failure.append(product_rows(sessions, first.version + 1))
                raise OperationalError("INSERT", {}, Exception("injected disk I/O error"))
        return original_execute(self, statement, *args, **kwargs)

    monkeypatch.setattr(Session, "execute", execute)
    with pytest.raises(OperationalError, match="injected disk I/O error"):
        build(write_csv(SECOND, name="second.csv"))
    monkeypatch.undo()

    with sessions() as session:
        failed = versions.get_version(session, first.version + 1)
        assert versions.get_active(session).version.id == first.version
    assert committed_before_failure == [2]
    assert failed.status == "failed"
    assert "injected disk I/O error" in failed.error
    assert product_rows(sessions, failed.id) == 0


def test_flipped_byte_in_new_version_keeps_old(settings, build, write_csv, sessions, serve):
    first = build(write_csv(TOOLS, name="first.csv"))
    second = build(write_csv(SECOND, name="second.csv"), activate=False)
    index_file = second.path / "index.faiss"
    data = bytearray(index_file.read_bytes())
    data[len(data) // 2] ^= 0x01
    index_file.write_bytes(bytes(data))

    with serve(settings) as client:
        with sessions.begin() as session:
            versions.activate(session, second.version, source="test")
        ready = poll_ready(client, lambda body: body.get("rejected_version") == second.version)
        search = client.post("/search", json={"queries": ["saw"], "top_k": 1})

    assert ready["rejected_reason"] == "index.faiss checksum or size does not match the manifest"
    assert ready["index_version"] == first.version
    assert search.status_code == 200
    assert search.json()["index_version"] == first.version


def poll_ready(client, condition, attempts: int = 200) -> dict:
    import time

    for _ in range(attempts):
        body = client.get("/ready").json()
        if condition(body):
            return body
        time.sleep(0.05)
    pytest.fail(f"/ready never met the condition; last body: {body}")
