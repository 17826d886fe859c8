"""Delta builds, rollback, retention and the build lock, on the real model and SQLite."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import func, select, update

from indexer import artifacts, versions
from indexer.build import DryRunReport
from indexer.errors import BuildLockedError, NoRollbackTargetError, VersionNotActivatableError
from indexer.locking import build_lock
from indexer.retention import prune
from indexer.schema import IndexVersion, Product
from tests.conftest import TOOLS

pytestmark = pytest.mark.integration

EDITED = [
    TOOLS[0],
    [TOOLS[1][0], "Claw Hammer 20 oz Fiberglass", *TOOLS[1][2:]],
    *TOOLS[2:5],
    ["T-7", "Pipe Wrench 14 in.", "Adjustable wrench for gripping pipes.", "Plumbing", "Bolt"],
]
"""TOOLS with one title changed, one product removed (T-6) and one added (T-7)."""


def vectors_of(report, sessions) -> np.ndarray:
    with sessions() as session:
        checksum = session.get_one(IndexVersion, report.version).artifact_checksum
    index = artifacts.read_version(report.path, report.version, checksum).index
    return index.reconstruct_n(0, index.ntotal)


def test_delta_encodes_only_new_and_changed(build, write_csv, sessions):
    first = build(write_csv(TOOLS, name="v1.csv"))

    second = build(write_csv(EDITED, name="v2.csv"))

    plan = second.plan
    assert (plan.new, plan.changed, plan.unchanged, plan.removed) == (1, 1, 4, 1)
    assert plan.base_version == first.version
    assert len(plan.missing) == 2
    with sessions() as session:
        record = session.get_one(IndexVersion, second.version)
    assert (record.new_count, record.changed_count, record.unchanged_count,
            record.removed_count, record.encoded_count) == (1, 1, 4, 1, 2)
    assert record.base_version_id == first.version


def test_reused_vectors_equal_stored_ones(build, write_csv, sessions):
    first = build(write_csv(TOOLS, name="v1.csv"))
    second = build(write_csv(EDITED, name="v2.csv"))

    old, new = vectors_of(first, sessions), vectors_of(second, sessions)

    assert np.array_equal(new[0], old[0])
    assert np.array_equal(new[2:5], old[2:5])
    assert not np.allclose(new[1], old[1])


def test_unchanged_catalog_encodes_nothing(build, write_csv, embedder, monkeypatch):
    catalog = write_csv(TOOLS)
    build(catalog)
    calls = []
    original = embedder.encode
    monkeypatch.setattr(embedder, "encode",
                        lambda texts, **kw: calls.append(len(texts)) or original(texts, **kw))

    report = build(catalog)

    assert report.plan.unchanged == len(TOOLS)
    assert report.plan.missing == []
    assert calls == [0]


def test_other_model_reuses_nothing(build, write_csv, sessions):
    first = build(write_csv(TOOLS))
    with sessions.begin() as session:
        session.execute(update(IndexVersion).where(IndexVersion.id == first.version)
                        .values(model_fingerprint="0" * 64))

    report = build(write_csv(TOOLS))

    assert len(report.plan.missing) == len(TOOLS)
    assert report.plan.unchanged == len(TOOLS)


def test_dry_run_writes_nothing(build, write_csv, sessions, settings):
    build(write_csv(TOOLS, name="v1.csv"))

    report = build(write_csv(EDITED, name="v2.csv"), dry_run=True)

    assert isinstance(report, DryRunReport)
    assert (report.plan.new, report.plan.changed, report.plan.removed) == (1, 1, 1)
    assert report.estimated_encode_seconds > 0
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(IndexVersion)) == 1
    assert [entry.name for entry in settings.index_dir.iterdir()] == ["v000001"]


def test_rollback_returns_to_previous_active(build, write_csv, sessions):
    first = build(write_csv(TOOLS, name="v1.csv"))
    second = build(write_csv(EDITED, name="v2.csv"))

    with sessions.begin() as session:
        back = versions.rollback(session, source="test")
    with sessions.begin() as session:
        forth = versions.rollback(session, source="test")

    assert back.id == first.version
    assert forth.id == second.version


def test_rollback_of_first_version_fails(build, write_csv, sessions):
    build(write_csv(TOOLS))

    with pytest.raises(NoRollbackTargetError, match="was the first active version"):
        with sessions.begin() as session:
            versions.rollback(session, source="test")


def test_rollback_without_active_fails(sessions):
    with pytest.raises(NoRollbackTargetError, match="nothing to roll back"):
        with sessions.begin() as session:
            versions.rollback(session, source="test")


def test_prune_keeps_active_and_newest(build, write_csv, engine, sessions, settings):
    reports = [build(write_csv(TOOLS[: 3 + n], name=f"v{n}.csv")) for n in range(4)]
    with sessions.begin() as session:
        versions.activate(session, reports[1].version, source="test")

    result = prune(engine, sessions, settings.index_dir, keep=1)

    assert result.retired == [reports[2].version, reports[0].version]
    assert sorted(result.kept) == [reports[1].version, reports[3].version]
    assert sorted(entry.name for entry in settings.index_dir.iterdir()) == ["v000002", "v000004"]
    with sessions() as session:
        statuses = {record.id: record.status for record in versions.list_versions(session)}
        products = session.scalar(select(func.count()).select_from(Product)
                                  .where(Product.version_id == reports[0].version))
    assert statuses == {1: "retired", 2: "ready", 3: "retired", 4: "ready"}
    assert products == 0


def test_rollback_to_retired_version_fails(build, write_csv, engine, sessions, settings):
    build(write_csv(TOOLS, name="v1.csv"))
    build(write_csv(EDITED, name="v2.csv"))
    prune(engine, sessions, settings.index_dir, keep=0)

    with pytest.raises(VersionNotActivatableError, match="index version 1 is retired"):
        with sessions.begin() as session:
            versions.rollback(session, source="test")


def test_second_build_fails_on_lock(build, write_csv, engine, settings):
    with build_lock(engine, settings.data_dir):
        with pytest.raises(BuildLockedError, match="another build is running"):
            build(write_csv(TOOLS))
