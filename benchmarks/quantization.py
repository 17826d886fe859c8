"""Measure the ranking cost of the int8 ONNX encoder against fp32 ONNX, in dense mode.

Builds (or reuses) an index version of the products encoded with fp32 ONNX in
`<data-dir>/fp32`, then ranks every query through `service.search.search_catalog` twice:
with fp32 query vectors and with int8 query vectors, `top_k` 100, as
benchmarks/evaluate.py ranks them. With `--int8-index` it also builds
a version encoded with int8 in `<data-dir>/int8` and ranks it with int8 queries. Each
row gives nDCG@10 and Recall@100 (scored as benchmarks/evaluate.py scores them), the
change against fp32, and the mean share of each query's fp32 top 10 that the row's top
10 keeps. It writes nothing into the repository.

    python benchmarks/quantization.py --data-dir /tmp/quant \
        --products products.csv --queries queries.csv --relevance qrels.csv \
        --columns id=product_uid,title=product_title --int8-index
"""

from __future__ import annotations

import argparse
import time

from benchmarks.evaluate import (
    add_data_arguments,
    rank_all,
    read_judgments,
    read_queries,
    score,
    served_version,
)
from indexer.embedding import load_embedder
from indexer.settings import Settings
from service.cache import EmbeddingCache


def top10_overlap(rankings: dict[str, list[str]], reference: dict[str, list[str]]) -> float:
    """Return the mean share of each query's reference top 10 that `rankings` keeps in its top 10."""
    shares = [len(set(rankings[query][:10]) & set(reference[query][:10])) / max(len(reference[query][:10]), 1)
              for query in reference]
    return sum(shares) / max(len(shares), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_arguments(parser)
    parser.add_argument("--int8-index", action="store_true",
                        help="also build a version encoded with int8 and rank it with int8 queries")
    args = parser.parse_args()

    fp32_settings = Settings.from_env(data_dir=args.data_dir / "fp32", database_url="",
                                      encoder_backend="onnx")
    started = time.perf_counter()
    fp32, fp32_served = served_version(fp32_settings, args.products, args.columns)
    print(f"fp32 version ready in {time.perf_counter() - started:.0f} s", flush=True)
    int8 = load_embedder(Settings.from_env(data_dir=args.data_dir / "fp32", database_url="",
                                           encoder_backend="onnx-int8"))
    runs = [("fp32", "fp32", fp32, fp32_served), ("fp32", "int8", int8, fp32_served)]
    if args.int8_index:
        int8_settings = Settings.from_env(data_dir=args.data_dir / "int8", database_url="",
                                          encoder_backend="onnx-int8")
        started = time.perf_counter()
        int8_built, int8_served = served_version(int8_settings, args.products, args.columns)
        print(f"int8 version ready in {time.perf_counter() - started:.0f} s", flush=True)
        runs.append(("int8", "int8", int8_built, int8_served))

    queries = read_queries(args.queries)
    judgments = read_judgments(args.relevance)
    print(f"{fp32_served.product_count} products, {len(queries)} queries, dense mode")
    print("| index encoded with | queries encoded with | nDCG@10 | change | Recall@100 | change "
          "| top-10 overlap with fp32 | seconds |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    reference = None
    for index_precision, query_precision, embedder, served in runs:
        started = time.perf_counter()
        # A cache per run: the cache is keyed by the model fingerprint, which both precisions
        # share, so a shared cache would return fp32 vectors to the int8 run.
        rankings = rank_all(embedder, EmbeddingCache(len(queries)), served, queries, "dense", fp32_settings)
        seconds = time.perf_counter() - started
        result = score(rankings, judgments)
        if reference is None:
            reference, reference_result = rankings, result
        print(f"| {index_precision} | {query_precision} | {result.ndcg_at_10:.4f} "
              f"| {result.ndcg_at_10 - reference_result.ndcg_at_10:+.4f} | {result.recall_at_100:.4f} "
              f"| {result.recall_at_100 - reference_result.recall_at_100:+.4f} "
              f"| {top10_overlap(rankings, reference):.3f} | {seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
