from __future__ import annotations

import json
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from indexer import versions
from indexer.errors import InvalidCatalogError
from indexer.schema import IndexVersion, Product
from tests.conftest import TOOLS, settings_environment

pytestmark = pytest.mark.integration


def folders_in(path) -> list[str]:
    return sorted(entry.name for entry in path.iterdir()) if path.exists() else []


def test_build_publishes_ready_version(build, write_csv, sessions, settings, embedder):
    report = build(write_csv(TOOLS), activate=False)

    with sessions() as session:
        record = session.get_one(IndexVersion, report.version)
        stored = versions.load_products(session, report.version)
        assert versions.get_active(session) is None
    manifest = json.loads((report.path / "manifest.json").read_text())

    assert record.status == "ready"
    assert record.product_count == len(TOOLS)
    assert record.model_fingerprint == embedder.fingerprint
    assert stored.ids == [row[0] for row in TOOLS]
    assert manifest["model"]["dimension"] == 384
    assert manifest["embedding"] == {"normalized": True, "metric": "inner_product", "dtype": "float32",
                                     "encoder_backend": embedder.backend}
    assert manifest["products"] == {"count": len(TOOLS), "skipped": 0, "truncated": 0,
                                    "encoded": len(TOOLS), "reused": 0}
    assert report.path == settings.index_dir / f"v{report.version:06d}"


def test_build_can_activate(build, write_csv, sessions):
    report = build(write_csv(TOOLS), activate=True)

    with sessions() as session:
        assert versions.get_active(session).version.id == report.version


def test_invalid_catalog_publishes_nothing(build, tmp_path, sessions, settings):
    path = tmp_path / "broken.csv"
    path.write_text(
        "id,title,description\n"
        "S-1,Circular saw,cuts wood\n"
        "S-2,,a row without its title\n"
        "S-1,Second saw,duplicated id\n"
        "\n"
        "S-3,Hammer,drives nails\n",
        encoding="utf-8",
    )

    with pytest.raises(InvalidCatalogError) as caught:
        build(path)

    assert [str(problem) for problem in caught.value.problems] == [
        "line 3: missing title",
        "line 4: duplicate id 'S-1', first seen on line 2",
        "line 5: empty row",
    ]
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(IndexVersion)) == 0
    assert folders_in(settings.index_dir) == []


def test_skip_invalid_records_skipped_count(build, write_csv, sessions):
    report = build(write_csv([*TOOLS, ["T-1", "Duplicate", "", "", ""]]), skip_invalid=True)

    with sessions() as session:
        record = session.get_one(IndexVersion, report.version)
        count = session.scalar(select(func.count()).select_from(Product)
                               .where(Product.version_id == report.version))
    assert record.skipped_count == 1
    assert count == len(TOOLS)
    assert [str(problem) for problem in report.skipped] == [
        "line 8: duplicate id 'T-1', first seen on line 2"
    ]


def test_failed_encoding_marks_version_failed(build, write_csv, sessions, settings, embedder,
                                              monkeypatch):
    def broken_encode(*args, **kwargs):
        raise RuntimeError("injected encoder fault")

    monkeypatch.setattr(embedder, "encode", broken_encode)

    with pytest.raises(RuntimeError, match="injected encoder fault"):
        build(write_csv(TOOLS))

    with sessions() as session:
        (record,) = versions.list_versions(session)
        assert versions.get_active(session) is None
    assert record.status == "failed"
    assert "injected encoder fault" in record.error
    assert folders_in(settings.index_dir) == []


def run_cli(settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "indexer", *args], capture_output=True,
                          text=True, env=settings_environment(settings), timeout=600)


def test_cli_builds_lists_and_activates(settings, write_csv, tmp_path):
    catalog = tmp_path / "products.csv"
    catalog.write_text("product_uid,product_title\n100001,Circular saw\n100002,Claw hammer\n",
                       encoding="utf-8")

    first = run_cli(settings, "build", "--catalog", str(catalog),
                    "--columns", "id=product_uid,title=product_title", "--activate")
    second = run_cli(settings, "build", "--catalog", str(catalog),
                     "--columns", "id=product_uid,title=product_title")
    activated = run_cli(settings, "activate", "2")
    listing = run_cli(settings, "versions")

    assert first.returncode == 0, first.stderr
    assert "Built index version 1" in first.stdout
    assert "products:  2 (0 invalid rows skipped" in first.stdout
    assert "active:    yes" in first.stdout
    assert "active:    no; run: python -m indexer activate 2" in second.stdout
    assert activated.returncode == 0, activated.stderr
    assert "Version 2 is now active (2 products)" in activated.stdout
    rows = [line.split() for line in listing.stdout.splitlines()[1:]]
    assert [row[:3] for row in rows] == [["2", "active", "2"], ["1", "ready", "2"]]


def test_cli_reports_invalid_rows(settings, tmp_path):
    catalog = tmp_path / "bad.csv"
    catalog.write_text("id,title\nA,Saw\nB,\nA,Dup\n", encoding="utf-8")

    result = run_cli(settings, "build", "--catalog", str(catalog))

    assert result.returncode == 1
    assert f"error: {catalog}: 2 invalid rows, nothing was published" in result.stderr
    assert "  line 3: missing title" in result.stderr
    assert "  line 4: duplicate id 'A', first seen on line 2" in result.stderr


def test_cli_bad_column_map_is_usage_error(settings, tmp_path):
    result = run_cli(settings, "build", "--catalog", str(tmp_path / "x.csv"), "--columns", "titel=title")

    assert result.returncode == 2
    assert "argument --columns: invalid column mapping 'titel=title': unknown field 'titel'" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_activating_active_version_says_so(settings, write_csv):
    run_cli(settings, "build", "--catalog", str(write_csv(TOOLS)), "--activate")

    result = run_cli(settings, "activate", "1")

    assert result.returncode == 0
    assert result.stdout.strip() == "Version 1 is already active; nothing changed."


def test_cli_rejects_unknown_version(settings):
    result = run_cli(settings, "activate", "42")

    assert result.returncode == 1
    assert "error: index version 42 does not exist" in result.stderr


def test_cli_skip_if_active_builds_nothing(settings, write_csv):
    catalog = write_csv(TOOLS)
    run_cli(settings, "build", "--catalog", str(catalog), "--activate")

    result = run_cli(settings, "build", "--catalog", str(catalog), "--activate", "--skip-if-active")

    assert result.returncode == 0
    assert "Version 1 is active; nothing built" in result.stdout
