"""Scheduled runs: skip unchanged catalogs, hold versions that fail the promotion gate."""

from __future__ import annotations

import json

import pytest

from indexer import versions
from indexer.build import BuildContext, BuildRequest
from indexer.errors import CatalogError
from indexer.gate import GoldenQuery, load_golden_queries
from indexer.schedule import cron_trigger, run_scheduled_build
from tests.conftest import TOOLS

pytestmark = pytest.mark.integration


@pytest.fixture
def scheduled(settings, engine, sessions, embedder):
    context = BuildContext(engine, sessions, lambda: embedder, settings.index_dir,
                           settings.text_template)

    def run(catalog, golden=(), max_removed_fraction=0.2):
        return run_scheduled_build(BuildRequest(catalog), context, list(golden), max_removed_fraction)

    return run


def active_id(sessions):
    with sessions() as session:
        active = versions.get_active(session)
    return active.version.id if active else None


def test_first_run_activates(scheduled, write_csv, sessions):
    result = scheduled(write_csv(TOOLS))

    assert result.outcome == "activated"
    assert active_id(sessions) == result.version


def test_unchanged_catalog_builds_nothing(scheduled, write_csv, sessions):
    catalog = write_csv(TOOLS)
    first = scheduled(catalog)

    second = scheduled(catalog)

    assert second.outcome == "skipped"
    assert second.reasons == [f"catalog unchanged since version {first.version}"]
    with sessions() as session:
        assert len(versions.list_versions(session)) == 1


def test_half_removed_is_built_not_activated(scheduled, write_csv, sessions):
    first = scheduled(write_csv(TOOLS, name="full.csv"))

    second = scheduled(write_csv(TOOLS[:3], name="half.csv"))

    assert second.outcome == "held"
    assert second.reasons == ["3 of 6 products (50%) were removed, more than the allowed 20%"]
    assert active_id(sessions) == first.version
    with sessions() as session:
        record = versions.get_version(session, second.version)
    assert record.status == "ready"
    assert record.note == "3 of 6 products (50%) were removed, more than the allowed 20%"


def test_removal_within_limit_is_activated(scheduled, write_csv, sessions):
    scheduled(write_csv(TOOLS, name="full.csv"))

    second = scheduled(write_csv(TOOLS[:5], name="one-less.csv"))

    assert second.outcome == "activated"
    assert active_id(sessions) == second.version


def test_failed_golden_query_holds_version(scheduled, write_csv, sessions):
    golden = [GoldenQuery("cut wood", ["T-1"], 1), GoldenQuery("drive nails", ["T-5"], 1)]

    result = scheduled(write_csv(TOOLS), golden)

    assert result.outcome == "held"
    assert result.reasons == ["golden query 'drive nails': T-5 not in the top 1"]
    assert active_id(sessions) is None


def test_passing_golden_queries_activate(scheduled, write_csv, sessions):
    golden = [GoldenQuery("cut wood", ["T-1"], 1), GoldenQuery("measure a distance", ["T-3"], 2)]

    result = scheduled(write_csv(TOOLS), golden)

    assert result.outcome == "activated"


def test_golden_file_parsed_and_checked(tmp_path):
    path = tmp_path / "golden.jsonl"
    path.write_text(json.dumps({"query": "saw", "expected": ["T-1"], "top_k": 3}) + "\n\n"
                    + json.dumps({"query": "hammer", "expected": [2]}) + "\n", encoding="utf-8")

    assert load_golden_queries(path) == [GoldenQuery("saw", ["T-1"], 3), GoldenQuery("hammer", ["2"], 10)]


def test_golden_file_error_names_line(tmp_path):
    path = tmp_path / "golden.jsonl"
    path.write_text('{"query": "saw"}\n', encoding="utf-8")

    with pytest.raises(CatalogError, match=r"golden\.jsonl line 1"):
        load_golden_queries(path)


def test_invalid_cron_is_rejected():
    with pytest.raises(CatalogError, match=r"invalid cron expression '61 \* \* \* \*'"):
        cron_trigger("61 * * * *")


def test_cli_once_says_why_it_held(settings, write_csv):
    from tests.integration.test_build import run_cli

    run_cli(settings, "schedule", "--once", "--catalog", str(write_csv(TOOLS, name="full.csv")))
    result = run_cli(settings, "schedule", "--once", "--catalog", str(write_csv(TOOLS[:2], name="cut.csv")))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "Built but did not activate version 2: 4 of 6 products (67%) were removed, more than "
        "the allowed 20%"
    )
