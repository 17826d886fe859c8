"""Measure ranking quality on labeled queries: nDCG@10 and Recall@100 per ranking mode.

Builds an index version of the products file in the data folder, or reuses the active
one when it was built from the same file. Then it runs every query through the service's
own search function (`service.search.search_catalog`, as `/search` calls it) with
`top_k` 100, and prints one table row per mode. It writes nothing into the repository.

Input files (CSV with a header):
- products: the catalog, read as `indexer build` reads it (`--columns` maps the columns);
- queries: `query_id`, `query`;
- relevance: `query_id`, `product_uid`, `relevance`, `gain`.

Scoring: nDCG@10 with linear gains (`gain`), skipping queries whose judged gains are all
0; Recall@100 counts a product as relevant when `relevance >= 2.5`, skipping queries with
none. Unjudged products have gain 0.

    python benchmarks/evaluate.py --data-dir /tmp/eval \
        --products products.csv --queries queries.csv --relevance qrels.csv \
        --columns id=product_uid,title=product_title
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import functools
import time
from pathlib import Path

from indexer import checksums, versions
from indexer.build import BuildContext, BuildRequest, build_version
from indexer.catalog import ColumnMap
from indexer.database import create_database_engine, migrate, session_factory
from indexer.embedding import load_embedder
from indexer.settings import SEARCH_MODES, Settings
from service.cache import EmbeddingCache
from service.evaluation import Judgments, judgments_from, rank_queries, score
from service.holder import IndexHolder, ServedIndex
from service.models import model_pool

RELEVANT = 2.5
"""Relevance from which a product counts for Recall@100."""


def read_queries(path: Path) -> list[tuple[str, str]]:
    with path.open(newline="", encoding="utf-8") as stream:
        return [(row["query_id"], row["query"]) for row in csv.DictReader(stream)]


def read_judgments(path: Path) -> Judgments:
    with path.open(newline="", encoding="utf-8") as stream:
        rows = [(row["query_id"], row["product_uid"], float(row["gain"]), float(row["relevance"]))
                for row in csv.DictReader(stream)]
    return judgments_from(rows, RELEVANT)


def served_version(settings: Settings, products: Path, columns: ColumnMap) -> ServedIndex:
    """Return the served version of `products`, building it when needed; its `encoder` is
    the model it was built with."""
    engine = create_database_engine(settings.database_url)
    migrate(engine)
    sessions = session_factory(engine)
    embedder = load_embedder(settings)
    with sessions() as session:
        active = versions.get_active(session)
        reuse = active is not None and active.version.source_checksum == checksums.sha256_file(products)
    if not reuse:
        context = BuildContext(engine, sessions, functools.cache(lambda: embedder), settings.index_dir,
                               settings.text_template, settings.lexical_language)
        build_version(BuildRequest(products, columns, activate=True, progress=True, source="cli"), context)

    holder = IndexHolder(sessions, settings.index_dir, settings.lexical_language)
    pool = model_pool(settings)
    pool.add(embedder, configured=True)
    holder.refresh(pool)
    if holder.current is None:
        reason = holder.rejected.reason if holder.rejected else "no active version"
        raise SystemExit(f"cannot load the index version: {reason}")
    return holder.current


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the labeled data's files, their column mapping and the working folder to `parser`."""
    parser.add_argument("--products", type=Path, required=True, help="catalog CSV or JSON Lines file")
    parser.add_argument("--queries", type=Path, required=True, help="CSV with query_id, query")
    parser.add_argument("--relevance", type=Path, required=True,
                        help="CSV with query_id, product_uid, relevance, gain")
    parser.add_argument("--columns", type=ColumnMap.parse, default=ColumnMap(),
                        help="column mapping of the products file, e.g. id=product_uid,title=product_title")
    parser.add_argument("--data-dir", type=Path, required=True,
                        help="folder for the evaluation's own database and index versions")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_arguments(parser)
    parser.add_argument("--modes", default=",".join(SEARCH_MODES),
                        help="comma-separated ranking modes to evaluate")
    parser.add_argument("--hybrid-weights", default="",
                        help="comma-separated dense weights to evaluate hybrid with, besides the setting")
    args = parser.parse_args()

    settings = Settings.from_env(data_dir=args.data_dir, database_url="")
    served = served_version(settings, args.products, args.columns)
    queries = read_queries(args.queries)
    judgments = read_judgments(args.relevance)

    runs = [(mode, settings) for mode in args.modes.split(",")]
    for weight in filter(None, args.hybrid_weights.split(",")):
        runs.append(("hybrid", dataclasses.replace(settings, hybrid_dense_weight=float(weight))))

    print(f"index version {served.version}, {served.product_count} products, {len(queries)} queries")
    print("| mode | dense weight | nDCG@10 | Recall@100 | queries (nDCG / recall) | seconds |")
    print("| --- | --- | --- | --- | --- | --- |")
    # Shared by every run, so that each query is encoded once.
    cache = EmbeddingCache(len(queries))
    for mode, run_settings in runs:
        started = time.perf_counter()
        result = score(rank_queries(served.encoder, cache, served, queries, mode, run_settings), judgments)
        weight = f"{run_settings.hybrid_dense_weight:g}" if mode == "hybrid" else "-"
        print(f"| {mode} | {weight} | {result.ndcg_at_10:.4f} | {result.recall_at_100:.4f} | "
              f"{result.ndcg_queries} / {result.recall_queries} | {time.perf_counter() - started:.1f} |",
              flush=True)


if __name__ == "__main__":
    main()
