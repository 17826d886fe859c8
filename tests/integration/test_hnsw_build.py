"""An HNSW build at small scale: measured efSearch in the manifest and in the served index."""

from __future__ import annotations

import dataclasses
import json

import pytest

from indexer.build import BuildContext, BuildRequest, build_version
from indexer.catalog import ColumnMap
from indexer.hnsw_tuning import query_like_texts
from service.holder import IndexHolder
from tests.conftest import TOOLS, pool_with

pytestmark = [pytest.mark.integration, pytest.mark.sqlite_only]


def test_auto_builds_hnsw_with_measured_ef_search(settings, engine, sessions, embedder, write_csv):
    small = dataclasses.replace(settings, hnsw_min_products=len(TOOLS), hnsw_m=4)
    context = BuildContext(engine, sessions, lambda: embedder, small.index_dir, small.text_template,
                           index_choice=small.index_choice)

    report = build_version(BuildRequest(write_csv(TOOLS), ColumnMap(), activate=True), context)

    index = json.loads((report.path / "manifest.json").read_text())["index"]
    assert index["type"] == "IndexHNSWFlat"
    assert index["m"] == 4
    assert index["recall_at_10"] >= 0.98
    # The noisy sample contains every product of so small a catalog, and the text sample
    # one query per distinct start of a product text.
    texts = [small.text_template.format(title=row[1], description=row[2]) for row in TOOLS]
    assert index["recall_queries"] == len(TOOLS) + len(query_like_texts(texts))

    measured = IndexHolder(sessions, small.index_dir, hnsw_ef_search=small.hnsw_ef_search)
    measured.refresh(pool_with(embedder))
    assert measured.current is not None
    assert measured.current.index.hnsw.efSearch == index["ef_search"]

    overridden = IndexHolder(sessions, small.index_dir, hnsw_ef_search=300)
    overridden.refresh(pool_with(embedder))
    assert overridden.current is not None
    assert overridden.current.index.hnsw.efSearch == 300
